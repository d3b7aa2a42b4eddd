"""Group commit (gateway.api.group_commit): requests accepted together, each answered on its own.

The committer is held on a first event (its ``submit_many`` waits on a gate) so the
requests sent meanwhile are certain to go in one group, then released.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Awaitable
from typing import Any

import pytest
from gateway_kit import Gateway, purchase
from sqlalchemy import func, select

from gateway.api.group_commit import Answer, GroupCommitter
from gateway.context import GatewayContext
from gateway.errors import GatewayError
from gateway.models import Event, IdempotencyRecord, Merchant
from gateway.schemas import EventCreate
from gateway.services import events as event_service

Item = tuple[Merchant, str, dict[str, Any]]


class Gated:
    """``submit_many`` that records each call's keys; its first call waits for ``release``.

    ``fail_groups``: a call with more than one event raises before writing anything;
    ``fail_keys``: a call containing one of these keys raises.
    """

    def __init__(self, *, fail_groups: bool = False, fail_keys: frozenset[str] = frozenset()):
        self.entered = threading.Event()
        self.release = threading.Event()
        self.calls: list[list[str]] = []
        self.fail_groups = fail_groups
        self.fail_keys = fail_keys

    def __call__(
        self, ctx: GatewayContext, merchant: Merchant, items: list[tuple[str, EventCreate]]
    ) -> list[Answer]:
        keys = [key for key, _body in items]
        self.calls.append(keys)
        if len(self.calls) == 1:
            self.entered.set()
            assert self.release.wait(30), "the test never released the committer"
        if self.fail_groups and len(items) > 1:
            raise RuntimeError("the group's transaction failed")
        if self.fail_keys & set(keys):
            raise RuntimeError("this event breaks its transaction")
        return event_service.submit_many(ctx, merchant, items)


def merchant_row(gateway: Gateway, index: int = 0) -> Merchant:
    with gateway.context.sessions() as session:
        merchant = session.get(Merchant, gateway.merchants[index].id)
        assert merchant is not None
        session.expunge(merchant)
        return merchant


def run_held(
    committer: GroupCommitter, gated: Gated, first: Item, grouped: list[Item]
) -> tuple[Answer | BaseException, list[Answer | BaseException]]:
    """``first`` alone (holding the committer), then ``grouped`` sent while it is held."""

    async def send(item: Item) -> Answer:
        merchant, key, body = item
        return await committer.submit(merchant, key, EventCreate.model_validate(body))

    async def main() -> tuple[Answer | BaseException, list[Answer | BaseException]]:
        head = asyncio.ensure_future(send(first))
        while not gated.entered.is_set():
            await asyncio.sleep(0.005)
        rest: list[Awaitable[Answer]] = [asyncio.ensure_future(send(item)) for item in grouped]
        await asyncio.sleep(0.05)  # every request is waiting for the committer
        gated.release.set()
        results = await asyncio.gather(head, *rest, return_exceptions=True)
        return results[0], list(results[1:])

    try:
        return asyncio.run(main())
    finally:
        committer.close()


def events_with_key(gateway: Gateway, merchant_id: int, key: str) -> int:
    with gateway.context.sessions() as session:
        count = session.scalar(
            select(func.count(Event.id)).where(
                Event.merchant_id == merchant_id, Event.idempotency_key == key
            )
        )
    return int(count or 0)


def test_each_request_of_a_group_gets_its_own_answer(gateway: Gateway) -> None:
    a, b = merchant_row(gateway, 0), merchant_row(gateway, 1)
    run = uuid.uuid4().hex[:8]
    old_key = f"old-{run}"
    old = event_service.submit(
        gateway.context, a, old_key, EventCreate.model_validate(purchase(f"g-old-{run}", "GO"))
    )
    shared_key, body = f"shared-{run}", purchase(f"g-1-{run}", f"G1-{run}")
    refund = {"type": "refund", "customer_id": f"g-nobody-{run}",
              "occurred_at": "2026-11-20T10:00:00Z", "refund": {"order_id": "never"}}  # fmt: skip
    gated = Gated()
    committer = GroupCommitter(gateway.context, 64, submit_many=gated)
    grouped: list[Item] = [
        (a, shared_key, body),  # accepted
        (a, f"refused-{run}", refund),  # refused: its refusal stored
        (a, shared_key, body),  # the same key and body in the same group: a replay
        (a, shared_key, purchase(f"g-1-{run}", f"G1-{run}", "7.00")),  # another body: 422
        (a, old_key, purchase(f"g-old-{run}", "GO")),  # a key answered before: a replay
        (b, f"other-{run}", purchase(f"g-2-{run}", f"G2-{run}", currency="JPY")),
        (a, f"second-{run}", purchase(f"g-3-{run}", f"G3-{run}")),  # accepted
    ]
    first, answers = run_held(
        committer, gated, (a, f"first-{run}", purchase(f"g-0-{run}", f"G0-{run}")), grouped
    )
    # one call for the held event, then one per merchant for the whole group
    assert sorted(len(keys) for keys in gated.calls) == [1, 1, 6]
    assert not isinstance(first, BaseException) and first[0] == 202
    results = [answer for answer in answers if not isinstance(answer, BaseException)]
    assert len(results) == len(grouped), answers
    statuses = [status for status, _ in results]
    assert statuses[0] == statuses[2] == statuses[4] == statuses[5] == statuses[6] == 202
    accepted = results[0][1]
    assert accepted["idempotency_key"] == shared_key
    assert accepted["customer_id"] == f"g-1-{run}"
    assert results[2][1] == accepted  # replayed, not accepted twice
    assert statuses[1] >= 400 and "error" in results[1][1]
    assert (statuses[3], results[3][1]["error"]["code"]) == (422, "idempotency_key_reused")
    assert results[4][1] == old[1]
    assert results[5][1]["customer_id"] == f"g-2-{run}"
    assert results[6][1]["customer_id"] == f"g-3-{run}"
    assert len({accepted["id"], results[5][1]["id"], results[6][1]["id"], old[1]["id"]}) == 4
    assert events_with_key(gateway, a.id, shared_key) == 1
    # the refusal was stored under its key: asked again, the same answer
    again = event_service.submit_many(
        gateway.context, a, [(f"refused-{run}", EventCreate.model_validate(refund))]
    )
    assert again == [results[1]]


def test_a_key_sent_by_two_processes_at_once_makes_one_event(gateway: Gateway) -> None:
    """Two API processes (two committers), each with a group holding the same key."""
    merchant = merchant_row(gateway)
    run = uuid.uuid4().hex[:8]
    key, body = f"race-{run}", EventCreate.model_validate(purchase(f"r-{run}", f"R-{run}"))
    committers = [GroupCommitter(gateway.context, 64) for _ in range(2)]
    fillers = [EventCreate.model_validate(purchase(f"r-{run}-{n}", f"RF-{n}")) for n in range(6)]

    async def main() -> list[Answer]:
        sends = [
            committer.submit(merchant, k, b)
            for committer in committers
            for k, b in [(f"fill-{run}-{id(committer)}-{n}", f) for n, f in enumerate(fillers)]
            + [(key, body), (key, body)]
        ]
        return list(await asyncio.gather(*sends))

    try:
        answers = asyncio.run(main())
    finally:
        for committer in committers:
            committer.close()
    racing = [answer for answer in answers if answer[1].get("idempotency_key") == key]
    assert len(racing) == 4 and {status for status, _ in racing} == {202}
    assert len({answer["id"] for _, answer in racing}) == 1
    assert events_with_key(gateway, merchant.id, key) == 1
    with gateway.context.sessions() as session:
        records = session.scalar(
            select(func.count()).where(
                IdempotencyRecord.merchant_id == merchant.id, IdempotencyRecord.key == key
            )
        )
    assert records == 1


def test_a_failed_group_is_accepted_again_event_by_event(gateway: Gateway) -> None:
    merchant = merchant_row(gateway)
    run = uuid.uuid4().hex[:8]
    gated = Gated(fail_groups=True, fail_keys=frozenset({f"broken-{run}"}))
    committer = GroupCommitter(gateway.context, 64, submit_many=gated)
    grouped: list[Item] = [
        (merchant, f"fine-{n}-{run}", purchase(f"f-{n}-{run}", f"F{n}-{run}")) for n in range(3)
    ]
    grouped.insert(1, (merchant, f"broken-{run}", purchase(f"f-x-{run}", f"FX-{run}")))
    first, answers = run_held(
        committer, gated, (merchant, f"head-{run}", purchase(f"f-h-{run}", "FH")), grouped
    )
    assert not isinstance(first, BaseException) and first[0] == 202
    # the group of four failed, then each of its events was tried alone
    assert [len(keys) for keys in gated.calls] == [1, 4, 1, 1, 1, 1]
    broken = answers.pop(1)
    assert isinstance(broken, RuntimeError) and "breaks" in str(broken)
    assert events_with_key(gateway, merchant.id, f"broken-{run}") == 0
    for n, answer in enumerate(answers):
        assert not isinstance(answer, BaseException), answer
        status, body = answer
        assert status == 202 and body["customer_id"] == f"f-{n}-{run}"
        assert events_with_key(gateway, merchant.id, f"fine-{n}-{run}") == 1


def test_an_error_without_a_stored_answer_reaches_its_request_only(gateway: Gateway) -> None:
    merchant = merchant_row(gateway)
    run = uuid.uuid4().hex[:8]
    gated = Gated(fail_keys=frozenset({f"alone-{run}"}))
    committer = GroupCommitter(gateway.context, 64, submit_many=gated)
    _first, answers = run_held(
        committer, gated,
        (merchant, f"h-{run}", purchase(f"e-h-{run}", "EH")),
        [(merchant, f"alone-{run}", purchase(f"e-a-{run}", "EA")),
         (merchant, f"next-{run}", purchase(f"e-n-{run}", "EN"))],
    )  # fmt: skip
    assert isinstance(answers[0], RuntimeError)
    assert not isinstance(answers[1], BaseException) and answers[1][0] == 202


@pytest.mark.parametrize("max_events", [0, 64])
def test_the_http_route_answers_alike_with_group_commit_on_and_off(
    gateway: Gateway, max_events: int
) -> None:
    """``POST /v1/events`` through the app, with the committer (64) and without it (0)."""
    from fastapi.testclient import TestClient

    from gateway.app import create_app

    settings = gateway.context.settings.model_copy(update={"group_commit_max_events": max_events})
    context = GatewayContext(
        settings=settings, engine=gateway.context.engine, sessions=gateway.context.sessions,
        link=gateway.context.link, box=gateway.context.box,
    )  # fmt: skip
    run = uuid.uuid4().hex[:8]
    headers = {**gateway.headers(0, f"http-{run}")}
    body = purchase(f"h-{run}", f"H-{run}")
    with TestClient(create_app(context), raise_server_exceptions=False) as client:
        assert (client.app.state.group_commit is None) == (max_events == 0)  # type: ignore[attr-defined]
        first = client.post("/v1/events", json=body, headers=headers)
        replay = client.post("/v1/events", json=body, headers=headers)
        reused = client.post("/v1/events", json={**body, "device_id": "d"}, headers=headers)
        unknown = client.post(
            "/v1/events", json=body, headers={**headers, "Authorization": "Bearer nope"}
        )
    assert first.status_code == replay.status_code == 202
    assert first.json() == replay.json()
    assert first.headers["content-type"] == "application/json"
    assert (reused.status_code, reused.json()["error"]["code"]) == (422, "idempotency_key_reused")
    assert unknown.status_code == 401


def test_a_closed_committer_commits_what_waits_and_starts_again(gateway: Gateway) -> None:
    merchant = merchant_row(gateway)
    run = uuid.uuid4().hex[:8]
    gated = Gated()
    committer = GroupCommitter(gateway.context, 64, submit_many=gated)

    async def main() -> list[Answer]:
        sends = [
            asyncio.ensure_future(
                committer.submit(
                    merchant, f"c-{n}-{run}", EventCreate.model_validate(purchase(f"c-{n}", "C"))
                )
            )
            for n in range(3)
        ]
        while not gated.entered.is_set():
            await asyncio.sleep(0.005)
        closing = asyncio.get_running_loop().run_in_executor(None, committer.close)
        await asyncio.sleep(0.05)
        gated.release.set()
        await closing
        return list(await asyncio.gather(*sends))

    assert {status for status, _ in asyncio.run(main())} == {202}
    again = asyncio.run(
        committer.submit(
            merchant, f"after-{run}", EventCreate.model_validate(purchase(f"c-a-{run}", "CA"))
        )
    )
    committer.close()
    assert again[0] == 202


def test_stored_refusals_are_answers_not_errors(gateway: Gateway) -> None:
    """A refusal comes back as (status, body) from the committer, as ``submit_many`` gives
    it; ``submit`` alone would raise it (the route sends both the same way)."""
    merchant = merchant_row(gateway)
    refund = EventCreate.model_validate(
        {
            "type": "refund",
            "customer_id": "nobody-gc",
            "occurred_at": "2026-11-20T10:00:00Z",
            "refund": {"order_id": "never"},
        }
    )
    committer = GroupCommitter(gateway.context)
    key = uuid.uuid4().hex
    try:
        status, answer = asyncio.run(committer.submit(merchant, key, refund))
    finally:
        committer.close()
    assert status >= 400
    with pytest.raises(GatewayError) as raised:
        event_service.submit(gateway.context, merchant, key, refund)
    assert (raised.value.status, raised.value.code) == (status, answer["error"]["code"])


def canned(ctx: GatewayContext, merchant: Merchant, items: list[tuple[str, EventCreate]]) -> Any:
    """``submit_many`` without a database: 202 and the key, at once."""
    return [(202, {"idempotency_key": key}) for key, _body in items]


def test_a_request_after_a_quiet_spell_does_not_wait_for_the_window(gateway: Gateway) -> None:
    committer = GroupCommitter(gateway.context, 64, submit_many=canned, window=5.0)
    body = EventCreate.model_validate(purchase("w-1", "W1"))
    started = time.monotonic()
    try:
        answer = asyncio.run(committer.submit(merchant_row(gateway), "quiet", body))
    finally:
        committer.close()
    assert answer == (202, {"idempotency_key": "quiet"})
    assert time.monotonic() - started < 2.5


def test_while_busy_a_group_waits_for_the_window_or_a_full_group(gateway: Gateway) -> None:
    merchant = merchant_row(gateway)
    body = EventCreate.model_validate(purchase("w-2", "W2"))
    committer = GroupCommitter(gateway.context, 3, submit_many=canned, window=0.5)

    async def main() -> tuple[float, float]:
        await committer.submit(merchant, "warm", body)  # now busy: the next group may wait
        started = time.monotonic()
        await committer.submit(merchant, "waits", body)  # alone: waits out the window
        waited = time.monotonic() - started
        started = time.monotonic()
        await asyncio.gather(*(committer.submit(merchant, f"full-{n}", body) for n in range(3)))
        return waited, time.monotonic() - started  # a full group goes at once

    try:
        waited, full = asyncio.run(main())
    finally:
        committer.close()
    assert waited >= 0.45
    assert full < 0.45
    assert committer.groups == 3
