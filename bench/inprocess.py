"""The gateway in this process, on a :class:`bench.stack.Stack`: its app under a
``TestClient`` and an outbox worker driven from here (the test kits and the
accept-path scripts), and the event body they post most."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from bench.stack import Stack
from gateway.app import create_app
from gateway.context import GatewayContext
from gateway.models import ChainOp
from gateway.outbox.worker import OutboxWorker
from gateway.services.merchants import NewMerchant


def outbox_busy(context: GatewayContext) -> int:
    """How many chain ops are pending or in flight."""
    with context.sessions() as session:
        busy = session.scalar(
            select(func.count(ChainOp.id)).where(ChainOp.status.in_(("pending", "sent")))
        )
    return int(busy or 0)


def purchase(
    customer: str, order: str, amount: str = "100.00", currency: str = "EUR", **extra: object
) -> dict[str, object]:
    """A purchase event body."""
    body: dict[str, object] = {
        "type": "purchase",
        "customer_id": customer,
        "occurred_at": "2026-11-20T10:00:00Z",
        "order": {
            "id": order,
            "amount": amount,
            "currency": currency,
            "items": [{"sku": "sku-1", "category": "apparel", "amount": amount}],
        },
    }
    body.update(extra)
    return body


@dataclass
class InProcessGateway:
    """The gateway in this process: its app under a ``TestClient`` and an outbox worker
    that :meth:`settle` drives (or a thread runs)."""

    context: GatewayContext
    client: TestClient
    worker: OutboxWorker
    merchants: list[NewMerchant]
    data_dir: Path

    @classmethod
    def open(cls, stack: Stack) -> InProcessGateway:
        """On a started stack; close with :meth:`close`."""
        assert stack.context is not None, "start the stack first"
        context = stack.context
        client = TestClient(create_app(context), raise_server_exceptions=False)
        client.__enter__()
        worker = OutboxWorker(context.link, context.sessions)
        return cls(context, client, worker, stack.merchants, stack.data_dir)

    def close(self) -> None:
        self.client.__exit__(None, None, None)

    def headers(self, merchant: int = 0, key: str | None = None) -> dict[str, str]:
        """A merchant's bearer token and an Idempotency-Key (fresh unless given)."""
        headers = {"Authorization": f"Bearer {self.merchants[merchant].api_key}"}
        headers["Idempotency-Key"] = key or uuid.uuid4().hex
        return headers

    def settle(self, timeout: float = 30.0) -> None:
        """Run the worker until no op is pending or sent (or fail after ``timeout``)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.worker.run_once()
            if not outbox_busy(self.context):
                return
            time.sleep(0.02)
        raise AssertionError("outbox did not settle")
