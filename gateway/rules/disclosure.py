"""Issuance inputs, format 1: everything the engine was told, as one canonical text.

Each issue or clawback op an accepted event yields gets an input: the engine's
arguments (event, member snapshot, merchant snapshot, original outcome of a
refund, the FX rate used, points netted against an earlier shortfall), the rule
version and its hash, the chain block whose time chose that version
(``accepted_at`` / ``accepted_block``) and a random 32-byte ``salt``.  The text
is canonical JSON (:mod:`gateway.rules.canonical`); ``input_hash`` is its
keccak-256, the leaf the op's batch commits to on chain.  Whoever holds the text
can re-run :func:`gateway.rules.engine.evaluate` on :func:`decode_input`'s
arguments under the published rules and compare with what was minted.

What is left out: the device id and IP address are written as present or not
(the engine reads nothing more of them; decoding gives :data:`WITHHELD`), and
the FX table is the one rate the purchase used.  The inviter's ``referral`` /
``referral-clawback`` parts get a reduced input (:func:`encode_reduced`) naming
the invitee's input by its hash only: an inviter's proof reveals nothing of the
invitee's order.  The salt makes the hash reveal nothing once the text is erased.

This module is pure: no clock, no randomness (the caller passes the salt).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Final, Literal, get_args

from eth_hash.auto import keccak

from gateway.rules.canonical import decimal_text, instant_text, plain_dumps
from gateway.rules.decision import BreakdownLine, ReferralBonus
from gateway.rules.errors import InvalidEvent
from gateway.rules.fx import FxRate, FxTable
from gateway.rules.inputs import (
    EventInput,
    ItemInput,
    MemberSnapshot,
    MerchantSnapshot,
    OrderInput,
    OriginalOutcome,
    RefundInput,
)

#: The input format this module writes and reads.
FORMAT: Final = 1
#: The engine semantics the inputs were decided under; a recomputation refuses others.
ENGINE: Final = 1
#: What decoding gives for a device id or IP address that was present.
WITHHELD: Final = "withheld"

Part = Literal["points", "referral", "clawback", "referral-clawback"]
PARTS: Final[tuple[str, ...]] = get_args(Part)
#: The parts whose input is the inviter's reduced one.
REDUCED_PARTS: Final = frozenset({"referral", "referral-clawback"})


class InvalidInput(ValueError):
    """A text that is not an issuance input this module can read (says why)."""


@dataclass(frozen=True, kw_only=True)
class Stamp:
    """Where an input belongs: its op, the rule version that decided it, and when.

    ``accepted_at`` / ``accepted_block``: the chain head (unix seconds, block number)
    whose time chose ``rule_version``; ``received_at``: the gateway's wall clock.
    """

    part: Part
    merchant_id: int
    ref: str
    rule_version: int
    rule_set_hash: str
    accepted_at: int
    accepted_block: int
    received_at: datetime


@dataclass(frozen=True, kw_only=True)
class EngineArgs:
    """The engine's arguments for one event (``fx``: the table the engine is given)."""

    event: EventInput
    member: MemberSnapshot
    merchant: MerchantSnapshot
    original: OriginalOutcome | None
    fx: FxTable
    netted: int = 0


@dataclass(frozen=True)
class Input:
    """A decoded full input: its stamp, the engine's arguments, the salt."""

    stamp: Stamp
    args: EngineArgs
    salt: bytes


@dataclass(frozen=True)
class ReducedInput:
    """A decoded inviter's input: the invitee's input hash and the inviter's member id."""

    stamp: Stamp
    event_input_hash: str
    inviter: str
    salt: bytes


def input_hash(text: str) -> str:
    """keccak-256 of an input's text, 0x-hex (the leaf committed on chain)."""
    return "0x" + keccak(text.encode("ascii")).hex()


def encode_input(stamp: Stamp, args: EngineArgs, salt: bytes) -> str:
    """The canonical text of a full input (parts ``points`` and ``clawback``)."""
    if stamp.part in REDUCED_PARTS:
        raise ValueError(f"part {stamp.part!r} takes a reduced input (encode_reduced)")
    event, member, original = args.event, args.member, args.original
    body = _stamp_dict(stamp, salt)
    body.update({
        "event": _event_dict(event),
        "member": _member_dict(member),
        "merchant": {
            "points_issued_today": args.merchant.points_issued_today,
            "events_last_minute": args.merchant.events_last_minute,
        },
        "original": _original_dict(original) if original is not None else None,
        "fx": _fx_dict(args.fx, event),
        "unit": args.fx.unit,
        "netted": args.netted,
    })  # fmt: skip
    return plain_dumps(body)


def encode_reduced(stamp: Stamp, event_input_hash: str, inviter: str, salt: bytes) -> str:
    """The canonical text of an inviter's ``referral`` / ``referral-clawback`` input."""
    if stamp.part not in REDUCED_PARTS:
        raise ValueError(f"part {stamp.part!r} takes a full input (encode_input)")
    body = _stamp_dict(stamp, salt)
    body.update({"event_input_hash": event_input_hash, "inviter": inviter})
    return plain_dumps(body)


