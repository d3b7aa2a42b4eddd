"""Field by field: the engine's arguments as JSON values of issuance inputs, and back.

The parts of :mod:`gateway.rules.disclosure`'s format 1 (see there): each
``*_text`` writes an argument as canonical JSON text (amounts as plain-notation
strings keeping their decimal places, instants in UTC), each ``*_of`` reads one
back and raises :class:`InvalidInput` for anything else.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from json.encoder import encode_basestring_ascii as _ascii
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


# Writers: each returns its argument's canonical JSON text, keys written in sorted
# order (what ``json.dumps(..., sort_keys=True, separators=(",", ":"), ensure_ascii=True)``
# gives for the same value, without building and sorting dicts first: the accept path
# writes one input per op).  The tests check every text re-dumps to itself.


def text_of(value: str | None) -> str:
    """A string (or null) as JSON, ASCII only."""
    return "null" if value is None else _ascii(value)


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _int(value: int) -> str:
    return int.__repr__(value)


def _opt_int(value: int | None) -> str:
    return "null" if value is None else int.__repr__(value)


def _strings(values: Iterable[str]) -> str:
    return "[" + ",".join(map(_ascii, values)) + "]"


def event_text(event: EventInput) -> str:
    order, refund = event.order, event.refund
    if order is None:
        order_text = "null"
    else:
        items = ",".join(
            f'{{"amount":"{amount_text(i.amount)}","category":{_ascii(i.category)},'
            f'"eco":{_flag(i.eco)},"sku":{_ascii(i.sku)}}}'
            for i in order.items
        )
        order_text = (
            f'{{"amount":"{amount_text(order.amount)}","currency":{_ascii(order.currency)},'
            f'"id":{_ascii(order.order_id)},"items":[{items}]}}'
        )
    if refund is None:
        refund_text = "null"
    else:
        amount = "null" if refund.amount is None else f'"{amount_text(refund.amount)}"'
        refund_text = f'{{"amount":{amount},"order_id":{_ascii(refund.order_id)}}}'
    return (
        f'{{"device":{_flag(bool(event.device_id))},"ip":{_flag(bool(event.ip))},'
        f'"occurred_at":"{instant_text(event.occurred_at)}","order":{order_text},'
        f'"referrer_member":{text_of(event.referrer_member)},"refund":{refund_text},'
        f'"type":{_ascii(event.type)}}}'
    )


def member_text(m: MemberSnapshot) -> str:
    purchases = ",".join(
        f'["{instant_text(at)}","{amount_text(amount)}"]' for at, amount in m.purchases
    )
    days = ",".join(f'"{day.isoformat()}"' for day in sorted(m.check_in_days))
    return (
        f'{{"accounts_on_device":{_int(m.accounts_on_device)},'
        f'"accounts_on_ip":{_int(m.accounts_on_ip)},"birth_month":{_opt_int(m.birth_month)},'
        f'"check_in_days":[{days}],"current_tier":{_int(m.current_tier)},'
        f'"events_last_hour":{_int(m.events_last_hour)},"frozen":{_flag(m.frozen)},'
        f'"frozen_reason":{text_of(m.frozen_reason)},'
        f'"held_badges":{_strings(sorted(m.held_badges))},'
        f'"is_first_purchase_at_merchant":{_flag(m.is_first_purchase_at_merchant)},'
        f'"member_id":{_ascii(m.member_id)},"points_today":{_int(m.points_today)},'
        f'"purchases":[{purchases}],"referral_rewarded":{_flag(m.referral_rewarded)},'
        f'"referred_by":{text_of(m.referred_by)},'
        f'"referrer_badges":{_strings(sorted(m.referrer_badges))},'
        f'"referrer_referrals":{_int(m.referrer_referrals)},'
        f'"reviews_today":{_int(m.reviews_today)},"shares_today":{_int(m.shares_today)}}}'
    )


def original_text(o: OriginalOutcome) -> str:
    bonus = o.referral_bonus
    breakdown = ",".join(
        f'{{"description":{_ascii(line.description)},"points":{_int(line.points)},'
        f'"rule":{_ascii(line.rule)}}}'
        for line in o.breakdown
    )
    bonus_text = "null"
    if bonus is not None:
        bonus_text = (
            f'{{"badges":{_strings(bonus.badges)},"member":{_ascii(bonus.member)},'
            f'"points":{_int(bonus.points)}}}'
        )
    network = "null" if o.network_amount is None else f'"{amount_text(o.network_amount)}"'
    occurred = "null" if o.occurred_at is None else f'"{instant_text(o.occurred_at)}"'
    return (
        f'{{"already_clawed_back":{_int(o.already_clawed_back)},"breakdown":[{breakdown}],'
        f'"network_amount":{network},"occurred_at":{occurred},'
        f'"order_amount":"{amount_text(o.order_amount)}","order_id":{text_of(o.order_id)},'
        f'"points":{_int(o.points)},"referral_bonus":{bonus_text},'
        f'"refunded_amount":"{amount_text(o.refunded_amount)}"}}'
    )


def fx_text(fx: FxTable, event: EventInput) -> str:
    """The rate a purchase in a currency other than the unit was converted at (or null)."""
    order = event.order
    if order is None or order.currency == fx.unit:
        return "null"
    rate = fx.rate_at(order.currency, event.occurred_at)
    return (
        f'{{"as_of":"{rate.as_of.isoformat()}","currency":{_ascii(rate.currency)},'
        f'"rate":"{amount_text(rate.rate)}","source":{_ascii(rate.source)}}}'
    )


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
