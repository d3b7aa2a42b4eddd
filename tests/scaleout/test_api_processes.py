"""``pointsnet serve --workers 2``: two API processes, each group-committing its requests,
beside one worker process running both signer lanes, on one PostgreSQL database.

Single-event requests come from many clients at once, some of them twice with
the same Idempotency-Key at the same moment (so the two copies may meet in one
process's group or race between the two processes).  Every key must make one
event, every copy must get the same answer, and every event must be confirmed
on chain exactly once.
"""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from scaleout_kit import SIGNERS, Stack, assert_exactly_once, wait_until

pytestmark = pytest.mark.postgres

EVENTS = 240
#: Every this-many-th key is sent twice at once.
TWICE = 4


@pytest.mark.timeout(600)
def test_two_api_processes_accept_concurrent_single_events_exactly_once(stack: Stack) -> None:
    link = stack.context.link
    supply_before, first_block = link.network.token.total_supply(), link.w3.eth.block_number
    stack.event_ids.clear()
    stack.expected.clear()
    run = uuid.uuid4().hex[:8]
    server = stack.launcher.spawn(
        "api-x2", "--workers", "2", signers=str(SIGNERS), tx_stuck_after="3600",
    )  # fmt: skip
    try:
        stack.launcher.wait_healthy(timeout=120)
        sends: list[tuple[int, str, dict[str, Any]]] = []
        for i in range(EVENTS):
            merchant = i % len(stack.merchants)
            currency, amount = ("JPY", "1500") if merchant == 1 else ("EUR", "12.00")
            item = {"sku": "s", "category": "apparel", "amount": amount}
            order = {"id": f"{run}-{i}", "amount": amount, "currency": currency, "items": [item]}
            body = {"type": "purchase", "customer_id": f"api-{run}-{i % 60}",
                    "occurred_at": "2026-11-20T10:00:00Z", "order": order}  # fmt: skip
            copies = 2 if i % TWICE == 0 else 1
            sends += [(merchant, f"{run}-{i}", body)] * copies

        with httpx.Client(base_url=stack.launcher.url, timeout=60, trust_env=False) as client:

            def post(send: tuple[int, str, dict[str, Any]]) -> tuple[str, int, dict[str, Any]]:
                merchant, key, body = send
                headers = {**stack.headers(merchant), "Idempotency-Key": key}
                response = client.post("/v1/events", json=body, headers=headers)
                return key, response.status_code, response.json()

            with ThreadPoolExecutor(24) as pool:
                answers = list(pool.map(post, sends))
        by_key: dict[str, list[dict[str, Any]]] = {}
        for key, status, answer in answers:
            assert status == 202, answer
            by_key.setdefault(key, []).append(answer)
        assert len(by_key) == EVENTS
        for copies in by_key.values():
            assert all(copy == copies[0] for copy in copies), copies  # the replay is the answer
            stack.event_ids.append(copies[0]["id"])
            stack.expected[copies[0]["member_address"]] += int(copies[0]["points"])
        wait_until(lambda: stack.unfinished_ops() == 0 and stack.statuses().keys() == {"confirmed"},
                   timeout=300, poll=0.5)  # fmt: skip
    finally:
        stack.launcher.kill("api-x2", sig=15)
    assert server.returncode is not None
    assert_exactly_once(stack, supply_before, first_block)