def decode_input(text: str) -> Input | ReducedInput:
    """The input ``text`` encodes; :class:`InvalidInput` says what is wrong with it.

    The text must be canonical: a re-encoding of what is decoded gives the same
    bytes (so its hash is the one committed), or it is refused.
    """
    try:
        body = json.loads(text)
        if not isinstance(body, dict):
            raise InvalidInput("an input is a JSON object")
        if body.get("format") != FORMAT:
            raise InvalidInput(f"unknown input format {body.get('format')!r}")
        if body.get("engine") != ENGINE:
            raise InvalidInput(f"unknown engine version {body.get('engine')!r}")
        stamp = Stamp(
            part=_part(body["part"]),
            merchant_id=_int(body["merchant_id"]),
            ref=str(body["ref"]),
            rule_version=_int(body["rule_version"]),
            rule_set_hash=str(body["rule_set_hash"]),
            accepted_at=_int(body["accepted_at"]),
            accepted_block=_int(body["accepted_block"]),
            received_at=_instant(body["received_at"]),
        )
        salt = bytes.fromhex(str(body["salt"]).removeprefix("0x"))
        decoded: Input | ReducedInput
        if stamp.part in REDUCED_PARTS:
            decoded = ReducedInput(stamp, str(body["event_input_hash"]), str(body["inviter"]), salt)
            again = encode_reduced(stamp, decoded.event_input_hash, decoded.inviter, salt)
        else:
            args = EngineArgs(
                event=_event(body["event"]),
                member=_member(body["member"]),
                merchant=MerchantSnapshot(
                    merchant_id=str(stamp.merchant_id),
                    points_issued_today=_int(body["merchant"]["points_issued_today"]),
                    events_last_minute=_int(body["merchant"]["events_last_minute"]),
                ),
                original=_original(body["original"]) if body["original"] is not None else None,
                fx=_fx(body["fx"], str(body["unit"])),
                netted=_int(body["netted"]),
            )
            decoded = Input(stamp, args, salt)
            again = encode_input(stamp, args, salt)
    except InvalidInput:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, InvalidEvent) as exc:
        raise InvalidInput(f"not an issuance input: {exc}") from None
    if again != text:
        raise InvalidInput("the text is not canonical (its hash would not be the one committed)")
    return decoded


# ------------------------------------------------------------------ encoding


def _stamp_dict(stamp: Stamp, salt: bytes) -> dict[str, Any]:
    if len(salt) != 32:
        raise ValueError("the salt is 32 bytes")
    return {
        "format": FORMAT, "engine": ENGINE, "part": stamp.part,
        "merchant_id": stamp.merchant_id, "ref": stamp.ref,
        "rule_version": stamp.rule_version, "rule_set_hash": stamp.rule_set_hash,
        "accepted_at": stamp.accepted_at, "accepted_block": stamp.accepted_block,
        "received_at": instant_text(stamp.received_at), "salt": "0x" + salt.hex(),
    }  # fmt: skip


def _event_dict(event: EventInput) -> dict[str, Any]:
    order = event.order
    refund = event.refund
    return {
        "type": event.type,
        "occurred_at": instant_text(event.occurred_at),
        "order": None if order is None else {
            "id": order.order_id, "amount": decimal_text(order.amount),
            "currency": order.currency,
            "items": [
                {"sku": i.sku, "category": i.category, "amount": decimal_text(i.amount),
                 "eco": i.eco}
                for i in order.items
            ],
        },
        "refund": None if refund is None else {
            "order_id": refund.order_id,
            "amount": None if refund.amount is None else decimal_text(refund.amount),
        },
        "referrer_member": event.referrer_member,
        "device": bool(event.device_id),
        "ip": bool(event.ip),
    }  # fmt: skip


def _member_dict(m: MemberSnapshot) -> dict[str, Any]:
    return {
        "member_id": m.member_id, "birth_month": m.birth_month, "frozen": m.frozen,
        "frozen_reason": m.frozen_reason,
        "is_first_purchase_at_merchant": m.is_first_purchase_at_merchant,
        "purchases": [[instant_text(at), decimal_text(amount)] for at, amount in m.purchases],
        "check_in_days": sorted(day.isoformat() for day in m.check_in_days),
        "shares_today": m.shares_today, "reviews_today": m.reviews_today,
        "referred_by": m.referred_by, "referral_rewarded": m.referral_rewarded,
        "referrer_referrals": m.referrer_referrals,
        "referrer_badges": sorted(m.referrer_badges), "held_badges": sorted(m.held_badges),
        "current_tier": m.current_tier, "events_last_hour": m.events_last_hour,
        "points_today": m.points_today, "accounts_on_device": m.accounts_on_device,
        "accounts_on_ip": m.accounts_on_ip,
    }  # fmt: skip


