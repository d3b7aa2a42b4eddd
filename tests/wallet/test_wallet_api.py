"""The wallet's API: sign-in, sessions, the member's view, gasless actions, links, claims.

Real anvil, real contracts, real database, the real app (see gateway_kit).  Members
sign here exactly as the wallet page does in the browser.
"""

from __future__ import annotations

import importlib
import pkgutil
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from eth_account import Account
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from sqlalchemy import update
from wallet_kit import personal_sign, siwe_message, typed_sign

import gateway.api.routes as routes_package
from gateway.api.routes import wallet as wallet_routes
from gateway.models import CustomerLink, Member, Reward, WalletChallenge, WalletSession
from gateway.services.accounts import CLAIM_MESSAGE, LINK_MESSAGE
from gateway.services.members import custodial_key
from gateway.services.rewards import redemption_message
from tests.gateway.gateway_kit import Gateway, purchase


@dataclass
class SignedIn:
    """A member signed in to the wallet: their key and the session's headers."""

    address: str
    key: str
    headers: dict[str, str]


def sign_in(gateway: Gateway, key: str | None = None) -> SignedIn:
    account = Account.from_key(key) if key else Account.create()
    nonce = gateway.client.post("/v1/wallet/siwe/nonce").json()["nonce"]
    message = siwe_message(account.address, nonce)
    response = gateway.client.post(
        "/v1/wallet/siwe/verify",
        json={"message": message, "signature": personal_sign(account.key, message)},
    )
    assert response.status_code == 200, response.text
    gateway.client.cookies.clear()  # every test names its session explicitly
    token = response.json()["token"]
    return SignedIn(account.address, "0x" + bytes(account.key).hex(), _bearer(token))


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def custodial_session(gateway: Gateway, customer: str, merchant: int = 0) -> SignedIn:
    url = gateway.client.post(
        f"/v1/members/{customer}/login-link", headers=gateway.headers(merchant)
    ).json()["url"]
    response = gateway.client.post("/v1/wallet/login-link", json={"token": url.split("#login=")[1]})
    assert response.status_code == 200, response.text
    gateway.client.cookies.clear()
    body = response.json()
    return SignedIn(body["address"], "", _bearer(body["token"]))


