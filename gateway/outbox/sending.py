"""Broadcasting stored transactions, and the sender's nonces.

Responsibilities:

- broadcast every stored transaction not sent yet in one JSON-RPC batch, outside the
  write lock, and record the outcome (``after_broadcast`` fault point once the node has
  it); an item the batch answer refuses or leaves out is sent again alone and its answer
  classified as a single broadcast's;
- act on a refusal: a nonce taken elsewhere requeues the ops (unless the chain shows
  their sequence numbers used), a permanent refusal fails them and hands the nonce out
  again or fills it with a no-op; a transient one leaves the transaction stored;
- resynchronise the next nonce with the chain and the stored transactions.
"""

from __future__ import annotations

from datetime import UTC, datetime

from hexbytes import HexBytes
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session
from web3.exceptions import TransactionNotFound

from chain.errors import (
    ChainError,
    NonceConsumed,
    RpcError,
    RpcTransportError,
    TransientTransactionError,
)
from chain.jsonrpc import ALREADY_KNOWN
from chain.sender import SignedTx
from gateway.db import transaction
from gateway.faults import fault_point
from gateway.models import ChainOp, ChainTx
from gateway.outbox.base import VALUE_KINDS, chain_tx_row, log, signed_of
from gateway.outbox.status import EventStatus
from gateway.timeutil import aware

#: The retry budget of each job type: seconds a stored transaction of that kind may keep
#: being refused for transient reasons (the node's pool is full, the key ran dry, rate
#: limits) before it is given up like a permanent refusal (its ops fail, its nonce is
#: reused or filled). None: never given up, the ops wait (points, refunds and rule sets
#: must reach the chain; a top-up of the key ends the wait). A member's signed redemption
#: or transfer has a deadline, and a badge or tier change is not worth holding the
#: queue's nonces for long.
RETRY_SECONDS: dict[str, float | None] = {
    "issue": None,
    "clawback": None,
    "rule": None,
    "noop": None,
    "badge": 600.0,
    "tier": 600.0,
    "redeem": 300.0,
    "transfer": 300.0,
}


