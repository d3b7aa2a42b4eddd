"""Issuance inputs (format 1): what is encoded decodes to the engine's arguments, and
recomputing on them gives the decision; the text is canonical, the salt is hashed."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rules_factories import FX, NOW, SEED, check_ins, item, member, original, purchase, refund

from gateway.rules.decision import BreakdownLine, Decision, ReferralBonus
from gateway.rules.disclosure import (
    WITHHELD,
    EngineArgs,
    Input,
    InvalidInput,
    ReducedInput,
    Stamp,
    decode_input,
    encode_input,
    encode_reduced,
    input_hash,
)
from gateway.rules.engine import EventInput, MemberSnapshot, MerchantSnapshot, evaluate
from gateway.rules.fx import DEFAULT_FX_SOURCE
from gateway.rules.tiers import Purchase

PROPERTY = settings(max_examples=150, deadline=None, database=None)
SALT = bytes(range(32))
STAMP = Stamp(
    part="points", merchant_id=3, ref="0x" + "ab" * 32, rule_version=2,
    rule_set_hash="0x" + "cd" * 32, accepted_at=1_764_921_600, accepted_block=812,
    received_at=datetime(2026, 12, 5, 8, 0, 1, 250_000, tzinfo=UTC),
)  # fmt: skip
SHOP = MerchantSnapshot(merchant_id="3", points_issued_today=1200, events_last_minute=4)
CURRENCIES = ["USD", "EUR", "JPY", "CNY"]


def _withheld(event: EventInput) -> EventInput:
    """What decoding gives back: device and IP as present or not."""
    return replace(
        event,
        device_id=WITHHELD if event.device_id else None,
        ip=WITHHELD if event.ip else None,
    )


def _redumped(text: str) -> str:
    """``text`` parsed and dumped again as canonical JSON (sorted keys, no spaces, ASCII)."""
    return json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def _outcome(decision: Decision) -> tuple[object, ...]:
    return (decision.status, decision.reason, decision.points, decision.clawback,
            decision.breakdown, decision.clawback_breakdown, decision.badges,
            decision.referral_bonus, decision.referral_clawback, decision.tier_after)  # fmt: skip


amounts = st.decimals(min_value="0.01", max_value=50_000, places=2)
zones = st.sampled_from([UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-5))])


def _moments(days: int) -> st.SearchStrategy[datetime]:
    return st.builds(
        lambda minutes, zone: (NOW - timedelta(minutes=minutes)).astimezone(zone),
        st.integers(min_value=0, max_value=days * 24 * 60),
        zones,
    )


moments = _moments(400)
recent = _moments(150)  # after the seed FX table's date: a purchase the engine accepts
ids = st.text(alphabet='abcdefghijk-0123456789é中"\\\n\u2028', min_size=1, max_size=12)
optional_ids = st.none() | ids
purchases = st.builds(
    lambda amount, currency, at, lines, device, ip: purchase(
        amount, currency, lines, at, device_id=device, ip=ip
    ),
    amounts, st.sampled_from(CURRENCIES), recent,
    st.lists(st.builds(item, st.sampled_from(["books", "food"]), st.integers(0, 900),
                       st.booleans()), max_size=3),
    optional_ids, optional_ids,
)  # fmt: skip
members = st.builds(
    MemberSnapshot,
    member_id=ids,
    birth_month=st.none() | st.integers(1, 12),
    frozen=st.booleans(),
    frozen_reason=st.none() | st.just("chargebacks"),
    is_first_purchase_at_merchant=st.booleans(),
    purchases=st.lists(st.builds(Purchase, moments, amounts), max_size=6),
    check_in_days=st.lists(st.integers(0, 30), max_size=5).map(lambda d: check_ins(*d)),
    shares_today=st.integers(0, 5),
    reviews_today=st.integers(0, 5),
    referred_by=optional_ids,
    referral_rewarded=st.booleans(),
    referrer_referrals=st.integers(0, 9),
    referrer_badges=st.frozensets(st.sampled_from(["first-order", "top-referrer"])),
    held_badges=st.frozensets(st.sampled_from(["first-order", "streak-7", "eco"])),
    current_tier=st.integers(0, 4),
    events_last_hour=st.integers(0, 50),
    points_today=st.integers(0, 20_000),
    accounts_on_device=st.integers(0, 6),
    accounts_on_ip=st.integers(0, 12),
)


@PROPERTY
@given(purchases, members, st.integers(0, 30))
def test_a_purchase_decodes_to_its_engine_arguments_and_recomputes_alike(
    event: EventInput, who: MemberSnapshot, netted: int
) -> None:
    args = EngineArgs(event=event, member=who, merchant=SHOP, original=None, fx=FX, netted=netted)
    text = encode_input(STAMP, args, SALT)
    decoded = decode_input(text)

    assert text == _redumped(text)  # written directly, it is the canonical JSON of its value

    assert isinstance(decoded, Input)
    assert decoded.stamp == STAMP and decoded.salt == SALT
    assert decoded.args.event == _withheld(event)
    assert decoded.args.member == who
    assert decoded.args.merchant == SHOP
    assert decoded.args.original is None and decoded.args.netted == netted
    again = decoded.args
    assert _outcome(evaluate(SEED, again.fx, again.event, again.member, again.merchant)) == (
        _outcome(evaluate(SEED, FX, event, who, SHOP))
    )
    assert encode_input(decoded.stamp, decoded.args, decoded.salt) == text


@PROPERTY
@given(
    st.integers(1, 400), st.none() | st.integers(1, 400), st.integers(0, 3), members,
    st.booleans(),
)  # fmt: skip
def test_a_refund_decodes_with_the_original_outcome(
    points: int, amount: int | None, clawed: int, who: MemberSnapshot, referred: bool
) -> None:
    bonus = ReferralBonus(member="inviter-1", points=200, badges=("top-referrer",))
    outcome = original(
        points + clawed, 400, {"base": points, "first_order": clawed},
        already_clawed_back=clawed, refunded_amount=Decimal("12.5"),
        occurred_at=NOW - timedelta(days=2), referral_bonus=bonus if referred else None,
    )  # fmt: skip
    event = refund(amount)
    args = EngineArgs(event=event, member=who, merchant=SHOP, original=outcome, fx=FX)
    stamp = replace(STAMP, part="clawback")
    text = encode_input(stamp, args, SALT)
    decoded = decode_input(text)

    assert text == _redumped(text)
    assert isinstance(decoded, Input)
    assert decoded.args.original == outcome and decoded.args.event == event
    again = decoded.args
    assert _outcome(
        evaluate(SEED, again.fx, again.event, again.member, again.merchant, again.original)
    ) == _outcome(evaluate(SEED, FX, event, who, SHOP, outcome))


def test_the_text_is_canonical_json_with_the_one_fx_rate_used() -> None:
    event = purchase("124.20", "EUR", [item("books", "124.2")], NOW, device_id="d-1")
    args = EngineArgs(event=event, member=member(), merchant=SHOP, original=None, fx=FX)
    text = encode_input(STAMP, args, SALT)
    body = json.loads(text)

    assert text == _redumped(text)
    assert body["format"] == 1 and body["engine"] == 1 and body["part"] == "points"
    assert body["event"]["order"]["amount"] == "124.20"  # as given: breakdowns quote it
    assert body["event"]["device"] is True and body["event"]["ip"] is False
    assert "d-1" not in text  # presence only
    assert body["fx"] == {
        "currency": "EUR", "rate": "1.0350", "source": DEFAULT_FX_SOURCE, "as_of": "2025-01-02",
    }  # fmt: skip
    assert body["received_at"] == "2026-12-05T08:00:01.250000+00:00"
    assert body["salt"] == "0x" + SALT.hex()
    usd = EngineArgs(event=purchase(10), member=member(), merchant=SHOP, original=None, fx=FX)
    assert json.loads(encode_input(STAMP, usd, SALT))["fx"] is None  # the unit needs no rate


def test_the_salt_changes_the_hash_and_equal_inputs_hash_alike() -> None:
    args = EngineArgs(event=purchase(10), member=member(), merchant=SHOP, original=None, fx=FX)
    one = encode_input(STAMP, args, SALT)

    assert input_hash(one) == input_hash(encode_input(STAMP, args, SALT))
    assert input_hash(one) != input_hash(encode_input(STAMP, args, bytes(32)))
    assert input_hash(one).startswith("0x") and len(input_hash(one)) == 66
    with pytest.raises(ValueError, match="32 bytes"):
        encode_input(STAMP, args, b"short")


def test_the_inviters_input_names_the_event_by_hash_only() -> None:
    args = EngineArgs(
        event=purchase(99, order_id="secret-order"), member=member(), merchant=SHOP,
        original=None, fx=FX,
    )  # fmt: skip
    event_hash = input_hash(encode_input(STAMP, args, SALT))
    stamp = replace(STAMP, part="referral", ref="0x" + "ef" * 32)
    text = encode_reduced(stamp, event_hash, "inviter-1", SALT)
    decoded = decode_input(text)

    assert text == _redumped(text)
    assert decoded == ReducedInput(stamp, event_hash, "inviter-1", SALT)
    assert "secret-order" not in text and "member-1" not in text
    with pytest.raises(ValueError, match="reduced"):
        encode_input(stamp, args, SALT)
    with pytest.raises(ValueError, match="full input"):
        encode_reduced(STAMP, event_hash, "inviter-1", SALT)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda body: body.update(format=2), "unknown input format"),
        (lambda body: body.update(engine=7), "unknown engine"),
        (lambda body: body.update(part="bonus"), "unknown part"),
        (lambda body: body.update(rule_version="2"), "expected an integer"),
        (lambda body: body["event"].update(occurred_at="2025-06-15T12:00:00"), "no time zone"),
        (lambda body: body["event"]["order"].update(amount="1e2"), "not canonical"),
        (lambda body: body["event"]["order"].update(amount="abc"), "not an issuance input"),
        (lambda body: body.pop("member"), "not an issuance input"),
    ],
)
def test_a_text_that_is_not_a_canonical_input_is_refused(change: object, message: str) -> None:
    args = EngineArgs(event=purchase(100), member=member(), merchant=SHOP, original=None, fx=FX)
    body = json.loads(encode_input(STAMP, args, SALT))
    change(body)  # type: ignore[operator]
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))

    with pytest.raises(InvalidInput, match=message):
        decode_input(text)


def test_whitespace_makes_a_text_not_canonical() -> None:
    args = EngineArgs(event=purchase(100), member=member(), merchant=SHOP, original=None, fx=FX)
    text = encode_input(STAMP, args, SALT)

    with pytest.raises(InvalidInput, match="not canonical"):
        decode_input(json.dumps(json.loads(text), sort_keys=True))
    with pytest.raises(InvalidInput, match="JSON object"):
        decode_input("[1]")


def test_breakdown_lines_of_the_original_keep_their_descriptions() -> None:
    line = BreakdownLine("base", "1 point per USD on 124.20 USD", 124)
    outcome = replace(original(124, "124.20"), breakdown=(line,))
    args = EngineArgs(event=refund(), member=member(), merchant=SHOP, original=outcome, fx=FX)
    decoded = decode_input(encode_input(replace(STAMP, part="clawback"), args, SALT))

    assert isinstance(decoded, Input) and decoded.args.original is not None
    assert decoded.args.original.breakdown == (line,)
