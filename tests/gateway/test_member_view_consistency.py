"""A member's balance, spendable points, pending points and next nonce come from one view.

The gateway reads the chain at one block and adds only the queued ops that block does
not include. These tests run a network whose worker waits ``DEPTH`` confirmations (as on
a testnet), with anvil mining one block per transaction and ``evm_mine`` adding empty
ones, and act inside the window where an op is mined but not final yet (its status still
``sent``): the wallet's ``/me``, the merchant API's member view and the checks and
signatures of the next action must count it once, and that next action, signed in the
window, must be accepted by the hub.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from eth_account import Account
from eth_typing import HexStr
from factories import TEST_SETTINGS, database_for
from gateway_kit import Gateway, purchase
from sqlalchemy import select

from bench.inprocess import outbox_busy
from bench.stack import Stack
from chain import signing
from chain.devnet import rpc_call
from gateway.models import ChainOp, ChainTx, Member, Redemption, Reward
from gateway.services.member_state import member_state, pending_issuance
from gateway.services.members import custodial_key
from gateway.services.rewards import redemption_message

#: Confirmations the worker waits before it marks an op confirmed.
DEPTH = 3


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def gateway(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    with database_for(request.param) as url:
        overrides = {**TEST_SETTINGS, "database_url": url, "confirmations": DEPTH}
        with Stack(tmp_path_factory.mktemp("depth"), settings=overrides) as stack:
            gw = Gateway.open(stack)
            try:
                settle(gw)  # publish the first rule sets
                yield gw
            finally:
                gw.close()


def mine(gateway: Gateway, blocks: int = 1) -> None:
    for _ in range(blocks):
        rpc_call(gateway.context.settings.rpc_url, "evm_mine", [])


def head(gateway: Gateway) -> int:
    return int(gateway.context.link.w3.eth.block_number)


def settle(gateway: Gateway, timeout: float = 60.0) -> None:
    """Run the worker, mining empty blocks so that what it sent gets deep enough, until
    no op is pending or sent."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        gateway.worker.run_once()
        if not outbox_busy(gateway.context):
            return
        mine(gateway)
    raise AssertionError("outbox did not settle")


def send_one(gateway: Gateway, op_id: int) -> int:
    """Run the worker until op ``op_id`` is sent (automine mines it at once): the block
    that included it, which is then the head."""
    for _ in range(20):
        gateway.worker.run_once()
        if op(gateway, op_id).status == "sent":
            receipt = gateway.context.link.w3.eth.get_transaction_receipt(
                HexStr(tx_hash(gateway, op_id))
            )
            assert head(gateway) == receipt["blockNumber"]
            return int(receipt["blockNumber"])
    raise AssertionError(f"op {op_id} was not sent")


def op(gateway: Gateway, op_id: int) -> ChainOp:
    with gateway.context.sessions() as session:
        row = session.get(ChainOp, op_id)
        assert row is not None
        session.expunge(row)
        return row


def tx_hash(gateway: Gateway, op_id: int) -> str:
    with gateway.context.sessions() as session:
        found = session.scalar(
            select(ChainTx.tx_hash)
            .join(ChainOp, ChainOp.tx_id == ChainTx.id)
            .where(ChainOp.id == op_id)
        )
        assert found is not None
        return str(found)


def customer_with_points(gateway: Gateway, amount: str = "300.00") -> tuple[str, str, int]:
    """A new custodial customer of merchant 0 with confirmed points: (customer id, address,
    points)."""
    customer = f"d-{uuid.uuid4().hex[:8]}"
    body = purchase(customer, f"o-{uuid.uuid4().hex[:8]}", amount)
    body["occurred_at"] = datetime.now(UTC).isoformat()
    response = gateway.client.post("/v1/events", json=body, headers=gateway.headers(0))
    assert response.status_code == 202, response.text
    settle(gateway)
    view = merchant_view(gateway, customer)
    assert view["balance"] == response.json()["points"] > 0
    return customer, view["address"], int(view["balance"])


def wallet_headers(gateway: Gateway, customer: str) -> dict[str, str]:
    """A custodial wallet session of merchant 0's ``customer`` (its login link)."""
    url = gateway.client.post(
        f"/v1/members/{customer}/login-link", headers=gateway.headers(0)
    ).json()["url"]
    response = gateway.client.post("/v1/wallet/login-link", json={"token": url.split("#login=")[1]})
    assert response.status_code == 200, response.text
    gateway.client.cookies.clear()
    return {"Authorization": f"Bearer {response.json()['token']}"}


