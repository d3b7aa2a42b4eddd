"""``pointsnet serve`` (the gateway's process roles) and ``pointsnet demo`` (make run)."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading
from typing import TYPE_CHECKING, Annotated

import typer

from chain.cli import app, console
from chain.errors import ChainError
from gateway.cli.common import fail
from gateway.db import write_in_background
from gateway.errors import GatewayError
from gateway.runtime.background import BackgroundRoles, start_background, start_role
from gateway.settings import Settings, get_settings

if TYPE_CHECKING:
    from gateway.context import GatewayContext

# Roles worker and indexer import only what they run: the API (FastAPI, uvicorn), the
# deployer and the migrations (alembic) are imported below where they are used, and
# tests/gateway/test_memory_roles.py checks what each role's process loads.

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
        try:  # a supervised child's database was migrated before it started
            roles = start_role(settings, role, signer_index, migrate=supervised_by is None)
        except (ChainError, GatewayError) as exc:
            raise typer.Exit(fail(exc)) from exc
        _run_until_stopped(roles, role, supervised_by)
        return
    context = _open_api_context(settings)  # migrates the database before any child starts
    from gateway.app import create_app

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
    import uvicorn

    application = create_app(context, run_background=role == "all", signer_indexes=signer_index)
    uvicorn.run(application, host=settings.host, port=settings.port, log_level="warning")


def _open_api_context(settings: Settings) -> GatewayContext:
    """The API process's context, its database migrated by ``pointsnet db upgrade`` in a
    child process: alembic and the migration scripts would stay in this long-lived
    process's memory (7-10 MiB measured) for a step done once."""
    from gateway.context import GatewayContext

    try:
        context = GatewayContext.open(settings)
    except (ChainError, GatewayError) as exc:
        raise typer.Exit(fail(exc)) from exc
    upgrade = [sys.executable, "-m", "gateway.cli", "db", "upgrade"]
    migration = subprocess.run(upgrade, stdin=subprocess.DEVNULL, check=False)
    if migration.returncode != 0:
        raise typer.Exit(migration.returncode)
    return context


def _run_api(context: GatewayContext, workers: int) -> None:
    """The HTTP API in this process, or in ``workers`` uvicorn processes."""
    import uvicorn

    settings = context.settings
    if workers > 1:
        uvicorn.run(
            "gateway.asgi:app", host=settings.host, port=settings.port, workers=workers,
            log_level="warning",
        )  # fmt: skip
        return
    from gateway.app import create_app

    uvicorn.run(create_app(context), host=settings.host, port=settings.port, log_level="warning")


def _run_until_stopped(roles: BackgroundRoles, role: str, supervised_by: int | None) -> None:
    """Role worker or indexer in this process until SIGINT/SIGTERM (or its supervisor's end)."""
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


# ---------------------------------------------------------------- demo (make run)


@app.command("demo")
def demo(
    serve_after: Annotated[bool, typer.Option("--serve/--no-serve")] = True,
) -> None:
    """Devnet + contracts + gateway with a demo network of three partners and their
    traffic, every kind of event settled on chain (make run)."""
    from rich.table import Table

    from chain import devnet
    from chain.deploy import deploy
    from gateway.cli.demo import ensure_demo
    from gateway.cli.demo_traffic import run_demo_traffic

    settings = get_settings()
    if settings.is_devnet and not devnet.status(settings)["running"]:
        devnet.start_background(settings)
        console.log(f"devnet started at {settings.rpc_url}")
    try:
        deploy(settings, progress=lambda m: console.log(m))
        context = _open_api_context(settings)
        partners = ensure_demo(context, progress=lambda m: console.log(m))
        traffic = run_demo_traffic(context, partners, progress=lambda m: console.log(m))
    except (ChainError, GatewayError, TimeoutError) as exc:
        raise typer.Exit(fail(exc)) from exc
    base = settings.base_url
    table = Table(title="pointsnet demo network")
    for column in ("id", "partner", "currency"):
        table.add_column(column)
    table.add_column("API key", overflow="fold")
    for partner in partners:
        table.add_row(str(partner["id"]), partner["name"], partner["currency"], partner["api_key"])
    console.print(table)
    console.print(f"demo traffic: {traffic.summary()}")
    console.print(f"API docs:   {base}/docs")
    console.print(f"wallet:     {base}/wallet")
    console.print(f"audit page: {base}/audit")
    console.print(f"demo keys are also in {settings.data_path / 'demo-merchants.json'}")
    if serve_after:
        serve(role="all", workers=1)
