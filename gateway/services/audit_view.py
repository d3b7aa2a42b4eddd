"""The audit page's data: the network's history read from the chain, kept in memory.

Responsibilities:

- one :class:`chain.audit.AuditLog` replay per process: the first request reads the
  history from the network's first block; every later request extends the cached
  history from the block after the last one read (``eth_blockNumber``, one block-hash
  check, then ``eth_getLogs`` over the new blocks only), under a lock so that
  concurrent requests wait for one reader instead of reading the same blocks twice;
- stay ``confirmations`` blocks behind the head; when the last block read changed
  hash (a reorg, a devnet reset) or the hub got a new admin (whose earlier logs were
  never read), discard the cache and read again from the start;
- derive the page's reports from a :class:`Snapshot` (the records up to one block),
  every one of them a function of the chain alone: overview (supply invariant,
  members, merchants, issued / redeemed per day), searchable history, settlement for a
  block or time range, rule timeline with the time each change takes effect;
- check the deployed code against the committed artifacts (per block, cached), and
  run a fresh compile in a background thread on request (too slow for a page load).

Nothing here reads the gateway's database: the audit page is the auditor's view.
"""

from __future__ import annotations

import io
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from chain.audit import (
    ZERO_ADDRESS,
    ZERO_WORD,
    AuditLog,
    ChainState,
    Clawback,
    Contracts,
    History,
    Issuance,
    IssuanceBatch,
    MerchantChange,
    Record,
    Redemption,
    RelayedTransfer,
    RoleChange,
    Rpc,
    TimelockCall,
    TimelockCancel,
    TokenMovement,
    block_at_time,
    chain_state_at,
    checksum,
    decode_logs,
    find_anomalies,
    format_money,
    iso_time,
    record_dict,
    rule_timeline,
    settlement_report,
    supply_report,
    write_csv,
)
from chain.config import PROJECT_ROOT
from chain.verify import Verification, reference_artifacts, verify_contracts
from gateway.errors import InvalidRequest

log = logging.getLogger("pointsnet.audit")

#: Fields of a record that hold an account address (searched by "address").
ADDRESS_FIELDS = ("member", "sender", "recipient", "account", "signer", "operator")
#: Most rows one history page returns.
MAX_PAGE = 500
#: Records per chunk of a streamed CSV.
CSV_CHUNK = 2_000


# ================================================================ snapshots


class _Index:
    """Positions of records by address, transaction and merchant; append-only, shared by
    the snapshots of one replay (a snapshot ignores positions past its own length)."""

    def __init__(self) -> None:
        self.by_address: defaultdict[str, list[int]] = defaultdict(list)
        self.by_tx: defaultdict[str, list[int]] = defaultdict(list)
        self.by_merchant: defaultdict[int, list[int]] = defaultdict(list)

    def add(self, records: Sequence[Record], start: int) -> None:
        for position, record in enumerate(records, start):
            self.by_tx[record.tx_hash].append(position)
            merchant = getattr(record, "merchant", None)
            if isinstance(merchant, int):
                self.by_merchant[merchant].append(position)
            seen: set[str] = set()
            for name in ADDRESS_FIELDS:
                value = getattr(record, name, None)
                if isinstance(value, str) and value != ZERO_ADDRESS and value not in seen:
                    seen.add(value)
                    self.by_address[value].append(position)


@dataclass(frozen=True)
class Snapshot:
    """The history up to ``to_block``: what one request works on."""

    contracts: Contracts
    from_block: int
    to_block: int
    to_time: int
    block_hash: str
    records: list[Record]  # never mutated: an extension makes a new list
    log_count: int
    block_times: dict[int, int]
    index: _Index = field(repr=False, compare=False)

    def history(self) -> History:
        return History(
            self.contracts,
            self.from_block,
            self.to_block,
            self.records,
            self.log_count,
            self.block_times,
            self.to_time,
        )

    def positions(self, found: list[int]) -> list[int]:
        """Index positions that belong to this snapshot (the index may have grown since)."""
        size = len(self.records)
        end = len(found)
        while end and found[end - 1] >= size:
            end -= 1
        return found[:end]


# ================================================================ queries


