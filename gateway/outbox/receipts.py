"""Receipts and status: sent transactions become confirmed or failed.

Responsibilities:

- follow the receipts of sent transactions behind the confirmation depth (the
  ``before_receipt`` fault point sits between reading a receipt and recording it);
- finalize a mined transaction: its same-nonce siblings are replaced (same call) or
  requeued (another call); ops, events, redemptions, rule versions and burned amounts
  are recorded; a reverted one fails its ops, or holds them while the hub is paused, or
  sends a reverted clawback batch's clawbacks again one at a time.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from chain.decode import decode_logs, receipt_logs
from chain.records import Clawback
from gateway.db import transaction
from gateway.faults import fault_point
from gateway.models import ChainOp, ChainTx, Merchant, RuleSetVersion
from gateway.outbox.base import PAUSABLE_KINDS, log, signed_of
from gateway.outbox.sending import Broadcasting


class Receipts(Broadcasting):
    """Receipts and the statuses they settle."""

    def follow_receipts(self) -> bool:
        """Finalize sent transactions that have a receipt deep enough.

        Receipts are fetched outside the write transaction; only the finalizing
        of the transactions that have one takes the lock.
        """
        with self.sessions() as session:
            sent = session.execute(
                select(ChainTx.id, ChainTx.tx_hash)
                .where(ChainTx.sender == self.sender.address, ChainTx.status == "sent")
                .order_by(ChainTx.nonce)
            ).all()
        if not sent:
            return False
        head = self.link.w3.eth.block_number
        final: list[tuple[int, Any]] = []
        for tx_id, tx_hash in sent:
            receipt = self.sender.receipt(tx_hash)
            if receipt is not None and receipt["blockNumber"] + self.settings.confirmations <= head:
                final.append((tx_id, receipt))
        if not final:
            return False
        with transaction(self.sessions) as session:
            for tx_id, receipt in final:
                tx = session.get(ChainTx, tx_id)
                if tx is None or tx.status != "sent":
                    continue  # finalized meanwhile (a replacement's sibling)
                fault_point("before_receipt")
                self._finalize(session, tx, receipt)
        return True

    def _finalize(self, session: Session, tx: ChainTx, receipt: Any) -> None:
        ops = list(session.scalars(select(ChainOp).where(ChainOp.tx_id == tx.id)))
        # Siblings with the same nonce can never be mined now. A replacement (same call,
        # higher fees) carries the ops that ``tx`` executed; any other transaction that
        # was given this nonce executed nothing, so its ops go back to the queue.
        call: bytes | None = None
        for sibling in session.scalars(
            select(ChainTx).where(
                ChainTx.sender == tx.sender, ChainTx.nonce == tx.nonce, ChainTx.id != tx.id
            )
        ):
            call = call if call is not None else signed_of(tx).data  # decoded only if needed
            if signed_of(sibling).data != call:
                if sibling.status in ("signed", "sent"):
                    self._requeue(session, sibling, f"nonce {tx.nonce} taken by {tx.tx_hash}")
                continue
            sibling.status = "replaced"
            for op in session.scalars(select(ChainOp).where(ChainOp.tx_id == sibling.id)):
                op.tx_id = tx.id
                ops.append(op)
        tx.block_number = int(receipt["blockNumber"])
        tx.gas_used = int(receipt["gasUsed"])
        if receipt["status"] == 1:
            tx.status = "confirmed"
            self._confirm_ops(session, tx, ops, receipt)
        else:
            tx.status = "failed"
            revert = self.sender.revert_reason(tx.tx_hash, receipt)
            tx.error = str(revert)[:500]
            paused = revert.name == "EnforcedPause" or self.hub.paused(tx.block_number)
            if tx.kind in PAUSABLE_KINDS and paused:
                # Paused after it was simulated (the replay, at the block before, does not
                # see a pause earlier in its own block): it used no sequence number and
                # moved nothing, so
                # its ops wait for the unpause; one that reverts for another reason
                # fails when it is simulated again then.
                for op in ops:
                    op.status, op.tx_id, op.seq = "pending", None, None
                self._hold_while_paused(tx.kind)
            elif tx.kind == "clawback" and len(ops) > 1 and tx.merchant_id is not None:
                # Reverted, so it used no sequence number and burned nothing: its clawbacks
                # go again, each alone, and only one that reverts by itself fails.
                for op in ops:
                    op.status, op.tx_id, op.seq = "pending", None, None
                self._clawbacks_one_at_a_time(tx.merchant_id, [op.id for op in ops], str(revert))
            else:
                self._fail_ops(session, ops, str(revert))

    def _confirm_ops(self, session: Session, tx: ChainTx, ops: list[ChainOp], receipt: Any) -> None:
        for op in ops:
            op.status = "confirmed"
        if tx.kind == "rule":
            for op in ops:
                assert op.merchant_id is not None
                merchant = session.get(Merchant, op.merchant_id)
                assert merchant is not None
                merchant.rule_version = max(merchant.rule_version, int(op.payload["version"]))
                session.execute(
                    update(RuleSetVersion)
                    .where(
                        RuleSetVersion.merchant_id == op.merchant_id,
                        RuleSetVersion.version == int(op.payload["version"]),
                    )
                    .values(tx_hash=tx.tx_hash)
                )
        if tx.kind == "clawback":
            # One PointsClawedBack per clawback of the batch, named by its sequence number.
            burned = {
                record.seq: record.amount
                for record in decode_logs(self.link.network.emitters(), receipt_logs(receipt))
                if isinstance(record, Clawback) and record.merchant == tx.merchant_id
            }
            for op in ops:
                op.burned = burned.get(op.seq) if op.seq is not None else None
                if op.burned is None:
                    log.warning("no PointsClawedBack for seq %s in %s", op.seq, tx.tx_hash)
        if tx.kind == "redeem":
            for op in ops:
                self._settle_redemption(session, op, tx, confirmed=True)
        self._update_events(session, ops)
