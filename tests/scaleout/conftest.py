"""Scale-out fixtures: PostgreSQL only (several worker processes share one database).

Without a reachable PostgreSQL server every test here is skipped, saying why.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from factories import fresh_postgres_database, postgres_available
from scaleout_kit import Stack, start_stack


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if not postgres_available():
        pytest.skip("no PostgreSQL reachable (set POINTSNET_TEST_POSTGRES_URL)")
    with fresh_postgres_database() as url:
        yield from start_stack(tmp_path_factory.mktemp("scaleout"), url)
