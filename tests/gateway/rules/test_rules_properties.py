"""Invariants over any input: never negative, lines sum, refunds bounded, monotonic."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from rules_factories import NOW, SEED, campaign, decide, item, member, merchant, purchase, rules

from gateway.rules.badges import BADGES
from gateway.rules.decision import Decision
from gateway.rules.engine import (
    EventInput,
    ItemInput,
    MemberSnapshot,
    OriginalOutcome,
    RefundInput,
)
from gateway.rules.model import RuleSet
from gateway.rules.tiers import Purchase

PROPERTY = settings(max_examples=150, deadline=None, database=None)
CURRENCIES = ["USD", "EUR", "GBP", "CNY", "JPY", "SGD", "HKD", "AUD", "CAD"]
CATEGORIES = ["books", "electronics", "home", "food"]

amounts = st.decimals(min_value=0, max_value=100_000, places=2)
positive_amounts = st.decimals(min_value="0.01", max_value=100_000, places=2)
multipliers = st.decimals(min_value=1, max_value=10, places=2)
rule_sets = st.one_of(
    st.just(SEED),
    st.builds(
        lambda rate, m1, m2, cats, birthday: rules(
            earn_rate=str(rate),
            bonuses={"birthday_multiplier": str(birthday)},
            campaigns=[
                campaign("festival", m1),
                campaign("category", m2, categories=cats),
                campaign(
                    "future", 10, starts=NOW + timedelta(days=1), ends=NOW + timedelta(days=2)
                ),
            ],
        ),
        st.decimals(min_value="0.01", max_value=100, places=2),
        multipliers,
        multipliers,
        st.lists(st.sampled_from(CATEGORIES), min_size=1, max_size=2, unique=True),
        multipliers,
    ),
)
items = st.lists(
    st.builds(item, st.sampled_from(CATEGORIES), amounts.map(str), st.booleans()), max_size=4
)
histories = st.lists(
    st.builds(
        Purchase,
        st.integers(min_value=0, max_value=400).map(lambda d: NOW - timedelta(days=d, hours=1)),
        amounts,
    ),
    max_size=30,
)


@st.composite
def members(draw: st.DrawFn) -> MemberSnapshot:
    fields: dict[str, Any] = {
        "birth_month": draw(st.none() | st.integers(1, 12)),
        "frozen": draw(st.integers(0, 9)) == 0,
        "is_first_purchase_at_merchant": draw(st.booleans()),
        "purchases": draw(histories),
        "check_in_days": {
            NOW.date() - timedelta(days=d) for d in draw(st.sets(st.integers(0, 15)))
        },
        "shares_today": draw(st.integers(0, 5)),
        "reviews_today": draw(st.integers(0, 5)),
        "referred_by": draw(st.none() | st.just("inviter-1")),
        "referral_rewarded": draw(st.booleans()),
        "referrer_referrals": draw(st.integers(0, 10)),
        "held_badges": draw(st.sets(st.sampled_from([b.key for b in BADGES]))),
        "current_tier": draw(st.integers(0, 4)),
        "events_last_hour": draw(st.integers(0, 70)),
        "points_today": draw(st.integers(0, 60_000)),
        "accounts_on_device": draw(st.integers(0, 5)),
    }
    return member(**fields)


@st.composite
def events(draw: st.DrawFn) -> EventInput:
    kind = draw(st.sampled_from(["purchase", "check_in", "share", "review", "signup", "referral"]))
    at = NOW + timedelta(minutes=draw(st.integers(-3000, 3000)))
    if kind == "purchase":
        return purchase(
            draw(amounts), draw(st.sampled_from(CURRENCIES)), draw(items), at=at, device_id="d"
        )
    inviter = draw(st.none() | st.sampled_from(["inviter-1", "member-1"]))
    return EventInput(
        type=kind,  # type: ignore[arg-type]
        occurred_at=at,
        referrer_member=inviter,
        device_id="d",
    )


def assert_consistent(decision: Decision) -> None:
    assert decision.points >= 0 and decision.clawback >= 0
    assert all(line.points >= 0 for line in decision.breakdown)
    assert sum(line.points for line in decision.breakdown) == decision.points
    assert sum(line.points for line in decision.clawback_breakdown) == decision.clawback
    if decision.status == "rejected":
        assert (decision.points, decision.clawback, decision.badges) == (0, 0, ())
    assert 0 <= decision.tier_before <= 4 and 0 <= decision.tier_after <= 4


@PROPERTY
@given(rule_sets, events(), members())
def test_points_are_never_negative_and_the_breakdown_sums_to_them(
    rule_set: RuleSet, event: EventInput, who: MemberSnapshot
) -> None:
    assert_consistent(decide(event, who, merchant(), rule_set=rule_set))


@PROPERTY
@given(
    rule_sets,
    amounts,
    items,
    members(),
    st.lists(st.decimals(min_value="0.01", max_value=1, places=3), max_size=5),
    st.booleans(),
)
def test_refunds_never_claw_back_more_than_the_order_earned(
    rule_set: RuleSet,
    amount: Decimal,
    order_items: list[ItemInput],
    who: MemberSnapshot,
    fractions: list[Decimal],
    finish_with_full_refund: bool,
) -> None:
    bought = decide(
        purchase(amount, items=order_items), replace(who, frozen=False), rule_set=rule_set
    )
    outcome = OriginalOutcome(
        order_id="order-1",
        points=bought.points,
        breakdown=bought.breakdown,
        order_amount=amount,
        network_amount=amount,
        occurred_at=NOW,
    )
    clawed = 0
    for fraction in [*fractions, *([Decimal(1)] if finish_with_full_refund else [])]:
        left = outcome.order_amount - outcome.refunded_amount
        part = min(left, (amount * fraction).quantize(Decimal("0.01")))
        if part <= 0:
            continue
        refund = EventInput(
            type="refund", occurred_at=NOW, refund=RefundInput(order_id="order-1", amount=part)
        )
        decision = decide(refund, who, rule_set=rule_set, outcome=outcome)
        assert_consistent(decision)
        assert decision.status == "accepted"
        clawed += decision.clawback
        outcome = replace(
            outcome,
            refunded_amount=outcome.refunded_amount + part,
            already_clawed_back=outcome.already_clawed_back + decision.clawback,
        )
        assert clawed <= bought.points
    if finish_with_full_refund and amount > 0:
        assert clawed == bought.points


@PROPERTY
@given(
    rule_sets,
    st.sampled_from(CURRENCIES),
    items,
    members(),
    amounts,
    amounts,
)
def test_points_grow_with_the_order_amount_for_a_fixed_member(
    rule_set: RuleSet,
    currency: str,
    order_items: list[ItemInput],
    who: MemberSnapshot,
    first: Decimal,
    second: Decimal,
) -> None:
    low, high = sorted((first, second))

    def points(amount: Decimal) -> int:
        return decide(purchase(amount, currency, order_items), who, rule_set=rule_set).points

    assert points(low) <= points(high)


@PROPERTY
@given(rule_sets, events(), members())
def test_holding_an_event_never_changes_what_it_issues(
    rule_set: RuleSet, event: EventInput, who: MemberSnapshot
) -> None:
    quiet = replace(who, events_last_hour=0, points_today=0, accounts_on_device=0)
    crowded = replace(quiet, accounts_on_device=100)

    calm = decide(event, quiet, rule_set=rule_set)
    flagged = decide(event, crowded, rule_set=rule_set)

    if calm.status == "accepted":
        assert flagged.status == "held"
    assert (flagged.points, flagged.breakdown, flagged.badges) == (
        calm.points,
        calm.breakdown,
        calm.badges,
    )
