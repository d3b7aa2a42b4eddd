"""Reconcile the gateway's database with the chain, entry by entry.

Responsibilities:

- fix the block to compare at first, then read the database (one read transaction),
  then the chain's history up to that block (:class:`chain.audit.AuditLog`) and the
  hub's counters at it, so that nothing the gateway sends meanwhile shows up as a
  difference;
- every confirmed chain op against its on-chain effect, by key: issuance
  (merchant, seq) with member, amount, ref and rule version; clawback (merchant, seq)
  with member, original seq, requested and burned; redemption (member, nonce) with
  merchant, amount and ref; transfer (sender, nonce) with recipient and amount; badge
  award, tier change, rule-set publication; each with its transaction hash and block;
- every on-chain issuance, clawback, redemption, transfer, badge award, tier change and
  rule-set publication against the database: one in a transaction the gateway stored,
  or sent from one of its keys, must have its op (others are listed as foreign);
- confirmed transactions are on chain in the block recorded; confirmed events and
  redemptions have their on-chain effect, tx hash and block; per merchant, the
  database's totals (plus what was relayed by others) equal the hub's counters, and the
  merchant's signer, status, cap, rule version and sequence counter agree.

Ops sent but not yet confirmed by the worker are listed as in flight, not as
differences. ``pointsnet audit reconcile`` prints the report and exits 1 on any
difference.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.orm import Session

from chain.audit import (
    AuditLog,
    BadgeAward,
    ChainState,
    Clawback,
    History,
    Issuance,
    MerchantChange,
    Record,
    Redemption,
    RelayedTransfer,
    Rpc,
    RuleSetPublication,
    TierChange,
    chain_state_at,
    checksum,
)
from gateway.context import GatewayContext
from gateway.models import ChainOp, ChainTx, Event, Member, Merchant
from gateway.models import Redemption as RedemptionRow

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


# ================================================================ the report


@dataclass(frozen=True)
class Difference:
    """One disagreement between the database and the chain (or an informational note).

    ``code`` is stable: ``missing_on_chain``, ``missing_in_db``, ``field_mismatch``,
    ``tx_hash_mismatch``, ``block_mismatch``, ``tx_not_on_chain``, ``tx_reverted``,
    ``status_mismatch``, ``event_mismatch``, ``redemption_mismatch``, ``total_mismatch``,
    ``merchant_mismatch``; notes use ``in_flight`` and ``foreign``.
    """

    code: str
    subject: str
    message: str
    merchant: int | None = None
    tx_hash: str | None = None
    block: int | None = None
    field: str | None = None
    database: Any = None
    chain: Any = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "subject": self.subject,
            "message": self.message,
            "merchant": self.merchant,
            "tx_hash": self.tx_hash,
            "block": self.block,
            "field": self.field,
            "database": self.database,
            "chain": self.chain,
        }


@dataclass(frozen=True)
class MerchantTotals:
    """A merchant's confirmed totals in the database against the hub's counters."""

    merchant: int
    name: str
    database: dict[str, int]  # issued / redeemed / clawed_back, confirmed ops
    in_flight: dict[str, int]  # on chain, op sent but not yet confirmed
    foreign: dict[str, int]  # on chain, not relayed by this gateway
    counters: dict[str, int]  # the hub's merchant(id) view

    @property
    def ok(self) -> bool:
        return all(self.expected(k) == self.counters.get(k, 0) for k in TOTAL_FIELDS)

    def expected(self, name: str) -> int:
        return self.database[name] + self.in_flight[name] + self.foreign[name]

    def to_dict(self) -> dict[str, Any]:
        return {
            "merchant": self.merchant,
            "name": self.name,
            "ok": self.ok,
            "database": self.database,
            "in_flight": self.in_flight,
            "foreign": self.foreign,
            "counters": self.counters,
        }


TOTAL_FIELDS = ("issued", "redeemed", "clawed_back")


@dataclass
class ReconcileReport:
    """Everything ``reconcile`` compared at ``block``."""

    block: int
    hub: str
    database: str
    checked: dict[str, int] = field(default_factory=dict)  # entries compared, by kind
    differences: list[Difference] = field(default_factory=list)
    in_flight: list[Difference] = field(default_factory=list)
    foreign: list[Difference] = field(default_factory=list)
    totals: list[MerchantTotals] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.differences

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "block": self.block,
            "hub": checksum(self.hub.lower()),
            "database": self.database,
            "checked": self.checked,
            "differences": [d.to_dict() for d in self.differences],
            "in_flight": [d.to_dict() for d in self.in_flight],
            "foreign": [d.to_dict() for d in self.foreign],
            "totals": [t.to_dict() for t in self.totals],
        }


# ================================================================ the database side


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


def _lower(value: str | None) -> str:
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
                _lower(op.member_address),
                int(op.amount or 0),
                op.badge_id,
                op.tier,
                int(op.rule_version or 0),
                _lower(op.ref),
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
                _lower(tx.sender),
                int(tx.nonce),
                _lower(tx.tx_hash),
                tx.status,
                tx.block_number,
            )
            for tx in session.scalars(select(ChainTx))
        }
        events = [
            DbEvent(
                e.id,
                e.merchant_id,
                _lower(address),
                int(e.points or 0),
                int(e.clawback or 0),
                _lower(e.tx_hash) or None,
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
                _lower(r.member_address),
                int(r.amount),
                int(r.nonce),
                _lower(r.ref),
                r.status,
                r.op_id,
                _lower(r.tx_hash) or None,
            )
            for r in session.scalars(select(RedemptionRow).order_by(RedemptionRow.created_at))
        ]
        merchants = {
            m.id: DbMerchant(
                m.id,
                m.name,
                m.status,
                _lower(m.signer_address),
                int(m.cap_per_period),
                int(m.next_seq),
                int(m.rule_version),
            )
            for m in session.scalars(select(Merchant))
        }
    return DatabaseState(ops, txs, events, redemptions, merchants)


# ================================================================ reconcile


def reconcile(
    context: GatewayContext, *, rpc_url: str | None = None, to_block: int | None = None
) -> ReconcileReport:
    """Compare the gateway's database with the chain at ``to_block`` (default: latest).

    ``rpc_url`` reads the chain from another endpoint than the gateway's own.
    """
    rpc = Rpc(rpc_url or context.settings.rpc_url)
    hub = context.link.deployment.hub
    block = rpc.block_number() if to_block is None else to_block
    database = read_database(context.sessions)
    history = AuditLog(rpc, hub).read(block)
    state = chain_state_at(rpc, history.contracts, block)
    senders = {tx.sender for tx in database.txs.values()}
    senders.add(context.link.sender.address.lower())
    report = ReconcileReport(
        block=block,
        hub=hub,
        database=context.engine.url.render_as_string(hide_password=True),
    )
    Reconciler(report, database, history, state, rpc, frozenset(senders)).run()
    return report


class Reconciler:
    """The comparison itself (see the module docstring); fills ``report``."""

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
        self.report.differences.append(Difference(code, subject, message, **where))

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
            sender, nonce = _lower(request.get("from")) or op.member, request.get("nonce")
            return ("transfer", sender, int(nonce)) if nonce is not None else None
        if op.kind == "badge":
            return ("badge", tx.tx_hash, op.member, op.badge_id) if tx is not None else None
        if op.kind == "tier":
            return ("tier", tx.tx_hash, op.member) if tx is not None else None
        if op.kind == "rule":
            version = op.payload.get("version")
            return ("rule", op.merchant_id, int(version)) if version is not None else None
        return None

    # ---------------------------------------------------------------- run

    def run(self) -> None:
        self.compare_ops()
        self.compare_records()
        self.compare_transactions()
        self.compare_events()
        self.compare_redemptions()
        self.compare_merchants()
        self.report.checked = dict(sorted(self.checked.items()))

    # ---------------------------------------------------------------- ops -> chain

    def compare_ops(self) -> None:
        for op in self.db.ops:
            tx = self.db.txs.get(op.tx_id) if op.tx_id is not None else None
            subject = _op_subject(op)
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
                        merchant=op.merchant_id,
                        tx_hash=record.tx_hash,
                        block=record.block,
                    )
                )
                continue
            if op.status != "confirmed":
                self.differ(
                    "status_mismatch",
                    subject,
                    f"on chain, but the database says {op.status}",
                    merchant=op.merchant_id,
                    tx_hash=record.tx_hash,
                    block=record.block,
                    field="status",
                    database=op.status,
                    chain="on chain",
                )
                continue
            assert tx is not None
            self.checked[op.kind] += 1
            for name, mine, theirs in self._fields(op, record):
                if mine != theirs:
                    self.differ(
                        "field_mismatch",
                        subject,
                        f"{name}: database {mine!r}, chain {theirs!r}",
                        merchant=op.merchant_id,
                        tx_hash=record.tx_hash,
                        block=record.block,
                        field=name,
                        database=mine,
                        chain=theirs,
                    )
            if record.tx_hash.lower() != tx.tx_hash:
                self.differ(
                    "tx_hash_mismatch",
                    subject,
                    f"database tx {tx.tx_hash}, on chain in {record.tx_hash}",
                    merchant=op.merchant_id,
                    tx_hash=record.tx_hash,
                    block=record.block,
                    field="tx_hash",
                    database=tx.tx_hash,
                    chain=record.tx_hash,
                )
            elif tx.block_number != record.block:
                self.differ(
                    "block_mismatch",
                    subject,
                    f"database block {tx.block_number}, on chain in block {record.block}",
                    merchant=op.merchant_id,
                    tx_hash=record.tx_hash,
                    block=record.block,
                    field="block_number",
                    database=tx.block_number,
                    chain=record.block,
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
            to = _lower(op.payload.get("request", {}).get("to"))
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
                    _record_subject(r),
                    f"on chain in the gateway's tx {tx.tx_hash} (id {tx.id}, {tx.status}), "
                    f"but no {kind} op of the database accounts for it",
                    merchant=getattr(r, "merchant", None),
                    tx_hash=r.tx_hash,
                    block=r.block,
                    chain=_record_value(r),
                )
            else:
                unknown[r.tx_hash.lower()].append(r)
        if not unknown:
            return
        hashes = sorted(unknown)
        found = self.rpc.batch([("eth_getTransactionByHash", [h]) for h in hashes])
        for tx_hash, tx in zip(hashes, found, strict=True):
            sender = _lower(tx.get("from")) if isinstance(tx, dict) else ""
            for r in unknown[tx_hash]:
                if sender in self.gateway_senders:
                    self.differ(
                        "missing_in_db",
                        _record_subject(r),
                        f"on chain, sent by the gateway's key {checksum(sender)}, but the "
                        "database has neither the transaction nor an op for it",
                        merchant=getattr(r, "merchant", None),
                        tx_hash=r.tx_hash,
                        block=r.block,
                        chain=_record_value(r),
                    )
                else:
                    self.foreign_records.append(r)
                    self.report.foreign.append(
                        Difference(
                            "foreign",
                            _record_subject(r),
                            "on chain, sent by "
                            + (checksum(sender) if sender else "an unknown account")
                            + ", not by this gateway",
                            merchant=getattr(r, "merchant", None),
                            tx_hash=r.tx_hash,
                            block=r.block,
                            chain=_record_value(r),
                        )
                    )

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
        self.differ(
            "block_mismatch",
            f"tx {tx.id} ({tx.kind})",
            f"database block {tx.block_number}, on chain in block {block}",
            tx_hash=tx.tx_hash,
            block=block,
            field="block_number",
            database=tx.block_number,
            chain=block,
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
                        f"confirmed, but its {_op_subject(op)} is {op.status}",
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
                    self.differ(
                        "event_mismatch",
                        subject,
                        f"confirmed with {label} {wanted:,}; its {kind} on chain: {on_chain:,}",
                        merchant=event.merchant_id,
                        field=label,
                        database=wanted,
                        chain=on_chain,
                    )
            self._event_tx(event, ops, subject)

    def _event_tx(self, event: DbEvent, ops: list[DbOp], subject: str) -> None:
        if not ops:
            return  # nothing to put on chain: confirmed at once
        hashes = {self.db.txs[op.tx_id].tx_hash for op in ops if op.tx_id in self.db.txs}
        if event.tx_hash is None or event.tx_hash not in hashes:
            self.differ(
                "event_mismatch",
                subject,
                f"confirmed with tx {event.tx_hash}, which is none of its ops' transactions",
                merchant=event.merchant_id,
                field="tx_hash",
                database=event.tx_hash,
                chain=sorted(hashes),
            )
            return
        block = self.tx_blocks.get(event.tx_hash)
        if block is not None and block != event.block_number:
            self.differ(
                "event_mismatch",
                subject,
                f"confirmed in block {event.block_number}, but {event.tx_hash} is in block {block}",
                merchant=event.merchant_id,
                tx_hash=event.tx_hash,
                block=block,
                field="block_number",
                database=event.block_number,
                chain=block,
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
                    self.differ(
                        "redemption_mismatch",
                        subject,
                        f"on chain in {record.tx_hash}, but the database says {row.status}",
                        merchant=row.merchant_id,
                        tx_hash=record.tx_hash,
                        block=record.block,
                        field="status",
                        database=row.status,
                        chain="on chain",
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
                    self.differ(
                        "redemption_mismatch",
                        subject,
                        f"{name}: database {mine!r}, chain {theirs!r}",
                        merchant=row.merchant_id,
                        tx_hash=record.tx_hash,
                        block=record.block,
                        field=name,
                        database=mine,
                        chain=theirs,
                    )

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
                totals[op.merchant_id]["in_flight"][name] += _value(record)
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
                    self.differ(
                        "total_mismatch",
                        subject,
                        f"{part.replace('_', ' ')}: database {row.database[part]:,}"
                        + (f" + in flight {row.in_flight[part]:,}" if row.in_flight[part] else "")
                        + (f" + foreign {row.foreign[part]:,}" if row.foreign[part] else "")
                        + f", hub counter {chain_counts[part]:,}",
                        merchant=merchant_id,
                        field=part,
                        database=row.expected(part),
                        chain=chain_counts[part],
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
                    self.differ(
                        "merchant_mismatch",
                        subject,
                        f"{field_name}: database {db_value!r}, chain {chain_value!r}",
                        merchant=merchant_id,
                        field=field_name,
                        database=db_value,
                        chain=chain_value,
                    )
            if used[merchant_id] >= mine.next_seq:
                self.differ(
                    "merchant_mismatch",
                    subject,
                    f"next sequence number {mine.next_seq} is already used on chain "
                    f"(highest used: {used[merchant_id]})",
                    merchant=merchant_id,
                    field="next_seq",
                    database=mine.next_seq,
                    chain=used[merchant_id],
                )


# ---------------------------------------------------------------------- helpers


def _op_subject(op: DbOp) -> str:
    where = []
    if op.merchant_id is not None:
        where.append(f"merchant {op.merchant_id}")
    if op.seq is not None:
        where.append(f"seq {op.seq}")
    if op.event_id:
        where.append(f"event {op.event_id}")
    return f"{op.kind} op {op.id}" + (f" ({', '.join(where)})" if where else "")


def _record_subject(r: Record) -> str:
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


def _record_value(r: Record) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": r.kind, "block": r.block, "log_index": r.log_index}
    for name in ("merchant", "member", "sender", "recipient", "amount", "seq", "nonce", "ref"):
        value = getattr(r, name, None)
        if value is not None:
            out[name] = checksum(value) if name in ("member", "sender", "recipient") else value
    return out


def _value(r: Record) -> int:
    if isinstance(r, Issuance | Redemption | Clawback | RelayedTransfer):
        return r.amount
    return 0


# ---------------------------------------------------------------------- rendering


def _cell(value: Any) -> str:
    """A table cell: records as "issuance 150 to 0x17b6…", lists joined, None empty."""
    if value is None:
        return ""
    if isinstance(value, dict):
        who = value.get("member") or value.get("sender") or ""
        text = f"{value.get('kind', '')} {value.get('amount', '')}".strip()
        return f"{text} to {who[:10]}…" if who else text
    if isinstance(value, list):
        return ", ".join(_cell(v) for v in value)
    return str(value)


def render(report: ReconcileReport, out: Console) -> None:
    """The report as rich tables (``pointsnet audit reconcile``)."""
    out.print(
        f"[bold]pointsnet reconcile[/bold] database {report.database} against hub "
        f"{checksum(report.hub.lower())} at block {report.block:,}",
        highlight=False,
    )
    checked = ", ".join(f"{n:,} {kind}" for kind, n in report.checked.items()) or "nothing"
    out.print(f"compared: {checked}", highlight=False)
    table = Table(title="Per-merchant totals: database (+ in flight + foreign) vs hub counters")
    for column in ("merchant", "name", "issued", "redeemed", "clawed back", ""):
        table.add_column(column, justify="left" if column == "name" else "right")
    for t in report.totals:
        cells = []
        for part in TOTAL_FIELDS:
            expected, counter = t.expected(part), t.counters[part]
            cells.append(
                f"{expected:,}" if expected == counter else f"[red]{expected:,} ≠ {counter:,}[/red]"
            )
        table.add_row(
            str(t.merchant), t.name, *cells, "[green]ok[/green]" if t.ok else "[red]MISMATCH[/red]"
        )
    out.print(table)
    if report.differences:
        table = Table(title=f"Differences ({len(report.differences)})")
        for column in ("code", "subject", "field", "database", "chain", "tx"):
            table.add_column(column)
        for d in report.differences:
            table.add_row(
                d.code,
                d.subject,
                d.field or "",
                _cell(d.database),
                _cell(d.chain),
                d.tx_hash or "",
            )
        out.print(table)
        for d in report.differences:
            out.print(f"[red]{d.code}[/red] {d.subject}: {d.message}", highlight=False)
    if report.in_flight:
        out.print(f"{len(report.in_flight)} op(s) on chain, not yet confirmed by the worker")
    if report.foreign:
        out.print(f"{len(report.foreign)} on-chain record(s) relayed by others (not this gateway)")
    if report.ok:
        out.print("[green]reconciled[/green]: the database and the chain agree")
    else:
        out.print(f"[red]reconcile FAILED[/red]: {len(report.differences)} difference(s)")
