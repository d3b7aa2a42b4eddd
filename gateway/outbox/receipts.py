"""Receipts and status: sent transactions become confirmed or failed.

Responsibilities:

- follow the receipts of sent transactions behind the confirmation depth (the
  ``before_receipt`` fault point sits between reading a receipt and recording it);
- finalize a mined transaction: its same-nonce siblings are replaced (same call) or
  requeued (another call); ops, events, redemptions, rule versions (with their
  publication block and effective time, from ``RuleSetPublished``) and burned amounts
  are recorded; a reverted one fails its ops, or holds them while the hub is paused or
  (a rule set) while the previous version runs its notice, or sends a reverted clawback
  batch's clawbacks again one at a time.
"""

from __future__ import annotations

import time
from collections import defaultdict

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from chain.decode import decode_logs
from chain.jsonrpc import Receipt
from chain.records import Clawback, RuleSetPublication
from gateway.db import transaction
from gateway.faults import fault_point
from gateway.models import ChainOp, ChainTx, Merchant, RuleSetVersion
from gateway.outbox.base import PAUSABLE_KINDS, RULE_CHANGE_PENDING, log, signed_of
from gateway.outbox.sending import Broadcasting

#: Kinds whose successful transactions are confirmed set-based when no other transaction
#: shares their nonce (their ops carry nothing else to record).
SET_BASED_KINDS = ("issue", "badge", "tier")


