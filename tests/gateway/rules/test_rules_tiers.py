"""Tiers by RFM over a rolling window: thresholds, boundaries, upgrade and downgrade."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from rules_factories import NOW, SEED, decide, history, member, purchase, rules

from gateway.rules.badges import TIER_GOLD, TIER_SILVER
from gateway.rules.errors import InvalidEvent
from gateway.rules.tiers import (
    BLACK,
    BRONZE,
    GOLD,
    PLATINUM,
    SILVER,
    TIER_NAMES,
    Purchase,
    compute_tier,
    rfm,
    tier_name,
)

DAY = timedelta(days=1)


@pytest.mark.parametrize(
    ("purchases", "tier"),
    [
        ([], BRONZE),
        (history(3, 100), SILVER),
        (history(2, 150), BRONZE),
        (history(3, "99.99"), BRONZE),
        (history(6, 200), GOLD),
        (history(12, 250), PLATINUM),
        (history(24, 500), BLACK),
        (history(30, 9), BRONZE),
        (history(1, 50000), BRONZE),
    ],
    ids=[
        "no purchases",
        "3 orders, 300 spent",
        "too few orders",
        "1 cent short",
        "Gold",
        "Platinum",
        "Black",
        "many small orders",
        "one huge order",
    ],
)
def test_tier_is_the_highest_level_whose_every_threshold_is_met(
    purchases: list[Purchase], tier: int
) -> None:
    assert compute_tier(SEED, purchases, NOW) == tier


def test_purchases_outside_the_window_do_not_count() -> None:
    edge = [Purchase(NOW - 365 * DAY, Decimal(100))]
    inside = [Purchase(NOW - 365 * DAY + timedelta(seconds=1), Decimal(100))]
    recent = history(2, 100)

    assert compute_tier(SEED, recent + edge, NOW) == BRONZE
    assert rfm(recent + inside, NOW, 365).frequency == 3


def test_recency_limit_is_inclusive() -> None:
    latest_at_limit = history(3, 100, days_ago=180)

    assert compute_tier(SEED, latest_at_limit, NOW) == SILVER
    assert compute_tier(SEED, latest_at_limit, NOW + timedelta(seconds=1)) == BRONZE


def test_future_purchases_do_not_count() -> None:
    assert compute_tier(SEED, history(3, 100, at=NOW + 10 * DAY), NOW) == BRONZE


def test_upgrade_as_purchases_accumulate() -> None:
    purchases: list[Purchase] = []
    tiers = []
    for day in range(6):
        purchases.append(Purchase(NOW + day * DAY, Decimal(200)))
        tiers.append(compute_tier(SEED, purchases, NOW + day * DAY))

    assert tiers == [BRONZE, BRONZE, SILVER, SILVER, SILVER, GOLD]


def test_downgrade_as_time_passes() -> None:
    gold = history(6, 200, days_ago=1)
    latest = NOW - DAY

    assert compute_tier(SEED, gold, latest + 120 * DAY) == GOLD
    assert compute_tier(SEED, gold, latest + 121 * DAY) == SILVER
    assert compute_tier(SEED, gold, latest + 181 * DAY) == BRONZE


def test_rfm_measures_recency_frequency_and_monetary() -> None:
    measured = rfm(history(3, 100, days_ago=2, spacing_days=10), NOW, 365)

    assert (measured.recency, measured.frequency, measured.monetary) == (2 * DAY, 3, 300)


def test_rfm_refuses_a_naive_time() -> None:
    with pytest.raises(InvalidEvent):
        rfm([], datetime(2025, 1, 1), 365)


def test_tier_names() -> None:
    assert [tier_name(t) for t in range(5)] == list(TIER_NAMES)
    assert TIER_NAMES == ("Bronze", "Silver", "Gold", "Platinum", "Black")
    with pytest.raises(ValueError, match=r"0\.\.4"):
        tier_name(5)


def test_multiplier_uses_the_tier_held_before_the_purchase() -> None:
    decision = decide(purchase(100), member(purchases=history(2, 100)))

    assert decision.breakdown[0].rule == "base"
    assert decision.points == 100
    assert (decision.tier_before, decision.tier_after, decision.tier_changed) == (0, 1, True)


def test_tier_changed_compares_with_the_members_current_tier() -> None:
    decision = decide(purchase(100), member(purchases=history(3, 100), current_tier=SILVER))

    assert (decision.tier_after, decision.tier_changed) == (SILVER, False)


def test_jumping_tiers_awards_every_tier_badge_not_held() -> None:
    decision = decide(purchase(1000), member(purchases=history(5, 10)))

    assert decision.tier_after == GOLD
    assert decision.badges == (TIER_SILVER, TIER_GOLD)
    held = decide(purchase(1000), member(purchases=history(5, 10), held_badges={TIER_SILVER}))
    assert held.badges == (TIER_GOLD,)


def test_disabled_tier_badge_is_not_awarded() -> None:
    enabled = [key for key in SEED.badges.enabled if key != TIER_GOLD]
    decision = decide(
        purchase(1000),
        member(purchases=history(5, 10)),
        rule_set=rules(badges={"enabled": enabled}),
    )

    assert decision.badges == (TIER_SILVER,)
