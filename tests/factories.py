"""Shared test types and factories (importable from every test folder)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_utils import keccak

from bench.inprocess import outbox_busy as outbox_busy
from bench.stack import TEST_SETTINGS as TEST_SETTINGS
from bench.stack import open_network as open_network  # re-exported for the test folders
from chain.devnet import Devnet
from gateway.settings import Settings


@dataclass(frozen=True)
class AnvilNode:
    """The session devnet: where it answers, and settings pointing at it."""

    url: str
    chain_id: int
    port: int
    devnet: Devnet
    settings: Settings


def devnet_settings(tmp: Path, node: Devnet, **overrides: Any) -> Settings:
    """Settings of a test network on ``node``, data in ``tmp``: no timelock delay,
    ``TEST_SETTINGS``, and no ``.env`` file read."""
    values: dict[str, Any] = {
        "data_dir": tmp,
        "rpc_url": node.url,
        "devnet_port": node.port,
        "timelock_delay": 0,
        **TEST_SETTINGS,
        "_env_file": None,
    }
    values.update(overrides)
    return Settings(**values)


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


@contextmanager
def database_for(kind: str) -> Iterator[str | None]:
    """The database a test module runs on: None for SQLite (in the module's data
    directory), or a fresh PostgreSQL database's URL; skips when none is reachable."""
    if kind == "sqlite":
        yield None
        return
    if not postgres_available():
        import pytest

        pytest.skip("no PostgreSQL reachable (set POINTSNET_TEST_POSTGRES_URL)")
    with fresh_postgres_database() as url:
        yield url


def refund_ref(seq: int) -> bytes:
    """A refund event's reference for contract tests (the gateway hashes its idempotency key)."""
    return keccak(text=f"refund {seq}")