@dataclass(frozen=True)
class HistoryQuery:
    """Filters of the history search; every given filter must match."""

    address: str | None = None  # any address field (member, sender, recipient, ...)
    merchant: int | None = None
    tx_hash: str | None = None
    seq: int | None = None  # an issuance's or clawback's sequence number (or the one clawed back)
    kinds: tuple[str, ...] = ()
    from_block: int | None = None
    to_block: int | None = None
    newest_first: bool = True

    @classmethod
    def parse(
        cls,
        *,
        address: str | None = None,
        merchant: int | None = None,
        tx: str | None = None,
        seq: int | None = None,
        kind: str | None = None,
        from_block: int | None = None,
        to_block: int | None = None,
        order: str = "desc",
    ) -> HistoryQuery:
        """Validated filters from request parameters (raises :class:`InvalidRequest`)."""
        if address is not None:
            address = address.strip().lower()
            if not _is_hex(address, 40):
                raise InvalidRequest("address must be 0x and 40 hex digits", address=address)
        if tx is not None:
            tx = tx.strip().lower()
            if not _is_hex(tx, 64):
                raise InvalidRequest("tx must be a transaction hash (0x and 64 hex digits)", tx=tx)
        if order not in ("asc", "desc"):
            raise InvalidRequest("order must be asc or desc", order=order)
        if from_block is not None and to_block is not None and from_block > to_block:
            raise InvalidRequest(
                "from_block is after to_block", from_block=from_block, to_block=to_block
            )
        kinds = tuple(k.strip() for k in (kind or "").split(",") if k.strip())
        return cls(address, merchant, tx, seq, kinds, from_block, to_block, order == "desc")

    def matches(self, r: Record) -> bool:
        if self.from_block is not None and r.block < self.from_block:
            return False
        if self.to_block is not None and r.block > self.to_block:
            return False
        if self.kinds and r.kind not in self.kinds:
            return False
        if self.merchant is not None and getattr(r, "merchant", None) != self.merchant:
            return False
        if self.tx_hash is not None and r.tx_hash.lower() != self.tx_hash:
            return False
        if self.address is not None and not any(
            getattr(r, name, None) == self.address for name in ADDRESS_FIELDS
        ):
            return False
        return self.seq is None or _has_seq(r, self.seq)


def _is_hex(text: str, digits: int) -> bool:
    if len(text) != digits + 2 or not text.startswith("0x"):
        return False
    try:
        int(text[2:], 16)
    except ValueError:
        return False
    return True


def _has_seq(r: Record, seq: int) -> bool:
    if isinstance(r, Issuance):
        return r.seq == seq
    if isinstance(r, IssuanceBatch):
        return r.seq <= seq < r.seq + r.count
    if isinstance(r, Clawback):
        return seq in (r.seq, r.original_seq)
    return False


def parse_time(text: str, *, end_of_day: bool = False) -> int:
    """ISO 8601 date or date-time (naive means UTC) -> unix seconds; a bare date means
    the start of that day, or its last second with ``end_of_day``."""
    value = text.strip()
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidRequest(f"{text!r} is not an ISO 8601 date or date-time") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if end_of_day and len(value) == 10:  # YYYY-MM-DD
        moment += timedelta(days=1, seconds=-1)
    return int(moment.timestamp())


# ================================================================ recompile job


@dataclass
class RecompileJob:
    """A fresh compile of ``contracts/`` compared with the deployed code, off the request."""

    state: str = "idle"  # idle | running | done | failed
    started_at: float | None = None
    finished_at: float | None = None
    block: int | None = None
    result: Verification | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "started_at": iso_time(int(self.started_at)) if self.started_at else None,
            "finished_at": iso_time(int(self.finished_at)) if self.finished_at else None,
            "seconds": round(self.finished_at - self.started_at, 1)
            if self.finished_at and self.started_at
            else None,
            "block": self.block,
            "result": self.result.to_dict() if self.result is not None else None,
            "error": self.error,
        }


# ================================================================ the view


