"""``/v1/events``: merchants post business events; points are issued exactly once."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

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
from gateway.services import events as event_service

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
