"""Shared test types and factories (importable from every test folder)."""

from __future__ import annotations

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