class AuditView:
    """The cached, incrementally extended history of one network and the reports on it."""

    def __init__(
        self,
        rpc: Rpc | str,
        hub: str,
        *,
        confirmations: int = 0,
        start_block: int | None = None,
        root: Path = PROJECT_ROOT,
    ) -> None:
        self.rpc = Rpc(rpc) if isinstance(rpc, str) else rpc
        self.hub = hub.lower()
        self.confirmations = max(0, confirmations)
        self.start_block = start_block
        self.root = root
        self._lock = threading.Lock()
        self._snapshot: Snapshot | None = None
        self._derived: dict[str, Any] = {}
        self._derived_for: tuple[int, str] | None = None
        self._derived_lock = threading.Lock()
        self._job = RecompileJob()
        self._job_lock = threading.Lock()
        # what the reader did, for tests and logs
        self.full_reads = 0
        self.extensions = 0
        self.last_range: tuple[int, int] | None = None

    # ---------------------------------------------------------------- reading

    def snapshot(self) -> Snapshot:
        """The history up to the head minus the confirmation depth, read incrementally."""
        with self._lock:
            head = self.rpc.block_number()
            last = max(0, head - self.confirmations)
            current = self._snapshot
            if current is not None and last < current.to_block:
                log.info("chain is behind the audited block %s: reading again", current.to_block)
                current = None
            if current is not None and last == current.to_block:
                if self._hash(last) == current.block_hash:
                    return current
                current = None  # the same height, another block: a reorg
            elif current is not None:
                current = self._extend(current, last)
            if current is None:
                current = self._read_all(last)
            self._snapshot = current
            return current

    def _hash(self, block: int) -> str:
        found = self.rpc.call("eth_getBlockByNumber", [hex(block), False])
        return str(found["hash"]) if found else ""

    def _read_all(self, last: int) -> Snapshot:
        started = time.monotonic()
        block_hash = self._hash(last)
        history = AuditLog(self.rpc, self.hub, start_block=self.start_block).read(last)
        if self._hash(last) != block_hash:  # reorged while reading: once more
            block_hash = self._hash(last)
            history = AuditLog(self.rpc, self.hub, start_block=self.start_block).read(last)
        index = _Index()
        index.add(history.records, 0)
        self.full_reads += 1
        self.last_range = (history.from_block, last)
        log.info(
            "audit history read: blocks %s..%s, %s logs in %.2fs",
            history.from_block,
            last,
            history.log_count,
            time.monotonic() - started,
        )
        return Snapshot(
            contracts=history.contracts,
            from_block=history.from_block,
            to_block=last,
            to_time=int(history.to_time if history.to_time is not None else 0),
            block_hash=block_hash,
            records=history.records,
            log_count=history.log_count,
            block_times=history.block_times,
            index=index,
        )

    def _extend(self, current: Snapshot, last: int) -> Snapshot | None:
        """``current`` extended to ``last``; None when it must be read again from the start."""
        previous, newest = self.rpc.batch(
            [
                ("eth_getBlockByNumber", [hex(current.to_block), False]),
                ("eth_getBlockByNumber", [hex(last), False]),
            ]
        )
        if previous is None or str(previous["hash"]) != current.block_hash:
            log.info("block %s changed (reorg): reading the history again", current.to_block)
            return None
        contracts = current.contracts
        reader = AuditLog(self.rpc, self.hub, start_block=contracts.start_block)
        added: list[Record] = []
        block_times = current.block_times  # append-only, like the index
        logs_read = 0
        for _first, _end, logs in reader.pages(contracts.addresses(), current.to_block + 1, last):
            times = self._block_times(logs)
            page = decode_logs(contracts, logs, times)
            for r in page:
                block_times[r.block] = r.time
            added.extend(page)
            logs_read += len(logs)
        if newest is None or self._hash(last) != str(newest["hash"]):
            log.info("block %s changed while reading: reading the history again", last)
            return None
        admins = dict.fromkeys(contracts.admins, True)
        for r in added:
            if isinstance(r, RoleChange) and r.contract == "hub" and r.role == ZERO_WORD:
                if r.account not in contracts.timelocks:
                    log.info("new hub admin %s: reading the history again", r.account)
                    return None
                if r.kind == "role_granted":
                    admins[r.account] = True
                else:
                    admins.pop(r.account, None)
        if tuple(admins) != contracts.admins:
            contracts = replace(contracts, admins=tuple(admins))
        size = len(current.records)
        current.index.add(added, size)
        self.extensions += 1
        self.last_range = (current.to_block + 1, last)
        return Snapshot(
            contracts=contracts,
            from_block=current.from_block,
            to_block=last,
            to_time=int(newest["timestamp"], 16),
            block_hash=str(newest["hash"]),
            records=current.records + added if added else current.records,
            log_count=current.log_count + logs_read,
            block_times=block_times,
            index=current.index,
        )

    def _block_times(self, logs: list[dict[str, Any]]) -> dict[int, int]:
        """Block -> timestamp for logs without ``blockTimestamp`` (empty when they have it)."""
        if not logs or "blockTimestamp" in logs[0]:
            return {}
        blocks = sorted({int(entry["blockNumber"], 16) for entry in logs})
        found = self.rpc.batch([("eth_getBlockByNumber", [hex(b), False]) for b in blocks])
        return {b: int(f["timestamp"], 16) for b, f in zip(blocks, found, strict=True) if f}

    # ---------------------------------------------------------------- derived, cached

    def _cached(self, snap: Snapshot, key: str, compute: Callable[[], Any]) -> Any:
        with self._derived_lock:
            if self._derived_for != (snap.to_block, snap.block_hash):
                self._derived = {}
                self._derived_for = (snap.to_block, snap.block_hash)
            if key in self._derived:
                return self._derived[key]
        value = compute()
        with self._derived_lock:
            if self._derived_for == (snap.to_block, snap.block_hash):
                self._derived[key] = value
        return value

    def state(self, snap: Snapshot) -> ChainState:
        """The contracts' own views at the snapshot's block."""
        result: ChainState = self._cached(
            snap, "state", lambda: chain_state_at(self.rpc, snap.contracts, snap.to_block)
        )
        return result

    def overview(self, snap: Snapshot) -> dict[str, Any]:
        result: dict[str, Any] = self._cached(snap, "overview", lambda: self._overview(snap))
        return result

    def _overview(self, snap: Snapshot) -> dict[str, Any]:
        state = self.state(snap)
        supply = supply_report(snap.records, state)
        anomalies = find_anomalies(snap.records)
        merchants: dict[int, dict[str, Any]] = {}
        members: set[str] = set()
        counts: defaultdict[str, int] = defaultdict(int)
        for r in snap.records:
            counts[r.kind] += 1
            if isinstance(r, MerchantChange):
                row = merchants.setdefault(r.merchant, {"id": r.merchant, "name": ""})
                if r.name is not None:
                    row["name"] = r.name
                if r.signer is not None:
                    row["signer"] = checksum(r.signer)
                if r.status is not None:
                    row["status"] = r.status
                if r.cap is not None:
                    row["cap_per_period"] = r.cap
            elif isinstance(r, Issuance):
                members.add(r.member)
            elif isinstance(r, TokenMovement) and r.recipient != ZERO_ADDRESS:
                members.add(r.recipient)
        for merchant_id, counters in state.merchants.items():
            row = merchants.setdefault(merchant_id, {"id": merchant_id, "name": ""})
            row.update(
                status=counters.status,
                rule_version=counters.rule_version,
                issued=counters.issued,
                redeemed=counters.redeemed,
                clawed_back=counters.clawed_back,
            )
        return {
            "ok": supply.ok and not anomalies,
            "network": snap.contracts.to_dict(),
            "block": snap.to_block,
            "time": iso_time(snap.to_time),
            "from_block": snap.from_block,
            "confirmations": self.confirmations,
            "total_supply": state.total_supply,
            "members": len(members),
            "holders": supply.holders,
            "merchant_count": len(merchants),
            "merchants": [merchants[m] for m in sorted(merchants)],
            "paused": state.paused,
            "point_value": {
                "micros": state.point_value_micros,
                "currency": state.currency,
                "display": format_money(state.point_value_micros, state.currency),
            },
            "supply": supply.to_dict(),
            "daily": daily_series(snap.records),
            "anomalies": [a.to_dict() for a in anomalies],
            "records": {"logs": snap.log_count, "total": len(snap.records), "by_kind": counts},
        }

    # ---------------------------------------------------------------- history

    def search(
        self, snap: Snapshot, query: HistoryQuery, *, limit: int = 50, offset: int = 0
    ) -> tuple[int, list[Record]]:
        """(number of matches, the page of them at ``offset``)."""
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidRequest(f"limit must be between 1 and {MAX_PAGE}", limit=limit)
        if offset < 0:
            raise InvalidRequest("offset must not be negative", offset=offset)
        if query == HistoryQuery(newest_first=query.newest_first):  # no filter: no scan
            records = snap.records
            count = len(records)
            if query.newest_first:
                stop = max(count - offset, 0)
                return count, records[max(stop - limit, 0) : stop][::-1]
            return count, records[offset : offset + limit]
        count, page = 0, []
        for r in self.matching(snap, query):
            if offset <= count < offset + limit:
                page.append(r)
            count += 1
        return count, page

    def matching(self, snap: Snapshot, query: HistoryQuery) -> Iterator[Record]:
        """Every matching record, in the query's order; the index narrows the scan."""
        index = snap.index
        narrowed = [
            snap.positions(found)
            for found in (
                index.by_tx.get(query.tx_hash, []) if query.tx_hash is not None else None,
                index.by_address.get(query.address, []) if query.address is not None else None,
                index.by_merchant.get(query.merchant, []) if query.merchant is not None else None,
            )
            if found is not None
        ]
        candidates = min(narrowed, key=len) if narrowed else None
        records = snap.records
        if candidates is not None:
            ordered = reversed(candidates) if query.newest_first else iter(candidates)
            for position in ordered:
                if query.matches(records[position]):
                    yield records[position]
            return
        walk = reversed(records) if query.newest_first else iter(records)
        for r in walk:
            if query.matches(r):
                yield r

    def csv_chunks(self, snap: Snapshot, query: HistoryQuery) -> Iterator[str]:
        """The matching records as CSV (``chain.audit.write_csv``'s columns), in chunks."""
        chunk: list[Record] = []
        first = True

        def render(records: list[Record]) -> str:
            buffer = io.StringIO()
            write_csv(records, buffer)
            text = buffer.getvalue()
            return text if first else text.split("\n", 1)[1]

        for r in self.matching(snap, query):
            chunk.append(r)
            if len(chunk) >= CSV_CHUNK:
                yield render(chunk)
                first, chunk = False, []
        if chunk or first:
            yield render(chunk)

    # ---------------------------------------------------------------- settlement

    def settlement(
        self,
        snap: Snapshot,
        *,
        from_block: int | None = None,
        to_block: int | None = None,
        since: str | None = None,
        until: str | None = None,
    ) -> dict[str, Any]:
        """Per-merchant settlement over a block range or a time range (not both)."""
        if (since or until) and (from_block is not None or to_block is not None):
            raise InvalidRequest("give a block range or a time range, not both")
        if until:
            moment = parse_time(until, end_of_day=True)
            to_block = block_at_time(self.rpc, moment, snap.to_block)
            if to_block < snap.from_block:
                raise InvalidRequest(f"until {until} is before the network's history", until=until)
        start = snap.from_block if from_block is None else from_block
        end = snap.to_block if to_block is None else to_block
        if since:
            moment = parse_time(since)
            start = block_at_time(self.rpc, moment - 1, end) + 1
        if end > snap.to_block:
            raise InvalidRequest(
                f"to_block {end} is beyond the audited block {snap.to_block}",
                to_block=end,
                audited_block=snap.to_block,
            )
        if start > end:
            raise InvalidRequest(
                "the range is empty (from after to)", from_block=start, to_block=end
            )
        report = settlement_report(snap.records, start, end).to_dict()
        report["audited_block"] = snap.to_block
        return report

    # ---------------------------------------------------------------- timeline

    def timeline(
        self, snap: Snapshot, *, from_block: int | None = None, to_block: int | None = None
    ) -> list[dict[str, Any]]:
        """The rule timeline, each entry with the time its change takes effect."""
        start = snap.from_block if from_block is None else from_block
        end = snap.to_block if to_block is None else min(to_block, snap.to_block)
        executed: dict[str, int] = {}  # operation id -> when (the last call of a batch) ran
        cancelled: set[str] = set()
        for r in snap.records:
            if r.block > end:
                break
            if isinstance(r, TimelockCall) and r.kind == "call_executed":
                executed[r.operation_id] = r.time
            elif isinstance(r, TimelockCancel):
                cancelled.add(r.operation_id)
        rows = []
        for entry in rule_timeline(snap.records, start, end, snap.to_time, snap.contracts):
            row = entry.to_dict()
            effect: int | None = entry.time
            note = "in effect"
            if entry.kind == "call_scheduled":
                op = entry.operation_id or ""
                done = executed.get(op)
                if done is not None:
                    effect, note = done, "in effect (executed)"
                elif op in cancelled:
                    effect, note = None, "cancelled: never takes effect"
                elif entry.ready_at is not None and entry.ready_at > snap.to_time:
                    effect, note = entry.ready_at, "pending: not before this time"
                else:
                    effect, note = entry.ready_at, "ready: takes effect when executed"
            elif entry.kind == "call_executed":
                note = "executed"
            row["takes_effect"] = iso_time(effect) if effect is not None else None
            row["effect"] = note
            rows.append(row)
        return rows

    # ---------------------------------------------------------------- verification

    def verification(self, snap: Snapshot) -> Verification:
        """Deployed code against the committed artifacts (cached per block)."""
        result: Verification = self._cached(
            snap,
            "verification",
            lambda: verify_contracts(
                self.rpc,
                snap.contracts,
                reference_artifacts(recompile=False, root=self.root),
                block=snap.to_block,
            ),
        )
        return result

    def recompile_status(self) -> RecompileJob:
        with self._job_lock:
            return replace(self._job)

    def start_recompile(self, snap: Snapshot) -> RecompileJob:
        """Start a fresh compile + comparison in a thread, unless one is running."""
        with self._job_lock:
            if self._job.state == "running":
                return replace(self._job)
            self._job = RecompileJob("running", time.time(), None, snap.to_block)
        thread = threading.Thread(
            target=self._recompile, args=(snap,), name="audit-recompile", daemon=True
        )
        thread.start()
        return self.recompile_status()

    def _recompile(self, snap: Snapshot) -> None:
        try:
            reference = reference_artifacts(recompile=True, root=self.root)
            result = verify_contracts(self.rpc, snap.contracts, reference, block=snap.to_block)
        except Exception as exc:  # reported on the page; the thread must not die silently
            log.exception("recompile for the audit page failed")
            with self._job_lock:
                self._job = replace(
                    self._job, state="failed", finished_at=time.time(), error=str(exc)[:500]
                )
            return
        with self._job_lock:
            self._job = replace(self._job, state="done", finished_at=time.time(), result=result)


