"""The fast path of ``POST /v1/events`` (gateway.api.fast_events) and its hand-over to the route.

A request in order is answered by the fast path alone (the route's own way to the
committer is broken here to prove it); everything else reaches the FastAPI route,
which answers as it always did.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from gateway_kit import Gateway, purchase

from gateway.api.group_commit import GroupCommitter, NotAuthenticated
from gateway.errors import IdempotencyConflict
from gateway.models import Merchant
from gateway.schemas import EventCreate
from gateway.services import events as event_service


def post(gateway: Gateway, body: Any, headers: dict[str, str]) -> Any:
    return gateway.client.post("/v1/events", json=body, headers=headers)


@pytest.fixture
def route_broken(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The route's call into the committer fails; the keys it was called with are listed."""
    called: list[str] = []

    async def broken(self: GroupCommitter, merchant: Merchant, key: str, body: EventCreate) -> Any:
        called.append(key)
        raise RuntimeError("the route was used")

    monkeypatch.setattr(GroupCommitter, "submit", broken)
    return called


def test_a_request_in_order_is_answered_by_the_fast_path(
    gateway: Gateway, route_broken: list[str]
) -> None:
    key = uuid.uuid4().hex
    body = purchase(f"fp-{key[:6]}", "FP-1")
    first = post(gateway, body, gateway.headers(0, key))
    again = post(gateway, body, gateway.headers(0, key))
    assert route_broken == []
    assert first.status_code == again.status_code == 202, first.text
    assert first.json() == again.json()
    assert first.json()["idempotency_key"] == key
    assert first.headers["content-type"] == "application/json"
    assert int(first.headers["content-length"]) == len(first.content)


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        (lambda h, b: h.update(Authorization="Bearer pk_unknown"), 401, "unauthorized"),
        (lambda h, b: h.update(Authorization="Basic abc"), 401, "unauthorized"),
        (lambda h, b: h.pop("Idempotency-Key"), 422, "invalid_request"),
        (lambda h, b: h.update({"Idempotency-Key": "k" * 256}), 422, "invalid_request"),
        (lambda h, b: b.update(type="teleport"), 422, "invalid_request"),
        (lambda h, b: b["order"].update(amount=12.5), 422, "invalid_request"),
    ],
)
def test_a_request_out_of_order_is_answered_by_the_route(
    gateway: Gateway, route_broken: list[str], change: Any, status: int, code: str
) -> None:
    headers = gateway.headers(0)
    body = purchase("fp-bad", "FP-BAD")
    change(headers, body)
    response = post(gateway, body, headers)
    assert (response.status_code, response.json()["error"]["code"]) == (status, code)
    assert route_broken == []  # refused before the route's committer call


def test_a_failure_without_a_stored_answer_is_retried_by_the_route(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fast path's submission loses (409, nothing stored): the route submits again."""
    seen: list[str] = []
    real = event_service.submit_many

    def first_time_conflict(ctx: Any, merchant: Merchant, items: list[Any]) -> Any:
        keys = [key for key, _ in items]
        if not set(keys) & set(seen):
            seen.extend(keys)
            raise IdempotencyConflict("Idempotency-Key contention; retry")
        return real(ctx, merchant, items)

    committer = gateway.client.app.state.group_commit  # type: ignore[attr-defined]
    monkeypatch.setattr(committer, "_submit_many", first_time_conflict)
    key = uuid.uuid4().hex
    response = post(gateway, purchase(f"fp-{key[:6]}", "FP-2"), gateway.headers(0, key))
    assert response.status_code == 202, response.text
    assert seen == [key]


def test_keys_are_checked_one_by_one_within_a_group(gateway: Gateway) -> None:
    committer = GroupCommitter(gateway.context)
    good = gateway.merchants[1].api_key
    run = uuid.uuid4().hex[:8]

    def event(n: int) -> EventCreate:
        return EventCreate.model_validate(purchase(f"k-{n}-{run}", f"K{n}", currency="JPY"))

    async def main() -> list[Any]:
        sends = [
            committer.submit_with_api_key(good, f"k1-{run}", event(1)),
            committer.submit_with_api_key("pk_nobody", f"k2-{run}", event(2)),
            committer.submit_with_api_key(good + "x", f"k3-{run}", event(3)),
            committer.submit_with_api_key(good, f"k4-{run}", event(4)),
        ]
        return list(await asyncio.gather(*sends, return_exceptions=True))

    try:
        answers = asyncio.run(main())
    finally:
        committer.close()
    assert isinstance(answers[1], NotAuthenticated) and isinstance(answers[2], NotAuthenticated)
    for answer, n in ((answers[0], 1), (answers[3], 4)):
        status, body = answer
        assert status == 202 and body["customer_id"] == f"k-{n}-{run}"
