"""``/v1/audit`` and ``/audit``: the auditor's view of the network, read from the chain.

Public and read-only (no API key): every figure comes from the chain through
:mod:`chain.audit`, replayed incrementally by one :class:`AuditView` per app, never
from the gateway's database. ``/audit`` is the static page that shows them.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import RedirectResponse, StreamingResponse

from chain.audit import build_report
from gateway.api.pages import PageFiles
from gateway.context import GatewayContext
from gateway.schemas import ErrorResponse
from gateway.services.audit import queries, reports
from gateway.services.audit.queries import MAX_PAGE, HistoryQuery, history_row
from gateway.services.audit.snapshot import Snapshot
from gateway.services.audit.view import AuditView

PAGE_DIR = Path(__file__).resolve().parent.parent.parent / "audit_page"

router = APIRouter(prefix="/v1/audit", tags=["audit"])
#: Bad parameters (422) and an unreachable chain (503): the only errors of these endpoints
#: (and 404 for a merchant the network does not know, where one is named).
ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorResponse} for code in (422, 503)}
MERCHANT_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (404, 422, 503)
}
page_router = APIRouter(include_in_schema=False)

_view_lock = threading.Lock()


def get_audit_view(request: Request) -> AuditView:
    """The app's audit view, created on first use (its history is cached in memory)."""
    state = request.app.state
    view: AuditView | None = getattr(state, "audit_view", None)
    if view is None:
        with _view_lock:
            view = getattr(state, "audit_view", None)
            if view is None:
                context: GatewayContext = state.context
                view = AuditView(
                    context.settings.rpc_url,
                    context.link.deployment.hub,
                    confirmations=context.settings.confirmations,
                )
                state.audit_view = view
    return view


AuditViewDep = Annotated[AuditView, Depends(get_audit_view)]


def current_snapshot(view: AuditViewDep) -> Snapshot:
    """The history up to the latest (confirmed) block, extended from the last one read."""
    return view.snapshot()


SnapshotDep = Annotated[Snapshot, Depends(current_snapshot)]

FromBlock = Annotated[int | None, Query(ge=0, description="first block of the range")]
ToBlock = Annotated[int | None, Query(ge=0, description="last block of the range")]


def _history_query(
    address: Annotated[
        str | None,
        Query(
            description="a member (or any account): records where it is member, sender, "
            "recipient, signer or account"
        ),
    ] = None,
    merchant: Annotated[int | None, Query(ge=0, description="merchant id")] = None,
    tx: Annotated[str | None, Query(description="transaction hash")] = None,
    seq: Annotated[
        int | None, Query(ge=0, description="sequence number of an issuance or clawback")
    ] = None,
    kind: Annotated[
        str | None, Query(description="record kinds, comma-separated (e.g. issuance,redemption)")
    ] = None,
    from_block: FromBlock = None,
    to_block: ToBlock = None,
    order: Annotated[str, Query(description="desc (newest first) or asc")] = "desc",
) -> HistoryQuery:
    return HistoryQuery.parse(
        address=address,
        merchant=merchant,
        tx=tx,
        seq=seq,
        kind=kind,
        from_block=from_block,
        to_block=to_block,
        order=order,
    )


HistoryQueryDep = Annotated[HistoryQuery, Depends(_history_query)]

NO_STORE = {"Cache-Control": "no-store"}


@router.get("/overview", responses=ERRORS)
def overview(view: AuditViewDep, snap: SnapshotDep, response: Response) -> dict[str, Any]:
    """Total supply, members, merchants, point value, the supply invariant's checks,
    anomalies, and points issued / redeemed / clawed back per UTC day."""
    response.headers.update(NO_STORE)
    return view.overview(snap)


@router.get("/report", responses=ERRORS)
def report(
    view: AuditViewDep,
    snap: SnapshotDep,
    response: Response,
    from_block: FromBlock = None,
) -> dict[str, Any]:
    """The whole report of ``pointsnet audit report --json`` at the audited block."""
    response.headers.update(NO_STORE)
    return build_report(snap.history(), view.state(snap), from_block, snap.to_block).to_dict()


