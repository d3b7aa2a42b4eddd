"""Abuse cases: what a merchant, a member's signature, a key or a log line must not allow.

Each case is a test here, or names the existing test that already covers it
(docs/RELIABILITY.md has the full map):

- a merchant above its mint cap, touching another merchant's customers, reading
  its members and redemptions, releasing or rejecting its held events;
- a member's signature replayed on the same chain, for another chain id or
  another contract, or after its deadline;
- wrong, rotated and suspended API keys; a paused network; a frozen member;
- anvil's published development keys on a chain that is not the devnet;
- secrets (API keys, private keys, the Fernet key, webhook secrets) in logs or
  responses during a whole flow;
- rate limits per API key: 429 ``rate_limited`` with ``Retry-After``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from factories import devnet_settings
from gateway_kit import Gateway, purchase
from pydantic import SecretStr
from sqlalchemy import func, select
from typer.testing import CliRunner

from chain import governance, signing
from chain.config import ANVIL_MNEMONIC, anvil_dev_key
from chain.deploy import deploy, operator_sender
from chain.devnet import Devnet, free_port, rpc_call
from chain.errors import ConfigError, DeploymentError, DevKeyRefused
from chain.signers import resolve_key
from gateway.cli import app as cli
from gateway.crypto import SecretBox
from gateway.models import ChainOp, ChainTx, Event, Member, Merchant, Redemption, Reward
from gateway.ratelimit import RateLimiter
from gateway.services.members import custodial_key, get_link, set_frozen
from gateway.services.merchants import NewMerchant, register, rotate_key, suspend
from gateway.services.rewards import redemption_message
from gateway.settings import resolve_secret_key
from gateway.webhooks.dispatcher import WebhookDispatcher


def bearer(merchant: NewMerchant) -> dict[str, str]:
    return {"Authorization": f"Bearer {merchant.api_key}", "Idempotency-Key": uuid.uuid4().hex}


def code_of(response: Any) -> str:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}, body
    return str(body["error"]["code"])


def count(gateway: Gateway, model: Any) -> int:
    with gateway.context.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def earn(gateway: Gateway, customer: str, amount: str = "200.00", merchant: int = 0) -> str:
    """A confirmed purchase for the customer; returns the customer's member address."""
    currency = "EUR" if merchant == 0 else "JPY"
    body = purchase(customer, f"o-{uuid.uuid4().hex[:8]}", amount, currency)
    response = gateway.client.post("/v1/events", json=body, headers=gateway.headers(merchant))
    assert response.status_code == 202, response.text
    gateway.settle()
    return str(response.json()["member_address"])


def run_worker(gateway: Gateway, cycles: int = 5) -> None:
    """A few worker cycles (``settle`` would wait for ops that are rightly held back)."""
    for _ in range(cycles):
        gateway.worker.run_once()


def event_status(gateway: Gateway, event_id: str, headers: dict[str, str]) -> str:
    return str(gateway.client.get(f"/v1/events/{event_id}", headers=headers).json()["status"])


def issue_op_status(gateway: Gateway, event_id: str) -> str:
    with gateway.context.sessions() as session:
        return str(
            session.scalar(
                select(ChainOp.status).where(ChainOp.event_id == event_id, ChainOp.kind == "issue")
            )
        )


def issue_txs(gateway: Gateway) -> int:
    with gateway.context.sessions() as session:
        return int(
            session.scalar(select(func.count(ChainTx.id)).where(ChainTx.kind == "issue")) or 0
        )


def member_key(gateway: Gateway, merchant: int, customer: str) -> str:
    """The custodial key the gateway keeps for the customer (to sign as the member)."""
    with gateway.context.sessions() as session:
        link = get_link(session, gateway.merchants[merchant].id, customer)
        member = session.get(Member, link.member_id)
        assert member is not None
        return custodial_key(gateway.context.box, member)


