"""What the gateway's commands share: a migrated context, and how a failure is reported."""

from __future__ import annotations

from chain.cli import err
from gateway.context import GatewayContext
from gateway.migrate import upgrade
from gateway.settings import Settings, get_settings


def open_context(settings: Settings | None = None) -> GatewayContext:
    """Context for CLI commands: database migrated, deployment loaded."""
    settings = settings or get_settings()
    context = GatewayContext.open(settings)
    upgrade(context.engine)
    return context


def fail(exc: Exception) -> int:
    """Print ``exc`` as an error; the exit code to leave with."""
    err.print(f"[red]error:[/red] {exc}")
    return 1