def link(gateway: Gateway, member: SignedIn, customer: str, merchant: int = 0) -> dict[str, Any]:
    code = gateway.client.post(
        f"/v1/members/{customer}/link-code", headers=gateway.headers(merchant)
    ).json()["code"]
    signature = personal_sign(member.key, LINK_MESSAGE.format(code=code))
    response = gateway.client.post(
        "/v1/wallet/link", json={"code": code, "signature": signature}, headers=member.headers
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def earn(gateway: Gateway, customer: str, amount: str = "300.00", merchant: int = 0) -> int:
    """A confirmed purchase for the customer; returns the points it earned."""
    currency = "EUR" if merchant == 0 else "JPY"
    body = purchase(customer, f"o-{uuid.uuid4().hex[:8]}", amount, currency)
    body["occurred_at"] = datetime.now(UTC).isoformat()
    response = gateway.client.post("/v1/events", json=body, headers=gateway.headers(merchant))
    assert response.status_code == 202, response.text
    gateway.settle()
    return int(response.json()["points"])


def member_with_points(gateway: Gateway, amount: str = "300.00") -> tuple[SignedIn, int]:
    member = sign_in(gateway)
    customer = f"c-{uuid.uuid4().hex[:8]}"
    link(gateway, member, customer)
    return member, earn(gateway, customer, amount)


def me(gateway: Gateway, member: SignedIn) -> dict[str, Any]:
    response = gateway.client.get("/v1/wallet/me", headers=member.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


def error_of(response: Any) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


def signed_transfer(
    gateway: Gateway,
    member: SignedIn,
    to: str,
    amount: int,
    *,
    nonce: int | None = None,
    deadline: int | None = None,
    key: str | None = None,
) -> dict[str, Any]:
    hub = gateway.context.link.network.hub
    request = {
        "from": member.address,
        "to": to,
        "amount": amount,
        "nonce": me(gateway, member)["next_nonce"] if nonce is None else nonce,
        "deadline": int(time.time()) + 600 if deadline is None else deadline,
    }
    signature = typed_sign(
        key or member.key, "TransferRequest", gateway.context.link.chain_id, hub.address, request
    )
    return {
        "to": to,
        "amount": amount,
        "nonce": request["nonce"],
        "deadline": request["deadline"],
        "signature": signature,
    }


def new_reward(gateway: Gateway, cost: int, merchant: int = 1) -> dict[str, Any]:
    response = gateway.client.post(
        "/v1/rewards",
        json={"name": f"Reward {uuid.uuid4().hex[:4]}", "cost_points": cost},
        headers=gateway.headers(merchant),
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def signed_redemption(
    gateway: Gateway, member: SignedIn, reward: dict[str, Any], deadline: int | None = None
) -> dict[str, Any]:
    hub = gateway.context.link.network.hub
    nonce = me(gateway, member)["next_nonce"]
    deadline = int(time.time()) + 600 if deadline is None else deadline
    with gateway.context.sessions() as session:
        row = session.get(Reward, reward["id"])
        assert row is not None
        message = redemption_message(gateway.context, row, member.address, nonce, deadline)
    signature = typed_sign(
        member.key, "Redemption", gateway.context.link.chain_id, hub.address, message
    )
    return {"reward_id": reward["id"], "nonce": nonce, "deadline": deadline, "signature": signature}


def expire(gateway: Gateway, model: Any, **where: Any) -> None:
    """Move a stored challenge or session into the past."""
    with gateway.context.sessions() as session, session.begin():
        column = model.expires_at
        clauses = [getattr(model, name) == value for name, value in where.items()]
        session.execute(
            update(model).where(*clauses).values({column: datetime.now(UTC) - timedelta(1)})
        )


# ---------------------------------------------------------------------- config & sign-in


def test_config_names_the_chain_and_contract_members_sign_for(gateway: Gateway) -> None:
    config = gateway.client.get("/v1/wallet/config").json()
    assert config["chain_id"] == gateway.context.link.chain_id
    assert config["hub"] == gateway.context.link.network.hub.address
    assert (config["eip712_name"], config["eip712_version"]) == ("LoyaltyNetwork", "1")
    assert config["tier_names"] == ["Bronze", "Silver", "Gold", "Platinum", "Black"]
    assert "{code}" in config["link_message"]


def test_siwe_sign_in_opens_a_session_sent_as_bearer_or_cookie(gateway: Gateway) -> None:
    account = Account.create()
    nonce = gateway.client.post("/v1/wallet/siwe/nonce")
    assert nonce.status_code == 201 and len(nonce.json()["nonce"]) >= 16
    message = siwe_message(account.address, nonce.json()["nonce"])
    response = gateway.client.post(
        "/v1/wallet/siwe/verify",
        json={"message": message, "signature": personal_sign(account.key, message)},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["address"] == account.address and body["custodial"] is False
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/v1/wallet" in cookie
    assert gateway.client.get("/v1/wallet/me").json()["address"] == account.address  # cookie
    gateway.client.cookies.clear()
    assert me(gateway, SignedIn(account.address, "", _bearer(body["token"])))["balance"] == 0
    with gateway.context.sessions() as session:
        stored = session.query(WalletSession).filter_by(address=account.address).one()
        assert stored.token_hash != body["token"] and body["token"] not in stored.token_hash


def test_siwe_nonce_is_single_use(gateway: Gateway) -> None:
    account = Account.create()
    nonce = gateway.client.post("/v1/wallet/siwe/nonce").json()["nonce"]
    message = siwe_message(account.address, nonce)
    body = {"message": message, "signature": personal_sign(account.key, message)}
    assert gateway.client.post("/v1/wallet/siwe/verify", json=body).status_code == 200
    gateway.client.cookies.clear()
    replay = gateway.client.post("/v1/wallet/siwe/verify", json=body)
    assert error_of(replay) == (401, "siwe_nonce_invalid")


def test_siwe_refuses_an_unknown_or_expired_nonce(gateway: Gateway) -> None:
    account = Account.create()
    message = siwe_message(account.address, "abcdef0123456789")
    body = {"message": message, "signature": personal_sign(account.key, message)}
    assert error_of(gateway.client.post("/v1/wallet/siwe/verify", json=body)) == (
        401,
        "siwe_nonce_invalid",
    )
    nonce = gateway.client.post("/v1/wallet/siwe/nonce").json()["nonce"]
    expire(gateway, WalletChallenge, purpose="siwe")
    message = siwe_message(account.address, nonce)
    body = {"message": message, "signature": personal_sign(account.key, message)}
    assert error_of(gateway.client.post("/v1/wallet/siwe/verify", json=body)) == (
        401,
        "siwe_nonce_invalid",
    )


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"domain": "evil.example"}, "siwe_domain_mismatch"),
        ({"chain_id": 1}, "siwe_chain_mismatch"),
        (
            {
                "issued_at": datetime.now(UTC) - timedelta(hours=1),
                "expires_in": timedelta(minutes=30),
            },
            "siwe_expired",
        ),
        ({"issued_at": datetime.now(UTC) + timedelta(hours=1)}, "siwe_not_yet_valid"),
    ],
)
def test_siwe_refuses_a_message_for_another_site_chain_or_time(
    gateway: Gateway, changes: dict[str, Any], code: str
) -> None:
    account = Account.create()
    nonce = gateway.client.post("/v1/wallet/siwe/nonce").json()["nonce"]
    message = siwe_message(account.address, nonce, **changes)
    response = gateway.client.post(
        "/v1/wallet/siwe/verify",
        json={"message": message, "signature": personal_sign(account.key, message)},
    )
    assert error_of(response) == (401, code)


def test_siwe_refuses_a_signature_by_another_key(gateway: Gateway) -> None:
    account, other = Account.create(), Account.create()
    nonce = gateway.client.post("/v1/wallet/siwe/nonce").json()["nonce"]
    message = siwe_message(account.address, nonce)
    response = gateway.client.post(
        "/v1/wallet/siwe/verify",
        json={"message": message, "signature": personal_sign(other.key, message)},
    )
    assert error_of(response) == (401, "siwe_signature_mismatch")


@pytest.mark.parametrize(
    "breakage",
    ["lowercase address", "no nonce line", "not siwe", "bad time"],
)
def test_siwe_refuses_a_malformed_message(gateway: Gateway, breakage: str) -> None:
    account = Account.create()
    nonce = gateway.client.post("/v1/wallet/siwe/nonce").json()["nonce"]
    message = siwe_message(account.address, nonce)
    if breakage == "lowercase address":
        message = message.replace(account.address, account.address.lower())
    elif breakage == "no nonce line":
        message = "\n".join(line for line in message.split("\n") if not line.startswith("Nonce"))
    elif breakage == "not siwe":
        message = "please sign in\n" * 8
    else:
        message = message.replace("Issued At: ", "Issued At: yesterday")
    response = gateway.client.post(
        "/v1/wallet/siwe/verify",
        json={"message": message, "signature": personal_sign(account.key, message)},
    )
    assert error_of(response) == (422, "siwe_malformed")


def test_siwe_refuses_a_malformed_signature(gateway: Gateway) -> None:
    response = gateway.client.post(
        "/v1/wallet/siwe/verify", json={"message": "x", "signature": "0x1234"}
    )
    assert error_of(response) == (422, "invalid_request")


