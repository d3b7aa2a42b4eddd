"""Replacing a stuck transaction after an earlier replacement of it failed.

Seen under RPC faults (tests/chaos/test_rpc_faults.py): a replacement was
dropped ("nonce consumed elsewhere") and its ops queued again; bumping the
original once more signed that same replacement, whose hash was stored
already, and every worker cycle crashed on the unique key from then on.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import pytest
from gateway_kit import Gateway
from sqlalchemy import select

from gateway.db import transaction
from gateway.models import ChainOp, ChainTx
from gateway.outbox.base import chain_tx_row, signed_of
from gateway.outbox.worker import OutboxWorker


def _stuck(gateway: Gateway, worker: OutboxWorker, with_op: bool) -> tuple[int, str]:
    """A sent, never-mined transaction (far-ahead nonce, never broadcast) and its stored
    replacement, dropped; returns (the original's id, the dropped replacement's hash)."""
    sender = worker.sender
    ahead = 10_000 + secrets.randbelow(10**6)  # a nonce no other test signs
    nonce = sender.w3.eth.get_transaction_count(sender.address, "pending") + ahead
    signed = sender.sign(sender.address, b"", gas=21_000, nonce=nonce)
    with transaction(gateway.context.sessions) as session:
        original = chain_tx_row("badge", gateway.merchants[0].id, signed)
        original.status, original.sent_at = "sent", datetime.now(UTC) - timedelta(hours=1)
        session.add(original)
        session.flush()
        dropped = chain_tx_row(
            "badge", gateway.merchants[0].id, sender.replacement(signed_of(original))
        )
        dropped.status, dropped.replaces, dropped.error = "failed", original.id, "nonce consumed"
        session.add(dropped)
        if with_op:
            session.add(ChainOp(
                kind="badge", member_address=sender.address, ref="0x" + "ab" * 32,
                status="sent", tx_id=original.id, merchant_id=gateway.merchants[0].id,
            ))  # fmt: skip
        session.flush()
        return original.id, dropped.tx_hash


@pytest.mark.parametrize("with_op", [True, False], ids=["ops-wait-on-it", "nothing-waits"])
def test_a_stuck_transaction_is_bumped_past_its_failed_replacement(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch, with_op: bool
) -> None:
    worker = OutboxWorker(gateway.context.link, gateway.context.sessions)
    monkeypatch.setattr(worker, "_broadcast_new", lambda: None)  # nothing reaches the node
    original_id, dropped_hash = _stuck(gateway, worker, with_op)

    worker.replace_stuck()
    worker.replace_stuck()  # and again: no crash on a second pass either

    with gateway.context.sessions() as session:
        replacements = session.scalars(
            select(ChainTx).where(ChainTx.replaces == original_id).order_by(ChainTx.id)
        ).all()
        dropped = next(tx for tx in replacements if tx.tx_hash == dropped_hash)
        fresh = [tx for tx in replacements if tx.status == "signed"]
        if with_op:
            # A new replacement, above the dropped one's fees; the op moved to it.
            assert len(fresh) == 1 and fresh[0].max_fee_per_gas > dropped.max_fee_per_gas
            op = session.scalars(select(ChainOp).where(ChainOp.tx_id == fresh[0].id)).one()
            assert op.kind == "badge"
        else:
            assert fresh == []  # nothing waits on it: not bumped
        for tx in replacements:  # leave nothing for the shared gateway's worker
            tx.status = "failed"
        original = session.get(ChainTx, original_id)
        assert original is not None
        original.status = "failed"
        for op in session.scalars(select(ChainOp).where(ChainOp.ref == "0x" + "ab" * 32)):
            op.status = "failed"
        session.commit()
