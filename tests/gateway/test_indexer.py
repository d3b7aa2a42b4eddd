"""The indexer: decoded chain history in the database, rolled back on a reorg."""

from __future__ import annotations

from gateway_kit import Gateway, purchase

from chain.devnet import rpc_call
from gateway.indexer import Indexer
from gateway.models import ChainRecord


def drain(indexer: Indexer) -> None:
    for _ in range(100):
        if not indexer.run_once():
            return
    raise AssertionError("indexer never caught up")


def issued(gateway: Gateway) -> dict[str, int]:
    """member -> points issued, from the indexed records."""
    totals: dict[str, int] = {}
    with gateway.context.sessions() as session:
        for record in session.query(ChainRecord).filter(ChainRecord.kind == "issuance"):
            assert record.member is not None
            totals[record.member] = totals.get(record.member, 0) + int(record.amount)
    return totals


def test_indexer_records_issuances_and_rolls_back_a_reorg(gateway: Gateway) -> None:
    settings = gateway.context.settings
    indexer = Indexer(settings, gateway.context.link.deployment.hub, gateway.context.sessions)
    kept = gateway.client.post(
        "/v1/events", json=purchase("idx-kept", "IDX-1"), headers=gateway.headers()
    ).json()
    gateway.settle()
    drain(indexer)
    assert issued(gateway)[kept["member_address"].lower()] == kept["points"]

    snapshot = rpc_call(settings.rpc_url, "evm_snapshot")
    lost = gateway.client.post(
        "/v1/events", json=purchase("idx-lost", "IDX-2"), headers=gateway.headers()
    ).json()
    gateway.settle()
    drain(indexer)
    assert lost["member_address"].lower() in issued(gateway)

    # A reorg: the blocks holding the second issuance are replaced by others.
    assert rpc_call(settings.rpc_url, "evm_revert", [snapshot]) is True
    rpc_call(settings.rpc_url, "anvil_mine", ["0x5"])
    floor = indexer.check_reorg()
    assert floor is not None
    drain(indexer)
    after = issued(gateway)
    assert lost["member_address"].lower() not in after
    assert after[kept["member_address"].lower()] == kept["points"]

    # Rebuilding from block 0 gives the same history.
    indexer.rebuild()
    drain(indexer)
    assert issued(gateway) == after
