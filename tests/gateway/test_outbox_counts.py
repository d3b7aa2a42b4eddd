"""What the outbox worker costs per event, counted (wall-clock here is noisy): JSON-RPC
calls and SQL statements while it confirms a batch of new members' purchases, and while
it idles. Before the outbox package: ~2.3 SQL statements and ~0.03-0.06 JSON-RPC calls per
event, 20 statements per idle cycle (see the commit that added this test)."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from gateway_kit import Gateway, purchase
from sqlalchemy import event
from sqlalchemy.engine import Engine

from bench.inprocess import outbox_busy

EVENTS = 300


class Counts:
    """JSON-RPC calls (by method) and SQL statements, while ``on``."""

    def __init__(self) -> None:
        self.on = False
        self.rpc: Counter[str] = Counter()
        self.sql = 0

    def reset(self) -> None:
        self.rpc.clear()
        self.sql = 0


@pytest.fixture
def counts(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counts]:
    counted = Counts()
    request = requests.Session.request

    def counting_request(self: requests.Session, method: str, url: str, **kw: Any) -> Any:
        if counted.on:
            body = kw.get("json")
            if body is None and kw.get("data"):
                body = json.loads(kw["data"])
            for item in body if isinstance(body, list) else [body]:
                if isinstance(item, dict):
                    counted.rpc[str(item.get("method"))] += 1
        return request(self, method, url, **kw)

    def statement(*_args: Any) -> None:
        if counted.on:
            counted.sql += 1

    monkeypatch.setattr(requests.Session, "request", counting_request)
    event.listen(Engine, "before_cursor_execute", statement)
    try:
        yield counted
    finally:
        event.remove(Engine, "before_cursor_execute", statement)


def test_confirming_a_batch_costs_a_fraction_of_a_statement_and_of_a_call_per_event(
    gateway: Gateway, counts: Counts
) -> None:
    gateway.settle()
    items = [
        {"idempotency_key": uuid.uuid4().hex, "event": purchase(f"count-{i}", f"CNT-{i}", "12.00")}
        for i in range(EVENTS)
    ]
    response = gateway.client.post(
        "/v1/events/batch", json={"events": items}, headers=gateway.headers()
    )
    assert response.status_code == 200, response.text
    counts.on = True
    for _ in range(200):
        gateway.worker.run_once()
        if not outbox_busy(gateway.context):
            break
    counts.on = False
    assert not outbox_busy(gateway.context)
    # Measured 0.18-0.26 statements per event (0.23-0.31 before the Core store).
    assert counts.sql / EVENTS < 0.3, counts.sql
    assert sum(counts.rpc.values()) / EVENTS < 0.05, counts.rpc  # 12 calls for 300 events
    assert counts.rpc["eth_getTransactionReceipt"] <= counts.rpc["eth_sendRawTransaction"] * 2

    counts.reset()
    counts.on = True
    for _ in range(20):
        gateway.worker.run_once()
    counts.on = False
    assert not counts.rpc, counts.rpc  # an idle worker asks the node nothing
    assert counts.sql <= 20 * 2, counts.sql  # one probe (and its BEGIN) per idle cycle
