"""The reconciliation report as rich tables (``pointsnet audit reconcile``)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from chain.audit import (
    checksum,
)
from gateway.services.reconcile.report import TOTAL_FIELDS, ReconcileReport


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
