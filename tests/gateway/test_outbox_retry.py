"""Each job type has its own retry budget for transient refusals: a badge award the node
keeps refusing is given up (its ops fail with the reason), an issuance waits."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import pytest
from gateway_kit import Gateway
from sqlalchemy import select

from chain.errors import RpcError, TransientTransactionError
from chain.sender import SignedTx
from gateway.db import transaction
from gateway.models import ChainOp, ChainTx
from gateway.outbox.base import chain_tx_row
from gateway.outbox.sending import RETRY_SECONDS
from gateway.outbox.worker import OutboxWorker


def test_a_badge_refused_past_its_budget_fails_and_an_issuance_keeps_waiting(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    gateway.settle()
    assert RETRY_SECONDS["issue"] is None and RETRY_SECONDS["badge"] is not None
    worker = OutboxWorker(gateway.context.link, gateway.context.sessions)
    sender = worker.sender
    ahead = sender.w3.eth.get_transaction_count(sender.address, "pending") + 10_000
    nonce = ahead + secrets.randbelow(10**6)  # nonces no other test signs
    long_ago = datetime.now(UTC) - timedelta(hours=2)
    refs = {kind: "0x" + secrets.token_hex(32) for kind in ("issue", "badge")}
    ids = {}
    with transaction(gateway.context.sessions) as session:
        for offset, kind in enumerate(("issue", "badge")):
            signed = sender.sign(sender.address, b"", gas=21_000, nonce=nonce + offset)
            tx = chain_tx_row(kind, gateway.merchants[0].id, signed)
            tx.created_at = long_ago
            session.add(tx)
            session.flush()
            ids[kind] = tx.id
            session.add(ChainOp(
                kind=kind, member_address=sender.address, ref=refs[kind], status="sent",
                tx_id=tx.id, merchant_id=gateway.merchants[0].id,
            ))  # fmt: skip

    def refuse(tx: SignedTx) -> str:
        raise TransientTransactionError("txpool is full")

    def refuse_each(calls: list[tuple[str, list[str]]], size: int = 250) -> list[RpcError]:
        return [RpcError(method, -32000, "txpool is full") for method, _params in calls]

    # Both go in one batch, refused item by item; each is then sent alone and refused.
    monkeypatch.setattr(sender.rpc, "batch_outcomes", refuse_each)
    monkeypatch.setattr(sender, "broadcast", refuse)
    worker._broadcast_new()

    with gateway.context.sessions() as session:
        badge = session.get(ChainTx, ids["badge"])
        issue = session.get(ChainTx, ids["issue"])
        assert badge is not None and issue is not None
        assert badge.status == "failed" and "txpool is full" in (badge.error or "")
        assert issue.status == "signed" and "txpool is full" in (issue.error or "")
        ops = {
            op.kind: op
            for op in session.scalars(select(ChainOp).where(ChainOp.ref.in_(refs.values())))
        }
        assert ops["badge"].status == "failed" and "still refused" in (ops["badge"].error or "")
        assert ops["issue"].status == "sent"
        # Leave nothing for the shared gateway's worker.
        issue.status = "failed"
        for op in ops.values():
            op.status = "failed"
        session.commit()
