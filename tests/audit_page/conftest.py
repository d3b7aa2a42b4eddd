"""Fixtures for the audit page, its JSON API and ``reconcile``: a gateway with history.

``gateway`` is one real gateway for this folder's session (its own anvil, deployed
contracts, SQLite, two merchants; see ``tests/gateway/gateway_kit.py``).  ``book``
builds a history through the merchant API (purchases at both merchants, a refund, a
redemption at the other partner), settles it, and books what the API answered, so that
tests compare the audit's figures with expectations computed without the audit code.
Tests that add to the history add to the book.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from audit_page_kit import Book, build_history

from tests.gateway.gateway_kit import Gateway, start_gateway


@pytest.fixture(scope="session")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    yield from start_gateway(tmp_path_factory.mktemp("audit-page"))


@pytest.fixture(scope="session")
def book(gateway: Gateway) -> Book:
    return build_history(gateway)
