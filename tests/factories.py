"""Shared test types and factories (importable from every test folder)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from eth_account import Account

from chain.config import Settings
from chain.devnet import Devnet


@dataclass(frozen=True)
class AnvilNode:
    """The session devnet: where it answers, and settings pointing at it."""

    url: str
    chain_id: int
    port: int
    devnet: Devnet
    settings: Settings


def new_member() -> tuple[str, str]:
    """A fresh (address, private key)."""
    account = Account.create()
    return account.address, "0x" + bytes(account.key).hex()


#: Where the tests look for PostgreSQL (override with POINTSNET_TEST_POSTGRES_URL).
POSTGRES_URL = os.environ.get(
    "POINTSNET_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


def postgres_available() -> bool:
    """Whether a PostgreSQL server answers at POSTGRES_URL (within a second)."""
    try:
        import psycopg

        with psycopg.connect(POSTGRES_URL, connect_timeout=1):
            return True
    except Exception:
        return False


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """A new, empty PostgreSQL database for one test module; dropped afterwards."""
    import psycopg

    name = "pointsnet_test_" + uuid.uuid4().hex[:12]
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base, _, _db = POSTGRES_URL.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
