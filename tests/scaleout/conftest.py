"""Scale-out fixtures: PostgreSQL only (several worker processes share one database).

Without a reachable PostgreSQL server every test here is skipped, saying why.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from factories import database_for
from scaleout_kit import Stack, start_stack


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with database_for("postgresql") as url:
        yield from start_stack(tmp_path_factory.mktemp("scaleout"), url)