def _original_dict(o: OriginalOutcome) -> dict[str, Any]:
    bonus = o.referral_bonus
    return {
        "points": o.points, "order_amount": decimal_text(o.order_amount),
        "breakdown": [
            {"rule": line.rule, "description": line.description, "points": line.points}
            for line in o.breakdown
        ],
        "already_clawed_back": o.already_clawed_back,
        "refunded_amount": decimal_text(o.refunded_amount), "order_id": o.order_id,
        "network_amount": None if o.network_amount is None else decimal_text(o.network_amount),
        "occurred_at": None if o.occurred_at is None else instant_text(o.occurred_at),
        "referral_bonus": None if bonus is None else {
            "member": bonus.member, "points": bonus.points, "badges": list(bonus.badges),
        },
    }  # fmt: skip


def _fx_dict(fx: FxTable, event: EventInput) -> dict[str, Any] | None:
    """The rate a purchase in a currency other than the unit was converted at."""
    order = event.order
    if order is None or order.currency == fx.unit:
        return None
    rate = fx.rate_at(order.currency, event.occurred_at)
    return {
        "currency": rate.currency, "rate": decimal_text(rate.rate),
        "source": rate.source, "as_of": rate.as_of.isoformat(),
    }  # fmt: skip


# ------------------------------------------------------------------ decoding


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"expected an integer, got {value!r}")
    return value


def _part(value: Any) -> Part:
    if value not in PARTS:
        raise InvalidInput(f"unknown part {value!r}")
    part: Part = value
    return part


def _instant(value: Any) -> datetime:
    moment = datetime.fromisoformat(str(value))
    if moment.utcoffset() is None:
        raise InvalidInput(f"instant {value!r} has no time zone")
    return moment


def _decimal(value: Any) -> Decimal:
    if not isinstance(value, str):
        raise InvalidInput(f"amounts are strings, got {value!r}")
    return Decimal(value)


def _event(e: dict[str, Any]) -> EventInput:
    order = e["order"]
    refund = e["refund"]
    return EventInput(
        type=e["type"],
        occurred_at=_instant(e["occurred_at"]),
        order=None if order is None else OrderInput(
            order_id=str(order["id"]), amount=_decimal(order["amount"]),
            currency=str(order["currency"]),
            items=[
                ItemInput(sku=str(i["sku"]), category=str(i["category"]),
                          amount=_decimal(i["amount"]), eco=bool(i["eco"]))
                for i in order["items"]
            ],
        ),
        refund=None if refund is None else RefundInput(
            order_id=str(refund["order_id"]),
            amount=None if refund["amount"] is None else _decimal(refund["amount"]),
        ),
        referrer_member=e["referrer_member"],
        device_id=WITHHELD if e["device"] else None,
        ip=WITHHELD if e["ip"] else None,
    )  # fmt: skip


def _member(m: dict[str, Any]) -> MemberSnapshot:
    return MemberSnapshot(
        member_id=str(m["member_id"]), birth_month=m["birth_month"], frozen=bool(m["frozen"]),
        frozen_reason=m["frozen_reason"],
        is_first_purchase_at_merchant=bool(m["is_first_purchase_at_merchant"]),
        purchases=[(_instant(at), _decimal(amount)) for at, amount in m["purchases"]],
        check_in_days=[date.fromisoformat(day) for day in m["check_in_days"]],
        shares_today=_int(m["shares_today"]), reviews_today=_int(m["reviews_today"]),
        referred_by=m["referred_by"], referral_rewarded=bool(m["referral_rewarded"]),
        referrer_referrals=_int(m["referrer_referrals"]),
        referrer_badges=frozenset(m["referrer_badges"]), held_badges=frozenset(m["held_badges"]),
        current_tier=_int(m["current_tier"]), events_last_hour=_int(m["events_last_hour"]),
        points_today=_int(m["points_today"]), accounts_on_device=_int(m["accounts_on_device"]),
        accounts_on_ip=_int(m["accounts_on_ip"]),
    )  # fmt: skip


def _original(o: dict[str, Any]) -> OriginalOutcome:
    bonus = o["referral_bonus"]
    return OriginalOutcome(
        points=_int(o["points"]), order_amount=_decimal(o["order_amount"]),
        breakdown=[
            BreakdownLine(rule=str(x["rule"]), description=str(x["description"]),
                          points=_int(x["points"]))
            for x in o["breakdown"]
        ],
        already_clawed_back=_int(o["already_clawed_back"]),
        refunded_amount=_decimal(o["refunded_amount"]), order_id=o["order_id"],
        network_amount=None if o["network_amount"] is None else _decimal(o["network_amount"]),
        occurred_at=None if o["occurred_at"] is None else _instant(o["occurred_at"]),
        referral_bonus=None if bonus is None else ReferralBonus(
            member=str(bonus["member"]), points=_int(bonus["points"]),
            badges=tuple(str(b) for b in bonus["badges"]),
        ),
    )  # fmt: skip


def _fx(rate: dict[str, Any] | None, unit: str) -> FxTable:
    if rate is None:
        return FxTable(unit=unit)
    return FxTable(
        unit=unit,
        rates=(
            FxRate(
                currency=str(rate["currency"]), rate=_decimal(rate["rate"]),
                source=str(rate["source"]), as_of=date.fromisoformat(rate["as_of"]),
            ),
        ),
    )  # fmt: skip
