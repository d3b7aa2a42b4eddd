"""``pointsnet`` sub-commands of the gateway: serve, merchant, member, demo.

The root command line lives in :mod:`chain.cli`; this package adds the gateway's
commands to it and is the console entry point (``pointsnet = "gateway.cli:app"``,
or ``python -m gateway.cli``). The benchmark and chaos commands live in
:mod:`gateway.cli.harness`, the one module that loads the harnesses (``bench``),
lazily, inside their command bodies.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from datetime import UTC, datetime
from typing import Annotated

import typer
import uvicorn
from rich.table import Table

from chain import devnet
from chain.cli import app, console, err
from chain.deploy import deploy
from chain.errors import ChainError
from gateway.cli import audit as _audit  # noqa: F401  (adds ``audit reconcile``)
from gateway.cli import harness
from gateway.context import GatewayContext
from gateway.db import write_in_background
from gateway.errors import GatewayError
from gateway.migrate import upgrade
from gateway.settings import Settings, get_settings

merchant_app = typer.Typer(help="Register and manage partner merchants.", no_args_is_help=True)
app.add_typer(merchant_app, name="merchant")
member_app = typer.Typer(help="Operator actions on members.", no_args_is_help=True)
app.add_typer(member_app, name="member")


def open_context(settings: Settings | None = None) -> GatewayContext:
    """Context for CLI commands: database migrated, deployment loaded."""
    settings = settings or get_settings()
    context = GatewayContext.open(settings)
    upgrade(context.engine)
    return context


# ---------------------------------------------------------------- serve


@app.command("serve")
def serve(
    role: Annotated[str, typer.Option(help="all | api | worker | indexer")] = "all",
    workers: Annotated[int, typer.Option(help="uvicorn worker processes (api role)")] = 1,
    signer_index: Annotated[
        list[int] | None,
        typer.Option(help="signer key(s) of the pool this process runs (repeat; default all)"),
    ] = None,
    in_process: Annotated[
        bool,
        typer.Option(
            "--in-process",
            help="role all: outbox workers, webhooks and indexer as threads of this process "
            "(one GIL) instead of child processes",
        ),
    ] = False,
    supervised_by: Annotated[
        int | None, typer.Option(hidden=True, help="stop when this parent process is gone")
    ] = None,
) -> None:
    """Run the gateway: API + outbox workers (one per signer key) + webhooks + indexer
    (role all: the API here, the worker and indexer roles as supervised child
    processes), or one role alone."""
    if role not in ("all", "api", "worker", "indexer"):
        raise typer.BadParameter("role must be all, api, worker or indexer")
    logging.basicConfig(
        level=logging.INFO,
        format=f"%(asctime)s {role}[%(process)d] %(name)s %(levelname)s %(message)s",
    )
    settings = get_settings()
    if role in ("worker", "indexer"):
        write_in_background()  # their SQLite writes go ahead of the API's requests
    try:
        context = open_context(settings)  # migrates the database before any child starts
    except (ChainError, GatewayError) as exc:
        raise typer.Exit(_fail(exc)) from exc
    if role in ("worker", "indexer"):
        _run_background_role(context, role, signer_index, supervised_by)
        return
    from gateway.app import create_app, start_background

    if role == "all" and not in_process:
        from gateway.runtime.supervisor import Supervisor

        # The children open their own context; this one serves the API.
        with Supervisor.for_role_all(signer_index).running():
            _run_api(context, workers)
        return
    if workers > 1:
        # The API in `workers` processes; role all --in-process keeps its background
        # roles as threads of this one.
        background = (
            start_background(context, signer_indexes=signer_index) if role == "all" else None
        )
        try:
            _run_api(context, workers)
        finally:
            if background is not None:
                background.shutdown()
        return
    application = create_app(context, run_background=role == "all", signer_indexes=signer_index)
    uvicorn.run(application, host=settings.host, port=settings.port, log_level="warning")


def _run_api(context: GatewayContext, workers: int) -> None:
    """The HTTP API in this process, or in ``workers`` uvicorn processes."""
    settings = context.settings
    if workers > 1:
        uvicorn.run(
            "gateway.asgi:app", host=settings.host, port=settings.port, workers=workers,
            log_level="warning",
        )  # fmt: skip
        return
    from gateway.app import create_app

    uvicorn.run(create_app(context), host=settings.host, port=settings.port, log_level="warning")


def _run_background_role(
    context: GatewayContext, role: str, signer_index: list[int] | None, supervised_by: int | None
) -> None:
    """Role worker or indexer in this process until SIGINT/SIGTERM (or its supervisor's end)."""
    from gateway.app import start_background

    try:
        roles = start_background(context, (role,), signer_index)
    except ChainError as exc:
        raise typer.Exit(_fail(exc)) from exc
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    if supervised_by is not None:
        from gateway.runtime.supervisor import stop_when_orphaned

        stop_when_orphaned(supervised_by, stop)
    else:
        console.print(f"{role} running; Ctrl-C stops it")
    stop.wait()
    roles.shutdown()


def _fail(exc: Exception) -> int:
    err.print(f"[red]error:[/red] {exc}")
    return 1


# ---------------------------------------------------------------- merchants


@merchant_app.command("add")
def merchant_add(
    name: str,
    currency: Annotated[str, typer.Option(help="ISO-4217 home currency")] = "USD",
    cap: Annotated[int, typer.Option(help="points mintable per cap period")] = 10**12,
    json_out: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Schedule a merchant's admission through the timelock and print its API key once.

    Without a timelock delay the merchant is admitted at once; otherwise the admission
    is pending until `pointsnet merchant admit-ready` runs after the delay."""
    from gateway.services.merchants import admit_ready, schedule_admission

    context = open_context()
    try:
        pending = schedule_admission(context, name, currency, cap)
        admitted = admit_ready(context)
    except (ChainError, GatewayError) as exc:
        raise typer.Exit(_fail(exc)) from exc
    merchant_id = next((m.id for m in admitted if m.signer_address == pending.signer), None)
    ready = datetime.fromtimestamp(pending.ready_at, UTC).isoformat()
    record = {"id": merchant_id, "name": pending.name, "currency": pending.currency,
              "api_key": pending.api_key, "signer": pending.signer,
              "status": "scheduled" if merchant_id is None else "admitted",
              "operation_id": pending.operation_id, "ready_at": ready}  # fmt: skip
    if json_out:
        sys.stdout.write(json.dumps(record) + "\n")
        return
    if merchant_id is None:
        console.print(
            f"merchant [bold]{pending.name}[/bold]: admission scheduled (timelock operation "
            f"{pending.operation_id}); it becomes executable at {ready}. Run "
            "`pointsnet merchant admit-ready` after that time to admit it."
        )
        console.print(f"API key (shown once, usable once admitted): [bold]{pending.api_key}[/bold]")
        return
    console.print(f"merchant [bold]{pending.name}[/bold] admitted with id {merchant_id}")
    console.print(f"API key (shown once): [bold]{pending.api_key}[/bold]")


@merchant_app.command("admit-ready")
def merchant_admit_ready(
    json_out: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Execute every scheduled admission whose timelock delay has passed and activate its
    merchant (safe to run again, e.g. from cron: nothing is executed twice)."""
    from gateway.services.merchants import admit_ready, pending_admissions

    context = open_context()
    try:
        admitted = admit_ready(context)
    except (ChainError, GatewayError) as exc:
        raise typer.Exit(_fail(exc)) from exc
    waiting = pending_admissions(context)
    if json_out:
        record = {
            "admitted": [{"id": m.id, "name": m.name} for m in admitted],
            "waiting": [{"name": a.name, "operation_id": a.operation_id,
                         "ready_at": datetime.fromtimestamp(a.ready_at, UTC).isoformat()}
                        for a in waiting],
        }  # fmt: skip
        sys.stdout.write(json.dumps(record) + "\n")
        return
    for merchant in admitted:
        console.print(f"merchant [bold]{merchant.name}[/bold] admitted with id {merchant.id}")
    for admission in waiting:
        ready = datetime.fromtimestamp(admission.ready_at, UTC).isoformat()
        console.print(f"merchant {admission.name}: waiting for the timelock until {ready}")
    if not admitted and not waiting:
        console.print("no admission scheduled")


@merchant_app.command("list")
def merchant_list() -> None:
    """List merchants (API keys are never shown: only their prefix)."""
    from gateway.services.merchants import list_merchants

    table = Table(title="merchants")
    for column in ("id", "name", "currency", "status", "key prefix", "rule version", "next seq"):
        table.add_column(column)
    for m in list_merchants(open_context()):
        table.add_row(str(m.id), m.name, m.currency, m.status, m.api_key_prefix + "...",
                      str(m.rule_version), str(m.next_seq))  # fmt: skip
    console.print(table)


@merchant_app.command("rotate-key")
def merchant_rotate_key(merchant_id: int) -> None:
    """Issue a new API key; the old one stops working at once."""
    from gateway.services.merchants import rotate_key

    try:
        key = rotate_key(open_context(), merchant_id)
    except GatewayError as exc:
        raise typer.Exit(_fail(exc)) from exc
    console.print(f"new API key (shown once): [bold]{key}[/bold]")


@merchant_app.command("suspend")
def merchant_suspend(merchant_id: int) -> None:
    """Suspend a merchant on chain (guardian) and in the gateway."""
    from gateway.services.merchants import suspend

    try:
        suspend(open_context(), merchant_id)
    except (ChainError, GatewayError) as exc:
        raise typer.Exit(_fail(exc)) from exc
    console.print(f"merchant {merchant_id} suspended")


# ---------------------------------------------------------------- members


def _set_frozen(merchant_id: int, customer_id: str, frozen: bool) -> None:
    from gateway.db import transaction
    from gateway.services.members import set_frozen

    context = open_context()
    try:
        with transaction(context.sessions) as session:
            member = set_frozen(session, merchant_id, customer_id, frozen)
            address = member.address
    except GatewayError as exc:
        raise typer.Exit(_fail(exc)) from exc
    console.print(f"member {address} {'frozen' if frozen else 'unfrozen'}")


@member_app.command("freeze")
def member_freeze(merchant_id: int, customer_id: str) -> None:
    """Freeze the member behind a merchant's customer: its events are refused (member_frozen)."""
    _set_frozen(merchant_id, customer_id, True)


@member_app.command("unfreeze")
def member_unfreeze(merchant_id: int, customer_id: str) -> None:
    """Lift a freeze."""
    _set_frozen(merchant_id, customer_id, False)


# ---------------------------------------------------------------- demo (make run)


@app.command("demo")
def demo(
    serve_after: Annotated[bool, typer.Option("--serve/--no-serve")] = True,
) -> None:
    """Devnet + contracts + gateway with a demo network of three partners (make run)."""
    from gateway.demo import ensure_demo

    settings = get_settings()
    if settings.is_devnet and not devnet.status(settings)["running"]:
        devnet.start_background(settings)
        console.log(f"devnet started at {settings.rpc_url}")
    try:
        deploy(settings, progress=lambda m: console.log(m))
        context = open_context(settings)
        partners = ensure_demo(context, progress=lambda m: console.log(m))
    except (ChainError, GatewayError) as exc:
        raise typer.Exit(_fail(exc)) from exc
    base = settings.base_url
    table = Table(title="pointsnet demo network")
    for column in ("id", "partner", "currency"):
        table.add_column(column)
    table.add_column("API key", overflow="fold")
    for partner in partners:
        table.add_row(str(partner["id"]), partner["name"], partner["currency"], partner["api_key"])
    console.print(table)
    console.print(f"API docs:   {base}/docs")
    console.print(f"wallet:     {base}/wallet")
    console.print(f"audit page: {base}/audit")
    console.print(f"demo keys are also in {settings.data_path / 'demo-merchants.json'}")
    if serve_after:
        serve(role="all", workers=1)


__all__ = ["app", "harness", "open_context"]
