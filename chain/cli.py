"""The ``pointsnet`` command line: devnet, deploy, contracts, benchmarks.

Every sub-command reads its settings from ``POINTSNET_*`` variables (see
``.env.example``); nothing here prints a private key.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from chain import artifacts, devnet
from chain.audit_cli import audit_app
from chain.config import get_settings
from chain.errors import ChainError

app = typer.Typer(help="pointsnet: an interoperable loyalty points network.", no_args_is_help=True)
devnet_app = typer.Typer(help="The embedded anvil devnet.", no_args_is_help=True)
contracts_app = typer.Typer(help="Compile and check the Solidity contracts.", no_args_is_help=True)
bench_app = typer.Typer(help="Benchmarks (not tests): gas, throughput.", no_args_is_help=True)
app.add_typer(devnet_app, name="devnet")
app.add_typer(contracts_app, name="contracts")
app.add_typer(bench_app, name="bench")
app.add_typer(audit_app, name="audit")

console = Console()
err = Console(stderr=True)


def _fail(exc: Exception) -> typer.Exit:
    err.print(f"[red]error:[/red] {exc}")
    return typer.Exit(code=1)


# ---------------------------------------------------------------- devnet


@devnet_app.command("start")
def devnet_start(
    background: Annotated[bool, typer.Option(help="detach and return once it answers")] = False,
) -> None:
    """Start anvil with its state persisted under the data directory."""
    settings = get_settings()
    try:
        if background:
            pid = devnet.start_background(settings)
            console.print(f"devnet running (pid {pid}) at {settings.rpc_url}")
            return
        node = devnet.Devnet(settings).start()
    except ChainError as exc:
        raise _fail(exc) from exc
    console.print(f"devnet running at {node.url}; Ctrl-C stops it (state is kept)")
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        while node.is_running():
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        node.stop()


@devnet_app.command("stop")
def devnet_stop() -> None:
    """Stop a background devnet (its state is written on the way out)."""
    stopped = devnet.stop_background(get_settings())
    console.print("devnet stopped" if stopped else "no devnet was running")


@devnet_app.command("status")
def devnet_status() -> None:
    """Show whether the devnet runs, and its chain id and block."""
    console.print_json(json.dumps(devnet.status(get_settings())))


# ---------------------------------------------------------------- deploy


@app.command("deploy")
def deploy_command(
    force: Annotated[bool, typer.Option(help="deploy anew even if a deployment exists")] = False,
) -> None:
    """Deploy the contracts (or reuse the recorded deployment) and print their addresses."""
    from chain.deploy import deploy

    try:
        deployment = deploy(get_settings(), force=force, progress=lambda m: console.log(m))
    except ChainError as exc:
        raise _fail(exc) from exc
    table = Table(title=f"pointsnet on chain {deployment.chain_id}")
    table.add_column("contract")
    table.add_column("address")
    for name in ("hub", "token", "badges", "timelock"):
        table.add_row(name, getattr(deployment, name))
    console.print(table)


@app.command("up")
def up() -> None:
    """Start the devnet in the background if needed, deploy if needed, print addresses."""
    settings = get_settings()
    if settings.is_devnet and not devnet.status(settings)["running"]:
        try:
            devnet.start_background(settings)
        except ChainError as exc:
            raise _fail(exc) from exc
    deploy_command(force=False)


# ---------------------------------------------------------------- contracts


@contracts_app.command("build")
def contracts_build() -> None:
    """Compile contracts/ and write the committed artifacts."""
    try:
        written = artifacts.build()
    except ChainError as exc:
        raise _fail(exc) from exc
    for path in written:
        console.print(f"wrote {path}")


@contracts_app.command("check")
def contracts_check() -> None:
    """Rebuild in a temporary directory and fail on any difference with the committed artifacts."""
    try:
        differences = artifacts.check()
    except ChainError as exc:
        raise _fail(exc) from exc
    if differences:
        for diff in differences:
            err.print(diff, markup=False, highlight=False)
        err.print(
            f"[red]{len(differences)} artifact(s) differ[/red]: run `pointsnet contracts build`"
        )
        raise typer.Exit(code=1)
    console.print("artifacts match the sources")


# ---------------------------------------------------------------- bench


@bench_app.command("gas")
def bench_gas(
    json_out: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
) -> None:
    """Gas per operation, beside a plain ERC-20 mint per event, on a fresh devnet."""
    from chain.gasbench import render_table, run_gas_bench

    rows = run_gas_bench(progress=None if json_out else console)
    if json_out:
        sys.stdout.write(json.dumps([row.__dict__ for row in rows], indent=2) + "\n")
    else:
        console.print(render_table(rows))
