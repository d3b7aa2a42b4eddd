"""The recomputation's result: per merchant, lines checked and passed, and every finding."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.table import Table

from gateway.services.recompute.checks import Finding
from gateway.services.recompute.disclosure import DisclosureLine


@dataclass(frozen=True)
class RecomputeReport:
    hub: str
    block: int
    lines: int
    checked: dict[int, int]  # merchant -> lines
    passed: dict[int, int]  # merchant -> lines without an error
    findings: list[Finding]

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.error]

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "hub": self.hub,
            "block": self.block,
            "lines": self.lines,
            "merchants": [
                {"merchant": m, "checked": n, "passed": self.passed.get(m, 0)}
                for m, n in sorted(self.checked.items())
            ],
            "errors": dict(Counter(f.code for f in self.errors)),
            "findings": [f.to_dict() for f in self.findings],
        }


def build_report(
    hub: str, block: int, lines: Sequence[DisclosureLine], findings: list[Finding]
) -> RecomputeReport:
    checked = Counter(line.merchant_id for line in lines)
    failed = {(f.merchant, f.ref) for f in findings if f.error and f.ref is not None}
    passed = Counter(
        line.merchant_id for line in lines if (line.merchant_id, line.ref) not in failed
    )
    return RecomputeReport(hub, block, len(lines), dict(checked), dict(passed), findings)


def render(report: RecomputeReport, out: Console) -> None:
    """Per merchant lines checked and passed, then each finding."""
    table = Table(title=f"Recomputed against hub {report.hub} at block {report.block:,}")
    for name in ("merchant", "checked", "passed"):
        table.add_column(name, justify="right")
    for merchant, checked in sorted(report.checked.items()):
        table.add_row(str(merchant), f"{checked:,}", f"{report.passed.get(merchant, 0):,}")
    out.print(table)
    if report.findings:
        table = Table(title=f"Findings ({len(report.findings)})")
        for name in ("code", "", "merchant", "seq", "ref", "line", "what"):
            table.add_column(name)
        for f in report.findings:
            table.add_row(
                f.code,
                "error" if f.error else "note",
                "" if f.merchant is None else str(f.merchant),
                "" if f.seq is None else str(f.seq),
                f.ref or "",
                "" if f.line_no is None else str(f.line_no),
                f.message,
            )
        for column in table.columns:
            column.overflow = "fold"
        out.print(table)
    if report.ok:
        out.print(f"[green]recompute ok[/green]: {report.lines:,} disclosed op(s) check out")
    else:
        counts = ", ".join(
            f"{n} {code}" for code, n in sorted(Counter(f.code for f in report.errors).items())
        )
        out.print(f"[red]recompute FAILED[/red]: {counts}")