@router.get("/history", responses=ERRORS)
def history(
    snap: SnapshotDep,
    query: HistoryQueryDep,
    response: Response,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    """Every decoded log of the network matching the filters, newest first by default."""
    response.headers.update(NO_STORE)
    count, page = queries.search(snap, query, limit=limit, offset=offset)
    return {
        "data": [history_row(r) for r in page],
        "count": count,
        "limit": limit,
        "offset": offset,
        "block": snap.to_block,
    }


@router.get("/history.csv", responses=ERRORS, response_class=StreamingResponse)
def history_csv(snap: SnapshotDep, query: HistoryQueryDep) -> Response:
    """The matching records as CSV, one row per record with every field."""
    name = f"pointsnet-history-{snap.to_block}.csv"
    return StreamingResponse(
        queries.csv_chunks(snap, query),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"', **NO_STORE},
    )


@router.get("/settlement", responses=ERRORS)
def settlement(
    view: AuditViewDep,
    snap: SnapshotDep,
    response: Response,
    from_block: FromBlock = None,
    to_block: ToBlock = None,
    since: Annotated[
        str | None, Query(description="range start, ISO date or date-time (UTC if naive)")
    ] = None,
    until: Annotated[
        str | None, Query(description="range end, ISO date (whole day) or date-time")
    ] = None,
) -> dict[str, Any]:
    """Per merchant: points issued, redeemed and clawed back in the range, each valued at
    the point value published when it happened, and the net position."""
    response.headers.update(NO_STORE)
    return reports.settlement(
        view.rpc, snap, from_block=from_block, to_block=to_block, since=since, until=until
    )


@router.get("/timeline", responses=ERRORS)
def timeline(
    snap: SnapshotDep,
    response: Response,
    from_block: FromBlock = None,
    to_block: ToBlock = None,
) -> dict[str, Any]:
    """Rule and governance changes in chain order, with when each takes effect
    (scheduled timelock calls: when executed, or not before their ready time)."""
    response.headers.update(NO_STORE)
    entries = reports.timeline(snap, from_block=from_block, to_block=to_block)
    return {"data": entries, "count": len(entries), "block": snap.to_block, "time": snap.to_time}


@router.get("/rules", responses=MERCHANT_ERRORS)
def rules(
    snap: SnapshotDep,
    response: Response,
    merchant: Annotated[int | None, Query(ge=0, description="only this merchant id")] = None,
) -> dict[str, Any]:
    """Each merchant's rule-set versions read from the texts the hub published: hash and
    canonical-form checks, when each takes effect, its status at the audited block, and
    the diff from the version before."""
    response.headers.update(NO_STORE)
    return reports.rule_history(snap, merchant)


@router.get("/verification", responses=ERRORS)
def verification(view: AuditViewDep, snap: SnapshotDep, response: Response) -> dict[str, Any]:
    """Deployed runtime code of hub, token, badges and timelock against the committed
    artifacts, and the state of the last fresh-compile check."""
    response.headers.update(NO_STORE)
    return {
        "committed": view.verification(snap).to_dict(),
        "recompile": view.recompile_status().to_dict(),
    }


@router.post("/verification/recompile", status_code=202, responses=ERRORS)
def recompile(view: AuditViewDep, snap: SnapshotDep) -> dict[str, Any]:
    """Compile ``contracts/`` afresh in the background and compare (poll
    ``GET /v1/audit/verification``); a run already in progress is not restarted."""
    return {"recompile": view.start_recompile(snap).to_dict()}


# ---------------------------------------------------------------------- the page


class AuditPageFiles(PageFiles):
    """``gateway/audit_page/`` with the page's security headers."""


def static_files() -> AuditPageFiles:
    """The audit page, to mount at ``/audit``."""
    return AuditPageFiles(directory=PAGE_DIR, html=True)


@page_router.get("/audit")
def audit_page(request: Request) -> RedirectResponse:
    """``/audit?tx=...`` -> ``/audit/?tx=...`` (the page's assets are relative to it)."""
    query = request.url.query
    return RedirectResponse("/audit/" + (f"?{query}" if query else ""), status_code=308)
