"""The audit report: every concern over one history, as JSON-ready dicts, and the CSV.

:func:`build_report` runs the supply invariant and the anomaly checks over the whole
history up to the state's block, settlement and the rule timeline over the range;
:func:`write_csv` writes one row per record with every field.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from typing import IO, Any, TypeVar

from chain.audit.anomalies import Anomaly, find_anomalies, mint_kind_name
from chain.audit.reader import Contracts, History
from chain.audit.settlement import SettlementReport, settlement_report
from chain.audit.supply import ChainState, SupplyReport, supply_report
from chain.audit.timeline import TimelineEntry, rule_timeline
from chain.records import (
    ADDRESS_FIELDS,
    RECORD_TYPES,
    IssuanceBatch,
    Record,
    checksum,
    iso_time,
)

#: Kinds whose record is one change of points balances. One change is stated by more
#: than one log (a relayed transfer by the token's ``Transfer`` and the hub's
#: ``PointsTransferred``, an issuance by its mint and its ``PointsIssued`` batch, a
#: redemption or clawback by the hub's event and the token's burn): the record of one of
#: those kinds stands for the change, so that summing their amounts counts every point
#: once. The role follows from the kind alone (only the hub burns, and only when it
#: redeems or claws back), so a filtered list or CSV says it right.
VALUE_CHANGE_KINDS = frozenset(
    {"issuance", "redemption", "clawback", "token_transfer", "token_mint"}
)
#: Kinds that are part of a value change recorded by another record of the same
#: transaction, and the kinds of that record (a clawback batch's input commitment
#: changes no balance: it belongs to the clawbacks before it).
VALUE_CHANGE_PARTS = {
    "points_issued": ("issuance",),
    "relayed_transfer": ("token_transfer",),
    "token_burn": ("redemption", "clawback"),
    "clawback_inputs": ("clawback",),
}

#: CSV columns: the ones every reader looks for first, then every other field.
#: ``value_change`` is ``true`` on the rows whose amounts add up (VALUE_CHANGE_KINDS).
LEADING_COLUMNS = (
    "block",
    "time",
    "tx_hash",
    "log_index",
    "contract",
    "kind",
    "value_change",
    "merchant",
    "member",
    "amount",
    "seq",
    "original_seq",
    "rule_version",
    "ref",
    "sender",
    "recipient",
)


def csv_columns() -> list[str]:
    columns = list(LEADING_COLUMNS)
    for record_type in RECORD_TYPES:
        for f in fields(record_type):
            if f.name not in columns:
                columns.append(f.name)
    return columns


def is_value_change(record: Record) -> bool:
    """True if ``record`` stands for one change of points (see VALUE_CHANGE_KINDS)."""
    return record.kind in VALUE_CHANGE_KINDS


def write_csv(records: Iterable[Record], out: IO[str]) -> int:
    """Write one CSV row per record with every field; returns the number of rows.

    The ``value_change`` column marks the rows to sum: the others are parts of one of
    them (an issuance batch, a relay notice, a burn) or change no balance at all.
    """
    columns = csv_columns()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    index = {name: i for i, name in enumerate(columns)}
    field_names: dict[type, list[tuple[int, str, bool]]] = {}
    rows = 0
    for record in records:
        layout = field_names.get(type(record))
        if layout is None:
            layout = field_names[type(record)] = [
                (index[f.name], f.name, f.name in ADDRESS_FIELDS) for f in fields(record)
            ]
        row: list[Any] = [""] * len(columns)
        for i, name, is_address in layout:
            value = getattr(record, name)
            if value is None:
                continue
            if is_address:
                value = checksum(value)
            elif isinstance(value, bool):
                value = "true" if value else "false"
            elif isinstance(value, dict | tuple | list):
                value = json.dumps(value, default=str)
            row[i] = value
        row[index["time"]] = iso_time(record.time)
        row[index["value_change"]] = "true" if is_value_change(record) else "false"
        writer.writerow(row)
        rows += 1
    return rows


@dataclass(frozen=True)
class AuditReport:
    contracts: Contracts
    from_block: int
    to_block: int
    supply: SupplyReport
    settlement: SettlementReport
    timeline: list[TimelineEntry]
    anomalies: list[Anomaly]
    record_counts: dict[str, int]
    log_count: int
    #: ``PointsIssued`` in the range per mint kind (rule, adjustment, payout, prize):
    #: batches, events, points. Only ``rule`` mints are outputs of a rule set.
    mints_by_kind: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.supply.ok and not self.anomalies

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "network": self.contracts.to_dict(),
            "range": {"from_block": self.from_block, "to_block": self.to_block},
            "supply": self.supply.to_dict(),
            "settlement": self.settlement.to_dict(),
            "timeline": [e.to_dict() for e in self.timeline],
            "anomalies": [a.to_dict() for a in self.anomalies],
            "records": {"logs": self.log_count, "by_kind": self.record_counts},
            "mints_by_kind": self.mints_by_kind,
        }


def build_report(
    history: History,
    state: ChainState,
    from_block: int | None = None,
    to_block: int | None = None,
) -> AuditReport:
    """All reports: the supply invariant and anomalies over the whole history up to the
    state's block; settlement and timeline over ``from_block .. to_block``."""
    start = history.from_block if from_block is None else from_block
    end = history.to_block if to_block is None else to_block
    records = history.records
    counts: defaultdict[str, int] = defaultdict(int)
    mints: dict[str, dict[str, int]] = {}
    for r in records:
        if start <= r.block <= end:
            counts[r.kind] += 1
            if isinstance(r, IssuanceBatch):
                row = mints.setdefault(
                    mint_kind_name(r.mint_kind), {"batches": 0, "events": 0, "points": 0}
                )
                row["batches"] += 1
                row["events"] += r.count
                row["points"] += r.amount
    return AuditReport(
        contracts=history.contracts,
        from_block=start,
        to_block=end,
        supply=supply_report(records, state),
        settlement=settlement_report(records, start, end),
        timeline=rule_timeline(records, start, end, history.to_time, history.contracts),
        anomalies=find_anomalies(records),
        record_counts=dict(sorted(counts.items())),
        log_count=history.log_count,
        mints_by_kind=dict(sorted(mints.items())),
    )


T = TypeVar("T", bound=Record)


def of_kind(records: Iterable[Record], record_type: type[T]) -> list[T]:
    """The records of one type, e.g. ``of_kind(history.records, Issuance)``."""
    return [r for r in records if type(r) is record_type]