def test_siwe_refuses_an_address_whose_key_the_gateway_keeps(gateway: Gateway) -> None:
    custodial = custodial_session(gateway, f"k-{uuid.uuid4().hex[:6]}")
    with gateway.context.sessions() as session:
        member = session.query(Member).filter_by(address=custodial.address).one()
        key = custodial_key(gateway.context.box, member)
    nonce = gateway.client.post("/v1/wallet/siwe/nonce").json()["nonce"]
    message = siwe_message(custodial.address, nonce)
    response = gateway.client.post(
        "/v1/wallet/siwe/verify",
        json={"message": message, "signature": personal_sign(key, message)},
    )
    assert error_of(response) == (401, "siwe_custodial_address")


# ---------------------------------------------------------------------- sessions


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/wallet/me"),
        ("GET", "/v1/wallet/history"),
        ("POST", "/v1/wallet/transfers"),
        ("GET", "/v1/wallet/transfers/1"),
        ("POST", "/v1/wallet/redemptions"),
        ("GET", "/v1/wallet/redemptions"),
        ("POST", "/v1/wallet/link"),
        ("POST", "/v1/wallet/claim"),
    ],
)
def test_wallet_endpoints_need_a_session(gateway: Gateway, method: str, path: str) -> None:
    for headers in ({}, _bearer("pnw_not-a-session")):
        response = gateway.client.request(method, path, headers=headers, json={})
        assert error_of(response) == (401, "session_required")


def test_logout_ends_the_session_and_clears_the_cookie(gateway: Gateway) -> None:
    member = sign_in(gateway)
    response = gateway.client.post("/v1/wallet/logout", headers=member.headers)
    assert response.status_code == 204
    assert 'pointsnet_wallet=""' in response.headers["set-cookie"]
    assert error_of(gateway.client.get("/v1/wallet/me", headers=member.headers)) == (
        401,
        "session_required",
    )


def test_an_expired_session_is_refused(gateway: Gateway) -> None:
    member = sign_in(gateway)
    expire(gateway, WalletSession, address=member.address)
    response = gateway.client.get("/v1/wallet/me", headers=member.headers)
    assert error_of(response) == (401, "session_required")
    assert "expired" in response.json()["error"]["message"]


# ---------------------------------------------------------------------- custodial login links


def test_login_link_opens_one_custodial_session_once(gateway: Gateway) -> None:
    customer = f"cust-{uuid.uuid4().hex[:6]}"
    points = earn(gateway, customer)
    response = gateway.client.post(f"/v1/members/{customer}/login-link", headers=gateway.headers(0))
    assert response.status_code == 201, response.text
    url = response.json()["url"]
    assert url.startswith(gateway.context.settings.base_url + "/wallet#login=")
    expires = datetime.fromisoformat(response.json()["expires_at"])
    assert expires - datetime.now(UTC) <= timedelta(minutes=10)
    token = url.split("#login=")[1]
    session = gateway.client.post("/v1/wallet/login-link", json={"token": token})
    assert session.status_code == 200 and session.json()["custodial"] is True
    gateway.client.cookies.clear()
    view = me(gateway, SignedIn(session.json()["address"], "", _bearer(session.json()["token"])))
    assert view["custodial"] is True and view["balance"] == points
    again = gateway.client.post("/v1/wallet/login-link", json={"token": token})
    assert error_of(again) == (401, "login_link_used")


def test_login_link_expires(gateway: Gateway) -> None:
    customer = f"late-{uuid.uuid4().hex[:6]}"
    url = gateway.client.post(
        f"/v1/members/{customer}/login-link", headers=gateway.headers(0)
    ).json()["url"]
    expire(gateway, WalletChallenge, purpose="login")
    response = gateway.client.post("/v1/wallet/login-link", json={"token": url.split("#login=")[1]})
    assert error_of(response) == (401, "login_link_invalid")


def test_login_link_needs_the_merchant_key_and_a_valid_customer_id(gateway: Gateway) -> None:
    assert error_of(gateway.client.post("/v1/members/anyone/login-link")) == (401, "unauthorized")
    response = gateway.client.post("/v1/members/bad id!/login-link", headers=gateway.headers(0))
    assert error_of(response) == (422, "invalid_request")


def test_login_link_is_refused_for_a_customer_with_their_own_wallet(gateway: Gateway) -> None:
    member = sign_in(gateway)
    customer = f"own-{uuid.uuid4().hex[:6]}"
    link(gateway, member, customer)
    response = gateway.client.post(f"/v1/members/{customer}/login-link", headers=gateway.headers(0))
    assert error_of(response) == (409, "member_self_custody")


# ---------------------------------------------------------------------- the member's view


def test_me_shows_chain_balance_tier_progress_badges_and_linked_partners(
    gateway: Gateway,
) -> None:
    member, points = member_with_points(gateway, "200.00")
    view = me(gateway, member)
    assert (
        view["balance"] == points == gateway.context.link.network.token.balance_of(member.address)
    )
    assert view["pending_points"] == 0 and view["spendable"] == points
    tier = view["tier"]
    assert (tier["tier"], tier["tier_name"], tier["next_tier_name"]) == (0, "Bronze", "Silver")
    assert (tier["orders"], tier["orders_needed"], tier["spend_needed"]) == (1, 3, "300")
    assert float(tier["spend"]) > 0 and tier["days_since_last_order"] == 0
    assert [b["key"] for b in view["badges"]] == ["first_order"]
    assert view["badges"][0]["image_url"] == "/v1/badges/1.svg"
    assert view["linked_accounts"] == [{"merchant_id": 1, "merchant_name": "Lumière Paris"}]


