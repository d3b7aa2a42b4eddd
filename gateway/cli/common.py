"""What the gateway's commands share: a migrated context, and how a failure is reported."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chain.cli import err
from gateway.settings import Settings, get_settings

if TYPE_CHECKING:
    from gateway.context import GatewayContext


def open_context(settings: Settings | None = None) -> GatewayContext:
    """Context for CLI commands: database migrated, deployment loaded."""
    from gateway.context import GatewayContext  # web3 and alembic: not for every command
    from gateway.migrate import upgrade

    settings = settings or get_settings()
    context = GatewayContext.open(settings)
    upgrade(context.engine)
    return context


def fail(exc: Exception) -> int:
    """Print ``exc`` as an error; the exit code to leave with."""
    err.print(f"[red]error:[/red] {exc}")
    return 1
