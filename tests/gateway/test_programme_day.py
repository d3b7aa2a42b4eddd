"""Programme days over HTTP: a day ends at the programme's local midnight, not UTC's.

Two programmes, at UTC+08:00 and UTC-05:00, each get events ten minutes before
and ten minutes after a local midnight; both instants fall on one UTC day, so
every rule that counts per day tells a local cut from a UTC one: the birthday
month, check-ins and their 7-day streak, the share and review caps, and the daily
points limits of members and merchants (which counted a rolling 24 hours of wall
clock before).  The first-order and referral bonuses come once, whatever the day.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from gateway_kit import Gateway, purchase
from sqlalchemy import select, update

from gateway.models import ChainOp, Event
from gateway.services.merchants import NewMerchant, register

OFFSETS = {"utc+8": 480, "utc-5": -300}
#: The local midnight the events straddle: December starts there.
MIDNIGHT = date(2026, 12, 1)


@dataclass
class Programme:
    """A merchant whose programme runs at ``offset`` minutes from UTC."""

    gateway: Gateway
    merchant: NewMerchant
    offset: int
    version: int

    @property
    def zone(self) -> timezone:
        return timezone(timedelta(minutes=self.offset))

    def local(self, day: date, hour: int, minute: int = 0) -> datetime:
        """The instant of ``day hour:minute`` local time."""
        return datetime(day.year, day.month, day.day, hour, minute, tzinfo=self.zone)

    @property
    def before(self) -> datetime:
        """Ten minutes before the local midnight that starts :data:`MIDNIGHT`."""
        return self.local(MIDNIGHT, 0) - timedelta(minutes=10)

    @property
    def after(self) -> datetime:
        return self.local(MIDNIGHT, 0) + timedelta(minutes=10)

    def headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self.merchant.api_key}",
            "Idempotency-Key": uuid.uuid4().hex,
        }

    def post(self, body: dict[str, Any], status: int = 202) -> dict[str, Any]:
        response = self.gateway.client.post("/v1/events", json=body, headers=self.headers())
        assert response.status_code == status, response.text
        answer: dict[str, Any] = response.json()
        if status == 202:
            assert answer["rule_version"] == self.version, answer  # decided at this offset
        return answer


def utc(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def customer(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def order(who: str, at: datetime, amount: str = "100.00", **extra: Any) -> dict[str, Any]:
    """A purchase in USD (the network unit: 1 point per USD at the seed rate)."""
    return purchase(who, f"o-{uuid.uuid4().hex[:10]}", amount, "USD", occurred_at=utc(at), **extra)


def activity(kind: str, who: str, at: datetime, **extra: Any) -> dict[str, Any]:
    return {"type": kind, "customer_id": who, "occurred_at": utc(at), **extra}


def lines(answer: dict[str, Any]) -> dict[str, int]:
    return {line["rule"]: line["points"] for line in answer["breakdown"]}


def programme_with(gateway: Gateway, offset: int, **overrides: Any) -> Programme:
    """A new merchant whose rule set runs at ``offset`` (and ``overrides``), in effect."""
    merchant = register(gateway.context, f"Day Goods {offset} {uuid.uuid4().hex[:4]}", "EUR")
    gateway.settle()  # its first rule set
    headers = {"Authorization": f"Bearer {merchant.api_key}"}
    rules = gateway.client.get("/v1/rules", headers=headers).json()["rules"]
    rules["utc_offset_minutes"] = offset
    for section, values in overrides.items():
        rules[section].update(values)
    put = gateway.client.put("/v1/rules", json=rules, headers=headers)
    assert put.status_code == 202, put.text
    version = int(put.json()["version"])
    gateway.settle()
    deadline = time.monotonic() + 15
    while True:  # published, and in effect where versions wait for a notice
        shown = gateway.client.get("/v1/rules", headers=headers).json()
        status = shown.get("status") or ("in_effect" if shown.get("published") else "queued")
        if shown["version"] == version and status == "in_effect":
            return Programme(gateway, merchant, offset, version)
        assert time.monotonic() < deadline, shown
        gateway.settle()
        time.sleep(0.05)


@pytest.fixture(scope="module", params=list(OFFSETS.values()), ids=list(OFFSETS))
def programme(gateway: Gateway, request: pytest.FixtureRequest) -> Iterator[Programme]:
    yield programme_with(gateway, request.param)


def test_the_two_instants_are_one_utc_day_and_two_local_days(programme: Programme) -> None:
    before, after = programme.before, programme.after
    assert before.astimezone(UTC).date() == after.astimezone(UTC).date()
    assert before.astimezone(programme.zone).date() == MIDNIGHT - timedelta(days=1)
    assert after.astimezone(programme.zone).date() == MIDNIGHT


# ---------------------------------------------------------------------- the engine's days


def born_in_december(programme: Programme) -> str:
    """A new customer who gave December as their birth month (at sign-up)."""
    who = customer("bd")
    signup = activity("signup", who, programme.before - timedelta(days=2), birth_month=12)
    programme.post(signup)
    return who


def test_the_birthday_month_starts_at_local_midnight(programme: Programme) -> None:
    november = programme.post(order(born_in_december(programme), programme.before))
    december = programme.post(order(born_in_december(programme), programme.after))
    assert "birthday" not in lines(november)
    assert lines(december)["base"] == 100 and lines(december)["birthday"] == 200  # x3
    # One instant, two months: 16:30 UTC on 30 November is December at +08:00 only.
    instant = datetime(2026, 11, 30, 16, 30, tzinfo=UTC)
    either = programme.post(order(born_in_december(programme), instant))
    assert ("birthday" in lines(either)) is (programme.offset == 480)


def test_the_first_order_bonus_comes_once(programme: Programme) -> None:
    who = customer("first")
    first = programme.post(order(who, programme.before))
    second = programme.post(order(who, programme.after))
    assert lines(first) == {"base": 100, "first_order": 100}
    assert lines(second) == {"base": 100}
    assert "first_order" in first["badges"] and "first_order" not in second["badges"]


def test_check_ins_on_two_local_days_of_one_utc_day_both_pay_and_complete_a_streak(
    programme: Programme,
) -> None:
    who = customer("streak")
    for days_back in range(6, 1, -1):  # 25..29 November, at local noon
        answer = programme.post(
            activity("check_in", who, programme.local(MIDNIGHT - timedelta(days=days_back), 12))
        )
        assert lines(answer) == {"check_in": 5}, answer
    sixth = programme.post(activity("check_in", who, programme.before))  # 30 November
    seventh = programme.post(activity("check_in", who, programme.after))  # 1 December
    assert lines(sixth) == {"check_in": 5}
    assert lines(seventh) == {"check_in": 5, "streak": 50}
    assert seventh["reason"] is None and "streak_7" in seventh["badges"]
    again = programme.post(activity("check_in", who, programme.after + timedelta(minutes=5)))
    assert again["points"] == 0 and again["reason"] == "check_in_duplicate"


@pytest.mark.parametrize(("kind", "points", "cap"), [("share", 10, 3), ("review", 20, 2)])
def test_share_and_review_caps_reset_at_local_midnight(
    programme: Programme, kind: str, points: int, cap: int
) -> None:
    who = customer(kind)
    evening = programme.before - timedelta(minutes=50)
    for index in range(cap):
        answer = programme.post(activity(kind, who, evening + timedelta(minutes=index)))
        assert lines(answer) == {kind: points}, answer
    capped = programme.post(activity(kind, who, programme.before))
    assert capped["points"] == 0 and capped["reason"] == f"{kind}_daily_cap"
    # Ten minutes later, the same UTC day: a new programme day, a new cap.
    fresh = programme.post(activity(kind, who, programme.after))
    assert lines(fresh) == {kind: points} and fresh["reason"] is None


def test_referral_bonuses_come_with_the_first_order_only(programme: Programme) -> None:
    inviter, invitee = customer("inviter"), customer("invitee")
    inviter_address = programme.post(order(inviter, programme.before - timedelta(hours=2)))[
        "member_address"
    ]
    first = programme.post(order(invitee, programme.before, referrer_customer_id=inviter))
    second = programme.post(order(invitee, programme.after, referrer_customer_id=inviter))
    assert lines(first) == {"base": 100, "first_order": 100, "referral_invitee": 100}
    assert lines(second) == {"base": 100}
    assert referral_ops(programme.gateway, first["id"]) == [(inviter_address, 200)]
    assert referral_ops(programme.gateway, second["id"]) == []


def referral_ops(gateway: Gateway, event_id: str) -> list[tuple[str, int]]:
    """The inviter's bonus ops an event queued: (inviter address, points)."""
    with gateway.context.sessions() as session:
        ops = session.scalars(
            select(ChainOp).where(ChainOp.event_id == event_id, ChainOp.kind == "issue")
        )
        return [(op.member_address, op.amount) for op in ops if op.payload.get("referral")]