def test_pending_points_show_until_the_chain_confirms_them(gateway: Gateway) -> None:
    member = sign_in(gateway)
    customer = f"p-{uuid.uuid4().hex[:6]}"
    link(gateway, member, customer)
    body = purchase(customer, "P-1", "100.00")
    event = gateway.client.post("/v1/events", json=body, headers=gateway.headers(0)).json()
    assert me(gateway, member)["pending_points"] == event["points"]
    gateway.settle()
    assert me(gateway, member)["pending_points"] == 0


# ---------------------------------------------------------------------- transfers


def test_signed_transfer_is_relayed_gasless_and_confirmed(gateway: Gateway) -> None:
    sender, points = member_with_points(gateway)
    receiver = sign_in(gateway)
    response = gateway.client.post(
        "/v1/wallet/transfers",
        json=signed_transfer(gateway, sender, receiver.address, 40),
        headers=sender.headers,
    )
    assert response.status_code == 202, response.text
    transfer = response.json()
    assert transfer["status"] == "submitted" and transfer["from_address"] == sender.address
    assert me(gateway, sender)["spendable"] == points - 40
    assert me(gateway, sender)["next_nonce"] == 1  # the queued signature used nonce 0
    gateway.settle()
    for party in (sender, receiver):
        done = gateway.client.get(f"/v1/wallet/transfers/{transfer['id']}", headers=party.headers)
        assert done.json()["status"] == "confirmed" and done.json()["tx_hash"].startswith("0x")
    token = gateway.context.link.network.token
    assert token.balance_of(sender.address) == points - 40
    assert token.balance_of(receiver.address) == 40
    assert gateway.context.link.network.hub.nonce_of(sender.address) == 1


def test_transfer_is_refused_beyond_the_spendable_balance(gateway: Gateway) -> None:
    sender, points = member_with_points(gateway)
    to = Account.create().address
    first = gateway.client.post(
        "/v1/wallet/transfers",
        json=signed_transfer(gateway, sender, to, points - 10),
        headers=sender.headers,
    )
    assert first.status_code == 202
    response = gateway.client.post(
        "/v1/wallet/transfers",
        json=signed_transfer(gateway, sender, to, 11),
        headers=sender.headers,
    )
    assert error_of(response) == (422, "insufficient_points")
    assert response.json()["error"]["details"] == {"balance": 10, "needed": 11}
    gateway.settle()


def test_transfer_with_a_past_deadline_is_refused_as_expired(gateway: Gateway) -> None:
    sender, _ = member_with_points(gateway)
    body = signed_transfer(gateway, sender, Account.create().address, 5, deadline=1_000)
    response = gateway.client.post("/v1/wallet/transfers", json=body, headers=sender.headers)
    assert error_of(response) == (422, "signature_expired")


def test_transfer_with_a_deadline_too_far_away_is_refused(gateway: Gateway) -> None:
    sender, _ = member_with_points(gateway)
    far = int(time.time()) + 30 * 24 * 3600
    body = signed_transfer(gateway, sender, Account.create().address, 5, deadline=far)
    response = gateway.client.post("/v1/wallet/transfers", json=body, headers=sender.headers)
    assert error_of(response) == (422, "invalid_request")


def test_transfer_with_a_stale_nonce_or_another_key_is_refused(gateway: Gateway) -> None:
    sender, _ = member_with_points(gateway)
    to = Account.create().address
    stale = signed_transfer(gateway, sender, to, 5, nonce=7)
    response = gateway.client.post("/v1/wallet/transfers", json=stale, headers=sender.headers)
    assert error_of(response) == (422, "invalid_signature")
    assert response.json()["error"]["details"] == {"expected": 0, "got": 7}
    forged = signed_transfer(gateway, sender, to, 5, key="0x" + "11" * 32)
    response = gateway.client.post("/v1/wallet/transfers", json=forged, headers=sender.headers)
    assert error_of(response) == (422, "invalid_signature")


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"amount": 5}, "no signature"),
        ({"amount": 0, "nonce": 0, "deadline": 9_999_999_999, "signature": "0x" + "1" * 130}, "0"),
        ({"to": "0x1234", "amount": 5}, "bad address"),
    ],
)
def test_transfer_input_is_validated(gateway: Gateway, body: dict[str, Any], reason: str) -> None:
    sender = sign_in(gateway)
    body = {"to": Account.create().address, **body}
    response = gateway.client.post("/v1/wallet/transfers", json=body, headers=sender.headers)
    assert error_of(response) == (422, "invalid_request"), reason


def test_transfer_to_oneself_is_refused(gateway: Gateway) -> None:
    sender, _ = member_with_points(gateway)
    body = signed_transfer(gateway, sender, sender.address, 5)
    response = gateway.client.post("/v1/wallet/transfers", json=body, headers=sender.headers)
    assert error_of(response) == (422, "invalid_request")


def test_a_frozen_member_cannot_transfer(gateway: Gateway) -> None:
    sender, _ = member_with_points(gateway)
    with gateway.context.sessions() as session, session.begin():
        session.execute(update(Member).where(Member.address == sender.address).values(frozen=True))
    body = signed_transfer(gateway, sender, Account.create().address, 5)
    response = gateway.client.post("/v1/wallet/transfers", json=body, headers=sender.headers)
    assert error_of(response) == (403, "member_frozen")


def test_a_transfer_is_visible_only_to_its_two_parties(gateway: Gateway) -> None:
    sender, _ = member_with_points(gateway)
    body = signed_transfer(gateway, sender, Account.create().address, 5)
    transfer = gateway.client.post("/v1/wallet/transfers", json=body, headers=sender.headers)
    stranger = sign_in(gateway)
    response = gateway.client.get(
        f"/v1/wallet/transfers/{transfer.json()['id']}", headers=stranger.headers
    )
    assert error_of(response) == (404, "not_found")
    gateway.settle()


