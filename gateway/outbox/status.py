"""Event statuses derived from their ops, and the webhooks that report them.

Responsibilities:

- fail ops (and settle the redemptions they carried);
- derive each touched event's status from its ops, locking the events in id order so
  that two signer lanes finishing ops of one event never both miss the other's;
- queue ``event.confirmed`` / ``event.failed`` / ``redemption.confirmed`` webhooks;
- take events that failed out of their members' counter buckets
  (:func:`gateway.services.accept.counters.count_failed`).
"""

from __future__ import annotations

import secrets
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from gateway.db import NO_KEY_UPDATE
from gateway.models import ChainOp, ChainTx, Event, Redemption, table_of
from gateway.outbox.base import VALUE_KINDS, OutboxState
from gateway.services.accept.counters import count_failed
from gateway.webhooks.dispatcher import Webhook, queue_webhook, queue_webhooks

#: Events read (and locked) per statement when their statuses are derived from their ops.
EVENTS_PER_READ = 500
#: The events' table, for the Core statements below.
EVENTS = table_of(Event)
#: What an ``event.*`` webhook carries, in this order (``event_id`` is the event's id).
PAYLOAD_FIELDS = (
    "event_id", "idempotency_key", "type", "customer_id", "status", "reason", "points",
    "clawback", "badges", "rule_version", "tx_hash", "block_number",
)  # fmt: skip
#: The event columns read to update its status, queue its webhook and, if it failed, take
#: it out of its member's counters (:func:`count_failed`).
EVENT_COLUMNS = (
    "id", "merchant_id", "idempotency_key", "type", "customer_id", "status", "reason",
    "points", "clawback", "badges", "rule_version", "tx_hash", "block_number", "member_id",
    "occurred_at", "network_amount",
)  # fmt: skip


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
        self._update_event_ids(session, [op.event_id for op in ops if op.event_id])

    def _update_event_ids(self, session: Session, ids: Iterable[str]) -> None:
        """:meth:`_update_events` for events ``ids``, set-based, in SQLAlchemy Core (no ORM
        object per event): per chunk of ``EVENTS_PER_READ`` events one locking read of the
        events, one of their ops and one of their transactions; the changed events written
        with one ``UPDATE … WHERE id IN`` per outcome (usually one per transaction), their
        webhooks queued in one insert, and those that failed taken out of their members'
        counters."""
        event_ids = sorted(set(ids))
        if not event_ids:
            return
        session.flush()  # ops changed through the ORM are read below
        for start in range(0, len(event_ids), EVENTS_PER_READ):
            chunk = event_ids[start : start + EVENTS_PER_READ]
            # Lock the events and re-read their ops: another signer lane may be finalizing
            # another op of the same event concurrently (read committed would let both
            # miss the other's op and leave the event "submitted" for good). Rows are
            # locked in id order, as every lane does, so two lanes cannot deadlock.
            events = session.execute(
                select(*(EVENTS.c[name] for name in EVENT_COLUMNS))
                .where(EVENTS.c.id.in_(chunk))
                .order_by(EVENTS.c.id)
                .with_for_update(**NO_KEY_UPDATE)
            ).all()
            ops: dict[str, list[Any]] = defaultdict(list)
            for row in session.execute(
                select(ChainOp.event_id, ChainOp.kind, ChainOp.status, ChainOp.error, ChainOp.tx_id)
                .where(ChainOp.event_id.in_(chunk))
                .order_by(ChainOp.id)
            ):
                ops[str(row.event_id)].append(row)
            outcomes = {event.id: _outcome(ops[event.id]) for event in events}
            main_txs = {o.tx_id for o in outcomes.values() if o is not None and o.tx_id}
            txs = {
                int(row.id): row
                for row in session.execute(
                    select(ChainTx.id, ChainTx.tx_hash, ChainTx.block_number).where(
                        ChainTx.id.in_(main_txs)
                    )
                )
            } if main_txs else {}  # fmt: skip
            changes: dict[tuple[tuple[str, Any], ...], list[str]] = defaultdict(list)
            hooks: list[Webhook] = []
            failed: list[Any] = []
            for event in events:
                outcome = outcomes[event.id]
                if outcome is None or event.status in ("confirmed", "failed"):
                    continue
                values: dict[str, Any] = {"status": outcome.status}
                if outcome.reason is not None:
                    values["reason"] = outcome.reason[:200]
                tx = txs.get(outcome.tx_id) if outcome.tx_id else None
                if tx is not None:
                    values["tx_hash"], values["block_number"] = tx.tx_hash, tx.block_number
                changes[tuple(sorted(values.items()))].append(event.id)
                if outcome.status == "failed":
                    failed.append(event)
                payload = event_payload({**event._asdict(), "event_id": event.id, **values})
                hooks.append((event.merchant_id, f"event.{outcome.status}", payload))
            for values_key, changed in changes.items():
                session.execute(
                    update(EVENTS).where(EVENTS.c.id.in_(changed)).values(dict(values_key))
                )
            # A failed event no longer counts toward its member's counters (caps, streaks).
            count_failed(session, failed)
            queue_webhooks(session, hooks)


@dataclass(frozen=True)
class _Outcome:
    """What an event's ops make of it: its final status, the reason to record (if any)
    and the transaction that carried its main op (confirmed only)."""

    status: str
    reason: str | None
    tx_id: int | None


def _outcome(ops: list[Any]) -> _Outcome | None:
    """The final status an event's ops (rows, in id order) give it; None while not final.

    A failed issuance or clawback fails the event; once every op is final the points are
    on chain, and a badge or tier that failed is reported, not fatal."""
    if not ops:
        return None
    value_failed = [op for op in ops if op.status == "failed" and op.kind in VALUE_KINDS]
    if value_failed:
        return _Outcome("failed", value_failed[0].error, None)
    if not {op.status for op in ops} <= {"confirmed", "failed"}:
        return None
    side_failed = [op for op in ops if op.status == "failed"]
    reason = f"{side_failed[0].kind} not applied: {side_failed[0].error}" if side_failed else None
    main = next((op for op in ops if op.kind in ("issue", "clawback")), ops[0])
    return _Outcome("confirmed", reason, main.tx_id)


def event_payload(event: dict[str, Any]) -> dict[str, Any]:
    """The ``event.*`` webhook's data, from the event's columns (``EVENT_COLUMNS``)."""
    return {name: event[name] for name in PAYLOAD_FIELDS}
