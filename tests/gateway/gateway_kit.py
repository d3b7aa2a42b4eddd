"""Gateway test kit: a real anvil, deployed contracts, a real database, the real app
(started by the one launcher, :mod:`bench.stack`).

``gateway`` is module-scoped (deploying and admitting merchants takes a
second or two): tests in a module share it and use fresh customer ids and
idempotency keys.  ``settle`` drives the outbox worker until nothing is
pending or in flight, so tests read final states without sleeping.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from factories import TEST_SETTINGS
from sqlalchemy import select

from bench.inprocess import InProcessGateway
from bench.inprocess import purchase as purchase  # re-exported for the gateway tests
from bench.stack import Stack
from chain import signing
from gateway.models import Member, Reward
from gateway.services.members import custodial_key
from gateway.services.rewards import redemption_message

#: The gateway in process (app under a TestClient, an outbox worker ``settle`` drives).
Gateway = InProcessGateway


def start_gateway(tmp: Path, database_url: str | None = None, **settings: Any) -> Iterator[Gateway]:
    """A network of two merchants from the one launcher, the gateway opened on it;
    ``settings`` override ``TEST_SETTINGS`` (which deploy without rule notice: a rule set
    is in effect once published, as the tests that change rules expect)."""
    overrides = {**TEST_SETTINGS, "database_url": database_url, **settings}
    with Stack(tmp, settings=overrides) as stack:
        gateway = Gateway.open(stack)
        try:
            gateway.settle()  # publish the first rule sets
            yield gateway
        finally:
            gateway.close()


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
