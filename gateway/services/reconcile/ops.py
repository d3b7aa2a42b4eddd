"""Ops against the chain and the chain against ops: every effect accounted for, field by field."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from chain.audit import (
    BadgeAward,
    Clawback,
    Issuance,
    Record,
    Redemption,
    RelayedTransfer,
    RuleSetPublication,
    TierChange,
    checksum,
)
from gateway.services.reconcile.matching import (
    RECORD_KINDS,
    Comparison,
    located,
    op_subject,
    record_subject,
    record_value,
)
from gateway.services.reconcile.report import Difference
from gateway.services.reconcile.snapshot import DbOp, DbTx, lower


class OpChecks(Comparison):
    """Ops against the chain and the chain against ops: every effect accounted for,
    field by field."""

    # ---------------------------------------------------------------- ops -> chain

    def compare_ops(self) -> None:
        for op in self.db.ops:
            tx = self.db.txs.get(op.tx_id) if op.tx_id is not None else None
            subject = op_subject(op)
            if op.status == "confirmed" and tx is None:
                self.differ(
                    "missing_on_chain",
                    subject,
                    "confirmed, but the database has no transaction for it",
                    merchant=op.merchant_id,
                )
                continue
            if op.status == "confirmed" and tx is not None and (tx.block_number or 0) > self.block:
                continue  # confirmed after the block compared at
            key = self._op_key(op, tx)
            record = self.by_key.get(key) if key is not None else None
            if record is None:
                if op.status == "confirmed" and tx is not None:
                    self._confirmed_without_record(op, tx, subject)
                continue
            self.matched[id(record)] = op
            self.chain_of_op[op.id] = record
            if op.status == "sent":
                self.report.in_flight.append(
                    Difference(
                        "in_flight",
                        subject,
                        "on chain; the worker has not confirmed it yet",
                        **located(record, op.merchant_id),
                    )
                )
                continue
            if op.status != "confirmed":
                self.mismatch(
                    "status_mismatch",
                    subject,
                    "status",
                    op.status,
                    "on chain",
                    message=f"on chain, but the database says {op.status}",
                    **located(record, op.merchant_id),
                )
                continue
            assert tx is not None
            self.checked[op.kind] += 1
            for name, mine, theirs in self._fields(op, record):
                if mine != theirs:
                    self.mismatch(
                        "field_mismatch",
                        subject,
                        name,
                        mine,
                        theirs,
                        **located(record, op.merchant_id),
                    )
            if record.tx_hash.lower() != tx.tx_hash:
                self.mismatch(
                    "tx_hash_mismatch",
                    subject,
                    "tx_hash",
                    tx.tx_hash,
                    record.tx_hash,
                    message=f"database tx {tx.tx_hash}, on chain in {record.tx_hash}",
                    **located(record, op.merchant_id),
                )
            elif tx.block_number != record.block:
                self.mismatch(
                    "block_mismatch",
                    subject,
                    "block_number",
                    tx.block_number,
                    record.block,
                    message=f"database block {tx.block_number}, on chain in block {record.block}",
                    **located(record, op.merchant_id),
                )

    def _confirmed_without_record(self, op: DbOp, tx: DbTx, subject: str) -> None:
        """A confirmed op whose effect is not on chain (badges already held and tiers
        already set log nothing: those are checked against the state they leave)."""
        at = tx.block_number if tx.block_number is not None else self.block
        if op.kind == "badge" and op.badge_id is not None:
            held_since = self.badges_held.get((op.member, op.badge_id))
            if held_since is not None and held_since <= at:
                self.checked["badge"] += 1
                return
        if op.kind == "tier" and op.tier is not None:
            tier = 0
            for block, new_tier in self.tiers.get(op.member, []):
                if block <= at:
                    tier = new_tier
            if tier == op.tier:
                self.checked["tier"] += 1
                return
        self.differ(
            "missing_on_chain",
            subject,
            f"confirmed in tx {tx.tx_hash} (block {tx.block_number}), but the chain has no "
            f"{op.kind} for it",
            merchant=op.merchant_id,
            tx_hash=tx.tx_hash,
            block=tx.block_number,
        )

    def _fields(self, op: DbOp, r: Record) -> list[tuple[str, Any, Any]]:
        """(field, database value, chain value) pairs that must agree."""
        if isinstance(r, Issuance):
            return [
                ("member", op.member, r.member),
                ("amount", op.amount, r.amount),
                ("ref", op.ref, r.ref.lower()),
                ("rule_version", op.rule_version, r.rule_version),
            ]
        if isinstance(r, Clawback):
            return [
                ("member", op.member, r.member),
                ("original_seq", op.original_seq, r.original_seq),
                ("ref", op.ref, r.ref.lower()),
                ("requested", op.amount, r.requested),
                ("burned", op.burned, r.amount),
            ]
        if isinstance(r, Redemption):
            return [
                ("merchant", op.merchant_id, r.merchant),
                ("amount", op.amount, r.amount),
                ("ref", op.ref, r.ref.lower()),
            ]
        if isinstance(r, RelayedTransfer):
            to = lower(op.payload.get("request", {}).get("to"))
            return [("recipient", to, r.recipient), ("amount", op.amount, r.amount)]
        if isinstance(r, BadgeAward):
            return [("merchant", op.merchant_id, r.merchant)]
        if isinstance(r, TierChange):
            return [("tier", op.tier, r.new_tier)]
        if isinstance(r, RuleSetPublication):
            return [("rule_set_hash", op.ref, r.rule_set_hash.lower())]
        return []

    # ---------------------------------------------------------------- chain -> ops

    def compare_records(self) -> None:
        unknown: defaultdict[str, list[Record]] = defaultdict(list)
        for r in self.history.records:
            kind = RECORD_KINDS.get(type(r))
            if kind is None or id(r) in self.matched:
                continue
            tx = self.db_hashes.get(r.tx_hash.lower())
            if tx is not None:
                self.differ(
                    "missing_in_db",
                    record_subject(r),
                    f"on chain in the gateway's tx {tx.tx_hash} (id {tx.id}, {tx.status}), "
                    f"but no {kind} op of the database accounts for it",
                    merchant=getattr(r, "merchant", None),
                    tx_hash=r.tx_hash,
                    block=r.block,
                    chain=record_value(r),
                )
            else:
                unknown[r.tx_hash.lower()].append(r)
        if not unknown:
            return
        hashes = sorted(unknown)
        found = self.rpc.batch([("eth_getTransactionByHash", [h]) for h in hashes])
        for tx_hash, tx in zip(hashes, found, strict=True):
            sender = lower(tx.get("from")) if isinstance(tx, dict) else ""
            for r in unknown[tx_hash]:
                if sender in self.gateway_senders:
                    self.differ(
                        "missing_in_db",
                        record_subject(r),
                        f"on chain, sent by the gateway's key {checksum(sender)}, but the "
                        "database has neither the transaction nor an op for it",
                        merchant=getattr(r, "merchant", None),
                        tx_hash=r.tx_hash,
                        block=r.block,
                        chain=record_value(r),
                    )
                else:
                    self.foreign_records.append(r)
                    self.report.foreign.append(
                        Difference(
                            "foreign",
                            record_subject(r),
                            "on chain, sent by "
                            + (checksum(sender) if sender else "an unknown account")
                            + ", not by this gateway",
                            merchant=getattr(r, "merchant", None),
                            tx_hash=r.tx_hash,
                            block=r.block,
                            chain=record_value(r),
                        )
                    )