# ---------------------------------------------------------------------- the gateway's days


@pytest.mark.parametrize("offset", list(OFFSETS.values()), ids=list(OFFSETS))
def test_the_daily_points_limits_count_from_local_midnight(gateway: Gateway, offset: int) -> None:
    """``member_points_per_day`` and ``merchant_points_per_day`` count what was accepted
    since the programme day began; before, a rolling 24 hours also counted yesterday's."""
    limits = {"member_points_per_day": 250, "merchant_points_per_day": 350, "action": "reject"}
    shop = programme_with(gateway, offset, velocity=limits)
    now = datetime.now(shop.zone)
    day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    yesterday = (day_start - timedelta(seconds=1)).astimezone(UTC)  # within the last 24 hours
    at = now - timedelta(minutes=1)  # occurred_at: the limits count creation, not occurrence

    x = customer("vx")
    late = shop.post(order(x, at))  # 200 points: 100 + the first-order bonus
    assert late["points"] == 200
    with gateway.context.sessions() as session, session.begin():
        session.execute(update(Event).where(Event.id == late["id"]).values(created_at=yesterday))

    # The member: yesterday's 200 no longer count, so 100 more fit under 250 today...
    assert shop.post(order(x, at))["points"] == 100
    # ...and today's still do: 100 + 200 > 250.
    over = shop.post(order(x, at, "200.00"), status=422)
    assert over["error"]["details"]["reason"] == "velocity_member", over

    # The merchant: 100 today, so a new member's 200 fit under 350 (500 with yesterday's)...
    assert shop.post(order(customer("vy"), at))["points"] == 200
    # ...and a third member's 200 would make 500 today.
    refused = shop.post(order(customer("vz"), at), status=422)
    assert refused["error"]["details"]["reason"] == "velocity_merchant", refused
