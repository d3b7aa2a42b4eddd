"""Referral and sign-up events naming an inviter, over HTTP: the rules see the link as it
was before the event (a new invitee has no inviter yet), the event records the inviter
only once it is accepted, and the first purchase pays both sides."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from gateway_kit import Gateway, purchase
from sqlalchemy import select

from gateway.models import ChainOp, CustomerLink, Member

AT = "2026-11-20T09:00:00Z"


def post(gateway: Gateway, body: dict[str, Any], key: str | None = None) -> httpx.Response:
    return gateway.client.post("/v1/events", json=body, headers=gateway.headers(key=key))


def accepted(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 202, response.text
    return dict(response.json())


def referred_by(gateway: Gateway, customer: str) -> str | None:
    """The member id the customer's link names as inviter."""
    with gateway.context.sessions() as session:
        return session.scalars(
            select(CustomerLink.referred_by).where(CustomerLink.customer_id == customer)
        ).one()


def member_id(gateway: Gateway, address: str) -> str:
    with gateway.context.sessions() as session:
        return session.scalars(select(Member.id).where(Member.address == address)).one()


def bonuses(gateway: Gateway) -> dict[str, int]:
    answer = gateway.client.get("/v1/rules", headers=gateway.headers())
    assert answer.status_code == 200, answer.text
    return dict(answer.json()["rules"]["bonuses"])


def referral(invitee: str, inviter: str, kind: str = "referral") -> dict[str, Any]:
    return {
        "type": kind, "customer_id": invitee, "occurred_at": AT, "referrer_customer_id": inviter,
    }  # fmt: skip


def test_a_referral_event_records_a_new_invitees_inviter_once(gateway: Gateway) -> None:
    run = uuid.uuid4().hex[:8]
    ann, cid, bob = f"{run}-ann", f"{run}-cid", f"{run}-bob"
    ann_address = accepted(post(gateway, purchase(ann, f"{run}-A1")))["member_address"]
    accepted(post(gateway, purchase(cid, f"{run}-C1")))
    key = f"{run}-referral"

    first = accepted(post(gateway, referral(bob, ann), key))
    assert first["points"] == 0 and first["breakdown"] == [] and first["reason"] is None
    assert referred_by(gateway, bob) == member_id(gateway, ann_address)
    # The same key and body: the same answer, nothing recorded twice.
    assert accepted(post(gateway, referral(bob, ann), key)) == first

    other = f"{run}-other"
    refused = post(gateway, referral(bob, cid), other)
    assert refused.status_code == 422, refused.text
    error = refused.json()["error"]
    assert error["code"] == "event_rejected"
    assert error["details"]["reason"] == "referral_already_set"
    replayed = post(gateway, referral(bob, cid), other)
    assert (replayed.status_code, replayed.json()) == (422, refused.json())
    assert referred_by(gateway, bob) == member_id(gateway, ann_address)  # still Ann

    # The invitee's first purchase, naming nobody, pays the inviter the rules' bonus.
    rules = bonuses(gateway)
    bought = accepted(post(gateway, purchase(bob, f"{run}-B1")))
    lines = {line["rule"]: line["points"] for line in bought["breakdown"]}
    assert lines.get("referral_invitee", 0) == rules["referral_invitee"]
    with gateway.context.sessions() as session:
        ops = session.scalars(select(ChainOp).where(ChainOp.event_id == bought["id"]))
        paid = [(op.member_address, op.amount) for op in ops if op.payload.get("referral")]
    assert paid == [(ann_address, rules["referral_inviter"])]


def test_a_sign_up_naming_an_inviter_records_it_for_a_new_customer(gateway: Gateway) -> None:
    run = uuid.uuid4().hex[:8]
    ann, bob = f"{run}-ann", f"{run}-bob"
    ann_address = accepted(post(gateway, purchase(ann, f"{run}-A1")))["member_address"]
    signed = accepted(post(gateway, referral(bob, ann, "signup")))
    assert signed["points"] == bonuses(gateway)["signup"]
    assert referred_by(gateway, bob) == member_id(gateway, ann_address)
    again = post(gateway, referral(bob, ann))
    assert again.status_code == 422 and again.json()["error"]["details"]["reason"] == (
        "referral_already_set"
    )


def test_a_refused_referral_records_no_inviter(gateway: Gateway) -> None:
    """Too late to be referred: the link keeps no inviter, so no purchase pays one."""
    run = uuid.uuid4().hex[:8]
    ann, bob = f"{run}-ann", f"{run}-bob"
    accepted(post(gateway, purchase(ann, f"{run}-A1")))
    accepted(post(gateway, purchase(bob, f"{run}-B1")))
    late = post(gateway, referral(bob, ann))
    assert late.status_code == 422
    assert late.json()["error"]["details"]["reason"] == "referral_after_first_purchase"
    assert referred_by(gateway, bob) is None
