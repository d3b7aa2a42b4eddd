"""The background roles as threads: the outbox workers with the webhook dispatcher (role
``worker``) and the indexer (role ``indexer``).

- :func:`start_background` starts them on a :class:`~gateway.context.GatewayContext`:
  beside the API (``create_app(run_background=True)``, ``serve --in-process``) or in a
  process of their own;
- :func:`start_role` is what ``pointsnet serve --role worker|indexer`` runs: it opens
  only what its role uses. The indexer needs the settings, the database and the hub's
  address, so its process loads neither web3 nor the signing keys (a third of its
  memory); the worker opens a full context. Neither loads the HTTP API.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from chain.deployment import check_chain_id, load_deployment
from chain.jsonrpc import Rpc
from gateway.db import make_engine, make_session_factory
from gateway.indexer import Indexer
from gateway.settings import Settings

if TYPE_CHECKING:
    from gateway.context import GatewayContext


class BackgroundRoles:
    """Threads running the worker loops until stopped."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []

    def start(self, name: str, target: Callable[[threading.Event], None]) -> None:
        thread = threading.Thread(target=target, args=(self.stop,), name=name, daemon=True)
        thread.start()
        self.threads.append(thread)

    def shutdown(self, timeout: float = 10.0) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout)


def start_background(
    context: GatewayContext,
    roles_wanted: tuple[str, ...] = ("worker", "indexer"),
    signer_indexes: list[int] | None = None,
) -> BackgroundRoles:
    """Start the background threads: an outbox worker per signer key (all keys of the
    pool, or those of ``signer_indexes``) with the webhook dispatcher (role "worker")
    and the indexer (role "indexer")."""
    roles = BackgroundRoles()
    if "worker" in roles_wanted:
        _start_worker(roles, context, signer_indexes)
    if "indexer" in roles_wanted:
        _start_indexer(roles, context.settings, context.link.deployment.hub, context.sessions)
    return roles


def start_role(
    settings: Settings, role: str, signer_indexes: list[int] | None = None, *, migrate: bool
) -> BackgroundRoles:
    """Role ``worker`` or ``indexer`` as threads of this process, on a database that is
    first migrated if ``migrate`` (a supervised child's supervisor has done it)."""
    if role == "worker":
        from gateway.context import GatewayContext  # web3 and the keys: the worker's alone

        context = GatewayContext.open(settings)
        if migrate:
            _migrate(context.engine)
        return start_background(context, ("worker",), signer_indexes)
    if role != "indexer":
        raise ValueError(f"no background role {role!r}")
    rpc = Rpc(settings.rpc_url)
    check_chain_id(rpc, settings)
    hub = load_deployment(settings, rpc).hub
    engine = make_engine(settings.effective_database_url)
    if migrate:
        _migrate(engine)
    roles = BackgroundRoles()
    _start_indexer(roles, settings, hub, make_session_factory(engine))
    return roles


def _start_worker(
    roles: BackgroundRoles, context: GatewayContext, signer_indexes: list[int] | None
) -> None:
    from gateway.runtime.lanes import SignerLane, lane_senders
    from gateway.webhooks.dispatcher import WebhookDispatcher

    for index, sender in lane_senders(context.link, signer_indexes):
        lane = SignerLane(context.link, context.engine, context.sessions, sender, index)
        roles.start(f"outbox-worker-{index}", lane.run)
    dispatcher = WebhookDispatcher(
        context.sessions,
        context.box,
        max_attempts=context.settings.webhook_max_attempts,
        allow_private=context.settings.allows_private_webhooks,
    )
    roles.start("webhook-dispatcher", dispatcher.run)


def _start_indexer(
    roles: BackgroundRoles, settings: Settings, hub: str, sessions: sessionmaker[Session]
) -> None:
    roles.start("indexer", Indexer(settings, hub, sessions).run)


def _migrate(engine: Engine) -> None:
    from gateway.migrate import upgrade  # alembic: only for a process that migrates

    upgrade(engine)
