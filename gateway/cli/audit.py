"""``pointsnet audit reconcile`` and ``recompute``, added from the gateway side.

Both are added to the chain's ``audit`` sub-app (:mod:`chain.audit.cli`) here because
they use the gateway's code, which the chain package knows nothing of:

- ``reconcile`` reads the gateway's settings and database and compares them with the
  chain, entry by entry (run it where the gateway runs);
- ``recompute`` needs no gateway settings or database: an RPC endpoint, the hub and a
  disclosure file; it runs the rules engine on each disclosed input under the rules the
  hub published and compares with the chain (:mod:`gateway.services.recompute`).

Exit codes as the other audit commands: 0 no difference, 1 a difference, 2 the
comparison could not run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.exc import SQLAlchemyError

from chain.audit.cli import (
    HubOption,
    RpcUrlOption,
    audit_app,
    console,
    could_not_run,
    report_console,
    resolve_target,
)
from chain.errors import ChainError
from gateway.errors import GatewayError
from gateway.settings import get_settings


@audit_app.command("reconcile")
def reconcile_command(
    rpc_url: RpcUrlOption = None,
    to_block: Annotated[
        int | None, typer.Option("--to-block", help="compare at this block (default: latest)")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
) -> None:
    """Compare the gateway's database with the chain, entry by entry; exit 1 on any difference."""
    from gateway.context import GatewayContext
    from gateway.services.reconcile import reconcile, render  # the comparer loads only when it runs

    try:
        context = GatewayContext.open(get_settings())
        try:
            report = reconcile(context, rpc_url=rpc_url, to_block=to_block)
        finally:
            context.engine.dispose()
    except (ChainError, GatewayError, SQLAlchemyError, OSError) as exc:
        raise could_not_run(exc) from exc
    if json_out:
        sys.stdout.write(json.dumps(report.to_dict(), indent=2, default=str) + "\n")
    else:
        render(report, console)
    if not report.ok:
        raise typer.Exit(code=1)


@audit_app.command("recompute")
def recompute_command(
    disclosure: Annotated[
        Path,
        typer.Option("--disclosure", help="disclosure lines (a merchant's export, a member's)"),
    ],
    rpc_url: RpcUrlOption = None,
    hub: HubOption = None,
    require_all: Annotated[
        bool,
        typer.Option("--require-all", help="every rule issuance of the merchants needs a line"),
    ] = False,
    fx_table: Annotated[
        Path | None,
        typer.Option(
            "--fx-table",
            help="the FX rates you trust (the gateway's FxTable JSON): an input converted "
            "at another rate is named fx_rate_differs (a notice)",
        ),
    ] = None,
    strict_fx: Annotated[
        bool, typer.Option("--strict-fx", help="fx_rate_differs is an error (exit 1)")
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="print the result as JSON")] = False,
) -> None:
    """Check each disclosed issuance against the chain: committed, version in effect, and
    the engine on its input under the published rules yields what was minted.  Inputs are
    recomputed at the FX rate they carry; ``--fx-table`` compares that rate with yours."""
    from gateway.services.recompute import build_report, check_lines, parse_disclosures
    from gateway.services.recompute.chain import read_facts
    from gateway.services.recompute.fx import FxTableError, load_fx_table
    from gateway.services.recompute.report import render

    if strict_fx and fx_table is None:
        raise typer.BadParameter("--strict-fx needs --fx-table", param_hint="--strict-fx")
    try:
        trusted = load_fx_table(fx_table) if fx_table is not None else None
        rpc, hub_address = resolve_target(rpc_url, hub)
        with disclosure.open(encoding="utf-8") as f:
            lines, bad = parse_disclosures(f)
        blocks = [_accepted_block(line.input) for line in lines if line.input is not None]
        facts = read_facts(rpc, hub_address, [b for b in blocks if b is not None])
    except (ChainError, FxTableError, OSError) as exc:
        raise could_not_run(exc) from exc
    findings = check_lines(
        lines, bad, facts, require_all=require_all, fx=trusted, strict_fx=strict_fx
    )
    report = build_report(facts.hub, facts.to_block, lines, findings)
    if json_out:
        sys.stdout.write(json.dumps(report.to_dict(), indent=2) + "\n")
    else:
        render(report, report_console())
    if not report.ok:
        raise typer.Exit(code=1)


def _accepted_block(text: str) -> int | None:
    """The block an input names (read loosely: the checks decode it strictly)."""
    try:
        value = json.loads(text).get("accepted_block")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, int) else None