def test_a_custodial_member_transfers_with_the_key_the_gateway_keeps(gateway: Gateway) -> None:
    customer = f"cu-{uuid.uuid4().hex[:6]}"
    points = earn(gateway, customer)
    member = custodial_session(gateway, customer)
    to = Account.create().address
    signed = signed_transfer(gateway, sign_in(gateway), to, 5)
    refused = gateway.client.post("/v1/wallet/transfers", json=signed, headers=member.headers)
    assert error_of(refused) == (422, "invalid_request")
    response = gateway.client.post(
        "/v1/wallet/transfers", json={"to": to, "amount": 30}, headers=member.headers
    )
    assert response.status_code == 202, response.text
    gateway.settle()
    token = gateway.context.link.network.token
    assert token.balance_of(member.address) == points - 30
    assert token.balance_of(to) == 30


# ---------------------------------------------------------------------- redemptions & catalog


def test_catalog_lists_every_partners_active_rewards_without_a_key(gateway: Gateway) -> None:
    shown, hidden = new_reward(gateway, 10, merchant=0), new_reward(gateway, 20, merchant=1)
    with gateway.context.sessions() as session, session.begin():
        session.execute(update(Reward).where(Reward.id == hidden["id"]).values(active=False))
    catalog = gateway.client.get("/v1/catalog").json()
    ids = {r["id"] for r in catalog["data"]}
    assert shown["id"] in ids and hidden["id"] not in ids
    assert {r["merchant_name"] for r in catalog["data"]} <= {"Lumière Paris", "Sakura Goods"}


def test_redeem_at_another_partner_and_get_the_voucher(gateway: Gateway) -> None:
    member, points = member_with_points(gateway)
    reward = new_reward(gateway, 60, merchant=1)
    response = gateway.client.post(
        "/v1/wallet/redemptions",
        json=signed_redemption(gateway, member, reward),
        headers=member.headers,
    )
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "submitted"
    gateway.settle()
    done = gateway.client.get(
        f"/v1/wallet/redemptions/{response.json()['id']}", headers=member.headers
    ).json()
    assert done["status"] == "confirmed" and len(done["voucher_code"]) == 12
    assert gateway.context.link.network.token.balance_of(member.address) == points - 60
    mine = gateway.client.get("/v1/wallet/redemptions", headers=member.headers).json()
    assert [r["id"] for r in mine["data"]] == [done["id"]]
    stranger = sign_in(gateway)
    hidden = gateway.client.get(f"/v1/wallet/redemptions/{done['id']}", headers=stranger.headers)
    assert error_of(hidden) == (404, "not_found")


def test_redemption_errors_are_clear(gateway: Gateway) -> None:
    member, points = member_with_points(gateway)
    expensive = new_reward(gateway, points + 1)
    body = signed_redemption(gateway, member, expensive)
    response = gateway.client.post("/v1/wallet/redemptions", json=body, headers=member.headers)
    assert error_of(response) == (422, "insufficient_points")
    cheap = new_reward(gateway, 1)
    late = signed_redemption(gateway, member, cheap, deadline=1_000)
    response = gateway.client.post("/v1/wallet/redemptions", json=late, headers=member.headers)
    assert error_of(response) == (422, "signature_expired")
    unknown = {**signed_redemption(gateway, member, cheap), "reward_id": "nope"}
    response = gateway.client.post("/v1/wallet/redemptions", json=unknown, headers=member.headers)
    assert error_of(response) == (404, "not_found")


def test_a_custodial_member_redeems_without_signing(gateway: Gateway) -> None:
    customer = f"cr-{uuid.uuid4().hex[:6]}"
    points = earn(gateway, customer)
    member = custodial_session(gateway, customer)
    reward = new_reward(gateway, 25)
    response = gateway.client.post(
        "/v1/wallet/redemptions", json={"reward_id": reward["id"]}, headers=member.headers
    )
    assert response.status_code == 202, response.text
    gateway.settle()
    assert gateway.context.link.network.token.balance_of(member.address) == points - 25


# ---------------------------------------------------------------------- history


def test_history_lists_every_kind_with_merchant_rule_version_and_tx(gateway: Gateway) -> None:
    member = sign_in(gateway)
    customer = f"h-{uuid.uuid4().hex[:6]}"
    link(gateway, member, customer)
    earn(gateway, customer, "400.00")
    body = purchase(customer, "H-REFUND", "50.00")
    body["occurred_at"] = datetime.now(UTC).isoformat()
    gateway.client.post("/v1/events", json=body, headers=gateway.headers(0))
    gateway.settle()
    refund = {
        "type": "refund",
        "customer_id": customer,
        "occurred_at": datetime.now(UTC).isoformat(),
        "refund": {"order_id": "H-REFUND"},
    }
    assert gateway.client.post("/v1/events", json=refund, headers=gateway.headers(0)).is_success
    other = sign_in(gateway)
    gateway.client.post(
        "/v1/wallet/transfers",
        json=signed_transfer(gateway, member, other.address, 7),
        headers=member.headers,
    )
    gateway.settle()
    gateway.client.post(
        "/v1/wallet/redemptions",
        json=signed_redemption(gateway, member, new_reward(gateway, 9)),
        headers=member.headers,
    )
    gateway.settle()
    history = gateway.client.get("/v1/wallet/history", headers=member.headers).json()
    kinds = [(item["kind"], item["direction"]) for item in history["data"]]
    assert kinds == [
        ("redeem", "out"),
        ("transfer", "out"),
        ("clawback", "out"),
        ("issue", "in"),
        ("badge", "in"),
        ("issue", "in"),
    ]
    assert history["count"] == 6
    issue = history["data"][-1]
    assert issue["merchant_name"] == "Lumière Paris" and issue["rule_version"] == 1
    assert issue["tx_hash"].startswith("0x") and issue["block_number"] > 0
    assert history["data"][0]["reward_name"].startswith("Reward ")
    assert history["data"][1]["counterparty"] == other.address
    assert history["data"][4]["badge_key"] == "first_order"
    received = gateway.client.get("/v1/wallet/history", headers=other.headers).json()
    assert [
        (i["kind"], i["direction"], i["counterparty"], i["amount"]) for i in received["data"]
    ] == [("transfer", "in", member.address, 7)]


