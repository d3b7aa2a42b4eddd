"""``/v1/events``: merchants post business events; points are issued exactly once."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse

from gateway.api.deps import ContextDep, CurrentMerchant, SessionDep
from gateway.api.errors import invalid_request
from gateway.api.group_commit import GroupCommitter
from gateway.api.responses import FastJSONResponse
from gateway.schemas import (
    RESOURCE_ID_PATTERN,
    BatchItemIn,
    ErrorResponse,
    EventBatchCreate,
    EventBatchPublic,
    EventCreate,
    EventPublic,
    InvalidBatchItem,
)
from gateway.services import disclosures
from gateway.services import events as event_service
from gateway.timeutil import aware

router = APIRouter(prefix="/v1/events", tags=["events"])

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (400, 401, 403, 404, 409, 422, 429)
}
EventId = Annotated[str, Path(pattern=RESOURCE_ID_PATTERN, description="the event's id")]
IdempotencyKey = Annotated[
    str,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        description="unique per event; a retry with the same key returns the first answer",
    ),
]


@router.post("", status_code=202, response_model=EventPublic, responses=ERRORS)
async def post_event(
    request: Request,
    body: EventCreate,
    merchant: CurrentMerchant,
    context: ContextDep,
    idempotency_key: IdempotencyKey,
) -> JSONResponse:
    """Accept one event. Same key + same body → the stored answer (a request racing the
    first one waits for it and gets its answer); same key + another body → 422
    ``idempotency_key_reused``.

    Concurrent requests of this process are accepted together, a transaction for
    many (:mod:`gateway.api.group_commit`), each answered on its own.  A request in
    order is answered by :mod:`gateway.api.fast_events` before it gets here; this
    route answers the others (and every request when group commit is off).
    """
    committer: GroupCommitter | None = getattr(request.app.state, "group_commit", None)
    if committer is None:  # group commit off: a transaction of its own, in a thread
        status, answer = await run_in_threadpool(
            event_service.submit, context, merchant, idempotency_key, body
        )
    else:
        # A refusal stored under the key is an answer like any other: sent as stored.
        status, answer = await committer.submit(merchant, idempotency_key, body)
    return FastJSONResponse(status_code=status, content=answer)


@router.post("/batch", response_model=EventBatchPublic, responses=ERRORS)
def post_events_batch(
    body: EventBatchCreate, merchant: CurrentMerchant, context: ContextDep
) -> JSONResponse:
    """Up to 1,000 events, each with its own idempotency key and its own result.

    They are accepted a few dozen to a database transaction, each decided on its
    own: a refused item is answered on its own and does not affect the others.
    An item that fails the schema is answered ``422 invalid_request`` (the error
    body a single event gets, ``loc`` from the request body) and nothing is
    stored under its key; the valid items are accepted.  A body that is not an
    object with 1 to 1,000 ``events`` is refused as a whole.
    """
    valid = [item for item in body.events if isinstance(item, BatchItemIn)]
    answers = iter(
        event_service.submit_many(
            context, merchant, [(item.idempotency_key, item.event) for item in valid]
        )
        if valid
        else []
    )
    # The answers are already EventPublic / error bodies in JSON form (as stored under
    # their keys): sent as they are, not validated and dumped once more per item.
    results: list[dict[str, Any]] = []
    for index, item in enumerate(body.events):
        if isinstance(item, InvalidBatchItem):
            error = invalid_request(item.errors, ("body", "events", index))
            results.append(_result(item.idempotency_key, 422, error))
        else:
            status, answer = next(answers)
            results.append(_result(item.idempotency_key, status, answer))
    return FastJSONResponse(content={"data": results, "count": len(results)})


def _result(key: str | None, status: int, answer: dict[str, Any]) -> dict[str, Any]:
    """One item of a batch's answer (:class:`gateway.schemas.BatchItemResult`)."""
    return {
        "idempotency_key": key,
        "status_code": status,
        "event": answer if status < 400 else None,
        "error": answer["error"] if status >= 400 else None,
    }


@router.get(
    "/export",
    response_class=StreamingResponse,
    responses={**ERRORS, 200: {"content": {disclosures.MEDIA_TYPE: {}}}},
)
def export_disclosures(
    merchant: CurrentMerchant,
    context: ContextDep,
    since: Annotated[
        datetime | None, Query(description="events accepted at or after this instant")
    ] = None,
    until: Annotated[
        datetime | None, Query(description="events accepted before this instant")
    ] = None,
    after: Annotated[
        int,
        Query(
            ge=0, le=2**31 - 1, description="cursor: only ops with a larger id (a line's `op_id`)"
        ),
    ] = 0,
) -> StreamingResponse:
    """The merchant's disclosure lines (format 1, :mod:`gateway.services.disclosures`), one
    JSON object per line, oldest op first: each confirmed issuance and clawback with its
    canonical input, the input's hash, its Merkle path and the root its batch logged, for
    ``pointsnet audit recompute``.  Streamed, read a page of ops at a time; a client that
    lost the stream resumes with ``after`` = the last line's ``op_id``."""
    scope = disclosures.Scope(
        merchant_id=merchant.id,
        since=aware(since) if since is not None else None,
        until=aware(until) if until is not None else None,
        after=after,
    )
    records = disclosures.lines(context.sessions, disclosures.Network.of(context), scope)
    return StreamingResponse(disclosures.ndjson(records), media_type=disclosures.MEDIA_TYPE)


@router.get("/{event_id}", response_model=EventPublic, responses=ERRORS)
def get_event(event_id: EventId, merchant: CurrentMerchant, session: SessionDep) -> EventPublic:
    """An event's status: accepted → submitted → confirmed (or held, failed with a reason)."""
    return event_service.get_event(session, merchant.id, event_id)


@router.post("/{event_id}/release", response_model=EventPublic, responses=ERRORS)
def release_event(event_id: EventId, merchant: CurrentMerchant, context: ContextDep) -> EventPublic:
    """Release an event held for review: its points go to the outbox."""
    return EventPublic.model_validate(event_service.release(context, merchant, event_id, True))


@router.post("/{event_id}/reject", response_model=EventPublic, responses=ERRORS)
def reject_event(event_id: EventId, merchant: CurrentMerchant, context: ContextDep) -> EventPublic:
    """Reject an event held for review: nothing is issued."""
    return EventPublic.model_validate(event_service.release(context, merchant, event_id, False))
