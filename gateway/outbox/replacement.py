"""Replacing stuck transactions.

Responsibilities:

- send again stored transactions a transient error kept from the node;
- re-sign transactions pending for ``tx_stuck_after`` seconds with fees raised by at
  least 10% (same nonce), store the replacement, then broadcast it; leave a transaction
  as it is when its replacement would exceed the fee cap.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from chain.errors import (
    ReplacementOverCap,
)
from chain.sender import SignedTx
from gateway.db import transaction
from gateway.models import ChainOp, ChainTx
from gateway.outbox.base import chain_tx_row, log, signed_of
from gateway.outbox.receipts import Receipts


class Replacement(Receipts):
    """Stuck transactions replaced with higher fees."""

    def replace_stuck(self) -> bool:
        """Re-sign transactions pending too long with ≥10% higher fees (same nonce), store
        the replacements, then broadcast them."""
        # Stored transactions a transient error kept from the node: send them again now,
        # not only when a new transaction happens to be stored after them.
        self._broadcast_new()
        cutoff = datetime.now(UTC) - timedelta(seconds=self.settings.tx_stuck_after)
        did = False
        with transaction(self.sessions) as session:
            stuck = session.scalars(
                select(ChainTx).where(
                    ChainTx.sender == self.sender.address,
                    ChainTx.status == "sent",
                    ChainTx.sent_at < cutoff,
                )
            ).all()
            replaced = set(
                session.scalars(
                    select(ChainTx.replaces).where(
                        ChainTx.sender == self.sender.address,
                        ChainTx.replaces.is_not(None),
                        ChainTx.status.in_(("signed", "sent")),
                    )
                )
            )
            waiting = set(
                session.scalars(
                    select(ChainOp.tx_id).where(ChainOp.tx_id.in_([tx.id for tx in stuck]))
                )
            )
            for tx in stuck:
                if tx.id in replaced:
                    continue  # its replacement is the one to bump (same fees: same hash)
                if tx.id not in waiting and tx.kind != "noop":
                    # Its ops went back to the queue with a replacement the node dropped:
                    # nothing waits on it, and a higher fee would only help it be mined.
                    # It stays sent; a receipt still settles it.
                    continue
                if self.sender.receipt(tx.tx_hash) is not None:
                    continue  # mined; follow_receipts will finalize it
                tx.sent_at = datetime.now(UTC)  # do not bump it again right away
                try:
                    newer = self._untried_replacement(session, tx)
                except ReplacementOverCap as exc:
                    log.warning("stuck %s not replaced: %s", tx.tx_hash, exc)
                    continue
                replacement = chain_tx_row(tx.kind, tx.merchant_id, newer, tx.input_root)
                replacement.replaces = tx.id
                session.add(replacement)
                session.flush()
                for op in session.scalars(select(ChainOp).where(ChainOp.tx_id == tx.id)):
                    op.tx_id = replacement.id
                tx.status = "sent"
                log.info("replacing stuck %s with %s", tx.tx_hash, replacement.tx_hash)
                did = True
        if did:
            # Stored first, broadcast after the commit: a crash in between leaves a stored
            # transaction to send again, never a sent one the outbox does not know.
            self._broadcast_new()
        return did

    def _untried_replacement(self, session: Session, tx: ChainTx) -> SignedTx:
        """``tx`` re-signed with higher fees, and higher again past any replacement stored
        before: one that failed (refused, or dropped) is the same signed transaction, and
        storing it twice breaks the unique hash."""
        newer = self.sender.replacement(signed_of(tx))
        while session.scalar(select(ChainTx.id).where(ChainTx.tx_hash == newer.hash)) is not None:
            newer = self.sender.replacement(newer)
        return newer