def me(gateway: Gateway, headers: dict[str, str]) -> dict[str, Any]:
    response = gateway.client.get("/v1/wallet/me", headers=headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


def merchant_view(gateway: Gateway, customer: str) -> dict[str, Any]:
    response = gateway.client.get(f"/v1/members/{customer}", headers=gateway.headers(0))
    assert response.status_code == 200, response.text
    return dict(response.json())


def points_of(view: dict[str, Any]) -> tuple[int, int, int, int]:
    return view["balance"], view["spendable"], view["pending_points"], view["next_nonce"]


def new_reward(gateway: Gateway, cost: int) -> str:
    response = gateway.client.post(
        "/v1/rewards",
        json={"name": f"Reward {uuid.uuid4().hex[:4]}", "cost_points": cost},
        headers=gateway.headers(0),
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def chain(gateway: Gateway, address: str) -> tuple[int, int]:
    """(balance, hub nonce) of ``address`` at the head."""
    network = gateway.context.link.network
    return network.token.balance_of(address), network.hub.nonce_of(address)


def test_a_mined_transfer_counts_once_before_it_is_final(gateway: Gateway) -> None:
    customer, address, points = customer_with_points(gateway)
    wallet = wallet_headers(gateway, customer)
    to = Account.create().address
    sent = gateway.client.post("/v1/wallet/transfers", json={"to": to, "amount": 5}, headers=wallet)
    assert sent.status_code == 202, sent.text
    assert sent.json()["nonce"] == 0
    # Queued, not sent: the chain does not have it, the queue does.
    assert points_of(me(gateway, wallet)) == (points, points - 5, 0, 1)

    block = send_one(gateway, sent.json()["id"])
    assert chain(gateway, address) == (points - 5, 1)  # mined ...
    assert op(gateway, sent.json()["id"]).status == "sent"  # ... not final
    # The chain at the head has the transfer: it is not subtracted again.
    assert points_of(me(gateway, wallet)) == (points - 5, points - 5, 0, 1)
    assert points_of(merchant_view(gateway, customer)) == (points - 5, points - 5, 0, 1)

    mine(gateway, DEPTH - 1)  # deeper, still not final
    gateway.worker.run_once()
    assert op(gateway, sent.json()["id"]).status == "sent" and head(gateway) < block + DEPTH
    assert points_of(me(gateway, wallet)) == (points - 5, points - 5, 0, 1)

    # A custodial action taken in the window is signed with the hub's next nonce ...
    again = gateway.client.post(
        "/v1/wallet/transfers", json={"to": to, "amount": 7}, headers=wallet
    )
    assert again.status_code == 202, again.text
    assert again.json()["nonce"] == 1
    assert points_of(me(gateway, wallet)) == (points - 5, points - 12, 0, 2)
    settle(gateway)
    # ... and the hub accepts it.
    assert op(gateway, again.json()["id"]).status == "confirmed"
    assert chain(gateway, address) == (points - 12, 2)
    assert chain(gateway, to)[0] == 12
    assert points_of(me(gateway, wallet)) == (points - 12, points - 12, 0, 2)


def test_a_redemption_in_the_window_is_accepted_by_the_hub(gateway: Gateway) -> None:
    customer, address, points = customer_with_points(gateway)
    wallet = wallet_headers(gateway, customer)
    first = gateway.client.post(
        "/v1/wallet/redemptions", json={"reward_id": new_reward(gateway, 20)}, headers=wallet
    )
    assert first.status_code == 202, first.text
    with gateway.context.sessions() as session:
        first_op = session.scalar(
            select(Redemption.op_id).where(Redemption.id == first.json()["id"])
        )
    assert first_op is not None
    send_one(gateway, first_op)
    assert chain(gateway, address) == (points - 20, 1)
    assert op(gateway, first_op).status == "sent"
    assert points_of(me(gateway, wallet)) == (points - 20, points - 20, 0, 1)

    # The wallet's custodial redemption, signed by the gateway in the window.
    second = gateway.client.post(
        "/v1/wallet/redemptions", json={"reward_id": new_reward(gateway, 30)}, headers=wallet
    )
    assert second.status_code == 202, second.text
    # The merchant API's redemption, signed with the nonce its member view shows.
    nonce = merchant_view(gateway, customer)["next_nonce"]
    assert nonce == 2
    third = merchant_redemption(gateway, address, new_reward(gateway, 40), nonce)
    assert third.status_code == 202, third.text
    assert points_of(me(gateway, wallet)) == (points - 20, points - 90, 0, 3)
    settle(gateway)
    for answer in (first, second, third):
        done = gateway.client.get(
            f"/v1/redemptions/{answer.json()['id']}", headers=gateway.headers(0)
        ).json()
        assert done["status"] == "confirmed", done
    assert chain(gateway, address) == (points - 90, 3)
    assert points_of(merchant_view(gateway, customer)) == (points - 90, points - 90, 0, 3)


def merchant_redemption(gateway: Gateway, member: str, reward_id: str, nonce: int) -> Any:
    """``POST /v1/redemptions`` of ``reward_id`` with the member's consent at ``nonce``,
    signed with the member's custodial key (as a member's own wallet would sign)."""
    hub = gateway.context.link.network.hub
    deadline = int(time.time()) + 600
    with gateway.context.sessions() as session:
        reward = session.get(Reward, reward_id)
        assert reward is not None
        message = redemption_message(gateway.context, reward, member, nonce, deadline)
        owner = session.scalars(select(Member).where(Member.address == member)).one()
        key = custodial_key(gateway.context.box, owner)
    signature = signing.sign(key, "Redemption", gateway.context.link.chain_id, hub.address, message)
    return gateway.client.post(
        "/v1/redemptions",
        json={"reward_id": reward_id, "member": member, "nonce": nonce,
              "deadline": deadline, "signature": "0x" + signature.hex()},
        headers=gateway.headers(0),
    )  # fmt: skip


def test_points_issued_and_mined_are_not_pending_too(gateway: Gateway) -> None:
    customer, address, points = customer_with_points(gateway)
    wallet = wallet_headers(gateway, customer)
    body = purchase(customer, f"o-{uuid.uuid4().hex[:8]}", "200.00")
    body["occurred_at"] = datetime.now(UTC).isoformat()
    accepted = gateway.client.post("/v1/events", json=body, headers=gateway.headers(0))
    assert accepted.status_code == 202, accepted.text
    earned = int(accepted.json()["points"])
    assert earned > 0
    assert points_of(me(gateway, wallet)) == (points, points, earned, 0)
    with gateway.context.sessions() as session:
        issue = session.scalar(
            select(ChainOp.id).where(
                ChainOp.event_id == accepted.json()["id"], ChainOp.kind == "issue"
            )
        )
    assert issue is not None
    send_one(gateway, issue)
    assert op(gateway, issue).status == "sent"
    assert chain(gateway, address)[0] == points + earned
    # In the balance at the head: no longer pending, on both APIs.
    assert points_of(me(gateway, wallet)) == (points + earned, points + earned, 0, 0)
    assert points_of(merchant_view(gateway, customer)) == (points + earned, points + earned, 0, 0)
    settle(gateway)
    assert points_of(me(gateway, wallet)) == (points + earned, points + earned, 0, 0)


def test_a_view_at_an_earlier_block_counts_what_that_block_does_not_include(
    gateway: Gateway,
) -> None:
    """After the worker confirmed a transfer and an issuance, a view at the block before
    each still counts it: not in that block's balance, so queued (or pending) there."""
    customer, address, points = customer_with_points(gateway)
    wallet = wallet_headers(gateway, customer)
    sent = gateway.client.post(
        "/v1/wallet/transfers", json={"to": Account.create().address, "amount": 9}, headers=wallet
    )
    assert sent.status_code == 202, sent.text
    block = send_one(gateway, sent.json()["id"])
    settle(gateway)
    confirmed = op(gateway, sent.json()["id"])
    assert (confirmed.status, confirmed.block_number) == ("confirmed", block)
    context = gateway.context
    with context.sessions() as session:
        before = member_state(context, session, address, block - 1)
        after = member_state(context, session, address, block)
        issued = session.scalars(
            select(ChainOp).where(ChainOp.member_address == address, ChainOp.kind == "issue")
        ).one()
        assert issued.block_number is not None
        pending_before = pending_issuance(context, session, address, issued.block_number - 1)
        pending_at = pending_issuance(context, session, address, issued.block_number)
    assert (before.balance, before.chain_nonce, before.queued_actions) == (points, 0, 1)
    assert (after.balance, after.chain_nonce, after.queued_actions) == (points - 9, 1, 0)
    # Either block gives the same spendable points and next nonce.
    assert (before.spendable, before.next_nonce) == (after.spendable, after.next_nonce)
    assert (after.spendable, after.next_nonce) == (points - 9, 1)
    assert (pending_before, pending_at) == (points, 0)
