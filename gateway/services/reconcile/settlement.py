"""Transactions, events and redemptions the database calls confirmed, against the chain."""

from __future__ import annotations

from collections import defaultdict

from chain.audit import (
    Clawback,
    Issuance,
    Redemption,
    checksum,
)
from gateway.services.reconcile.matching import (
    Comparison,
    located,
    op_subject,
)
from gateway.services.reconcile.snapshot import DbEvent, DbOp, DbTx


class SettlementChecks(Comparison):
    """Transactions, events and redemptions the database calls confirmed, against the chain."""

    # ---------------------------------------------------------------- transactions

    def compare_transactions(self) -> None:
        """Confirmed transactions are on chain, succeeded, and in the block recorded."""
        lookup: list[DbTx] = []
        for tx in self.db.txs.values():
            if tx.status != "confirmed" or (tx.block_number or 0) > self.block:
                continue
            self.checked["transaction"] += 1
            block = self.tx_blocks.get(tx.tx_hash)
            if block is None:
                lookup.append(tx)
            elif block != tx.block_number:
                self._tx_block_differs(tx, block)
        if not lookup:
            return
        receipts = self.rpc.batch([("eth_getTransactionReceipt", [tx.tx_hash]) for tx in lookup])
        for tx, receipt in zip(lookup, receipts, strict=True):
            if not isinstance(receipt, dict):
                self.differ(
                    "tx_not_on_chain",
                    f"tx {tx.id} ({tx.kind})",
                    f"confirmed in the database (block {tx.block_number}), but the chain "
                    f"does not know {tx.tx_hash}",
                    tx_hash=tx.tx_hash,
                    block=tx.block_number,
                )
                continue
            block = int(receipt["blockNumber"], 16)
            if int(receipt.get("status", "0x1"), 16) != 1:
                self.differ(
                    "tx_reverted",
                    f"tx {tx.id} ({tx.kind})",
                    f"confirmed in the database, but it reverted on chain in block {block}",
                    tx_hash=tx.tx_hash,
                    block=block,
                )
            elif block != tx.block_number:
                self._tx_block_differs(tx, block)

    def _tx_block_differs(self, tx: DbTx, block: int) -> None:
        self.mismatch(
            "block_mismatch",
            f"tx {tx.id} ({tx.kind})",
            "block_number",
            tx.block_number,
            block,
            message=f"database block {tx.block_number}, on chain in block {block}",
            tx_hash=tx.tx_hash,
            block=block,
        )

    # ---------------------------------------------------------------- events

    def compare_events(self) -> None:
        """Confirmed events have their points (and clawbacks) on chain, in their tx."""
        ops_of: defaultdict[str, list[DbOp]] = defaultdict(list)
        for op in self.db.ops:
            if op.event_id is not None:
                ops_of[op.event_id].append(op)
        for event in self.db.events:
            ops = ops_of.get(event.id, [])
            if event.block_number is not None and event.block_number > self.block:
                continue
            self.checked["event"] += 1
            subject = f"event {event.id}"
            for op in ops:
                if op.kind in ("issue", "clawback") and op.status != "confirmed":
                    self.differ(
                        "event_mismatch",
                        subject,
                        f"confirmed, but its {op_subject(op)} is {op.status}",
                        merchant=event.merchant_id,
                        field="status",
                        database=op.status,
                    )
            own = [op for op in ops if op.member == event.member]
            for kind, wanted in (("issue", event.points), ("clawback", event.clawback)):
                mine = [op for op in own if op.kind == kind]
                if not wanted and not mine:
                    continue
                on_chain = 0
                for op in mine:
                    r = self.chain_of_op.get(op.id)
                    if isinstance(r, Issuance):
                        on_chain += r.amount
                    elif isinstance(r, Clawback):
                        on_chain += r.requested
                if on_chain != wanted:
                    label = "points" if kind == "issue" else "clawback"
                    self.mismatch(
                        "event_mismatch",
                        subject,
                        label,
                        wanted,
                        on_chain,
                        message=f"confirmed with {label} {wanted:,}; "
                        f"its {kind} on chain: {on_chain:,}",
                        merchant=event.merchant_id,
                    )
            self._event_tx(event, ops, subject)

    def _event_tx(self, event: DbEvent, ops: list[DbOp], subject: str) -> None:
        if not ops:
            return  # nothing to put on chain: confirmed at once
        hashes = {self.db.txs[op.tx_id].tx_hash for op in ops if op.tx_id in self.db.txs}
        if event.tx_hash is None or event.tx_hash not in hashes:
            self.mismatch(
                "event_mismatch",
                subject,
                "tx_hash",
                event.tx_hash,
                sorted(hashes),
                message=f"confirmed with tx {event.tx_hash}, "
                "which is none of its ops' transactions",
                merchant=event.merchant_id,
            )
            return
        block = self.tx_blocks.get(event.tx_hash)
        if block is not None and block != event.block_number:
            self.mismatch(
                "event_mismatch",
                subject,
                "block_number",
                event.block_number,
                block,
                message=f"confirmed in block {event.block_number}, "
                f"but {event.tx_hash} is in block {block}",
                merchant=event.merchant_id,
                tx_hash=event.tx_hash,
                block=block,
            )

    # ---------------------------------------------------------------- redemptions

    def compare_redemptions(self) -> None:
        ops = {op.id: op for op in self.db.ops}
        for row in self.db.redemptions:
            record = self.by_key.get(("redeem", row.member, row.nonce))
            subject = f"redemption {row.id}"
            if row.status != "confirmed":
                # submitted: in flight (its op says so); failed: must not be on chain
                if (
                    row.status == "failed"
                    and isinstance(record, Redemption)
                    and record.ref.lower() == row.ref
                ):
                    self.mismatch(
                        "redemption_mismatch",
                        subject,
                        "status",
                        row.status,
                        "on chain",
                        message=f"on chain in {record.tx_hash}, but the database says {row.status}",
                        **located(record, row.merchant_id),
                    )
                continue
            op = ops.get(row.op_id) if row.op_id is not None else None
            tx = self.db.txs.get(op.tx_id) if op is not None and op.tx_id is not None else None
            if tx is not None and (tx.block_number or 0) > self.block:
                continue
            self.checked["redemption"] += 1
            if op is None or op.status != "confirmed":
                self.differ(
                    "redemption_mismatch",
                    subject,
                    "confirmed, but its op is "
                    + ("missing" if op is None else f"{op.status} (op {op.id})"),
                    merchant=row.merchant_id,
                    tx_hash=row.tx_hash,
                )
            if not isinstance(record, Redemption):
                self.differ(
                    "redemption_mismatch",
                    subject,
                    f"confirmed (tx {row.tx_hash}), but the chain has no redemption by "
                    f"{checksum(row.member)} with nonce {row.nonce}",
                    merchant=row.merchant_id,
                    tx_hash=row.tx_hash,
                )
                continue
            for name, mine, theirs in (
                ("merchant", row.merchant_id, record.merchant),
                ("amount", row.amount, record.amount),
                ("ref", row.ref, record.ref.lower()),
                ("tx_hash", row.tx_hash, record.tx_hash.lower()),
            ):
                if mine != theirs:
                    self.mismatch(
                        "redemption_mismatch",
                        subject,
                        name,
                        mine,
                        theirs,
                        **located(record, row.merchant_id),
                    )
