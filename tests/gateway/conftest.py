"""Gateway fixtures (see gateway_kit for what they build).

Every gateway test runs on SQLite and, where a server is reachable, on
PostgreSQL too (a fresh database per module); without PostgreSQL those runs
are skipped, saying why.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from factories import database_for
from gateway_kit import Gateway, start_gateway


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def gateway(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    with database_for(request.param) as url:
        yield from start_gateway(tmp_path_factory.mktemp("gateway"), database_url=url)
