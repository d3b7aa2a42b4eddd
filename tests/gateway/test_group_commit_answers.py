"""Group commit answers a merchant's requests when that merchant's transaction is done,
not when the whole group's are (gateway.api.group_commit)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from gateway_kit import Gateway, purchase
from test_group_commit import merchant_row

from gateway.api.group_commit import Answer, GroupCommitter
from gateway.context import GatewayContext
from gateway.models import Merchant
from gateway.schemas import EventCreate


class HeldSecond:
    """``submit_many`` answering at once, except that its second call (the second
    merchant of the group) waits for ``release``."""

    def __init__(self) -> None:
        self.calls: list[int] = []
        self.second_entered = threading.Event()
        self.release = threading.Event()

    def __call__(
        self, _ctx: GatewayContext, merchant: Merchant, items: list[tuple[str, EventCreate]]
    ) -> list[Answer]:
        self.calls.append(merchant.id)
        if len(self.calls) == 2:
            self.second_entered.set()
            assert self.release.wait(30), "the test never released the second merchant"
        return [(202, {"idempotency_key": key}) for key, _body in items]


def test_a_merchants_requests_are_answered_before_the_next_merchant_commits(
    gateway: Gateway,
) -> None:
    a, b = merchant_row(gateway, 0), merchant_row(gateway, 1)
    body = EventCreate.model_validate(purchase("ans-1", "ANS-1"))
    held = HeldSecond()
    committer = GroupCommitter(gateway.context, 64, submit_many=held)

    async def main() -> tuple[list[Any], bool, Any]:
        # Both merchants' requests wait together, so the committer takes them as one group.
        with committer._ready:  # hold the committer while the group forms
            first = [asyncio.ensure_future(committer.submit(a, f"a-{n}", body)) for n in (1, 2)]
            second = asyncio.ensure_future(committer.submit(b, "b-1", body))
            await asyncio.sleep(0.05)
        answered_a = await asyncio.wait_for(asyncio.gather(*first), timeout=10)
        b_waiting = not second.done() and held.second_entered.is_set()
        held.release.set()
        return answered_a, b_waiting, await asyncio.wait_for(second, timeout=10)

    try:
        answered_a, b_waiting, answered_b = asyncio.run(main())
    finally:
        held.release.set()
        committer.close()
    assert answered_a == [(202, {"idempotency_key": "a-1"}), (202, {"idempotency_key": "a-2"})]
    assert b_waiting, "merchant a was answered only after merchant b's commit"
    assert answered_b == (202, {"idempotency_key": "b-1"})
    assert held.calls == [a.id, b.id] and committer.groups == 1
