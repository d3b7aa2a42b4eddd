"""Event statuses derived from their ops, and the webhooks that report them.

Responsibilities:

- fail ops (and settle the redemptions they carried);
- derive each touched event's status from its ops, locking the events in id order so
  that two signer lanes finishing ops of one event never both miss the other's;
- queue ``event.confirmed`` / ``event.failed`` / ``redemption.confirmed`` webhooks.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.db import NO_KEY_UPDATE
from gateway.models import ChainOp, ChainTx, Event, Merchant, Redemption
from gateway.outbox.base import VALUE_KINDS, OutboxState
from gateway.webhooks.dispatcher import queue_webhook

#: Events read (and locked) per statement when their statuses are derived from their ops.
EVENTS_PER_READ = 500


class EventStatus(OutboxState):
    """Event statuses from op statuses (the bottom layer above the state)."""

    def _fail_ops(self, session: Session, ops: Iterable[ChainOp], reason: str) -> None:
        ops = list(ops)
        for op in ops:
            op.status = "failed"
            op.error = reason[:500]
            if op.kind == "redeem":
                self._settle_redemption(session, op, None, confirmed=False)
        self._update_events(session, ops)

    def _settle_redemption(
        self, session: Session, op: ChainOp, tx: ChainTx | None, *, confirmed: bool
    ) -> None:
        redemption = session.scalars(select(Redemption).where(Redemption.op_id == op.id)).first()
        if redemption is None:
            return
        if confirmed and tx is not None:
            redemption.status = "confirmed"
            redemption.tx_hash = tx.tx_hash
            redemption.voucher_code = redemption.voucher_code or secrets.token_hex(6).upper()
            queue_webhook(session, redemption.merchant_id, "redemption.confirmed", {
                "redemption_id": redemption.id, "reward_id": redemption.reward_id,
                "member": redemption.member_address, "amount": redemption.amount,
                "voucher_code": redemption.voucher_code, "tx_hash": tx.tx_hash,
            })  # fmt: skip
        else:
            redemption.status = "failed"
            redemption.error = op.error

    def _update_events(self, session: Session, ops: list[ChainOp]) -> None:
        """Derive each touched event's status from its ops; webhook the final ones."""
        event_ids = sorted({op.event_id for op in ops if op.event_id})
        for start in range(0, len(event_ids), EVENTS_PER_READ):
            # Lock the events and re-read their ops: another signer lane may be finalizing
            # another op of the same event concurrently (read committed would let both
            # miss the other's op and leave the event "submitted" for good). Rows are
            # locked in id order, as every lane does, so two lanes cannot deadlock.
            events = session.scalars(
                select(Event)
                .where(Event.id.in_(event_ids[start : start + EVENTS_PER_READ]))
                .order_by(Event.id)
                .with_for_update(**NO_KEY_UPDATE)
                .execution_options(populate_existing=True)
            ).all()
            # Held here so that queue_webhook's look-ups find them in the session.
            merchants = session.scalars(
                select(Merchant).where(Merchant.id.in_({e.merchant_id for e in events}))
            ).all()
            for event in events:
                self._update_event(session, event)
            del merchants

    def _update_event(self, session: Session, event: Event) -> None:
        if event.status in ("confirmed", "failed"):
            return
        statuses = {op.status for op in event.ops}
        value_failed = [op for op in event.ops if op.status == "failed" and op.kind in VALUE_KINDS]
        if value_failed:
            event.status = "failed"
            event.reason = value_failed[0].error
            queue_webhook(session, event.merchant_id, "event.failed", event_payload(event))
        elif statuses <= {"confirmed", "failed"}:
            # Points are on chain; a badge or tier that failed is reported, not fatal.
            side_failed = [op for op in event.ops if op.status == "failed"]
            if side_failed:
                event.reason = f"{side_failed[0].kind} not applied: {side_failed[0].error}"
            main = next((op for op in event.ops if op.kind in ("issue", "clawback")), None)
            main = main or event.ops[0]
            tx = session.get(ChainTx, main.tx_id) if main.tx_id else None
            event.status = "confirmed"
            if tx is not None:
                event.tx_hash, event.block_number = tx.tx_hash, tx.block_number
            queue_webhook(session, event.merchant_id, "event.confirmed", event_payload(event))


def event_payload(event: Event) -> dict[str, Any]:
    return {
        "event_id": event.id,
        "idempotency_key": event.idempotency_key,
        "type": event.type,
        "customer_id": event.customer_id,
        "status": event.status,
        "reason": event.reason,
        "points": event.points,
        "clawback": event.clawback,
        "badges": event.badges,
        "rule_version": event.rule_version,
        "tx_hash": event.tx_hash,
        "block_number": event.block_number,
    }
