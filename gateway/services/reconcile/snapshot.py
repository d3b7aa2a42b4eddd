"""The database side of a reconciliation: what the gateway stored, read in one transaction."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.models import ChainOp, ChainTx, Event, Member, Merchant
from gateway.models import Redemption as RedemptionRow


@dataclass(frozen=True)
class DbOp:
    id: int
    event_id: str | None
    merchant_id: int | None
    kind: str
    member: str  # lower-case
    amount: int
    badge_id: int | None
    tier: int | None
    rule_version: int
    ref: str  # lower-case
    original_seq: int | None
    seq: int | None
    status: str
    burned: int | None
    tx_id: int | None
    payload: dict[str, Any]


@dataclass(frozen=True)
class DbTx:
    id: int
    kind: str
    sender: str  # lower-case
    nonce: int
    tx_hash: str  # lower-case
    status: str
    block_number: int | None


@dataclass(frozen=True)
class DbEvent:
    id: str
    merchant_id: int
    member: str  # lower-case: the member the event credits (a referrer's ops are not its)
    points: int
    clawback: int
    tx_hash: str | None
    block_number: int | None


@dataclass(frozen=True)
class DbRedemption:
    id: str
    merchant_id: int
    member: str
    amount: int
    nonce: int
    ref: str
    status: str
    op_id: int | None
    tx_hash: str | None


@dataclass(frozen=True)
class DbMerchant:
    id: int
    name: str
    status: str
    signer: str
    cap: int
    next_seq: int
    rule_version: int


@dataclass
class DatabaseState:
    """What the database says, read in one transaction."""

    ops: list[DbOp]
    txs: dict[int, DbTx]
    events: list[DbEvent]  # confirmed ones
    redemptions: list[DbRedemption]
    merchants: dict[int, DbMerchant]


def lower(value: str | None) -> str:
    """An address or hash as compared: lower-case, empty for None."""
    return (value or "").lower()


def read_database(sessions: Callable[[], Session]) -> DatabaseState:
    """Ops, transactions, confirmed events, redemptions and merchants, consistently."""
    with sessions() as session:
        if session.get_bind().dialect.name == "postgresql":
            session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        ops = [
            DbOp(
                op.id,
                op.event_id,
                op.merchant_id,
                op.kind,
                lower(op.member_address),
                int(op.amount or 0),
                op.badge_id,
                op.tier,
                int(op.rule_version or 0),
                lower(op.ref),
                op.original_seq,
                op.seq,
                op.status,
                op.burned,
                op.tx_id,
                dict(op.payload or {}),
            )
            for op in session.scalars(select(ChainOp).order_by(ChainOp.id))
        ]
        txs = {
            tx.id: DbTx(
                tx.id,
                tx.kind,
                lower(tx.sender),
                int(tx.nonce),
                lower(tx.tx_hash),
                tx.status,
                tx.block_number,
            )
            for tx in session.scalars(select(ChainTx))
        }
        events = [
            DbEvent(
                e.id,
                e.merchant_id,
                lower(address),
                int(e.points or 0),
                int(e.clawback or 0),
                lower(e.tx_hash) or None,
                e.block_number,
            )
            for e, address in session.execute(
                select(Event, Member.address)
                .join(Member, Member.id == Event.member_id)
                .where(Event.status == "confirmed")
                .order_by(Event.created_at)
            )
        ]
        redemptions = [
            DbRedemption(
                r.id,
                r.merchant_id,
                lower(r.member_address),
                int(r.amount),
                int(r.nonce),
                lower(r.ref),
                r.status,
                r.op_id,
                lower(r.tx_hash) or None,
            )
            for r in session.scalars(select(RedemptionRow).order_by(RedemptionRow.created_at))
        ]
        merchants = {
            m.id: DbMerchant(
                m.id,
                m.name,
                m.status,
                lower(m.signer_address),
                int(m.cap_per_period),
                int(m.next_seq),
                int(m.rule_version),
            )
            for m in session.scalars(select(Merchant))
        }
    return DatabaseState(ops, txs, events, redemptions, merchants)