def daily_series(records: Sequence[Record]) -> list[dict[str, Any]]:
    """Points issued, redeemed and clawed back per UTC day, every day from the first
    to the last with any (days without activity are zero)."""
    days: defaultdict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for r in records:
        if isinstance(r, IssuanceBatch):
            slot, amount = 0, r.amount
        elif isinstance(r, Redemption):
            slot, amount = 1, r.amount
        elif isinstance(r, Clawback):
            slot, amount = 2, r.amount
        elif isinstance(r, RelayedTransfer):
            slot, amount = 3, r.amount
        else:
            continue
        days[datetime.fromtimestamp(r.time, UTC).date().isoformat()][slot] += amount
    if not days:
        return []
    first = datetime.fromisoformat(min(days)).date()
    last = datetime.fromisoformat(max(days)).date()
    series = []
    day = first
    while day <= last:
        issued, redeemed, clawed, transferred = days.get(day.isoformat(), [0, 0, 0, 0])
        series.append(
            {
                "date": day.isoformat(),
                "issued": issued,
                "redeemed": redeemed,
                "clawed_back": clawed,
                "transferred": transferred,
            }
        )
        day += timedelta(days=1)
    return series


def history_row(r: Record) -> dict[str, Any]:
    """A record for the history table: its fields (``record_dict``, ISO ``time``) and the
    block's unix ``timestamp``."""
    row = record_dict(r)
    row["timestamp"] = r.time
    return row
