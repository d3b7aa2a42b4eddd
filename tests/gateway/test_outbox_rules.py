"""The outbox's side of published rules and committed inputs (a network deployed without
rule notice, as every gateway kit is): a rule set goes on chain as its text and its row
learns when it takes effect; issue and clawback batches commit to their ops' inputs; the
devnet's clock is moved past an effective time no block has reached; the indexer keeps
the new fields."""

from __future__ import annotations

import time

from eth_utils import keccak
from gateway_kit import Gateway, purchase
from sqlalchemy import select

from chain import merkle
from chain.abi import ZERO32
from chain.decode import decode_logs
from chain.records import ClawbackCommitment, IssuanceBatch, Record, RuleSetPublication
from gateway.indexer import Indexer
from gateway.models import ChainOp, ChainRecord, ChainTx, IssuanceInput, RuleSetVersion


def _logged(gateway: Gateway, tx_hash: str) -> list[Record]:
    """The hub's decoded logs of transaction ``tx_hash``."""
    receipt = gateway.worker.sender.receipts([tx_hash])[0]
    assert receipt is not None and receipt.ok
    return decode_logs(gateway.context.link.network.emitters(), receipt.logs)


def _block_time(gateway: Gateway, block: int) -> int:
    return int(gateway.context.link.w3.eth.get_block(block)["timestamp"])


def _committed(ops: list[ChainOp]) -> str:
    """The input root of ``ops`` (in batch order) as the chain must log it."""
    pairs = [(op.ref, op.input_hash or ZERO32) for op in ops]
    return "0x" + merkle.input_root(pairs).hex()


def test_a_rule_set_goes_on_chain_as_its_text_and_its_row_learns_when_it_applies(
    gateway: Gateway,
) -> None:
    gateway.settle()
    rules = gateway.client.get("/v1/rules", headers=gateway.headers()).json()["rules"]
    rules["earn_rate"] = str(int(float(rules["earn_rate"])) + 1)
    response = gateway.client.put("/v1/rules", json=rules, headers=gateway.headers())
    assert response.status_code == 202, response.text
    version = response.json()["version"]
    gateway.settle()
    merchant_id = gateway.merchants[0].id
    with gateway.context.sessions() as session:
        row = session.scalars(
            select(RuleSetVersion).where(
                RuleSetVersion.merchant_id == merchant_id, RuleSetVersion.version == version
            )
        ).one()
        assert row.tx_hash is not None and row.published_block is not None
        published = [r for r in _logged(gateway, row.tx_hash) if isinstance(r, RuleSetPublication)]
        assert len(published) == 1
        record = published[0]
        assert (record.merchant, record.rule_version) == (merchant_id, version)
        assert record.text == row.canonical and record.rule_set_hash == row.hash
        # No notice on this network: in effect from the publication's block.
        assert row.effective_at == record.effective_at == _block_time(gateway, row.published_block)
    hub = gateway.context.link.network.hub.merchant(merchant_id)
    assert hub.rule_version == version and hub.rule_effective_at == row.effective_at


def test_issue_and_clawback_batches_commit_to_their_ops_inputs(gateway: Gateway) -> None:
    earned = [
        gateway.client.post(
            "/v1/events",
            json=purchase(f"root-{i}", f"ROOT-{i}", "40.00"),
            headers=gateway.headers(),
        ).json()
        for i in range(3)
    ]
    gateway.settle()
    refund = {
        "type": "refund",
        "customer_id": "root-0",
        "occurred_at": "2026-11-21T10:00:00Z",
        "refund": {"order_id": "ROOT-0"},
    }
    refunded = gateway.client.post("/v1/events", json=refund, headers=gateway.headers())
    assert refunded.status_code == 202, refunded.text
    gateway.settle()
    event_ids = [e["id"] for e in earned] + [refunded.json()["id"]]
    with gateway.context.sessions() as session:
        ops = session.scalars(
            select(ChainOp).where(
                ChainOp.event_id.in_(event_ids), ChainOp.kind.in_(("issue", "clawback"))
            )
        ).all()
        assert {op.kind for op in ops} == {"issue", "clawback"}
        assert {op.status for op in ops} == {"confirmed"}
        for tx_id in {op.tx_id for op in ops}:
            tx = session.get(ChainTx, tx_id)
            assert tx is not None
            batch = session.scalars(
                select(ChainOp).where(ChainOp.tx_id == tx_id).order_by(ChainOp.seq)
            ).all()
            assert tx.input_root == _committed(list(batch))
            logged = _logged(gateway, tx.tx_hash)
            if tx.kind == "issue":
                [issued] = [r for r in logged if isinstance(r, IssuanceBatch)]
                assert issued.input_root == tx.input_root and issued.mint_kind == 0
            else:
                [commitment] = [r for r in logged if isinstance(r, ClawbackCommitment)]
                assert commitment.input_root == tx.input_root
                assert commitment.count == len(batch)
        # Each op's leaf is the hash of the input the gateway keeps for it.
        for op in ops:
            kept = session.get(IssuanceInput, op.ref)
            assert kept is not None and kept.event_id == op.event_id
            assert op.input_hash == kept.input_hash == "0x" + keccak(text=kept.body).hex()


def test_the_devnet_clock_is_moved_past_an_effective_time_no_block_has_reached(
    gateway: Gateway,
) -> None:
    gateway.settle()
    worker, w3 = gateway.worker, gateway.context.link.w3
    latest = w3.eth.get_block("latest")
    # A time in the future by the wall clock: nothing is mined for it yet.
    worker._effective_due = {int(time.time()) + 3600}
    worker._devnet_clock_at = 0.0
    worker.run_once()
    assert w3.eth.block_number == latest["number"]
    # A time passed by the wall clock that no block has reached: one block is mined.
    while int(time.time()) <= latest["timestamp"]:
        time.sleep(0.1)
    due = int(time.time())
    worker._effective_due = {due}
    worker._devnet_clock_at = 0.0
    worker.run_once()
    assert w3.eth.block_number == latest["number"] + 1
    assert w3.eth.get_block("latest")["timestamp"] >= due
    assert not worker._effective_due
    worker._devnet_clock_at = 0.0
    worker.run_once()  # nothing due any more: no block
    assert w3.eth.block_number == latest["number"] + 1


def test_the_indexer_keeps_the_publications_text_and_the_batches_commitments(
    gateway: Gateway,
) -> None:
    gateway.client.post(
        "/v1/events", json=purchase("indexed", "IDX-1", "30.00"), headers=gateway.headers()
    )
    gateway.settle()
    context = gateway.context
    indexer = Indexer(context.settings, context.link.network.hub.address, context.sessions)
    while indexer.run_once():
        pass
    with context.sessions() as session:
        rows = session.scalars(
            select(ChainRecord).where(ChainRecord.kind.in_(("rule_set_published", "points_issued")))
        ).all()
        rules = session.scalars(select(RuleSetVersion)).all()
        issued = session.scalars(select(ChainTx).where(ChainTx.kind == "issue")).all()
    texts = {
        (r.merchant_id, r.data["rule_version"]): r.data for r in rows if r.kind != "points_issued"
    }
    for row in rules:
        if row.tx_hash is not None:
            data = texts[(row.merchant_id, row.version)]
            assert data["text"] == row.canonical and data["effective_at"] == row.effective_at
    roots = {r.tx_hash: r.data for r in rows if r.kind == "points_issued"}
    for tx in issued:
        if tx.status == "confirmed":
            assert roots[tx.tx_hash]["input_root"] == tx.input_root
            assert roots[tx.tx_hash]["mint_kind"] == 0
