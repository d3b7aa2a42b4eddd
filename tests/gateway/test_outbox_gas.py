"""Issue batches priced from their size and composition, not by eth_estimateGas: a batch
whose gas fell short on chain changed nothing, and its events go again, exactly once."""

from __future__ import annotations

import pytest
from gateway_kit import Gateway, purchase
from sqlalchemy import select

from gateway.models import ChainOp, ChainTx
from gateway.outbox import gas as gas_module
from gateway.outbox import packing as packing_module


def test_issue_batch_gas_grows_with_new_members() -> None:
    assert gas_module.issue_batch_gas(0, 100) < gas_module.issue_batch_gas(100, 0)
    # Measured: 26,577 / 9,478 gas per event in batches of 100 (docs/BENCHMARKS.md).
    assert gas_module.issue_batch_gas(100, 0) >= 100 * 26_577
    assert gas_module.issue_batch_gas(0, 100) >= 100 * 9_478


def test_an_issue_batch_is_filled_up_to_the_block_gas_limit_and_eip_7825s_cap() -> None:
    new = [f"0x{i:040x}" for i in range(2_000)]
    for block_gas in (10_000_000, 30_000_000, 1_000_000_000):
        cap = min(block_gas, gas_module.TX_GAS_CAP)
        taken, gas = gas_module.fill_issue_batch(new, set(), block_gas)
        assert gas <= cap < gas_module.issue_batch_gas(taken + 1, 0)
    # Members who hold points cost less: more of them fit, and a repeat is not new.
    taken_existing, _ = gas_module.fill_issue_batch(new, set(new), 30_000_000)
    assert taken_existing > taken
    _, twice = gas_module.fill_issue_batch([new[0], new[0]], set(), 30_000_000)
    assert twice == gas_module.issue_batch_gas(1, 1)


def test_a_batch_that_runs_out_of_gas_on_chain_goes_again_and_issues_once(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    gateway.settle()
    # The simulation passed (state changed before inclusion, say) and the chain ran out of
    # the computed gas: far too little here.
    monkeypatch.setattr(
        packing_module, "fill_issue_batch", lambda members, holding, block: (len(members), 80_000)
    )
    monkeypatch.setattr(gateway.worker.sender, "simulate", lambda to, data, gas: None)
    events = [
        gateway.client.post(
            "/v1/events", json=purchase(f"oog-{i}", f"OOG-{i}", "20.00"), headers=gateway.headers()
        ).json()
        for i in range(3)
    ]
    gateway.settle()
    with gateway.context.sessions() as session:
        txs = session.scalars(select(ChainTx).where(ChainTx.kind == "issue")).all()
        ran_out = [tx for tx in txs if tx.status == "failed" and "out of gas" in (tx.error or "")]
        assert ran_out, [(tx.status, tx.gas, tx.gas_used, tx.error) for tx in txs]
        ops = session.scalars(
            select(ChainOp).where(ChainOp.event_id.in_([e["id"] for e in events]))
        ).all()
        assert {op.status for op in ops if op.kind == "issue"} == {"confirmed"}
        assert all(op.tx_id not in {tx.id for tx in ran_out} for op in ops)
    token = gateway.context.link.network.token
    refs = [
        r.ref for r in gateway.context.link.network.issuances() if r.tx_hash != ran_out[0].tx_hash
    ]
    for event in events:
        final = gateway.client.get(f"/v1/events/{event['id']}", headers=gateway.headers()).json()
        assert final["status"] == "confirmed"
        assert token.balance_of(event["member_address"]) == event["points"]
    assert len(refs) == len(set(refs))  # no reference issued twice