def test_history_filters_by_kind_and_pages(gateway: Gateway) -> None:
    member, _ = member_with_points(gateway)
    customer = f"hp-{uuid.uuid4().hex[:6]}"
    link(gateway, member, customer)
    earn(gateway, customer, "10.00")
    issues = gateway.client.get(
        "/v1/wallet/history?kind=issue&per_page=1", headers=member.headers
    ).json()
    assert issues["count"] == 2 and len(issues["data"]) == 1
    page2 = gateway.client.get(
        "/v1/wallet/history?kind=issue&per_page=1&page=2", headers=member.headers
    ).json()
    assert page2["data"][0]["id"] < issues["data"][0]["id"]
    response = gateway.client.get("/v1/wallet/history?kind=tier", headers=member.headers)
    assert error_of(response) == (422, "invalid_request")
    response = gateway.client.get("/v1/wallet/history?per_page=1000", headers=member.headers)
    assert error_of(response) == (422, "invalid_request")


# ---------------------------------------------------------------------- account links


def test_link_code_attaches_the_partner_customer_to_the_member(gateway: Gateway) -> None:
    member = sign_in(gateway)
    customer = f"l-{uuid.uuid4().hex[:6]}"
    code = gateway.client.post(
        f"/v1/members/{customer}/link-code", headers=gateway.headers(0)
    ).json()
    assert len(code["code"]) == 9 and code["code"][4] == "-"
    typed = code["code"].lower().replace("-", " ")
    signature = personal_sign(member.key, LINK_MESSAGE.format(code=code["code"]))
    response = gateway.client.post(
        "/v1/wallet/link", json={"code": typed, "signature": signature}, headers=member.headers
    )
    assert response.json() == {
        "merchant_id": 1,
        "merchant_name": "Lumière Paris",
        "customer_id": customer,
    }
    view = gateway.client.get(f"/v1/members/{customer}", headers=gateway.headers(0)).json()
    assert view["address"] == member.address and view["custodial"] is False
    hidden = gateway.client.get(f"/v1/members/{customer}", headers=gateway.headers(1))
    assert error_of(hidden) == (404, "not_found")  # the other partner learns nothing
    again = gateway.client.post(
        "/v1/wallet/link", json={"code": typed, "signature": signature}, headers=member.headers
    )
    assert error_of(again) == (422, "link_code_invalid")


def test_link_code_expires_and_must_look_like_one(gateway: Gateway) -> None:
    member = sign_in(gateway)
    code = gateway.client.post(
        f"/v1/members/x-{uuid.uuid4().hex[:6]}/link-code", headers=gateway.headers(0)
    ).json()["code"]
    expire(gateway, WalletChallenge, purpose="link")
    signature = personal_sign(member.key, LINK_MESSAGE.format(code=code))
    response = gateway.client.post(
        "/v1/wallet/link", json={"code": code, "signature": signature}, headers=member.headers
    )
    assert error_of(response) == (422, "link_code_invalid")
    response = gateway.client.post(
        "/v1/wallet/link",
        json={"code": "OOOO-1111", "signature": signature},
        headers=member.headers,
    )
    assert error_of(response) == (422, "link_code_invalid")


def test_link_needs_the_session_wallets_signature(gateway: Gateway) -> None:
    member = sign_in(gateway)
    code = gateway.client.post(
        f"/v1/members/s-{uuid.uuid4().hex[:6]}/link-code", headers=gateway.headers(0)
    ).json()["code"]
    forged = personal_sign(Account.create().key, LINK_MESSAGE.format(code=code))
    response = gateway.client.post(
        "/v1/wallet/link", json={"code": code, "signature": forged}, headers=member.headers
    )
    assert error_of(response) == (422, "invalid_signature")


def test_link_is_for_self_custody_sessions(gateway: Gateway) -> None:
    custodial = custodial_session(gateway, f"cs-{uuid.uuid4().hex[:6]}")
    response = gateway.client.post(
        "/v1/wallet/link",
        json={"code": "ABCD-EFGH", "signature": "0x" + "1" * 130},
        headers=custodial.headers,
    )
    assert error_of(response) == (403, "self_custody_required")


def test_link_code_needs_the_merchant_key(gateway: Gateway) -> None:
    response = gateway.client.post("/v1/members/anyone/link-code")
    assert error_of(response) == (401, "unauthorized")


def test_linking_a_custodial_customer_brings_their_points_along(gateway: Gateway) -> None:
    customer = f"m-{uuid.uuid4().hex[:6]}"
    points = earn(gateway, customer)
    custodial = gateway.client.get(f"/v1/members/{customer}", headers=gateway.headers(0)).json()
    member = sign_in(gateway)
    link(gateway, member, customer)
    gateway.settle()
    token = gateway.context.link.network.token
    assert token.balance_of(member.address) == points
    assert token.balance_of(custodial["address"]) == 0
    with gateway.context.sessions() as session:
        old = session.query(Member).filter_by(address=custodial["address"]).one()
        assert old.claimed_by == member.address
    assert me(gateway, member)["claimed_addresses"] == [custodial["address"]]


# ---------------------------------------------------------------------- claims


