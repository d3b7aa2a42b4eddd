"""Per merchant: totals against the hub's counters; signer, status, cap, rule version, seq."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from chain.audit import (
    Clawback,
    Issuance,
    MerchantChange,
    Redemption,
)
from gateway.services.reconcile.matching import (
    Comparison,
    value_of,
)
from gateway.services.reconcile.report import TOTAL_FIELDS, MerchantTotals


class MerchantChecks(Comparison):
    """Per merchant: totals against the hub's counters; signer, status, cap, rule version, seq."""

    # ---------------------------------------------------------------- merchants

    def compare_merchants(self) -> None:
        """Totals against the hub's counters; signer, status, cap, rule version, seq."""
        totals: dict[int, dict[str, dict[str, int]]] = defaultdict(
            lambda: {
                part: dict.fromkeys(TOTAL_FIELDS, 0)
                for part in ("database", "in_flight", "foreign")
            }
        )
        for op in self.db.ops:
            if op.merchant_id is None or op.kind not in ("issue", "redeem", "clawback"):
                continue
            record = self.chain_of_op.get(op.id)
            tx = self.db.txs.get(op.tx_id) if op.tx_id is not None else None
            name = {"issue": "issued", "redeem": "redeemed", "clawback": "clawed_back"}[op.kind]
            if op.status == "confirmed" and tx is not None and (tx.block_number or 0) <= self.block:
                amount = (op.burned or 0) if op.kind == "clawback" else op.amount
                totals[op.merchant_id]["database"][name] += amount
            elif op.status == "sent" and record is not None:
                totals[op.merchant_id]["in_flight"][name] += value_of(record)
        for r in self.foreign_records:
            if isinstance(r, Issuance):
                totals[r.merchant]["foreign"]["issued"] += r.amount
            elif isinstance(r, Redemption):
                totals[r.merchant]["foreign"]["redeemed"] += r.amount
            elif isinstance(r, Clawback):
                totals[r.merchant]["foreign"]["clawed_back"] += r.amount
        names: dict[int, str] = {}
        caps: dict[int, int] = {}
        used: defaultdict[int, int] = defaultdict(lambda: -1)
        for r in self.history.records:
            if isinstance(r, MerchantChange):
                if r.name is not None:
                    names[r.merchant] = r.name
                if r.cap is not None:
                    caps[r.merchant] = r.cap
            elif isinstance(r, Issuance | Clawback):
                used[r.merchant] = max(used[r.merchant], r.seq)
        rules_in_flight = {
            op.merchant_id for op in self.db.ops if op.kind == "rule" and op.status != "confirmed"
        }
        for merchant_id in sorted(set(self.db.merchants) | set(self.state.merchants)):
            mine = self.db.merchants.get(merchant_id)
            counters = self.state.merchants.get(merchant_id)
            if mine is None:
                continue  # admitted by someone else: not this gateway's merchant
            name = mine.name
            subject = f"merchant {merchant_id}"
            if counters is None or counters.status == "none":
                message = "in the database, not on chain"
                self.differ("merchant_mismatch", subject, message, merchant=merchant_id)
                continue
            self.checked["merchant"] += 1
            parts = totals[merchant_id]
            chain_counts = {
                "issued": counters.issued,
                "redeemed": counters.redeemed,
                "clawed_back": counters.clawed_back,
            }
            row = MerchantTotals(
                merchant_id,
                name,
                parts["database"],
                parts["in_flight"],
                parts["foreign"],
                chain_counts,
            )
            self.report.totals.append(row)
            for part in TOTAL_FIELDS:
                if row.expected(part) != chain_counts[part]:
                    self.mismatch(
                        "total_mismatch",
                        subject,
                        part,
                        row.expected(part),
                        chain_counts[part],
                        message=f"{part.replace('_', ' ')}: database {row.database[part]:,}"
                        + (f" + in flight {row.in_flight[part]:,}" if row.in_flight[part] else "")
                        + (f" + foreign {row.foreign[part]:,}" if row.foreign[part] else "")
                        + f", hub counter {chain_counts[part]:,}",
                        merchant=merchant_id,
                    )
            checks: list[tuple[str, Any, Any]] = [
                ("signer", mine.signer, counters.signer),
                ("status", mine.status, counters.status),
                ("cap_per_period", mine.cap, counters.cap_per_period),
            ]
            if merchant_id not in rules_in_flight:
                checks.append(("rule_version", mine.rule_version, counters.rule_version))
            if merchant_id in names:
                checks.append(("name", mine.name, names[merchant_id]))
            for field_name, db_value, chain_value in checks:
                if db_value != chain_value:
                    self.mismatch(
                        "merchant_mismatch",
                        subject,
                        field_name,
                        db_value,
                        chain_value,
                        merchant=merchant_id,
                    )
            if used[merchant_id] >= mine.next_seq:
                self.mismatch(
                    "merchant_mismatch",
                    subject,
                    "next_seq",
                    mine.next_seq,
                    used[merchant_id],
                    message=f"next sequence number {mine.next_seq} is already used on chain "
                    f"(highest used: {used[merchant_id]})",
                    merchant=merchant_id,
                )
