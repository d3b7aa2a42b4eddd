"""Wallet fixtures: the in-process gateway of tests/gateway for the API tests (SQLite, and
PostgreSQL where one is reachable), and a live gateway (uvicorn + worker thread) for the
browser tests."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "gateway"))

from factories import database_for
from gateway_kit import Gateway, start_gateway
from wallet_kit import LiveGateway, start_live_gateway


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def gateway(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    with database_for(request.param) as url:
        yield from start_gateway(tmp_path_factory.mktemp("wallet-api"), database_url=url)


@pytest.fixture(scope="module")
def live_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveGateway]:
    yield from start_live_gateway(tmp_path_factory.mktemp("wallet-live"))
