"""``pointsnet db upgrade``: the gateway's database brought to the newest migration.

``pointsnet serve`` runs it as a child process before it starts serving, so that alembic
and the migration scripts do not stay in the memory of the long-lived API process.
"""

from __future__ import annotations

import typer

from chain.cli import app
from gateway.db import make_engine
from gateway.settings import get_settings

db_app = typer.Typer(help="The gateway's database.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def upgrade_command() -> None:
    """Apply every migration not yet applied to the configured database (idempotent)."""
    from gateway.migrate import upgrade

    engine = make_engine(get_settings().effective_database_url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()