def test_claim_moves_the_custodial_balance_and_links_to_the_new_wallet(gateway: Gateway) -> None:
    customer = f"cl-{uuid.uuid4().hex[:6]}"
    points = earn(gateway, customer)
    custodial = custodial_session(gateway, customer)
    new = Account.create()
    message = CLAIM_MESSAGE.format(custodial=custodial.address, address=new.address)
    response = gateway.client.post(
        "/v1/wallet/claim",
        json={"address": new.address, "signature": personal_sign(new.key, message)},
        headers=custodial.headers,
    )
    assert response.status_code == 202, response.text
    claim = response.json()
    assert claim["address"] == new.address and claim["amount"] == points
    assert claim["transfer"]["status"] == "submitted"
    gateway.settle()
    token = gateway.context.link.network.token
    assert token.balance_of(new.address) == points and token.balance_of(custodial.address) == 0
    view = gateway.client.get(f"/v1/members/{customer}", headers=gateway.headers(0)).json()
    assert view["address"] == new.address and view["custodial"] is False
    assert error_of(gateway.client.get("/v1/wallet/me", headers=custodial.headers)) == (
        401,
        "session_required",
    )
    owner = sign_in(gateway, "0x" + bytes(new.key).hex())
    history = gateway.client.get("/v1/wallet/history", headers=owner.headers).json()["data"]
    assert {item["kind"] for item in history} >= {"issue", "badge", "transfer"}
    again = gateway.client.post(f"/v1/members/{customer}/login-link", headers=gateway.headers(0))
    assert error_of(again) == (409, "member_self_custody")


def test_claim_needs_a_custodial_session_and_the_new_addresss_signature(
    gateway: Gateway,
) -> None:
    member = sign_in(gateway)
    new = Account.create()
    body = {"address": new.address, "signature": personal_sign(new.key, "anything")}
    response = gateway.client.post("/v1/wallet/claim", json=body, headers=member.headers)
    assert error_of(response) == (403, "custodial_session_required")
    custodial = custodial_session(gateway, f"cn-{uuid.uuid4().hex[:6]}")
    response = gateway.client.post("/v1/wallet/claim", json=body, headers=custodial.headers)
    assert error_of(response) == (422, "invalid_signature")


def test_claim_waits_for_points_still_on_their_way(gateway: Gateway) -> None:
    customer = f"cw-{uuid.uuid4().hex[:6]}"
    custodial = custodial_session(gateway, customer)
    gateway.client.post(
        "/v1/events", json=purchase(customer, "W-1", "20.00"), headers=gateway.headers(0)
    )
    new = Account.create()
    message = CLAIM_MESSAGE.format(custodial=custodial.address, address=new.address)
    response = gateway.client.post(
        "/v1/wallet/claim",
        json={"address": new.address, "signature": personal_sign(new.key, message)},
        headers=custodial.headers,
    )
    assert error_of(response) == (409, "operations_pending")
    gateway.settle()


def test_claim_into_another_custodial_account_is_refused(gateway: Gateway) -> None:
    custodial = custodial_session(gateway, f"ca-{uuid.uuid4().hex[:6]}")
    target = custodial_session(gateway, f"cb-{uuid.uuid4().hex[:6]}")
    with gateway.context.sessions() as session:
        row = session.query(Member).filter_by(address=target.address).one()
        key = custodial_key(gateway.context.box, row)
    message = CLAIM_MESSAGE.format(custodial=custodial.address, address=target.address)
    response = gateway.client.post(
        "/v1/wallet/claim",
        json={"address": target.address, "signature": personal_sign(key, message)},
        headers=custodial.headers,
    )
    assert error_of(response) == (409, "address_custodial")
    with gateway.context.sessions() as session:
        old = session.query(Member).filter_by(address=custodial.address).one()
        assert old.claimed_by is None
        assert session.query(CustomerLink).filter_by(member_id=old.id).count() == 1


# ---------------------------------------------------------------------- badges


def test_badge_metadata_is_erc1155_json_from_the_chain(gateway: Gateway) -> None:
    response = gateway.client.get("/v1/badges/2.json")
    assert response.status_code == 200
    meta = response.json()
    assert meta["name"] == gateway.context.link.network.badges.badge_type(2).name
    assert meta["description"] == "Bought an eco-labelled product."
    assert meta["image"].endswith("/v1/badges/2.svg")
    assert meta["properties"]["soulbound"] is True


def test_badge_image_is_an_svg_with_the_onchain_name_and_a_lock(gateway: Gateway) -> None:
    response = gateway.client.get("/v1/badges/1.svg")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/svg+xml"
    svg = response.text
    assert svg.startswith("<svg") and "First Order" in svg and 'aria-label="soulbound"' in svg
    assert "<script" not in svg and "href" not in svg


@pytest.mark.parametrize("path", ["/v1/badges/999.svg", "/v1/badges/999.json"])
def test_an_undefined_badge_is_not_found(gateway: Gateway, path: str) -> None:
    assert error_of(gateway.client.get(path)) == (404, "not_found")


def test_a_badge_id_must_be_a_number(gateway: Gateway) -> None:
    assert error_of(gateway.client.get("/v1/badges/abc.svg")) == (422, "invalid_request")


# ---------------------------------------------------------------------- the page and the docs


def test_the_page_is_served_with_a_strict_policy_and_no_python_files(gateway: Gateway) -> None:
    page = gateway.client.get("/wallet/")
    assert page.status_code == 200 and '<script type="module"' in page.text
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert page.headers["referrer-policy"] == "no-referrer"
    assert gateway.client.get("/wallet", follow_redirects=False).status_code == 308
    assert gateway.client.get("/wallet/__init__.py").status_code == 404
    for path in ("/wallet/js/app.js", "/wallet/i18n/zh-CN.json", "/wallet/css/wallet.css"):
        assert gateway.client.get(path).status_code == 200, path