class Broadcasting(EventStatus):
    """Broadcasts and nonces."""

    def _broadcast_new(self) -> None:
        """Broadcast stored transactions not sent yet, all in one JSON-RPC batch, outside
        the write lock; those the node took are marked sent in one statement.

        A crash between broadcast and the status update only means the same raw
        transaction is broadcast again on recovery, which the node accepts or
        recognises.
        """
        with self.sessions() as session:
            stored = session.execute(
                select(ChainTx.id, ChainTx.raw)
                .where(ChainTx.sender == self.sender.address, ChainTx.status == "signed")
                .order_by(ChainTx.nonce)
            ).all()
        if not stored:
            return
        outcomes = self._send_all([(int(tx_id), bytes(raw)) for tx_id, raw in stored])
        taken = [tx_id for tx_id, error in outcomes.items() if error is None]
        refused = {tx_id: error for tx_id, error in outcomes.items() if error is not None}
        with transaction(self.sessions) as session:
            if taken:
                session.execute(
                    update(ChainTx)
                    .where(ChainTx.id.in_(taken), ChainTx.status == "signed")
                    .values(status="sent", sent_at=datetime.now(UTC), attempts=ChainTx.attempts + 1)
                    .execution_options(synchronize_session=False)
                )
            if refused:
                # Highest nonce first: a permanent refusal hands its nonce out again when no
                # later transaction waits, so refusals of a whole batch give back every
                # nonce, where in nonce order each would leave a gap filled by a no-op.
                for tx in session.scalars(
                    select(ChainTx).where(ChainTx.id.in_(refused)).order_by(ChainTx.nonce.desc())
                ):
                    self._record_broadcast(session, tx, refused[tx.id])

    def _send_all(self, stored: list[tuple[int, bytes]]) -> dict[int, ChainError | None]:
        """Broadcast the raw transactions ``stored`` (id, raw) in one JSON-RPC batch; what
        the node answered each, by id (None: it has the transaction).

        An item the batch answer refuses (or leaves out) is not judged here: it is sent
        again alone through :meth:`_send`, which classifies its answer as every single
        broadcast's (a node that has it, a nonce taken, transient or permanent). A batch
        that fails as a whole (transport) is a transient failure of each item."""
        calls = [("eth_sendRawTransaction", ["0x" + raw.hex()]) for _id, raw in stored]
        try:
            answers = self.sender.rpc.batch_outcomes(calls, size=len(calls))
        except RpcTransportError as exc:
            return {tx_id: TransientTransactionError(str(exc)) for tx_id, _raw in stored}
        outcomes: dict[int, ChainError | None] = {}
        for (tx_id, _raw), answer in zip(stored, answers, strict=True):
            known = isinstance(answer, RpcError) and any(
                fragment in answer.rpc_message.lower() for fragment in ALREADY_KNOWN
            )
            if isinstance(answer, RpcError) and not known:
                outcomes[tx_id] = self._send(self._stored_signed(tx_id))
            else:
                outcomes[tx_id] = None
        if any(error is None for error in outcomes.values()):
            fault_point("after_broadcast")
        return outcomes

    def _stored_signed(self, tx_id: int) -> SignedTx:
        with self.sessions() as session:
            tx = session.get(ChainTx, tx_id)
            assert tx is not None
            return signed_of(tx)

    def _broadcast(self, session: Session, tx: ChainTx) -> None:
        self._record_broadcast(session, tx, self._send(signed_of(tx)))

    def _send(self, signed: SignedTx) -> ChainError | None:
        """Broadcast; the error, if any, is returned for ``_record_broadcast`` to act on."""
        try:
            self.sender.broadcast(signed)
        except ChainError as exc:
            return exc
        fault_point("after_broadcast")
        return None

    def _record_broadcast(self, session: Session, tx: ChainTx, error: ChainError | None) -> None:
        tx.attempts += 1
        if isinstance(error, NonceConsumed):
            # The sender checked the chain: another transaction took this nonce, ours will
            # never be mined.
            if not self._nonce_taken_by_sibling(session, tx):
                self._requeue(session, tx, "nonce consumed elsewhere")
            self._resync_nonce(session)
            return
        if isinstance(error, TransientTransactionError):
            budget = RETRY_SECONDS.get(tx.kind)
            waited = (datetime.now(UTC) - aware(tx.created_at)).total_seconds()
            if tx.status == "signed" and budget is not None and waited > budget:
                self._refused(session, tx, f"still refused after {waited:.0f} s: {error}")
                return
            tx.error = str(error)[:500]
            log.warning("broadcast of %s deferred: %s", tx.tx_hash, error)
            return
        if error is not None:
            self._refused(session, tx, str(error))
            return
        if tx.status == "signed":
            tx.status = "sent"
            tx.sent_at = datetime.now(UTC)

    def _refused(self, session: Session, tx: ChainTx, reason: str) -> None:
        """The node refused ``tx`` for good (not a nonce or fee race): resending its ops would
        be refused too, so they fail with the node's reason; its nonce, never used, is handed
        out again, or filled with a no-op when later transactions wait behind it."""
        if self._node_has(tx) or self._sequences_used(session, tx):
            # A refusal that is not one: the node has the transaction (or the chain shows
            # its effect), so it is sent, and its receipt will settle it.
            log.warning("%s kept: the node refused it (%s) but has it", tx.tx_hash, reason)
            if tx.status == "signed":
                tx.status, tx.sent_at = "sent", datetime.now(UTC)
            return
        tx.status, tx.error = "failed", reason[:500]
        sibling = session.scalars(
            select(ChainTx)
            .where(
                ChainTx.sender == tx.sender,
                ChainTx.nonce == tx.nonce,
                ChainTx.id != tx.id,
                ChainTx.status.in_(("signed", "sent")),
            )
            .order_by(ChainTx.id.desc())
        ).first()
        ops = list(session.scalars(select(ChainOp).where(ChainOp.tx_id == tx.id)))
        if sibling is not None:  # a replacement was refused: the original may still be mined
            for op in ops:
                op.tx_id = sibling.id
            return
        sent = [op for op in ops if op.status == "sent"]
        self._fail_ops(session, sent, f"node refused the tx: {reason}")
        log.warning("transaction %s refused (%s); its ops failed", tx.tx_hash, reason)
        later = session.scalar(
            select(func.count(ChainTx.id)).where(
                ChainTx.sender == tx.sender,
                ChainTx.nonce > tx.nonce,
                ChainTx.status.in_(("signed", "sent")),
            )
        )
        if not later:
            self.sender.set_next_nonce(tx.nonce)
        elif tx.kind != "noop":
            filler = self.sender.sign(self.sender.address, b"", gas=21_000, nonce=tx.nonce)
            noop = chain_tx_row("noop", None, filler)
            session.add(noop)
            session.flush()  # stored now, broadcast once committed (by _broadcast_new)

    def _resync_nonce(self, session: Session) -> None:
        """Continue after both the chain's pending count and every stored transaction not
        final yet: a node that lost transactions reports a count below them, and handing
        their nonces out again would give two different calls one nonce."""
        highest = session.scalar(
            select(func.max(ChainTx.nonce)).where(
                ChainTx.sender == self.sender.address, ChainTx.status.in_(("signed", "sent"))
            )
        )
        chain_next = self.sender.reconcile_nonce()
        self.sender.set_next_nonce(max(chain_next, -1 if highest is None else int(highest) + 1))

    def _nonce_taken_by_sibling(self, session: Session, tx: ChainTx) -> bool:
        siblings = session.scalars(
            select(ChainTx).where(
                ChainTx.sender == tx.sender, ChainTx.nonce == tx.nonce, ChainTx.id != tx.id
            )
        ).all()
        return any(self.sender.receipt(s.tx_hash) is not None for s in siblings)

    def _requeue(self, session: Session, tx: ChainTx, reason: str) -> None:
        """A transaction that can never be mined: its ops go back to pending.

        Unless the chain says otherwise: an issuance or clawback whose sequence
        numbers are already used on chain was executed (a node that misreported
        it, a receipt not visible yet), and queuing it again would issue twice.
        The transaction stays sent; its receipt will settle it.
        """
        if self._sequences_used(session, tx):
            log.warning("%s kept (%s): its sequences are used on chain", tx.tx_hash, reason)
            if tx.status == "signed":
                tx.status, tx.sent_at = "sent", datetime.now(UTC)
            return
        tx.status = "failed"
        tx.error = reason[:500]
        for op in session.scalars(select(ChainOp).where(ChainOp.tx_id == tx.id)):
            if op.status == "sent":
                op.status, op.tx_id, op.seq = "pending", None, None
        log.warning("transaction %s dropped (%s); its ops are queued again", tx.tx_hash, reason)

    def _node_has(self, tx: ChainTx) -> bool:
        """Whether the node knows ``tx`` (in its pool or mined)."""
        try:
            self.link.w3.eth.get_transaction(HexBytes(tx.tx_hash))
        except TransactionNotFound:
            return False
        return True

    def _sequences_used(self, session: Session, tx: ChainTx) -> bool:
        ops = session.scalars(
            select(ChainOp).where(
                ChainOp.tx_id == tx.id,
                ChainOp.kind.in_(VALUE_KINDS),
                ChainOp.seq.is_not(None),
                ChainOp.merchant_id.is_not(None),
            )
        ).all()
        hub = self.hub
        return any(hub.is_sequence_used(int(op.merchant_id or 0), int(op.seq or 0)) for op in ops)
