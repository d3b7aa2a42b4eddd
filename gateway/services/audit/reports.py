"""The audit page's reports on a snapshot, each a function of the chain alone.

- overview: supply invariant, anomalies, members, merchants, points per day;
- settlement per merchant for a block or time range;
- the rule timeline, each change with the time it takes effect;
- each merchant's rule-set history from the texts published on chain, with diffs."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from chain.audit import (
    ZERO_ADDRESS,
    ChainState,
    Clawback,
    Issuance,
    IssuanceBatch,
    MerchantChange,
    Record,
    Redemption,
    RelayedTransfer,
    Rpc,
    TimelockCall,
    TimelockCancel,
    TokenMovement,
    block_at_time,
    checksum,
    find_anomalies,
    format_money,
    iso_time,
    rule_timeline,
    rules_report,
    settlement_report,
    supply_report,
)
from gateway.errors import InvalidRequest, NotFound
from gateway.services.audit.queries import parse_time
from gateway.services.audit.snapshot import Snapshot


def overview(snap: Snapshot, state: ChainState, confirmations: int) -> dict[str, Any]:
    """The overview page: supply invariant, anomalies, members, merchants, daily series."""
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
        "confirmations": confirmations,
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


def settlement(
    rpc: Rpc,
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
        to_block = block_at_time(rpc, moment, snap.to_block)
        if to_block < snap.from_block:
            raise InvalidRequest(f"until {until} is before the network's history", until=until)
    start = snap.from_block if from_block is None else from_block
    end = snap.to_block if to_block is None else to_block
    if since:
        moment = parse_time(since)
        start = block_at_time(rpc, moment - 1, end) + 1
    if end > snap.to_block:
        raise InvalidRequest(
            f"to_block {end} is beyond the audited block {snap.to_block}",
            to_block=end,
            audited_block=snap.to_block,
        )
    if start > end:
        raise InvalidRequest("the range is empty (from after to)", from_block=start, to_block=end)
    report = settlement_report(snap.records, start, end).to_dict()
    report["audited_block"] = snap.to_block
    return report


def timeline(
    snap: Snapshot, *, from_block: int | None = None, to_block: int | None = None
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
        elif entry.kind == "rule_set_published" and entry.ready_at is not None:
            effect = entry.ready_at
            note = "pending: not before this time" if effect > snap.to_time else "in effect"
        row["takes_effect"] = iso_time(effect) if effect is not None else None
        row["effect"] = note
        rows.append(row)
    return rows


def rule_history(snap: Snapshot, merchant: int | None = None) -> dict[str, Any]:
    """Every merchant's (or one merchant's) rule-set versions at the audited block: each
    version's text, hash check, canonical check, time of effect, status and the diff from
    the version before (:mod:`chain.audit.rules`)."""
    report = rules_report(snap.records, at=snap.to_time, merchant=merchant)
    if merchant is not None and not report.merchants:
        raise NotFound(f"merchant {merchant} is not on this network", merchant_id=merchant)
    return {"block": snap.to_block, "time": iso_time(snap.to_time), **report.to_dict()}


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
