"""``pointsnet audit reconcile``: the gateway's database against the chain, entry by entry.

Added to the chain's ``audit`` sub-app (:mod:`chain.audit.cli`) from the gateway side:
it reads the gateway's settings and database, which the chain package knows nothing
of. Run it where the gateway runs. Exit codes as the other audit commands: 0 no
difference, 1 a difference, 2 the comparison could not run.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from sqlalchemy.exc import SQLAlchemyError

from chain.audit.cli import RpcUrlOption, audit_app, console, could_not_run
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
