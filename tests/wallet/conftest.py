"""Wallet fixtures: the in-process gateway of tests/gateway for the API tests (SQLite, and
PostgreSQL where one is reachable), and a live gateway (uvicorn + worker thread) for the
browser tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from factories import database_for
from wallet_kit import LiveGateway, start_live_gateway

from tests.gateway.gateway_kit import Gateway, start_gateway


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
