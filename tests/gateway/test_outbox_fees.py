"""Full blocks push the EIP-1559 base fee up: past the worker's fee cap it waits (its
transactions stay stored, nothing fails, nothing is dropped), and when the fee comes back
down it goes on, each event issued once."""

from __future__ import annotations

import time

from gateway_kit import Gateway, purchase
from sqlalchemy import select

from chain.jsonrpc import Rpc
from chain.sender import GWEI
from gateway.models import ChainOp, ChainTx, Event


def test_the_worker_waits_while_the_base_fee_is_above_its_cap_and_goes_on_after(
    gateway: Gateway,
) -> None:
    gateway.settle()
    node = Rpc(gateway.context.settings.rpc_url)
    cap = gateway.worker.sender.max_fee_cap_wei
    node.call("anvil_setNextBlockBaseFeePerGas", [hex(cap * 5)])
    events = [
        gateway.client.post(
            "/v1/events", json=purchase(f"fee-{i}", f"FEE-{i}", "15.00"), headers=gateway.headers()
        ).json()
        for i in range(3)
    ]
    ids = [e["id"] for e in events]
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:  # cycles go by while the fee is above the cap
        gateway.worker.run_once()
        time.sleep(0.02)
    with gateway.context.sessions() as session:
        statuses = set(session.scalars(select(Event.status).where(Event.id.in_(ids))))
        assert statuses <= {"accepted", "submitted"}, statuses
        ops = session.scalars(select(ChainOp).where(ChainOp.event_id.in_(ids))).all()
        assert {op.status for op in ops} <= {"pending", "sent"}
        waiting = session.scalars(select(ChainTx).where(ChainTx.status == "signed")).all()
        assert waiting and all("base fee" in (tx.error or "") for tx in waiting)

    node.call("anvil_setNextBlockBaseFeePerGas", [hex(GWEI)])  # the blocks empty again
    gateway.settle()
    token = gateway.context.link.network.token
    for event in events:
        final = gateway.client.get(f"/v1/events/{event['id']}", headers=gateway.headers()).json()
        assert final["status"] == "confirmed"
        assert token.balance_of(event["member_address"]) == event["points"]
