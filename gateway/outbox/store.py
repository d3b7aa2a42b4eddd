"""Storing a signed transaction and claiming its ops: short, set-based write transactions.

Responsibilities:

- the statements of the outbox's hot write path, in SQLAlchemy Core (no ORM object per
  op): advance a merchant's sequence counter only if nobody moved it
  (``UPDATE … WHERE next_seq = :expected``), insert the transaction
  (``INSERT … RETURNING id``), claim its ops (``UPDATE … WHERE id IN … AND status =
  'pending'``, numbering their sequence numbers in id order; on PostgreSQL only rows
  it can lock at once, ``FOR UPDATE SKIP LOCKED``) and mark their events submitted;
- :func:`store_signed`: all of that in one write transaction that holds no RPC, no
  signing and no Python loop over the ops: the caller signs before it, and gives the
  nonce back (:meth:`~chain.sender.TransactionSender.release_nonce`) when it answers
  False (another worker took some ops, or the merchant's counter moved: plan again).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import BigInteger, bindparam, func, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from chain.sender import SignedTx
from gateway.db import is_postgres, transaction
from gateway.models import ChainOp, ChainTx, Event, Merchant, table_of
from gateway.outbox.base import chain_tx_values

#: The ops' table, for the Core statements below.
OPS = table_of(ChainOp)


class _Moved(Exception):
    """The world moved on since the plan: roll the write transaction back."""


def store_signed(
    sessions: sessionmaker[Session],
    kind: str,
    merchant_id: int | None,
    signed: SignedTx,
    op_ids: Sequence[int],
    *,
    first_seq: int | None = None,
    original_seqs: Sequence[int] | None = None,
    input_root: str | None = None,
) -> bool:
    """Store ``signed`` with its ops ``op_ids`` (in id order) marked sent, in one short
    write transaction; False, with nothing written, when some op is no longer pending or,
    with ``first_seq``, when the merchant's next sequence number is no longer it.

    With ``first_seq`` the ops get sequence numbers ``first_seq``, ``first_seq + 1``, …
    in id order and the merchant's counter moves past them; ``original_seqs[i]`` is
    the issuance the i-th clawback refunds; ``input_root`` is the root over the ops'
    inputs the call commits to (stored on the transaction).
    """
    try:
        with transaction(sessions) as session:
            if first_seq is not None and not _advance_seq(
                session, merchant_id, first_seq, len(op_ids)
            ):
                raise _Moved
            tx_id = insert_tx(session, kind, merchant_id, signed, input_root)
            if claim_ops(session, op_ids, tx_id, first_seq) != len(op_ids):
                raise _Moved
            if original_seqs is not None:
                session.execute(
                    update(OPS)
                    .where(OPS.c.id == bindparam("op_id"))
                    .values(original_seq=bindparam("original")),
                    [
                        {"op_id": op_id, "original": original}
                        for op_id, original in zip(op_ids, original_seqs, strict=True)
                    ],
                )
            submit_events(session, tx_id)
    except _Moved:
        return False
    return True


def _advance_seq(session: Session, merchant_id: int | None, expected: int, count: int) -> bool:
    """Move the merchant's next sequence number from ``expected`` past ``count`` numbers;
    False if it is no longer ``expected`` (the row stays locked until the commit)."""
    moved = session.execute(
        update(Merchant)
        .where(Merchant.id == merchant_id, Merchant.next_seq == expected)
        .values(next_seq=expected + count)
        .execution_options(synchronize_session=False)
    )
    return bool(moved.rowcount == 1)  # type: ignore[attr-defined]


def insert_tx(
    session: Session,
    kind: str,
    merchant_id: int | None,
    signed: SignedTx,
    input_root: str | None = None,
) -> int:
    """Insert the signed transaction (status ``signed``); its id."""
    return int(
        session.execute(
            insert(ChainTx)
            .values(**chain_tx_values(kind, merchant_id, signed, input_root), attempts=0)
            .returning(ChainTx.id)
        ).scalar_one()
    )


def claim_ops(
    session: Session, op_ids: Sequence[int], tx_id: int, first_seq: int | None = None
) -> int:
    """Mark the ops of ``op_ids`` still pending as sent in ``tx_id`` (numbered from
    ``first_seq`` in id order, if given); how many were claimed."""
    table = OPS
    statement = update(table).where(table.c.status == "pending")
    values: dict[str, object] = {"status": "sent", "tx_id": tx_id}
    if first_seq is not None:
        numbered = (
            select(table.c.id, func.row_number().over(order_by=table.c.id).label("rn"))
            .where(table.c.id.in_(op_ids))
            .subquery("numbered")
        )
        statement = statement.where(table.c.id == numbered.c.id)
        values["seq"] = bindparam("before_first", first_seq - 1, type_=BigInteger) + numbered.c.rn
    else:
        statement = statement.where(table.c.id.in_(op_ids))
    if is_postgres(session):
        # Rows another worker is claiming are skipped, not waited for: it has them.
        statement = statement.where(
            table.c.id.in_(
                select(table.c.id)
                .where(table.c.id.in_(op_ids), table.c.status == "pending")
                .with_for_update(skip_locked=True)
            )
        )
    return int(session.execute(statement.values(values)).rowcount)  # type: ignore[attr-defined]


def submit_events(session: Session, tx_id: int) -> None:
    """The accepted events of the ops sent in ``tx_id`` become submitted."""
    session.execute(
        update(Event)
        .where(
            Event.status == "accepted",
            Event.id.in_(select(ChainOp.event_id).where(ChainOp.tx_id == tx_id)),
        )
        .values(status="submitted")
        .execution_options(synchronize_session=False)
    )
