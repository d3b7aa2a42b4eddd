"""Group commit in turns by merchant (gateway.api.group_commit): a merchant's requests are
answered when its own transaction is done, and events that arrive during another
merchant's commit join their merchant's coming turn."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from gateway_kit import Gateway, purchase
from test_group_commit import merchant_row

from gateway.api.group_commit import Answer, GroupCommitter, NotAuthenticated
from gateway.context import GatewayContext
from gateway.models import Merchant
from gateway.schemas import EventCreate

BODY = EventCreate.model_validate(purchase("turn-1", "TURN-1"))


class Held:
    """``submit_many`` answering at once (202 and the key) and recording each call's keys,
    except that the calls numbered in ``hold`` (1-based) wait for their ``release``."""

    def __init__(self, *hold: int) -> None:
        self.calls: list[list[str]] = []
        self.entered = {n: threading.Event() for n in hold}
        self.release = {n: threading.Event() for n in hold}

    def __call__(
        self, _ctx: GatewayContext, _merchant: Merchant, items: list[tuple[str, EventCreate]]
    ) -> list[Answer]:
        self.calls.append([key for key, _body in items])
        number = len(self.calls)
        if number in self.entered:
            self.entered[number].set()
            assert self.release[number].wait(30), f"the test never released call {number}"
        return [(202, {"idempotency_key": key}) for key, _body in items]

    def open_all(self) -> None:
        for event in self.release.values():
            event.set()


async def entered(held: Held, number: int) -> None:
    while not held.entered[number].is_set():
        await asyncio.sleep(0.005)


def test_a_merchants_requests_are_answered_while_another_merchant_commits(
    gateway: Gateway,
) -> None:
    a, b = merchant_row(gateway, 0), merchant_row(gateway, 1)
    held = Held(1, 3)
    committer = GroupCommitter(gateway.context, 64, submit_many=held)

    async def main() -> tuple[list[Answer], bool, Answer]:
        head = asyncio.ensure_future(committer.submit(b, "b-0", BODY))
        await entered(held, 1)  # b's first turn is held: the others wait together
        first = [asyncio.ensure_future(committer.submit(a, f"a-{n}", BODY)) for n in (1, 2)]
        second = asyncio.ensure_future(committer.submit(b, "b-1", BODY))
        await asyncio.sleep(0.05)
        held.release[1].set()
        answered_a = await asyncio.wait_for(asyncio.gather(*first), timeout=10)
        await entered(held, 3)
        b_waiting = not second.done()
        held.release[3].set()
        await head
        return answered_a, b_waiting, await asyncio.wait_for(second, timeout=10)

    try:
        answered_a, b_waiting, answered_b = asyncio.run(main())
    finally:
        held.open_all()
        committer.close()
    assert answered_a == [(202, {"idempotency_key": "a-1"}), (202, {"idempotency_key": "a-2"})]
    assert b_waiting, "merchant a was answered only after merchant b's commit"
    assert answered_b == (202, {"idempotency_key": "b-1"})
    assert held.calls == [["b-0"], ["a-1", "a-2"], ["b-1"]]


def test_events_arriving_during_another_merchants_commit_join_their_merchants_turn(
    gateway: Gateway,
) -> None:
    a, b = merchant_row(gateway, 0), merchant_row(gateway, 1)
    held = Held(1, 2)
    committer = GroupCommitter(gateway.context, 64, submit_many=held)

    async def main() -> None:
        sent = [asyncio.ensure_future(committer.submit(a, "a-0", BODY))]
        await entered(held, 1)  # a's turn held: b-1 and a-1 wait
        sent.append(asyncio.ensure_future(committer.submit(b, "b-1", BODY)))
        await asyncio.sleep(0.02)
        sent.append(asyncio.ensure_future(committer.submit(a, "a-1", BODY)))
        await asyncio.sleep(0.02)
        held.release[1].set()
        await entered(held, 2)  # b's turn (its event waited longest) held: a-2 arrives
        sent.append(asyncio.ensure_future(committer.submit(a, "a-2", BODY)))
        await asyncio.sleep(0.02)
        held.release[2].set()
        await asyncio.wait_for(asyncio.gather(*sent), timeout=10)

    try:
        asyncio.run(main())
    finally:
        held.open_all()
        committer.close()
    # a-2, sent during b's commit, goes with a-1 in a's next turn, not in a turn of its own.
    assert held.calls == [["a-0"], ["b-1"], ["a-1", "a-2"]]
    assert committer.groups == 3


def test_while_busy_a_turn_waits_for_the_window_only_when_no_other_merchant_waits(
    gateway: Gateway,
) -> None:
    a, b = merchant_row(gateway, 0), merchant_row(gateway, 1)
    committer = GroupCommitter(gateway.context, 64, submit_many=Held(), window=0.5)

    async def timed(merchant: Merchant, key: str, started: float) -> float:
        await committer.submit(merchant, key, BODY)
        return time.monotonic() - started

    async def main() -> tuple[float, float]:
        await committer.submit(a, "warm", BODY)  # now busy: a turn may wait for the window
        with committer._ready:  # both wait before the committer looks
            started = time.monotonic()
            first = asyncio.ensure_future(timed(a, "a-1", started))
            second = asyncio.ensure_future(timed(b, "b-1", started))
            await asyncio.sleep(0.01)
        return await first, await second

    try:
        first, second = asyncio.run(main())
    finally:
        committer.close()
    assert first < 0.4, "a's turn waited for the window while b's event was waiting"
    assert second >= 0.45, "b's turn, alone while busy, should wait for the window"


def test_the_keys_of_every_waiting_request_are_looked_up_at_once(gateway: Gateway) -> None:
    """Fast-path requests of two merchants (and a key nobody owns) waiting together: one
    look-up for all, then one turn per merchant; the unknown key is left to the route."""
    a = merchant_row(gateway, 0)
    held = Held(1)
    committer = GroupCommitter(gateway.context, 64, submit_many=held)
    lookups: list[list[str]] = []
    authenticate = committer._authenticate

    def counted(items: list[Any]) -> None:
        if items:
            lookups.append(sorted(waiting.key for waiting in items))
        authenticate(items)

    committer._authenticate = counted  # type: ignore[method-assign]
    key_a, key_b = gateway.merchants[0].api_key, gateway.merchants[1].api_key

    async def main() -> list[Any]:
        head = asyncio.ensure_future(committer.submit(a, "a-0", BODY))
        await entered(held, 1)
        sent = [
            asyncio.ensure_future(committer.submit_with_api_key(key, idem, BODY))
            for key, idem in ((key_b, "b-1"), (key_a, "a-1"), ("nobody", "x-1"), (key_b, "b-2"))
        ]
        await asyncio.sleep(0.05)
        held.release[1].set()
        await head
        return await asyncio.gather(*sent, return_exceptions=True)

    try:
        answers = asyncio.run(main())
    finally:
        held.open_all()
        committer.close()
    assert lookups == [["a-1", "b-1", "b-2", "x-1"]]
    assert held.calls == [["a-0"], ["b-1", "b-2"], ["a-1"]]
    assert answers[0] == (202, {"idempotency_key": "b-1"})
    assert isinstance(answers[2], NotAuthenticated)