def test_ethers_comes_from_the_pinned_npm_package(gateway: Gateway) -> None:
    from gateway.api.routes.wallet_page import ETHERS_BUNDLE

    response = gateway.client.get("/wallet/vendor/ethers.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/javascript")
    assert response.content == ETHERS_BUNDLE.read_bytes()
    assert 'const version="6.17.0"' in response.text[:400]


#: Wallet endpoints the app must serve (a floor: the test derives the rest from the app).
WALLET_ENDPOINTS = {
    ("/v1/wallet/config", "get"),
    ("/v1/wallet/siwe/nonce", "post"),
    ("/v1/wallet/siwe/verify", "post"),
    ("/v1/wallet/login-link", "post"),
    ("/v1/wallet/logout", "post"),
    ("/v1/wallet/me", "get"),
    ("/v1/wallet/history", "get"),
    ("/v1/wallet/entries/{op_id}/proof", "get"),
    ("/v1/wallet/disclosure", "get"),
    ("/v1/wallet/data", "get"),
    ("/v1/wallet/data", "delete"),
    ("/v1/wallet/transfers", "post"),
    ("/v1/wallet/transfers/{transfer_id}", "get"),
    ("/v1/wallet/redemptions", "post"),
    ("/v1/wallet/redemptions", "get"),
    ("/v1/wallet/redemptions/{redemption_id}", "get"),
    ("/v1/wallet/link", "post"),
    ("/v1/wallet/claim", "post"),
}
#: The public reads and merchant calls the wallet uses beside them.
BESIDE_THE_WALLET = {
    ("/v1/catalog", "get"),
    ("/v1/badges/{badge_id}.json", "get"),
    ("/v1/badges/{badge_id}.svg", "get"),
    ("/v1/members/{customer_id}/login-link", "post"),
    ("/v1/members/{customer_id}/link-code", "post"),
}


def served_wallet_endpoints() -> set[tuple[str, str]]:
    """Every (path, method) under ``/v1/wallet/`` of every router in ``gateway.api.routes``
    (what the app includes), whether the schema shows it or not."""
    served = set()
    for found in pkgutil.iter_modules(routes_package.__path__):
        module = importlib.import_module(f"{routes_package.__name__}.{found.name}")
        for router in vars(module).values():
            if not isinstance(router, APIRouter):
                continue
            for route in router.routes:
                if isinstance(route, APIRoute) and route.path.startswith("/v1/wallet/"):
                    served |= {(route.path, m.lower()) for m in (route.methods or set()) - {"HEAD"}}
    return served


def undocumented(spec: dict[str, Any], endpoints: set[tuple[str, str]]) -> list[str]:
    """What ``spec`` leaves out of ``endpoints``: the endpoint, its description, or the one
    error body for 401 (no session, or a bad one) and 422 (bad input)."""
    problems = []
    for path, method in sorted(endpoints):
        operation = spec["paths"].get(path, {}).get(method)
        if operation is None:
            problems.append(f"{method} {path}: not in the schema")
            continue
        if not (operation.get("description") or operation.get("summary")):
            problems.append(f"{method} {path}: no description")
        for status in ("401", "422"):
            content = operation["responses"].get(status, {}).get("content", {})
            schema = content.get("application/json", {}).get("schema")
            if schema != {"$ref": "#/components/schemas/ErrorResponse"}:
                problems.append(f"{method} {path}: {status} is not documented")
    return problems


def test_openapi_documents_every_wallet_endpoint(gateway: Gateway) -> None:
    spec = gateway.client.get("/openapi.json").json()
    served = served_wallet_endpoints()
    assert served >= WALLET_ENDPOINTS, WALLET_ENDPOINTS - served
    paths = spec["paths"]
    documented = {(p, m) for p in paths if p.startswith("/v1/wallet/") for m in paths[p]}
    assert documented == served, served ^ documented  # the app serves what its schema shows
    assert undocumented(spec, served | BESIDE_THE_WALLET) == []
    assert "/wallet/vendor/ethers.js" not in paths
    assert {"HTTPBearer", "APIKeyCookie"} <= set(spec["components"]["securitySchemes"])


def test_a_wallet_endpoint_without_its_errors_is_named() -> None:
    """The check above fails a new wallet path that documents no errors."""
    app = FastAPI()
    app.include_router(wallet_routes.router)
    extra = APIRouter(prefix="/v1/wallet")

    @extra.get("/new-thing")
    def new_thing() -> dict[str, str]:
        """A new wallet path that forgot ``responses=``."""
        return {}

    app.include_router(extra)
    endpoints = {("/v1/wallet/new-thing", "get")}
    assert undocumented(app.openapi(), endpoints) == [
        "get /v1/wallet/new-thing: 401 is not documented",
        "get /v1/wallet/new-thing: 422 is not documented",
    ]
    assert undocumented(app.openapi(), WALLET_ENDPOINTS) == []


def test_a_transfer_and_a_redemption_queued_together_both_confirm(gateway: Gateway) -> None:
    member, points = member_with_points(gateway)
    to = Account.create().address
    sent = gateway.client.post(
        "/v1/wallet/transfers", json=signed_transfer(gateway, member, to, 5), headers=member.headers
    )
    reward = new_reward(gateway, 7)
    redeemed = gateway.client.post(
        "/v1/wallet/redemptions",
        json=signed_redemption(gateway, member, reward),
        headers=member.headers,
    )
    assert sent.status_code == redeemed.status_code == 202
    gateway.settle()
    transfer = gateway.client.get(
        f"/v1/wallet/transfers/{sent.json()['id']}", headers=member.headers
    )
    redemption = gateway.client.get(
        f"/v1/wallet/redemptions/{redeemed.json()['id']}", headers=member.headers
    )
    assert (transfer.json()["status"], redemption.json()["status"]) == ("confirmed", "confirmed"), (
        redemption.json()
    )
    assert gateway.context.link.network.token.balance_of(member.address) == points - 12
