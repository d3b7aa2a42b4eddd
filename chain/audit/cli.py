"""``pointsnet audit``: check the network from any RPC endpoint, trusting nothing of ours.

- ``report``: replay every log of the hub, token, badges and timelock, then print the
  supply invariant, per-merchant settlement, the rule timeline and anomalies (tables,
  ``--json``, and ``--csv FILE`` with one row per record);
- ``rules``: every merchant's rule-set history from the published texts: versions, when
  each takes effect, hash and canonical-form checks, and the diff between versions;
- ``verify``: compare the deployed runtime code with a fresh build of ``contracts/``.

(``reconcile``, which compares the gateway's database with the chain, is added to
this app by the gateway's CLI: the chain package knows nothing of the gateway.)

Only an RPC URL and the hub address are needed; both default to the settings
(``POINTSNET_RPC_URL``) and the recorded deployment. Exit codes: 0 all good, 1 the audit
found something (invariant mismatch, anomaly, rule text that fails its checks, bytecode
mismatch), 2 the audit could not
run (unreachable node, no such hub, bad arguments).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from chain.audit.reader import AuditLog, History
from chain.audit.report import AuditReport, build_report, write_csv
from chain.audit.settlement import format_money
from chain.audit.supply import chain_state_at
from chain.config import PROJECT_ROOT, get_chain_settings
from chain.errors import AuditUsageError, ChainError
from chain.jsonrpc import Rpc, block_at_time
from chain.records import checksum, iso_time, parse_time

audit_app = typer.Typer(
    help="Audit the network from the chain alone: invariants, settlement, rules, bytecode.",
    no_args_is_help=True,
)

console = Console()
err = Console(stderr=True)

#: Anomalies and timeline entries shown on a terminal (a piped or saved report, JSON
#: and CSV have them all).
MAX_ROWS = 50

#: The width a report is laid out at when it is piped or saved: wider than any line or
#: table of it, so that nothing is wrapped or cut (tables take their natural width).
UNBOUNDED_WIDTH = 100_000

RpcUrlOption = Annotated[
    str | None,
    typer.Option("--rpc-url", help="JSON-RPC endpoint (default: POINTSNET_RPC_URL)"),
]
HubOption = Annotated[
    str | None,
    typer.Option("--hub", help="the LoyaltyNetwork hub address (default: the recorded deployment)"),
]
StartBlockOption = Annotated[
    int | None,
    typer.Option(
        "--start-block",
        help="first block to scan (default: found from the timelock's and hub's first logs)",
    ),
]


def could_not_run(exc: Exception) -> typer.Exit:
    """Say why the audit could not run; exit code 2."""
    err.print(f"[red]audit could not run:[/red] {exc}", highlight=False)
    return typer.Exit(code=2)


def resolve_target(rpc_url: str | None, hub: str | None) -> tuple[Rpc, str]:
    """The endpoint and hub to audit, defaulting to the settings and the deployment file."""
    settings = get_chain_settings()
    url = rpc_url or settings.rpc_url
    if hub is None:
        from chain.deployment import load_deployment

        hub = load_deployment(settings).hub
    if not (hub.startswith("0x") and len(hub) == 42):
        raise AuditUsageError(f"--hub {hub!r} is not an address")
    return Rpc(url), hub


def _progress_bar() -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("blocks"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )


# ---------------------------------------------------------------- report


@audit_app.command("report")
def report_command(
    rpc_url: RpcUrlOption = None,
    hub: HubOption = None,
    from_block: Annotated[
        int | None, typer.Option("--from-block", help="settlement/timeline range start")
    ] = None,
    to_block: Annotated[
        int | None, typer.Option("--to-block", help="audit at this block (default: latest)")
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="range start as ISO time (instead of blocks)")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="range end as ISO time (instead of blocks)")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
    csv_file: Annotated[
        Path | None,
        typer.Option("--csv", help="write every record in the range to this CSV ('-': stdout)"),
    ] = None,
    start_block: StartBlockOption = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="no progress bar")] = False,
) -> None:
    """Replay the history and report invariant, settlement, rule timeline and anomalies."""
    try:
        if (since or until) and (from_block is not None or to_block is not None):
            raise AuditUsageError("give a block range or a time range, not both")
        rpc, hub_address = resolve_target(rpc_url, hub)
        latest = rpc.block_number()
        if until is not None:
            to_block = block_at_time(rpc, parse_time(until), latest)
            if to_block < 0:
                raise AuditUsageError(f"--until {until} is before the first block")
        end = latest if to_block is None else to_block
        if end > latest:
            raise AuditUsageError(f"--to-block {end} is beyond the latest block {latest}")
        history = _read(rpc, hub_address, end, start_block, quiet or json_out)
        if since is not None:
            from_block = block_at_time(rpc, parse_time(since) - 1, end) + 1
        start = history.from_block if from_block is None else from_block
        state = chain_state_at(rpc, history.contracts, end)
        report = build_report(history, state, start, end)
    except (ChainError, OSError) as exc:
        raise could_not_run(exc) from exc

    if csv_file is not None:
        records = history.between(start, end)
        if str(csv_file) == "-":
            write_csv(records, sys.stdout)
        else:
            with csv_file.open("w", newline="", encoding="utf-8") as out:
                rows = write_csv(records, out)
            if not json_out:
                err.print(f"wrote {rows:,} records to {csv_file}")
    if json_out:
        sys.stdout.write(json.dumps(report.to_dict(), indent=2, default=str) + "\n")
    elif csv_file is None or str(csv_file) != "-":
        render_report(report, history, report_console())
    if not report.ok:
        raise typer.Exit(code=1)


def _read(rpc: Rpc, hub: str, end: int, start_block: int | None, quiet: bool) -> History:
    if quiet:
        return AuditLog(rpc, hub, start_block=start_block).read(end)
    with _progress_bar() as bar:
        task = bar.add_task("reading logs", total=None)

        def progress(done: int, total: int, logs: int) -> None:
            bar.update(task, completed=done, total=total, description=f"{logs:,} logs")

        return AuditLog(rpc, hub, start_block=start_block, progress=progress).read(end)


def report_console() -> Console:
    """Where the report goes: the terminal at its width, or a pipe or file at full width.

    A report that is piped or saved is the auditor's record: laid out at its terminal's
    (or rich's default 80) columns it would lose the end of long cells, so off a
    terminal every line and table keeps its natural width.
    """
    if console.is_terminal:
        return console
    return Console(file=sys.stdout, width=UNBOUNDED_WIDTH, highlight=False)


def print_table(out: Console, table: Table) -> None:
    """Print ``table`` with long cells folded onto more lines, never cut with "…"."""
    for column in table.columns:
        column.overflow = "fold"
    out.print(table)


def render_report(report: AuditReport, history: History, out: Console) -> None:
    """The report as rich tables (on a terminal, at most MAX_ROWS of the long lists)."""
    limit = MAX_ROWS if out.is_terminal else None
    c = report.contracts
    out.print(
        f"[bold]pointsnet audit[/bold] hub {checksum(c.hub)} token {checksum(c.token)} "
        f"badges {checksum(c.badges)} timelock "
        f"{', '.join(checksum(a) for a in c.admins) or '(none)'}",
        highlight=False,
    )
    span = ""
    if report.settlement.from_time is not None and report.settlement.to_time is not None:
        span = (
            f" ({iso_time(report.settlement.from_time)} .. {iso_time(report.settlement.to_time)})"
        )
    out.print(
        f"blocks {report.from_block:,} .. {report.to_block:,}{span}; history from block "
        f"{history.from_block:,}: {report.log_count:,} logs, {len(history.records):,} records",
        highlight=False,
    )

    supply = report.supply
    table = Table(title=f"Supply invariant at block {supply.block:,}")
    table.add_column("check")
    table.add_column("left", justify="right")
    table.add_column("right", justify="right")
    table.add_column("")
    for check in supply.checks:
        table.add_row(
            check.name,
            f"{check.left_label} {check.left:,}",
            f"{check.right_label} {check.right:,}",
            "[green]ok[/green]" if check.ok else "[red]MISMATCH[/red]",
        )
    print_table(out, table)
    for problem in supply.mismatches():
        out.print(f"[red]mismatch:[/red] {problem}", highlight=False)

    settlement = report.settlement
    currency = settlement.currency
    table = Table(
        title=f"Settlement, blocks {settlement.from_block:,} .. {settlement.to_block:,} "
        f"(point value {format_money(settlement.point_value_micros, currency)})"
    )
    for column in ("merchant", "name", "issued", "redeemed", "clawed back", "net"):
        table.add_column(column, justify="left" if column == "name" else "right")
    table.add_column(f"net value ({currency})", justify="right")
    table.add_column("position")
    for m in settlement.merchants:
        table.add_row(
            str(m.merchant),
            m.name,
            f"{m.issued:,}",
            f"{m.redeemed:,}",
            f"{m.clawed_back:,}",
            f"{m.net:,}",
            format_money(m.net_value, currency),
            f"{m.position} {format_money(abs(m.net_value), currency)}"
            if m.net_value
            else m.position,
        )
    print_table(out, table)
    out.print(f"points outstanding from the range: {settlement.outstanding:,}", highlight=False)
    if report.mints_by_kind:
        kinds = ", ".join(
            f"{kind} {row['points']:,} points in {row['events']:,} events"
            for kind, row in report.mints_by_kind.items()
        )
        out.print(f"mints by kind in the range: {kinds}", highlight=False)

    table = Table(title=f"Rule timeline ({len(report.timeline)} changes)")
    for column in ("time", "block", "subject", "change", "ready at", "status"):
        table.add_column(column)
    timeline = report.timeline if limit is None else report.timeline[-limit:]
    for entry in timeline:
        table.add_row(
            iso_time(entry.time),
            f"{entry.block:,}",
            entry.subject,
            entry.description,
            iso_time(entry.ready_at) if entry.ready_at is not None else "",
            entry.status or "",
        )
    if len(timeline) < len(report.timeline):
        out.print(f"(timeline: the last {len(timeline)} of {len(report.timeline)} shown; --json)")
    print_table(out, table)

    if report.anomalies:
        table = Table(title=f"Anomalies ({len(report.anomalies)})")
        for column in ("kind", "block", "merchant", "what"):
            table.add_column(column)
        anomalies = report.anomalies if limit is None else report.anomalies[:limit]
        for anomaly in anomalies:
            table.add_row(
                anomaly.kind,
                f"{anomaly.block:,}" if anomaly.block is not None else "",
                str(anomaly.merchant) if anomaly.merchant is not None else "",
                anomaly.message,
            )
        print_table(out, table)
        if len(anomalies) < len(report.anomalies):
            out.print(f"(anomalies: the first {len(anomalies)} of {len(report.anomalies)}; --json)")
    else:
        out.print("no anomalies")
    if report.ok:
        out.print("[green]audit ok[/green]: invariant holds, no anomaly")
    else:
        out.print(
            f"[red]audit FAILED[/red]: {len(supply.mismatches())} invariant mismatch(es), "
            f"{len(report.anomalies)} anomaly(ies)"
        )


# ---------------------------------------------------------------- rules


@audit_app.command("rules")
def rules_command(
    rpc_url: RpcUrlOption = None,
    hub: HubOption = None,
    merchant: Annotated[
        int | None, typer.Option("--merchant", help="only this merchant id", min=0)
    ] = None,
    at: Annotated[
        str | None,
        typer.Option(
            "--at", help="status of each version at this ISO time (default: latest block)"
        ),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="print the history as JSON")] = False,
    text: Annotated[
        bool, typer.Option("--text", help="also print each version's published text")
    ] = False,
    start_block: StartBlockOption = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="no progress bar")] = False,
) -> None:
    """Each merchant's rule-set versions from the chain alone, checked, with diffs."""
    from chain.audit.rules import rules_report
    from chain.audit.rules_render import render_rules

    try:
        rpc, hub_address = resolve_target(rpc_url, hub)
        moment = parse_time(at) if at is not None else None
        history = _read(rpc, hub_address, rpc.block_number(), start_block, quiet or json_out)
        when = moment if moment is not None else history.to_time or 0
        report = rules_report(history.records, at=when, merchant=merchant)
        if merchant is not None and not report.merchants:
            raise AuditUsageError(f"merchant {merchant} is not on this network")
    except (ChainError, OSError) as exc:
        raise could_not_run(exc) from exc
    if json_out:
        sys.stdout.write(json.dumps(report.to_dict(), indent=2) + "\n")
    else:
        render_rules(report, history, report_console(), with_text=text)
    if not report.ok:
        raise typer.Exit(code=1)


# ---------------------------------------------------------------- verify


@audit_app.command("verify")
def verify_command(
    rpc_url: RpcUrlOption = None,
    hub: HubOption = None,
    ignore_metadata: Annotated[
        bool,
        typer.Option("--ignore-metadata", help="ignore the CBOR metadata tail (source hashes)"),
    ] = False,
    committed: Annotated[
        bool,
        typer.Option("--committed", help="compare with the committed artifacts, not a fresh build"),
    ] = False,
    sources: Annotated[
        Path,
        typer.Option("--sources", help="project root whose contracts/ to compile"),
    ] = PROJECT_ROOT,
    start_block: StartBlockOption = None,
    json_out: Annotated[bool, typer.Option("--json", help="print the result as JSON")] = False,
) -> None:
    """Check that the deployed runtime code is built from the sources in contracts/."""
    from chain.verify import verify

    try:
        rpc, hub_address = resolve_target(rpc_url, hub)
        if not json_out:
            err.print(
                "comparing with the committed artifacts"
                if committed
                else f"compiling {sources / 'contracts'} with the pinned solc ..."
            )
        result = verify(
            rpc,
            hub_address,
            recompile=not committed,
            root=sources,
            ignore_metadata=ignore_metadata,
            start_block=start_block,
        )
    except (ChainError, OSError, KeyError) as exc:
        raise could_not_run(exc) from exc
    if json_out:
        sys.stdout.write(json.dumps(result.to_dict(), indent=2) + "\n")
    else:
        console.print(
            f"reference: {result.reference} (solc {result.compiler}); block {result.block:,}",
            highlight=False,
        )
        for comparison in result.comparisons:
            style = "green" if comparison.ok else "red"
            for i, line in enumerate(comparison.describe()):
                console.print(f"[{style}]{line}[/{style}]" if i == 0 else line, highlight=False)
        for note in result.notes:
            console.print(f"note: {note}", highlight=False)
        console.print(
            "[green]verified[/green]" if result.ok else "[red]bytecode verification FAILED[/red]"
        )
    if not result.ok:
        raise typer.Exit(code=1)
