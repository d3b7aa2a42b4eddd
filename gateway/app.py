"""The FastAPI application and the background roles that run beside it.

``create_app`` builds the HTTP API on a :class:`GatewayContext`.
``start_background`` (:mod:`gateway.runtime.background`) runs the background roles as
threads: the outbox workers
(one per signer key: :mod:`gateway.runtime.lanes`) with the webhook dispatcher (role
``worker``), and the indexer (role ``indexer``); ``pointsnet serve --role
worker|indexer`` is one of them in a process of its own.  ``pointsnet serve``'s
default role ``all`` runs those two roles as child processes of the API
(:mod:`gateway.runtime.supervisor`); ``create_app(run_background=True)`` puts them in
the API's own process instead (one GIL), for tests and ``serve --in-process``.
``POST /v1/events`` requests of one API process are accepted a group to a
transaction (:mod:`gateway.api.group_commit`), those in order answered below
FastAPI's routing (:mod:`gateway.api.fast_events`).
Beside the API: ``/healthz`` (liveness), ``/readyz`` (readiness,
:mod:`gateway.runtime.health`) and ``/metrics`` (Prometheus, :mod:`gateway.runtime.metrics`).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, Header
from fastapi.responses import JSONResponse, RedirectResponse, Response

from gateway.api.errors import install_error_handlers
from gateway.api.fast_events import SingleEventFastPath
from gateway.api.group_commit import GroupCommitter
from gateway.api.limits import BodyGuard
from gateway.api.routes import (
    audit,
    badges,
    catalog,
    events,
    members,
    public,
    rewards,
    rules,
    wallet,
    wallet_page,
    webhooks,
)
from gateway.context import GatewayContext
from gateway.runtime.background import start_background
from gateway.runtime.health import ReadinessProbe
from gateway.runtime.metrics import GatewayMetrics

log = logging.getLogger("pointsnet.gateway")

WALLET_DIR = Path(__file__).resolve().parent.parent / "wallet"

DESCRIPTION = """
Merchant API of the pointsnet loyalty network.

Authenticate with `Authorization: Bearer <API key>`. Post events with an
`Idempotency-Key`: points are issued on chain exactly once. Every error has the
body `{"error": {"code", "message", "details"}}` with a stable `code`.
"""


def create_app(
    context: GatewayContext,
    *,
    run_background: bool = False,
    signer_indexes: list[int] | None = None,
) -> FastAPI:
    """The gateway's HTTP API; with ``run_background`` also its background roles as threads
    of this process for the app's lifespan (tests and ``serve --in-process``)."""

    max_group = context.settings.group_commit_max_events
    window = context.settings.group_commit_window_ms / 1000
    committer = GroupCommitter(context, max_group, window=window) if max_group > 0 else None

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        roles = start_background(context, signer_indexes=signer_indexes) if run_background else None
        try:
            yield
        finally:
            if committer is not None:
                committer.close()
            if roles is not None:
                roles.shutdown()

    app = FastAPI(
        title="pointsnet gateway",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.context = context
    app.state.group_commit = committer
    install_error_handlers(app)
    if committer is not None:  # inside BodyGuard: its size and depth checks come first
        app.add_middleware(SingleEventFastPath, committer=committer)
    app.add_middleware(BodyGuard)
    for module in (events, members, rules, rewards, webhooks, wallet, catalog, badges, public):
        app.include_router(module.router)
    app.include_router(wallet_page.router)
    app.mount("/wallet", wallet_page.static_files(), name="wallet")
    for router in (audit.router, audit.page_router):
        app.include_router(router)
    app.mount("/audit", audit.static_files(), name="audit")

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    probe = ReadinessProbe(context)
    gateway_metrics = GatewayMetrics(context, probe)

    @app.get("/readyz", tags=["ops"])
    def readyz() -> JSONResponse:
        """Readiness: database, RPC (and chain id), signer balances, worker and indexer
        lag. 200 when every check passes, 503 naming the failing ones otherwise."""
        report = probe.check()
        return JSONResponse(status_code=200 if report["ready"] else 503, content=report)

    @app.get("/metrics", tags=["ops"], response_class=Response)
    def metrics(authorization: Annotated[str | None, Header()] = None) -> Response:
        """Prometheus metrics, computed from the database when scraped (so every
        process of a deployment reports the same figures), at most once per
        ``metrics_max_age`` seconds; with ``metrics_token`` set, only for that bearer token."""
        gateway_metrics.authorize(authorization)
        body, content_type = gateway_metrics.render()
        return Response(content=body, media_type=content_type)

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/docs")

    return app
