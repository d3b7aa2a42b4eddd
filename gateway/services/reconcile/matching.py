"""Matching ops to chain records: the keys both sides share, and how each is named."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from chain.audit import (
    BadgeAward,
    ChainState,
    Clawback,
    History,
    Issuance,
    Record,
    Redemption,
    RelayedTransfer,
    Rpc,
    RuleSetPublication,
    TierChange,
    checksum,
)
from gateway.services.reconcile.report import Difference, ReconcileReport
from gateway.services.reconcile.snapshot import DatabaseState, DbOp, DbTx, lower

#: On-chain records the gateway causes, by the op kind that causes them.
OP_RECORDS: dict[str, type[Record]] = {
    "issue": Issuance,
    "clawback": Clawback,
    "redeem": Redemption,
    "transfer": RelayedTransfer,
    "badge": BadgeAward,
    "tier": TierChange,
    "rule": RuleSetPublication,
}
RECORD_KINDS = {record_type: kind for kind, record_type in OP_RECORDS.items()}


class Comparison:
    """What every check works from: the report to fill, both sides, and the chain's
    records indexed by the key an op has (:meth:`_record_key` / :meth:`_op_key`)."""

    def __init__(
        self,
        report: ReconcileReport,
        database: DatabaseState,
        history: History,
        state: ChainState,
        rpc: Rpc,
        gateway_senders: frozenset[str],
    ) -> None:
        self.report = report
        self.db = database
        self.history = history
        self.state = state
        self.rpc = rpc
        self.gateway_senders = gateway_senders
        self.block = report.block
        self.checked: defaultdict[str, int] = defaultdict(int)
        self.matched: dict[int, DbOp] = {}  # id(record) -> the op that accounts for it
        self.chain_of_op: dict[int, Record] = {}  # op id -> its record
        self.tx_blocks: dict[str, int] = {}
        self.by_key: dict[tuple[Any, ...], Record] = {}
        self.badges_held: dict[tuple[str, int], int] = {}  # (member, badge) -> first block
        self.tiers: defaultdict[str, list[tuple[int, int]]] = defaultdict(list)
        self.db_hashes = {tx.tx_hash: tx for tx in database.txs.values()}
        self.foreign_records: list[Record] = []  # on chain, relayed by someone else
        self._index_chain()

    # ---------------------------------------------------------------- helpers

    def differ(self, code: str, subject: str, message: str, **where: Any) -> None:
        """Report a difference (see :class:`Difference` for ``code`` and ``where``)."""
        self.report.differences.append(Difference(code, subject, message, **where))

    def mismatch(
        self,
        code: str,
        subject: str,
        name: str,
        database: Any,
        chain: Any,
        *,
        message: str = "",
        **where: Any,
    ) -> None:
        """A difference in field ``name``; the message says both values unless given."""
        message = message or f"{name}: database {database!r}, chain {chain!r}"
        self.differ(code, subject, message, field=name, database=database, chain=chain, **where)

    def _index_chain(self) -> None:
        for r in self.history.records:
            self.tx_blocks.setdefault(r.tx_hash.lower(), r.block)
            key = self._record_key(r)
            if key is not None:
                self.by_key.setdefault(key, r)
            if isinstance(r, BadgeAward):
                self.badges_held.setdefault((r.member, r.badge_id), r.block)
            elif isinstance(r, TierChange):
                self.tiers[r.member].append((r.block, r.new_tier))

    @staticmethod
    def _record_key(r: Record) -> tuple[Any, ...] | None:
        if isinstance(r, Issuance):
            return ("issue", r.merchant, r.seq)
        if isinstance(r, Clawback):
            return ("clawback", r.merchant, r.seq)
        if isinstance(r, Redemption):
            return ("redeem", r.member, r.nonce)
        if isinstance(r, RelayedTransfer):
            return ("transfer", r.sender, r.nonce)
        if isinstance(r, BadgeAward):
            return ("badge", r.tx_hash.lower(), r.member, r.badge_id)
        if isinstance(r, TierChange):
            return ("tier", r.tx_hash.lower(), r.member)
        if isinstance(r, RuleSetPublication):
            return ("rule", r.merchant, r.rule_version)
        return None

    def _op_key(self, op: DbOp, tx: DbTx | None) -> tuple[Any, ...] | None:
        if op.kind in ("issue", "clawback"):
            return (op.kind, op.merchant_id, op.seq) if op.seq is not None else None
        if op.kind == "redeem":
            nonce = op.payload.get("redemption", {}).get("nonce")
            return ("redeem", op.member, int(nonce)) if nonce is not None else None
        if op.kind == "transfer":
            request = op.payload.get("request", {})
            sender, nonce = lower(request.get("from")) or op.member, request.get("nonce")
            return ("transfer", sender, int(nonce)) if nonce is not None else None
        if op.kind == "badge":
            return ("badge", tx.tx_hash, op.member, op.badge_id) if tx is not None else None
        if op.kind == "tier":
            return ("tier", tx.tx_hash, op.member) if tx is not None else None
        if op.kind == "rule":
            version = op.payload.get("version")
            return ("rule", op.merchant_id, int(version)) if version is not None else None
        return None


# ---------------------------------------------------------------------- helpers


def located(record: Record, merchant: int | None) -> dict[str, Any]:
    """Where a difference about ``record`` is: the merchant, the record's tx and block."""
    return {"merchant": merchant, "tx_hash": record.tx_hash, "block": record.block}


def op_subject(op: DbOp) -> str:
    where = []
    if op.merchant_id is not None:
        where.append(f"merchant {op.merchant_id}")
    if op.seq is not None:
        where.append(f"seq {op.seq}")
    if op.event_id:
        where.append(f"event {op.event_id}")
    return f"{op.kind} op {op.id}" + (f" ({', '.join(where)})" if where else "")


def record_subject(r: Record) -> str:
    kind = RECORD_KINDS.get(type(r), r.kind)
    if isinstance(r, Issuance | Clawback):
        return f"{kind} merchant {r.merchant} seq {r.seq}"
    if isinstance(r, Redemption):
        return f"redeem merchant {r.merchant} by {checksum(r.member)} nonce {r.nonce}"
    if isinstance(r, RelayedTransfer):
        return f"transfer from {checksum(r.sender)} nonce {r.nonce}"
    if isinstance(r, BadgeAward):
        return f"badge {r.badge_id} to {checksum(r.member)}"
    if isinstance(r, TierChange):
        return f"tier {r.new_tier} for {checksum(r.member)}"
    if isinstance(r, RuleSetPublication):
        return f"rule set v{r.rule_version} of merchant {r.merchant}"
    return f"{r.kind} at block {r.block}"


def record_value(r: Record) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": r.kind, "block": r.block, "log_index": r.log_index}
    for name in ("merchant", "member", "sender", "recipient", "amount", "seq", "nonce", "ref"):
        value = getattr(r, name, None)
        if value is not None:
            out[name] = checksum(value) if name in ("member", "sender", "recipient") else value
    return out


def value_of(r: Record) -> int:
    if isinstance(r, Issuance | Redemption | Clawback | RelayedTransfer):
        return r.amount
    return 0
