"""Field by field: the engine's arguments as JSON values of issuance inputs, and back.

The parts of :mod:`gateway.rules.disclosure`'s format 1 (see there): each
``*_dict`` writes an argument with canonical values only (amounts as plain-notation
strings keeping their decimal places, instants in UTC), each ``*_of`` reads one
back and raises :class:`InvalidInput` for anything else.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, Final

from gateway.rules.canonical import instant_text
from gateway.rules.decision import BreakdownLine, ReferralBonus
from gateway.rules.fx import FxRate, FxTable
from gateway.rules.inputs import (
    EventInput,
    ItemInput,
    MemberSnapshot,
    OrderInput,
    OriginalOutcome,
    RefundInput,
)

#: What decoding gives for a device id or IP address that was present.
WITHHELD: Final = "withheld"


def amount_text(value: Decimal) -> str:
    """An amount as given, in plain notation: ``124.20`` stays ``124.20`` (the engine
    writes amounts into its breakdown lines, which a recomputation must reproduce)."""
    return format(value, "f")


class InvalidInput(ValueError):
    """A text that is not an issuance input this format can read (says why)."""


def int_of(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"expected an integer, got {value!r}")
    return value


def event_dict(event: EventInput) -> dict[str, Any]:
    order = event.order
    refund = event.refund
    return {
        "type": event.type,
        "occurred_at": instant_text(event.occurred_at),
        "order": None if order is None else {
            "id": order.order_id, "amount": amount_text(order.amount),
            "currency": order.currency,
            "items": [
                {"sku": i.sku, "category": i.category, "amount": amount_text(i.amount),
                 "eco": i.eco}
                for i in order.items
            ],
        },
        "refund": None if refund is None else {
            "order_id": refund.order_id,
            "amount": None if refund.amount is None else amount_text(refund.amount),
        },
        "referrer_member": event.referrer_member,
        "device": bool(event.device_id),
        "ip": bool(event.ip),
    }  # fmt: skip


def member_dict(m: MemberSnapshot) -> dict[str, Any]:
    return {
        "member_id": m.member_id, "birth_month": m.birth_month, "frozen": m.frozen,
        "frozen_reason": m.frozen_reason,
        "is_first_purchase_at_merchant": m.is_first_purchase_at_merchant,
        "purchases": [[instant_text(at), amount_text(amount)] for at, amount in m.purchases],
        "check_in_days": sorted(day.isoformat() for day in m.check_in_days),
        "shares_today": m.shares_today, "reviews_today": m.reviews_today,
        "referred_by": m.referred_by, "referral_rewarded": m.referral_rewarded,
        "referrer_referrals": m.referrer_referrals,
        "referrer_badges": sorted(m.referrer_badges), "held_badges": sorted(m.held_badges),
        "current_tier": m.current_tier, "events_last_hour": m.events_last_hour,
        "points_today": m.points_today, "accounts_on_device": m.accounts_on_device,
        "accounts_on_ip": m.accounts_on_ip,
    }  # fmt: skip


def original_dict(o: OriginalOutcome) -> dict[str, Any]:
    bonus = o.referral_bonus
    return {
        "points": o.points, "order_amount": amount_text(o.order_amount),
        "breakdown": [
            {"rule": line.rule, "description": line.description, "points": line.points}
            for line in o.breakdown
        ],
        "already_clawed_back": o.already_clawed_back,
        "refunded_amount": amount_text(o.refunded_amount), "order_id": o.order_id,
        "network_amount": None if o.network_amount is None else amount_text(o.network_amount),
        "occurred_at": None if o.occurred_at is None else instant_text(o.occurred_at),
        "referral_bonus": None if bonus is None else {
            "member": bonus.member, "points": bonus.points, "badges": list(bonus.badges),
        },
    }  # fmt: skip


def fx_dict(fx: FxTable, event: EventInput) -> dict[str, Any] | None:
    """The rate a purchase in a currency other than the unit was converted at."""
    order = event.order
    if order is None or order.currency == fx.unit:
        return None
    rate = fx.rate_at(order.currency, event.occurred_at)
    return {
        "currency": rate.currency, "rate": amount_text(rate.rate),
        "source": rate.source, "as_of": rate.as_of.isoformat(),
    }  # fmt: skip


def instant_of(value: Any) -> datetime:
    moment = datetime.fromisoformat(str(value))
    if moment.utcoffset() is None:
        raise InvalidInput(f"instant {value!r} has no time zone")
    return moment


def decimal_of(value: Any) -> Decimal:
    if not isinstance(value, str):
        raise InvalidInput(f"amounts are strings, got {value!r}")
    return Decimal(value)


def event_of(e: dict[str, Any]) -> EventInput:
    order = e["order"]
    refund = e["refund"]
    return EventInput(
        type=e["type"],
        occurred_at=instant_of(e["occurred_at"]),
        order=None if order is None else OrderInput(
            order_id=str(order["id"]), amount=decimal_of(order["amount"]),
            currency=str(order["currency"]),
            items=[
                ItemInput(sku=str(i["sku"]), category=str(i["category"]),
                          amount=decimal_of(i["amount"]), eco=bool(i["eco"]))
                for i in order["items"]
            ],
        ),
        refund=None if refund is None else RefundInput(
            order_id=str(refund["order_id"]),
            amount=None if refund["amount"] is None else decimal_of(refund["amount"]),
        ),
        referrer_member=e["referrer_member"],
        device_id=WITHHELD if e["device"] else None,
        ip=WITHHELD if e["ip"] else None,
    )  # fmt: skip


def member_of(m: dict[str, Any]) -> MemberSnapshot:
    return MemberSnapshot(
        member_id=str(m["member_id"]), birth_month=m["birth_month"], frozen=bool(m["frozen"]),
        frozen_reason=m["frozen_reason"],
        is_first_purchase_at_merchant=bool(m["is_first_purchase_at_merchant"]),
        purchases=[(instant_of(at), decimal_of(amount)) for at, amount in m["purchases"]],
        check_in_days=[date.fromisoformat(day) for day in m["check_in_days"]],
        shares_today=int_of(m["shares_today"]), reviews_today=int_of(m["reviews_today"]),
        referred_by=m["referred_by"], referral_rewarded=bool(m["referral_rewarded"]),
        referrer_referrals=int_of(m["referrer_referrals"]),
        referrer_badges=frozenset(m["referrer_badges"]), held_badges=frozenset(m["held_badges"]),
        current_tier=int_of(m["current_tier"]), events_last_hour=int_of(m["events_last_hour"]),
        points_today=int_of(m["points_today"]), accounts_on_device=int_of(m["accounts_on_device"]),
        accounts_on_ip=int_of(m["accounts_on_ip"]),
    )  # fmt: skip


def original_of(o: dict[str, Any]) -> OriginalOutcome:
    bonus = o["referral_bonus"]
    return OriginalOutcome(
        points=int_of(o["points"]), order_amount=decimal_of(o["order_amount"]),
        breakdown=[
            BreakdownLine(rule=str(x["rule"]), description=str(x["description"]),
                          points=int_of(x["points"]))
            for x in o["breakdown"]
        ],
        already_clawed_back=int_of(o["already_clawed_back"]),
        refunded_amount=decimal_of(o["refunded_amount"]), order_id=o["order_id"],
        network_amount=None if o["network_amount"] is None else decimal_of(o["network_amount"]),
        occurred_at=None if o["occurred_at"] is None else instant_of(o["occurred_at"]),
        referral_bonus=None if bonus is None else ReferralBonus(
            member=str(bonus["member"]), points=int_of(bonus["points"]),
            badges=tuple(str(b) for b in bonus["badges"]),
        ),
    )  # fmt: skip


def fx_of(rate: dict[str, Any] | None, unit: str) -> FxTable:
    if rate is None:
        return FxTable(unit=unit)
    return FxTable(
        unit=unit,
        rates=(
            FxRate(
                currency=str(rate["currency"]), rate=decimal_of(rate["rate"]),
                source=str(rate["source"]), as_of=date.fromisoformat(rate["as_of"]),
            ),
        ),
    )  # fmt: skip