def new_reward(gateway: Gateway, merchant: int = 0, cost: int = 10) -> str:
    response = gateway.client.post(
        "/v1/rewards",
        json={"name": f"Reward {uuid.uuid4().hex[:4]}", "cost_points": cost},
        headers=gateway.headers(merchant),
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def signed_redemption(
    gateway: Gateway,
    reward_id: str,
    address: str,
    key: str,
    *,
    chain_id: int | None = None,
    contract: str | None = None,
    deadline: int | None = None,
) -> dict[str, Any]:
    """A member's redemption consent, signed for the hub on this chain unless told otherwise."""
    link = gateway.context.link
    nonce = link.network.hub.nonce_of(address)
    deadline = int(time.time()) + 600 if deadline is None else deadline
    with gateway.context.sessions() as session:
        reward = session.get(Reward, reward_id)
        assert reward is not None
        message = redemption_message(gateway.context, reward, address, nonce, deadline)
    signature = signing.sign(
        key,
        "Redemption",
        link.chain_id if chain_id is None else chain_id,
        contract or link.network.hub.address,
        message,
    )
    return {
        "reward_id": reward_id,
        "member": address,
        "nonce": nonce,
        "deadline": deadline,
        "signature": "0x" + signature.hex(),
    }


def held_event(gateway: Gateway, merchant: int) -> dict[str, Any]:
    """An event the clustering rule holds for review (many accounts on one device)."""
    device = f"shared-{uuid.uuid4().hex[:6]}"
    currency = "EUR" if merchant == 0 else "JPY"
    for i in range(12):
        body = purchase(f"{device}-{i}", f"{device}-{i}", currency=currency, device_id=device)
        answer = gateway.client.post("/v1/events", json=body, headers=gateway.headers(merchant))
        assert answer.status_code == 202, answer.text
        if answer.json()["status"] == "held":
            return dict(answer.json())
    raise AssertionError("clustering never held an event")


# ---------------------------------------------------------------------- merchants


@pytest.fixture(scope="module")
def capped(gateway: Gateway) -> NewMerchant:
    """A third merchant that may mint 300 points per cap period."""
    merchant = register(gateway.context, "Capped Goods", "EUR", cap=300)
    gateway.settle()  # its first rule set
    return merchant


def test_a_merchant_cannot_mint_above_its_cap(gateway: Gateway, capped: NewMerchant) -> None:
    hub, token = gateway.context.link.network.hub, gateway.context.link.network.token
    first = gateway.client.post(
        "/v1/events", json=purchase("cap-1", "CAP-1", "100.00"), headers=bearer(capped)
    ).json()
    gateway.settle()
    second = gateway.client.post(
        "/v1/events", json=purchase("cap-2", "CAP-2", "500.00"), headers=bearer(capped)
    ).json()
    assert first["points"] <= 300 < first["points"] + second["points"]
    gateway.settle()
    headers = bearer(capped)
    confirmed = gateway.client.get(f"/v1/events/{first['id']}", headers=headers).json()
    refused = gateway.client.get(f"/v1/events/{second['id']}", headers=headers).json()
    assert confirmed["status"] == "confirmed"
    assert refused["status"] == "failed"
    assert "LoyaltyNetworkMintCapExceeded" in (refused["reason"] or ""), refused
    assert token.balance_of(second["member_address"]) == 0
    assert hub.merchant(capped.id).minted_in_period == first["points"] <= 300


def test_an_issuance_over_this_periods_cap_waits_for_the_next_period(gateway: Gateway) -> None:
    link, settings = gateway.context.link, gateway.context.settings
    hub, token = link.network.hub, link.network.token
    admin = operator_sender(settings, link.w3, "admin")
    merchant = register(gateway.context, "Waiting Goods", "EUR", cap=300)
    gateway.settle()
    period = 60
    governance.apply(link.network.timelock, admin, hub.functions.setCapPeriod(period))
    try:
        # Start at the beginning of a cap period, so both events fall in the same one.
        now = int(link.w3.eth.get_block("latest")["timestamp"])
        rpc_call(settings.rpc_url, "evm_setNextBlockTimestamp", [(now // period + 1) * period])
        rpc_call(settings.rpc_url, "evm_mine", [])
        first = gateway.client.post(
            "/v1/events", json=purchase("wait-1", "WAIT-1", "100.00"), headers=bearer(merchant)
        ).json()
        gateway.settle()
        second = gateway.client.post(
            "/v1/events", json=purchase("wait-2", "WAIT-2", "150.00"), headers=bearer(merchant)
        ).json()
        assert second["points"] <= 300 < first["points"] + second["points"]
        issued = issue_txs(gateway)
        run_worker(gateway)
        # Its badge may go out; its points wait, unsent.
        assert event_status(gateway, second["id"], bearer(merchant)) in ("accepted", "submitted")
        assert issue_op_status(gateway, second["id"]) == "pending"
        assert issue_txs(gateway) == issued  # held back: nothing sent
        assert token.balance_of(second["member_address"]) == 0

        rpc_call(settings.rpc_url, "evm_increaseTime", [period])
        rpc_call(settings.rpc_url, "evm_mine", [])
        gateway.settle()
        assert event_status(gateway, second["id"], bearer(merchant)) == "confirmed"
        assert token.balance_of(second["member_address"]) == second["points"]
        assert hub.merchant(merchant.id).minted_in_period == second["points"]
    finally:
        governance.apply(link.network.timelock, admin, hub.functions.setCapPeriod(24 * 3600))


def test_merchant_velocity_limits_count_events_of_the_same_request_and_of_earlier_ones(
    gateway: Gateway,
) -> None:
    """The merchant-wide limits (events per minute, points per day) count the events a
    batch accepts before each of its events, and those of earlier requests."""
    merchant = register(gateway.context, "Busy Goods", "EUR")
    gateway.settle()  # its first rule set
    headers = {"Authorization": f"Bearer {merchant.api_key}"}
    rules = gateway.client.get("/v1/rules", headers=headers).json()["rules"]
    rules["velocity"].update(merchant_events_per_minute=3, action="reject")
    gateway.client.put("/v1/rules", json=rules, headers=headers).raise_for_status()
    gateway.settle()  # published: it applies
    batch = [
        {"idempotency_key": uuid.uuid4().hex, "event": purchase(f"busy-{i}", f"BUSY-{i}")}
        for i in range(5)
    ]
    answers = gateway.client.post(
        "/v1/events/batch", json={"events": batch}, headers=headers
    ).json()["data"]
    assert [a["status_code"] for a in answers] == [202, 202, 202, 422, 422], answers
    assert answers[3]["error"]["details"]["reason"] == "velocity_merchant"
    late = gateway.client.post(
        "/v1/events", json=purchase("busy-9", "BUSY-9"), headers=bearer(merchant)
    )
    assert code_of(late) == "event_rejected" and late.json()["error"]["details"]["reason"] == (
        "velocity_merchant"
    )

    points = sum(a["event"]["points"] for a in answers[:3])
    rules["velocity"].update(merchant_events_per_minute=None, merchant_points_per_day=points + 1)
    gateway.client.put("/v1/rules", json=rules, headers=headers).raise_for_status()
    gateway.settle()
    again = gateway.client.post(
        "/v1/events", json=purchase("busy-10", "BUSY-10"), headers=bearer(merchant)
    )
    assert code_of(again) == "event_rejected", again.text
    assert "merchant points per day" in again.json()["error"]["message"]
    with gateway.context.sessions() as session:
        stored = session.scalar(
            select(func.count(Event.id)).where(Event.merchant_id == merchant.id)
        )
    assert stored == 3  # refusals leave nothing behind


def test_a_merchant_cannot_touch_another_merchants_customers(gateway: Gateway) -> None:
    token = gateway.context.link.network.token
    address = earn(gateway, "shared-cust", merchant=0)
    balance = token.balance_of(address)
    assert balance > 0
    # B cannot see A's customer, nor claw back A's order, nor reach A's member another way.
    assert (
        gateway.client.get("/v1/members/shared-cust", headers=gateway.headers(1)).status_code == 404
    )
    with gateway.context.sessions() as session:
        order = session.scalars(
            select(Event.order_id).where(Event.member_id == get_link(
                session, gateway.merchants[0].id, "shared-cust").member_id)
        ).first()  # fmt: skip
    refund = {"type": "refund", "customer_id": "shared-cust", "occurred_at": "2026-11-20T11:00:00Z",
              "refund": {"order_id": order}}  # fmt: skip
    response = gateway.client.post("/v1/events", json=refund, headers=gateway.headers(1))
    assert response.status_code == 422, response.text
    link = gateway.client.post("/v1/members/shared-cust/login-link", headers=gateway.headers(1))
    session = gateway.client.post(
        "/v1/wallet/login-link", json={"token": link.json()["url"].split("#login=")[1]}
    )
    gateway.client.cookies.clear()
    assert session.json()["address"] != address  # B's customer of that name is another member
    theirs = earn(gateway, "shared-cust", "1000", merchant=1)
    assert theirs != address
    gateway.settle()
    assert token.balance_of(address) == balance


def test_a_merchant_cannot_release_reject_or_read_another_merchants_held_event(
    gateway: Gateway,
) -> None:
    held = held_event(gateway, merchant=1)
    for action in ("release", "reject"):
        response = gateway.client.post(
            f"/v1/events/{held['id']}/{action}", headers=gateway.headers(0)
        )
        assert (response.status_code, code_of(response)) == (404, "not_found")
    assert (
        gateway.client.get(f"/v1/events/{held['id']}", headers=gateway.headers(0)).status_code
        == 404
    )
    still = gateway.client.get(f"/v1/events/{held['id']}", headers=gateway.headers(1)).json()
    assert still["status"] == "held"


def test_a_merchant_cannot_read_or_redeem_at_another_merchants_rewards(gateway: Gateway) -> None:
    address = earn(gateway, "redeemer-b", "3000", merchant=1)
    key = member_key(gateway, 1, "redeemer-b")
    reward = new_reward(gateway, merchant=1)
    body = signed_redemption(gateway, reward, address, key)
    # A cannot submit B's reward, even with the member's valid consent...
    response = gateway.client.post("/v1/redemptions", json=body, headers=gateway.headers(0))
    assert (response.status_code, code_of(response)) == (404, "not_found")
    # ...and cannot read B's redemption.
    redemption = gateway.client.post("/v1/redemptions", json=body, headers=gateway.headers(1))
    assert redemption.status_code == 202, redemption.text
    path = f"/v1/redemptions/{redemption.json()['id']}"
    assert gateway.client.get(path, headers=gateway.headers(0)).status_code == 404
    assert gateway.client.get(path, headers=gateway.headers(1)).status_code == 200
    gateway.settle()


# ---------------------------------------------------------------------- member signatures


@pytest.fixture(scope="module")
def spender(gateway: Gateway) -> tuple[str, str, str]:
    """A member of merchant A with points, its key, and a reward of A costing 10."""
    address = earn(gateway, "spender", "500.00")
    return address, member_key(gateway, 0, "spender"), new_reward(gateway, cost=10)


@pytest.mark.parametrize(
    ("signed_for", "code"),
    [
        pytest.param({"chain_id": 1}, "invalid_signature", id="another chain id"),
        pytest.param({"contract": "0x" + "5" * 40}, "invalid_signature", id="another contract"),
        # As the hub says (LoyaltyNetworkSignatureExpired), and as the wallet did already.
        pytest.param({"deadline": 1_700_000_000}, "signature_expired", id="after its deadline"),
    ],
)
def test_a_signature_for_another_chain_contract_or_time_is_refused(
    gateway: Gateway, spender: tuple[str, str, str], signed_for: dict[str, Any], code: str
) -> None:
    address, key, reward = spender
    token = gateway.context.link.network.token
    body = signed_redemption(gateway, reward, address, key, **signed_for)
    before, balance = count(gateway, Redemption), token.balance_of(address)
    response = gateway.client.post("/v1/redemptions", json=body, headers=gateway.headers(0))
    assert (response.status_code, code_of(response)) == (422, code)
    gateway.settle()
    assert count(gateway, Redemption) == before
    assert token.balance_of(address) == balance


def test_a_signature_used_once_is_refused_when_replayed(
    gateway: Gateway, spender: tuple[str, str, str]
) -> None:
    address, key, reward = spender
    token = gateway.context.link.network.token
    body = signed_redemption(gateway, reward, address, key)
    first = gateway.client.post("/v1/redemptions", json=body, headers=gateway.headers(0))
    assert first.status_code == 202, first.text
    queued = gateway.client.post("/v1/redemptions", json=body, headers=gateway.headers(0))
    assert (queued.status_code, code_of(queued)) == (422, "invalid_signature")  # still queued
    gateway.settle()
    balance = token.balance_of(address)
    mined = gateway.client.post("/v1/redemptions", json=body, headers=gateway.headers(0))
    assert (mined.status_code, code_of(mined)) == (422, "invalid_signature")  # nonce used on chain
    gateway.settle()
    assert token.balance_of(address) == balance
    done = gateway.client.get(f"/v1/redemptions/{first.json()['id']}", headers=gateway.headers(0))
    assert done.json()["status"] == "confirmed"


# ---------------------------------------------------------------------- keys


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "pn_live_x", "Bearer pn_live_"],
)
def test_a_missing_or_wrong_api_key_is_401_and_writes_nothing(
    gateway: Gateway, authorization: str | None
) -> None:
    headers = {"Idempotency-Key": uuid.uuid4().hex}
    if authorization is not None:
        headers["Authorization"] = authorization
    before = count(gateway, Event)
    response = gateway.client.post("/v1/events", json=purchase("k-1", "K-1"), headers=headers)
    assert (response.status_code, code_of(response)) == (401, "unauthorized")
    assert count(gateway, Event) == before


def test_another_merchants_key_with_a_suffix_or_in_other_case_is_refused(gateway: Gateway) -> None:
    key = gateway.merchants[0].api_key
    for wrong in (key + "x", key[:-1], key.upper(), f"{key} {key}"):
        response = gateway.client.get("/v1/rules", headers={"Authorization": f"Bearer {wrong}"})
        assert (response.status_code, code_of(response)) == (401, "unauthorized"), wrong


def test_rotating_a_key_revokes_the_old_one_at_once(gateway: Gateway) -> None:
    merchant = register(gateway.context, "Rotating Co", "EUR")
    gateway.settle()
    assert gateway.client.get("/v1/rules", headers=bearer(merchant)).status_code == 200
    new_key = rotate_key(gateway.context, merchant.id)
    old = gateway.client.get("/v1/rules", headers=bearer(merchant))
    assert (old.status_code, code_of(old)) == (401, "unauthorized")
    new = gateway.client.get("/v1/rules", headers={"Authorization": f"Bearer {new_key}"})
    assert new.status_code == 200


def test_a_suspended_merchants_key_is_refused(gateway: Gateway) -> None:
    merchant = register(gateway.context, "Suspended Co", "EUR")
    gateway.settle()
    suspend(gateway.context, merchant.id)
    response = gateway.client.post(
        "/v1/events", json=purchase("s-1", "S-1"), headers=bearer(merchant)
    )
    assert (response.status_code, code_of(response)) == (403, "forbidden")
    assert gateway.context.link.network.hub.merchant(merchant.id).status.name == "SUSPENDED"


def test_dev_keys_are_refused_on_a_chain_that_is_not_the_devnet(tmp_path: Path) -> None:
    with Devnet(port=free_port(), chain_id=4242, log_file=tmp_path / "anvil.log") as node:
        keys = {
            f"{which}_key": SecretStr(anvil_dev_key(index))
            for index, which in enumerate(("operator", "guardian", "admin"))
        }
        secret = SecretStr("s" * 40)
        mainnet_like = devnet_settings(tmp_path, node, chain_id=4242, secret_key=secret, **keys)
        for which in ("operator", "guardian", "admin"):
            with pytest.raises(DevKeyRefused) as refused:
                resolve_key(mainnet_like, which)
            assert refused.value.chain_id == 4242
        with pytest.raises(DevKeyRefused):
            deploy(mainnet_like)
        keyless = devnet_settings(tmp_path, node, chain_id=4242)
        with pytest.raises(ConfigError, match="POINTSNET_OPERATOR_KEY must be set"):
            resolve_key(keyless, "operator")
        with pytest.raises(ConfigError, match="POINTSNET_SECRET_KEY must be set"):
            resolve_secret_key(keyless)
        # Claiming to be the devnet does not help: the node's chain id is checked.
        with pytest.raises(DeploymentError, match="is chain 4242"):
            deploy(devnet_settings(tmp_path, node))
    assert ANVIL_MNEMONIC.startswith("test test")  # the keys refused are the published ones


# ---------------------------------------------------------------------- pause and freeze


def test_nothing_moves_while_the_network_is_paused(
    gateway: Gateway, spender: tuple[str, str, str]
) -> None:
    address, key, reward = spender
    link = gateway.context.link
    hub, token = link.network.hub, link.network.token
    guardian = operator_sender(gateway.context.settings, link.w3, "guardian")
    url = gateway.client.post("/v1/members/spender/login-link", headers=gateway.headers()).json()
    wallet = gateway.client.post(
        "/v1/wallet/login-link", json={"token": url["url"].split("#login=")[1]}
    ).json()
    gateway.client.cookies.clear()
    supply, balance = token.total_supply(), token.balance_of(address)
    guardian.transact(hub.functions.pause())
    try:
        event = gateway.client.post(
            "/v1/events", json=purchase("spender", f"P-{uuid.uuid4().hex[:6]}"),
            headers=gateway.headers(),
        )  # fmt: skip
        assert event.status_code == 202, event.text  # accepted: the gateway queues it
        issued = issue_txs(gateway)
        run_worker(gateway)
        redemption = gateway.client.post(
            "/v1/redemptions",
            json=signed_redemption(gateway, reward, address, key),
            headers=gateway.headers(),
        )
        assert (redemption.status_code, code_of(redemption)) == (503, "network_paused")
        transfer = gateway.client.post(
            "/v1/wallet/transfers",
            json={"to": "0x" + "ab" * 20, "amount": 1},
            headers={"Authorization": f"Bearer {wallet['token']}"},
        )
        assert (transfer.status_code, code_of(transfer)) == (503, "network_paused")
        assert token.total_supply() == supply and token.balance_of(address) == balance
        # The issuance waits for the unpause: accepted, nothing sent.
        assert event_status(gateway, event.json()["id"], gateway.headers()) == "accepted"
        assert issue_txs(gateway) == issued
    finally:
        guardian.transact(hub.functions.unpause())
    gateway.settle()
    assert event_status(gateway, event.json()["id"], gateway.headers()) == "confirmed"
    assert token.balance_of(address) == balance + event.json()["points"]
    assert token.total_supply() == supply + event.json()["points"]


def test_a_frozen_member_cannot_redeem_through_a_merchant(
    gateway: Gateway, spender: tuple[str, str, str]
) -> None:
    # Frozen members' events: test_api.py::test_a_frozen_members_events_are_refused;
    # their wallet transfers: tests/wallet/test_wallet_api.py::test_a_frozen_member_cannot_transfer.
    address, key, reward = spender
    with gateway.context.sessions() as session, session.begin():
        set_frozen(session, gateway.merchants[0].id, "spender", True)
    try:
        before = count(gateway, Redemption)
        response = gateway.client.post(
            "/v1/redemptions",
            json=signed_redemption(gateway, reward, address, key),
            headers=gateway.headers(),
        )
        assert (response.status_code, code_of(response)) == (403, "member_frozen")
        assert count(gateway, Redemption) == before
    finally:
        with gateway.context.sessions() as session, session.begin():
            set_frozen(session, gateway.merchants[0].id, "spender", False)


# ---------------------------------------------------------------------- rate limits


def test_rate_limits_are_per_api_key_with_429_and_retry_after(gateway: Gateway) -> None:
    original = gateway.context.limiter
    gateway.context.limiter = RateLimiter(per_minute=3)
    try:
        for _ in range(3):
            assert gateway.client.get("/v1/rules", headers=gateway.headers(0)).status_code == 200
        before = count(gateway, Event)
        limited = gateway.client.post(
            "/v1/events", json=purchase("rl-1", "RL-1"), headers=gateway.headers(0)
        )
        assert (limited.status_code, code_of(limited)) == (429, "rate_limited")
        assert limited.headers["Retry-After"] == "20"  # one request's refill at 3 a minute
        assert limited.json()["error"]["details"] == {"retry_after": 20, "limit_per_minute": 3}
        assert count(gateway, Event) == before
        # Another key has a bucket of its own.
        assert gateway.client.get("/v1/rules", headers=gateway.headers(1)).status_code == 200
        # Sign-in attempts are limited per client address, the same way.
        codes = [gateway.client.post("/v1/wallet/siwe/nonce").status_code for _ in range(4)]
        assert codes == [201, 201, 201, 429]
        again = gateway.client.post("/v1/wallet/siwe/nonce")
        assert code_of(again) == "rate_limited" and int(again.headers["Retry-After"]) >= 1
    finally:
        gateway.context.limiter = original


# ---------------------------------------------------------------------- secrets


class _Receiver(BaseHTTPRequestHandler):
    received: ClassVar[list[bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Receiver.received.append(str(dict(self.headers)).encode() + body)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        return


@pytest.fixture
def webhook_receiver() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", free_port()), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/hook"
    finally:
        server.shutdown()


def secret_forms(secret: str | bytes) -> list[str]:
    """How a secret could show up in text: as given, hex, without 0x, base64."""
    raw = secret.encode() if isinstance(secret, str) else secret
    forms = {raw.decode("latin-1"), raw.hex(), base64.b64encode(raw).decode()}
    if isinstance(secret, str):
        forms |= {secret.removeprefix("0x"), secret.removeprefix("0x").lower()}
    return sorted(f for f in forms if len(f) >= 16)


def test_no_secret_appears_in_logs_or_responses(
    gateway: Gateway,
    webhook_receiver: str,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)
    responses: list[str] = []
    shown_once: list[str] = []  # the answers that exist to show a secret once

    def call(method: str, path: str, *, once: bool = False, **kwargs: Any) -> Any:
        response = gateway.client.request(method, path, **kwargs)
        (shown_once if once else responses).append(f"{response.headers}\n{response.text}")
        return response

    # merchant add, through the CLI, on this gateway's data and chain
    settings = gateway.context.settings
    for name, value in {
        "DATA_DIR": str(settings.data_dir), "RPC_URL": settings.rpc_url,
        "DEVNET_PORT": str(settings.devnet_port), "TIMELOCK_DELAY": "0",
        "DATABASE_URL": settings.database_url or "",
    }.items():  # fmt: skip
        if value:
            monkeypatch.setenv(f"POINTSNET_{name}", value)
    added = CliRunner().invoke(cli, ["merchant", "add", "Secretive Co", "--currency", "EUR",
                                     "--json"])  # fmt: skip
    assert added.exit_code == 0, added.output
    api_key = json.loads(added.output)["api_key"]
    shown_once.append(added.output)
    gateway.settle()
    headers = {"Authorization": f"Bearer {api_key}"}

    # webhooks, custodial members, their wallet, a transfer, errors along the way
    hook = call("PUT", "/v1/webhook", once=True, json={"url": webhook_receiver}, headers=headers)
    webhook_secret = hook.json()["secret"]
    for i in range(3):
        answer = call("POST", "/v1/events", json=purchase(f"sec-{i}", f"SEC-{i}", "80.00"),
                      headers={**headers, "Idempotency-Key": f"sec-{i}"})  # fmt: skip
        assert answer.status_code == 202, answer.text
    gateway.settle()
    call("GET", "/v1/members/sec-0", headers=headers)
    link = call("POST", "/v1/members/sec-0/login-link", headers=headers).json()
    session = call("POST", "/v1/wallet/login-link", json={"token": link["url"].split("#login=")[1]})
    wallet = {"Authorization": f"Bearer {session.json()['token']}"}
    gateway.client.cookies.clear()
    call("GET", "/v1/wallet/me", headers=wallet)
    call("POST", "/v1/wallet/transfers", json={"to": "0x" + "cd" * 20, "amount": 5}, headers=wallet)
    gateway.settle()
    call("GET", "/v1/wallet/history", headers=wallet)
    call("POST", "/v1/events", content=b'{"type": ', headers={**headers, "Idempotency-Key": "x"})
    call("GET", "/v1/rules", headers={"Authorization": f"Bearer {api_key}x"})
    call("GET", "/v1/wallet/me", headers={"Authorization": "Bearer wrong"})
    WebhookDispatcher(
        gateway.context.sessions, gateway.context.box, allow_private=True
    ).deliver_due()
    assert _Receiver.received, "no webhook was delivered"
    rotated = rotate_key(gateway.context, json.loads(added.output)["id"])

    # every secret of the flow
    box: SecretBox = gateway.context.box
    secrets: dict[str, str | bytes] = {"API key": api_key, "rotated API key": rotated,
                                       "webhook secret": webhook_secret}  # fmt: skip
    for merchant in gateway.merchants:
        secrets[f"API key of {merchant.name}"] = merchant.api_key
    for which in ("operator", "guardian", "admin"):
        secrets[f"{which} key"] = resolve_key(settings, which)
    gateway_secret = resolve_secret_key(settings)
    secrets["gateway secret"] = gateway_secret
    secrets["gateway secret file"] = (Path(settings.data_dir) / "secret.key").read_text().strip()
    fernet = base64.urlsafe_b64encode(
        hashlib.sha256(b"pointsnet-secretbox-v1" + gateway_secret).digest()
    )
    secrets["Fernet key"] = fernet.decode()
    with gateway.context.sessions() as db:
        for member in db.scalars(select(Member).where(Member.key_enc.is_not(None))):
            # Stored (encrypted) and derived keys alike.
            secrets[f"custodial key of {member.address}"] = custodial_key(box, member)
        for merchant in db.scalars(select(Merchant).where(Merchant.signer_key_enc.is_not(None))):
            secrets[f"signer key of {merchant.name}"] = box.decrypt(merchant.signer_key_enc).hex()
    assert len(secrets) > 12

    captured = capsys.readouterr()
    logs = caplog.text + "\n".join(
        f"{r.getMessage()} {r.exc_text or ''} {r.args!r}" for r in caplog.records
    )
    assert caplog.records, "nothing was logged: the scan would prove nothing"
    haystacks = {
        "logs": logs,
        "stdout/stderr": captured.out + captured.err,
        "responses": "\n".join(responses),
        "webhook deliveries": b"\n".join(_Receiver.received).decode("latin-1"),
    }
    leaks = [
        f"{what} in {where}"
        for what, secret in secrets.items()
        for where, text in haystacks.items()
        if any(form in text for form in secret_forms(secret))
    ]
    assert not leaks, leaks
    # The answers that show a secret once show exactly theirs.
    assert api_key in shown_once[0] and webhook_secret in shown_once[1]
