"""Refunds: exactly what the order earned comes back, never more."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest
from rules_factories import NOW, decide, history, member, merchant, original, refund

from gateway.rules.decision import BreakdownLine, ReferralBonus
from gateway.rules.errors import InvalidEvent
from gateway.rules.inputs import OriginalOutcome
from gateway.rules.tiers import Purchase

# 100 base + 25 Gold + 100 first order = 225, on a USD 100 order.
EARNED = {"base": 100, "tier": 25, "first_order": 100}


def refunded(outcome: OriginalOutcome, amount: Decimal, clawback: int) -> OriginalOutcome:
    """``outcome`` after a refund of ``amount`` that clawed back ``clawback``."""
    return replace(
        outcome,
        refunded_amount=outcome.refunded_amount + amount,
        already_clawed_back=outcome.already_clawed_back + clawback,
    )


def test_full_refund_claws_back_everything_left() -> None:
    decision = decide(refund(), outcome=original(225, breakdown=EARNED, already_clawed_back=25))

    assert (decision.status, decision.points, decision.clawback) == ("accepted", 0, 200)
    assert [line.rule for line in decision.clawback_breakdown] == ["refund_full"]


def test_refunding_the_whole_amount_is_a_full_refund() -> None:
    assert decide(refund(100), outcome=original(225, breakdown=EARNED)).clawback == 225


def test_partial_refund_leaves_fixed_bonuses() -> None:
    decision = decide(refund(50), outcome=original(225, breakdown=EARNED))

    assert decision.clawback == 63  # ceil(125 x 50 / 100 = 62.5)
    assert [line.rule for line in decision.clawback_breakdown] == ["refund_partial"]


def test_successive_partial_refunds_never_claw_back_more_than_one_refund_would() -> None:
    outcome = original(225, breakdown=EARNED)
    third = Decimal("100") / 3
    clawbacks = []
    for amount in (third, third):
        clawback = decide(refund(str(amount)), outcome=outcome).clawback
        clawbacks.append(clawback)
        outcome = refunded(outcome, amount, clawback)

    assert clawbacks == [42, 42]  # ceil(41.67), then ceil(83.33) - 42
    last = decide(refund(), outcome=outcome)
    assert last.clawback == 225 - 84
    assert sum(clawbacks) + last.clawback == 225


def test_refund_after_a_full_refund_exceeds_the_order() -> None:
    outcome = original(225, breakdown=EARNED, refunded_amount=Decimal(100), already_clawed_back=225)

    decision = decide(refund(), outcome=outcome)

    assert (decision.status, decision.reason, decision.clawback) == (
        "rejected",
        "refund_exceeds_order",
        0,
    )


def test_refund_beyond_what_is_left_is_rejected() -> None:
    outcome = original(225, breakdown=EARNED, refunded_amount=Decimal(60), already_clawed_back=75)

    assert decide(refund("40.01"), outcome=outcome).reason == "refund_exceeds_order"
    assert decide(refund(40), outcome=outcome).clawback == 150


def test_refund_without_a_recorded_purchase_is_rejected() -> None:
    decision = decide(refund())

    assert (decision.status, decision.reason) == ("rejected", "refund_unknown_order")


def test_full_refund_returns_the_inviters_reward_for_clawback() -> None:
    inviter = ReferralBonus("inviter-1", 200)
    earned = {"base": 100, "first_order": 100, "referral_invitee": 100}
    outcome = original(300, breakdown=earned, referral_bonus=inviter)

    assert decide(refund(), outcome=outcome).referral_clawback == inviter
    assert decide(refund(10), outcome=outcome).referral_clawback is None


def test_without_a_recorded_breakdown_all_points_count_as_amount_based() -> None:
    assert decide(refund(10), outcome=original(225)).clawback == 23


def test_refunds_of_a_frozen_member_over_every_limit_still_claw_back() -> None:
    who = member(frozen=True, events_last_hour=10_000, accounts_on_device=99)
    shop = merchant(events_last_minute=10_000)

    decision = decide(refund(), who, shop, outcome=original(225, breakdown=EARNED))

    assert (decision.status, decision.clawback) == ("accepted", 225)


def test_full_refund_removes_the_order_from_the_tier_history() -> None:
    at = NOW - timedelta(days=1)
    purchases = [*history(2, 100, days_ago=2), Purchase(at, Decimal(100))]
    decision = decide(
        refund(),
        member(purchases=purchases, current_tier=1),
        outcome=original(100, breakdown={"base": 100}, occurred_at=at),
    )

    assert (decision.tier_before, decision.tier_after, decision.tier_changed) == (1, 0, True)


def test_partial_refund_reduces_the_orders_monetary_value() -> None:
    at = NOW - timedelta(days=1)
    purchases = [*history(2, 100, days_ago=2), Purchase(at, Decimal(100))]
    who = member(purchases=purchases, current_tier=1)
    outcome = original(100, breakdown={"base": 100}, occurred_at=at)

    assert decide(refund(1), who, outcome=outcome).tier_after == 0
    unknown_time = replace(outcome, occurred_at=None)
    assert decide(refund(1), who, outcome=unknown_time).tier_after == 1


@pytest.mark.parametrize(
    "fields",
    [
        {"points": 100, "breakdown": [BreakdownLine("base", "base", 90)]},
        {"points": 100, "already_clawed_back": 101},
        {"points": -1},
        {"points": 100, "refunded_amount": Decimal(101)},
        {"points": 100, "order_amount": Decimal(-1)},
    ],
    ids=[
        "breakdown off",
        "clawed back too much",
        "negative",
        "refunded too much",
        "negative order",
    ],
)
def test_inconsistent_original_outcome_is_refused(fields: dict[str, object]) -> None:
    values: dict[str, object] = {
        "order_id": "order-1",
        "order_amount": Decimal(100),
        "network_amount": Decimal(100),
        **fields,
    }
    with pytest.raises(InvalidEvent):
        OriginalOutcome(**values)  # type: ignore[arg-type]


def test_outcome_naming_another_order_is_an_unknown_order() -> None:
    decision = decide(refund(order_id="order-2"), outcome=original(100, breakdown={"base": 100}))

    assert decision.reason == "refund_unknown_order"


def test_outcome_without_order_id_trusts_the_gateways_lookup() -> None:
    outcome = original(100, breakdown={"base": 100}, order_id=None)

    assert decide(refund(order_id="order-2"), outcome=outcome).clawback == 100


def test_tier_ignores_the_refund_without_the_orders_network_amount() -> None:
    at = NOW - timedelta(days=1)
    purchases = [*history(2, 100, days_ago=2), Purchase(at, Decimal(100))]
    outcome = original(100, breakdown={"base": 100}, occurred_at=at, network_amount=None)

    assert decide(refund(), member(purchases=purchases), outcome=outcome).tier_after == 1
