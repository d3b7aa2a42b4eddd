"""``pointsnet audit rules`` on a terminal: per merchant a table of versions, then each
version's checks and its diff from the version before (see :mod:`chain.audit.rules`)."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from chain.audit.reader import History
from chain.audit.rules import PROBLEMS, RulesReport, RuleVersion
from chain.records import checksum, iso_time

_STATUS_STYLE = {"in_effect": "green", "pending": "yellow", "superseded": "dim"}
_OP_STYLE = {"+": "green", "-": "red", "~": "yellow"}


def _status(version: RuleVersion) -> str:
    style = _STATUS_STYLE.get(version.status, "")
    label = version.status.replace("_", " ")
    return f"[{style}]{label}[/{style}]" if style else label


def _checks(version: RuleVersion) -> str:
    if not version.problems:
        return "[green]ok[/green]"
    return "[red]" + ", ".join(version.problems) + "[/red]"


def render_rules(report: RulesReport, history: History, out: Console, *, with_text: bool) -> None:
    """The rule history as rich tables and diff lines."""
    notice = report.notice_seconds
    out.print(
        f"[bold]pointsnet audit rules[/bold] hub {checksum(history.contracts.hub)} at "
        f"{iso_time(report.at)} (block {history.to_block:,}); rule-change notice "
        + (f"{notice:,}s" if notice is not None else "not published"),
        highlight=False,
    )
    for merchant in report.merchants:
        title = f"Merchant {merchant.merchant} {merchant.name!r}: {len(merchant.versions)} versions"
        table = Table(title=escape(title))
        for name in ("version", "published", "block", "takes effect", "superseded", "status"):
            table.add_column(name, justify="right" if name in ("version", "block") else "left")
        table.add_column("issued points (events)", justify="right")
        table.add_column("hash")
        table.add_column("checks")
        for v in merchant.versions:
            p = v.published
            table.add_row(
                f"v{p.version}",
                iso_time(p.time),
                f"{p.block:,}",
                iso_time(p.effective_at),
                iso_time(v.superseded_at) if v.superseded_at is not None else "",
                _status(v),
                f"{v.issued.points:,} ({v.issued.events:,})",
                p.hash,
                _checks(v),
            )
        for column in table.columns:
            column.overflow = "fold"
        out.print(table)
        for v in merchant.versions:
            for code in v.problems:
                out.print(f"[red]v{v.version} {code}:[/red] {PROBLEMS[code]}", highlight=False)
            if v.diff is not None:
                out.print(f"[bold]v{v.version - 1} → v{v.version}[/bold]", highlight=False)
                if not v.diff:
                    out.print("  (no change in the rules' content)")
                for line in v.diff:
                    style = _OP_STYLE[line.op]
                    out.print(f"  [{style}]{escape(line.text)}[/{style}]", highlight=False)
            if with_text:
                out.print(f"[bold]v{v.version} text[/bold]", highlight=False)
                out.print(escape(v.text) if v.text is not None else "(not UTF-8)", highlight=False)
    if not report.merchants:
        out.print("no merchant on this network")
    problems = report.problems()
    if problems:
        out.print(f"[red]rules audit FAILED[/red]: {len(problems)} problem(s)")
    else:
        out.print(
            "[green]rules ok[/green]: every published text hashes to its hash and is canonical"
        )