class Receipts(Broadcasting):
    """Receipts and the statuses they settle."""

    def follow_receipts(self) -> bool:
        """Finalize sent transactions that have a receipt deep enough.

        Receipts are asked in one JSON-RPC batch: every sent transaction's when the head
        moved since the last ask, otherwise only those sent since (a transaction the node
        had already mined may become "sent" late, after a lost answer). They are fetched
        outside the write transaction; only the finalizing takes the lock. On a chain
        whose blocks come at a steady interval, neither the database nor the node is asked
        until 80% of that interval has passed since the latest block was first seen.
        """
        if time.monotonic() < self._next_block_at:
            return False  # no new block yet, by the chain's steady interval
        with self.sessions() as session:
            sent = session.execute(
                select(ChainTx.id, ChainTx.tx_hash)
                .where(ChainTx.sender == self.sender.address, ChainTx.status == "sent")
                .order_by(ChainTx.nonce)
            ).all()
        if not sent:
            return False  # an idle worker asks the node nothing
        head = (self._head or self._read_head()).number
        if head != self._receipts_asked_at:
            self._receipts_asked = set()
        ask = [
            (int(tx_id), tx_hash) for tx_id, tx_hash in sent if tx_id not in self._receipts_asked
        ]
        if not ask:
            return False
        receipts = self.sender.receipts([tx_hash for _, tx_hash in ask])
        self._receipts_asked_at = head
        self._receipts_asked.update(tx_id for tx_id, _ in ask)
        final = [
            (int(tx_id), receipt)
            for (tx_id, _), receipt in zip(ask, receipts, strict=True)
            if receipt is not None and receipt.block + self.settings.confirmations <= head
        ]
        if not final:
            return False
        with transaction(self.sessions) as session:
            txs = {
                tx.id: tx
                for tx in session.scalars(
                    select(ChainTx).where(
                        ChainTx.id.in_([tx_id for tx_id, _ in final]), ChainTx.status == "sent"
                    )
                )
            }
            nonces_shared = self._nonces_with_siblings(session, list(txs.values()))
            plain: list[tuple[ChainTx, Receipt]] = []
            for tx_id, receipt in final:
                tx = txs.get(tx_id)
                if tx is None or tx.status != "sent":
                    continue  # finalized meanwhile (a replacement's sibling)
                fault_point("before_receipt")
                if receipt.ok and tx.kind in SET_BASED_KINDS and tx.nonce not in nonces_shared:
                    plain.append((tx, receipt))
                else:
                    self._finalize(session, tx, receipt)
            self._confirm_plain(session, plain)
        return True

    def _nonces_with_siblings(self, session: Session, txs: list[ChainTx]) -> set[int]:
        """The nonces of ``txs`` that another stored transaction of this sender also has
        (a replacement, a no-op filler): those are finalized one by one."""
        if not txs:
            return set()
        rows = session.execute(
            select(ChainTx.nonce).where(
                ChainTx.sender == self.sender.address,
                ChainTx.nonce.in_({tx.nonce for tx in txs}),
                ChainTx.id.not_in([tx.id for tx in txs]),
            )
        ).all()
        return {int(nonce) for (nonce,) in rows}

    def _confirm_plain(self, session: Session, mined: list[tuple[ChainTx, Receipt]]) -> None:
        """Confirm successful issue, badge and tier transactions without siblings, set-based:
        one ``UPDATE chain_ops ... WHERE tx_id IN`` per block, then their events' statuses
        per chunk (nothing else of theirs changes on confirmation)."""
        if not mined:
            return
        by_block: dict[int, list[int]] = defaultdict(list)
        for tx, receipt in mined:
            tx.status, tx.block_number, tx.gas_used = "confirmed", receipt.block, receipt.gas_used
            by_block[receipt.block].append(tx.id)
        session.flush()
        for block, tx_ids in by_block.items():
            session.execute(
                update(ChainOp)
                .where(ChainOp.tx_id.in_(tx_ids))
                .values(status="confirmed", block_number=block)
                .execution_options(synchronize_session=False)
            )
        event_ids = session.scalars(
            select(ChainOp.event_id)
            .where(ChainOp.tx_id.in_([tx.id for tx, _ in mined]), ChainOp.event_id.is_not(None))
            .distinct()
        ).all()
        self._update_event_ids(session, [str(e) for e in event_ids if e is not None])

    def _finalize(self, session: Session, tx: ChainTx, receipt: Receipt) -> None:
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
        tx.block_number = receipt.block
        tx.gas_used = receipt.gas_used
        if receipt.ok:
            tx.status = "confirmed"
            self._confirm_ops(session, tx, ops, receipt)
        elif receipt.gas_used * 64 >= tx.gas * 63:
            # Ran out of gas: a call that runs out inside the token keeps 1/64 (EIP-150) for
            # the hub to revert with, so all but that is used; a revert for a reason gives
            # back what it did not use, and every limit is set well above the need. It
            # changed nothing and used no sequence number, so its ops go again, the next
            # batch of its kind priced by eth_estimateGas.
            tx.status, tx.error = "failed", f"out of gas ({tx.gas})"
            for op in ops:
                op.status, op.tx_id, op.seq = "pending", None, None
            self._estimate_next.add(tx.kind)
            log.warning("%s ran out of gas (%d): its %d ops go again", tx.tx_hash, tx.gas, len(ops))
        else:
            tx.status = "failed"
            revert = self.sender.revert_reason(tx.tx_hash, receipt.block)
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
            elif tx.kind == "rule" and revert.name == RULE_CHANGE_PENDING:
                # Published over a version still in its notice (simulated before that one
                # was mined): it goes again once that version is in effect.
                until = int(revert.args_by_name["effectiveAt"])
                for op in ops:
                    op.status, op.tx_id = "pending", None
                    self._rule_holds[op.id] = self._hold_until(until)
            elif tx.kind == "clawback" and len(ops) > 1 and tx.merchant_id is not None:
                # Reverted, so it used no sequence number and burned nothing: its clawbacks
                # go again, each alone, and only one that reverts by itself fails.
                for op in ops:
                    op.status, op.tx_id, op.seq = "pending", None, None
                self._clawbacks_one_at_a_time(tx.merchant_id, [op.id for op in ops], str(revert))
            else:
                self._fail_ops(session, ops, str(revert))

    def _confirm_ops(
        self, session: Session, tx: ChainTx, ops: list[ChainOp], receipt: Receipt
    ) -> None:
        for op in ops:
            op.status, op.block_number = "confirmed", tx.block_number
        if tx.kind == "rule":
            self._record_publications(session, tx, ops, receipt)
        if tx.kind == "clawback":
            # One PointsClawedBack per clawback of the batch, named by its sequence number.
            burned = {
                record.seq: record.amount
                for record in decode_logs(self.link.network.emitters(), receipt.logs)
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

    def _record_publications(
        self, session: Session, tx: ChainTx, ops: list[ChainOp], receipt: Receipt
    ) -> None:
        """A rule set on chain: the merchant's latest published version moves to it, and its
        row gets the transaction, the block and the effective time of its
        ``RuleSetPublished`` (the version takes effect then, after the network's notice)."""
        published = {  # one publication per transaction
            record.merchant: record
            for record in decode_logs(self.link.network.emitters(), receipt.logs)
            if isinstance(record, RuleSetPublication)
        }
        for op in ops:
            assert op.merchant_id is not None
            version = int(op.payload["version"])
            merchant = session.get(Merchant, op.merchant_id)
            assert merchant is not None
            merchant.rule_version = max(merchant.rule_version, version)
            values: dict[str, object] = {"tx_hash": tx.tx_hash, "published_block": receipt.block}
            record = published.get(op.merchant_id)
            if record is None or record.rule_version != version:
                log.warning(
                    "merchant %s's rule set version %s is published as %s in %s",
                    op.merchant_id, version, record and record.rule_version, tx.tx_hash,
                )  # fmt: skip
            if record is not None:
                values["effective_at"] = record.effective_at
                self._effective_due.add(record.effective_at)
            session.execute(
                update(RuleSetVersion)
                .where(
                    RuleSetVersion.merchant_id == op.merchant_id,
                    RuleSetVersion.version == version,
                )
                .values(values)
            )
