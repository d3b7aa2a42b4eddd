"""Gateway test kit: a real anvil, deployed contracts, a real database, the real app.

``gateway`` is module-scoped (deploying and admitting merchants takes a
second or two): tests in a module share it and use fresh customer ids and
idempotency keys.  ``settle`` drives the outbox worker until nothing is
pending or in flight, so tests read final states without sleeping.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from factories import devnet_settings, open_network, outbox_busy
from fastapi.testclient import TestClient
from sqlalchemy import select

from chain import signing
from chain.devnet import Devnet, free_port
from gateway.app import create_app
from gateway.context import GatewayContext
from gateway.models import Member, Reward
from gateway.services.members import custodial_key
from gateway.services.merchants import NewMerchant
from gateway.services.rewards import redemption_message
from gateway.worker import OutboxWorker


@dataclass
class Gateway:
    """A running gateway (in process) with two merchants."""

    context: GatewayContext
    client: TestClient
    worker: OutboxWorker
    merchants: list[NewMerchant]
    data_dir: Path

    def headers(self, merchant: int = 0, key: str | None = None) -> dict[str, str]:
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


def start_gateway(tmp: Path, database_url: str | None = None) -> Iterator[Gateway]:
    with Devnet(port=free_port(), log_file=tmp / "anvil.log") as node:
        context, merchants = open_network(devnet_settings(tmp, node, database_url=database_url))
        worker = OutboxWorker(context.link, context.sessions)
        app = create_app(context)
        with TestClient(app, raise_server_exceptions=False) as client:
            gateway = Gateway(context, client, worker, merchants, tmp)
            gateway.settle()  # publish the first rule sets
            yield gateway
        context.engine.dispose()


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


def signed_redemption(
    gateway: Gateway, merchant: int, member: str, cost: int
) -> tuple[dict[str, Any], bytes, str]:
    """A new reward costing ``cost`` at merchant index ``merchant`` and the member's
    consent to redeem it, signed with its custodial key (as the wallet does):
    (message, signature, reward id)."""
    reward = gateway.client.post(
        "/v1/rewards",
        json={"name": f"reward {uuid.uuid4().hex[:6]}", "cost_points": cost},
        headers=gateway.headers(merchant),
    ).json()
    hub = gateway.context.link.network.hub
    deadline = int(time.time()) + 600
    with gateway.context.sessions() as session:
        row = session.get(Reward, reward["id"])
        assert row is not None
        message = redemption_message(gateway.context, row, member, hub.nonce_of(member), deadline)
        owner = session.scalars(select(Member).where(Member.address == member)).one()
        key = custodial_key(gateway.context.box, owner)
    signature = signing.sign(key, "Redemption", gateway.context.link.chain_id, hub.address, message)
    return message, signature, str(reward["id"])


def redeem(gateway: Gateway, merchant: int, member: str, cost: int) -> Any:
    """``POST /v1/redemptions`` of a new reward costing ``cost`` (the gateway relays it);
    the response, checked to be 202."""
    message, signature, reward_id = signed_redemption(gateway, merchant, member, cost)
    response = gateway.client.post(
        "/v1/redemptions",
        json={"reward_id": reward_id, "member": member, "nonce": message["nonce"],
              "deadline": message["deadline"], "signature": "0x" + signature.hex()},
        headers=gateway.headers(merchant),
    )  # fmt: skip
    assert response.status_code == 202, response.text
    return response
