"""Shared pytest fixtures.

``anvil`` is one automining devnet for the whole session; tests that change the
chain isolate themselves with ``chain_snapshot`` (``evm_snapshot`` before,
``evm_revert`` after).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from factories import AnvilNode

from chain.devnet import Devnet, free_port, rpc_call
from gateway.settings import Settings


@pytest.fixture(scope="session")
def anvil(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AnvilNode]:
    data_dir = tmp_path_factory.mktemp("anvil")
    port = free_port()
    # In memory (no state file): nothing in the test session needs a restart.
    devnet = Devnet(port=port, log_file=data_dir / "devnet" / "anvil.log")
    with devnet:
        settings = Settings(
            data_dir=data_dir, rpc_url=devnet.url, chain_id=devnet.chain_id, devnet_port=port
        )
        yield AnvilNode(devnet.url, devnet.chain_id, port, devnet, settings)


@pytest.fixture
def chain_snapshot(anvil: AnvilNode) -> Iterator[str]:
    """Revert the session chain to its state before the test; yields the snapshot id."""
    snapshot_id = rpc_call(anvil.url, "evm_snapshot")
    yield snapshot_id
    if rpc_call(anvil.url, "evm_revert", [snapshot_id]) is not True:
        pytest.fail(f"evm_revert({snapshot_id}) failed: later tests would see this test's state")
