"""Gateway fixtures (see gateway_kit for what they build)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from gateway_kit import Gateway, start_gateway


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    yield from start_gateway(tmp_path_factory.mktemp("gateway"))
