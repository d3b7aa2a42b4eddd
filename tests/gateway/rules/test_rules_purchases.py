"""Purchases in detail: rounding, campaign parts, programme days, bonuses and badges."""

from __future__ import annotations

from datetime import UTC, datetime

from rules_factories import (
    SEED,
    campaign,
    decide,
    history,
    item,
    lines,
    member,
    purchase,
    rules,
)

from gateway.rules.badges import ECO_GUARDIAN, FIRST_ORDER, TOP_REFERRER


def test_each_multiplier_line_is_the_difference_of_floored_stages() -> None:
    # $9.99 at Silver: base floor(9.99) = 9; floor(9.99 x 1.1 = 10.989) = 10.
    decision = decide(purchase("9.99"), member(purchases=history(3, 100)))

    assert lines(decision) == {"base": 9, "tier": 1}


def test_category_match_ignores_case_and_surrounding_spaces() -> None:
    decision = decide(
        purchase(100, items=[item(" Electronics ", 100)]),
        rule_set=rules(campaigns=[campaign(categories=["electronics"])]),
    )

    assert lines(decision) == {"base": 100, "campaign:festival": 100}


def test_items_worth_more_than_the_order_share_it_in_proportion() -> None:
    # A discounted order: items list 100, the customer pays 80; electronics is 60%.
    decision = decide(
        purchase(80, items=[item("electronics", 60), item("books", 40)]),
        rule_set=rules(campaigns=[campaign(categories=["electronics"])]),
    )

    assert lines(decision) == {"base": 80, "campaign:festival": 48}


def test_each_part_gets_its_best_campaign() -> None:
    # Books (80) get the books x3; the unitemised 20 (shipping) only the general x2.
    decision = decide(
        purchase(100, items=[item("books", 80)]),
        rule_set=rules(
            campaigns=[campaign("general", 2), campaign("books", 3, categories=["books"])]
        ),
    )

    assert lines(decision) == {"base": 100, "campaign:general": 20, "campaign:books": 160}


def test_campaign_tie_goes_to_the_first_in_rule_set_order() -> None:
    decision = decide(
        purchase(100), rule_set=rules(campaigns=[campaign("first", 2), campaign("second", 2)])
    )

    assert lines(decision) == {"base": 100, "campaign:first": 100}


def test_tier_birthday_and_campaign_multiply() -> None:
    decision = decide(
        purchase(100),
        member(birth_month=6, purchases=history(24, 500)),
        rule_set=rules(campaigns=[campaign()]),
    )

    # 100 x 2.0 (Black) x 3 (birthday) x 2 (festival) = 1200
    assert lines(decision) == {"base": 100, "tier": 100, "birthday": 400, "campaign:festival": 600}


def test_birthday_month_follows_the_programme_day() -> None:
    late_june_utc = datetime(2025, 6, 30, 20, 0, tzinfo=UTC)  # already July 1 at +08:00
    shanghai = rules(utc_offset_minutes=480)

    in_july = decide(purchase(100, at=late_june_utc), member(birth_month=7), rule_set=shanghai)
    in_june = decide(purchase(100, at=late_june_utc), member(birth_month=7))

    assert lines(in_july) == {"base": 100, "birthday": 200}
    assert lines(in_june) == {"base": 100}


def test_unknown_birth_month_never_multiplies() -> None:
    assert lines(decide(purchase(100), member(birth_month=None))) == {"base": 100}


def test_zero_amount_order_still_earns_the_first_order_bonus() -> None:
    decision = decide(purchase(0), member(is_first_purchase_at_merchant=True))

    assert lines(decision) == {"base": 0, "first_order": 100}
    assert decision.badges == (FIRST_ORDER,)


def test_earn_rate_scales_points_per_network_unit() -> None:
    decision = decide(purchase("10.50", "EUR"), rule_set=rules(earn_rate="10"))

    # EUR 10.50 x 1.0350 = USD 10.8675, x 10 points = 108.675
    assert lines(decision) == {"base": 108}


def test_first_order_badge_is_not_awarded_twice() -> None:
    decision = decide(
        purchase(100), member(is_first_purchase_at_merchant=True, held_badges={FIRST_ORDER})
    )

    assert lines(decision) == {"base": 100, "first_order": 100}
    assert decision.badges == ()


def test_disabled_first_order_badge_leaves_the_bonus() -> None:
    enabled = [key for key in SEED.badges.enabled if key != FIRST_ORDER]
    decision = decide(
        purchase(100),
        member(is_first_purchase_at_merchant=True),
        rule_set=rules(badges={"enabled": enabled}),
    )

    assert lines(decision) == {"base": 100, "first_order": 100}
    assert decision.badges == ()


def test_badges_come_in_catalogue_order_once_each() -> None:
    decision = decide(
        purchase(100, items=[item("home", 50, eco=True), item("food", 50, eco=True)]),
        member(is_first_purchase_at_merchant=True),
    )

    assert decision.badges == (FIRST_ORDER, ECO_GUARDIAN)


def test_referral_is_only_on_the_first_purchase() -> None:
    later = member(is_first_purchase_at_merchant=False, referred_by="inviter-1")

    assert decide(purchase(100), later).referral_bonus is None


def test_self_referral_snapshot_is_never_rewarded() -> None:
    decision = decide(
        purchase(100), member(is_first_purchase_at_merchant=True, referred_by="member-1")
    )

    assert decision.referral_bonus is None
    assert "referral_invitee" not in lines(decision)


def test_top_referrer_badge_not_reawarded_to_an_inviter_holding_it() -> None:
    decision = decide(
        purchase(100),
        member(
            is_first_purchase_at_merchant=True,
            referred_by="inviter-1",
            referrer_referrals=9,
            referrer_badges={TOP_REFERRER},
        ),
    )

    assert decision.referral_bonus is not None
    assert decision.referral_bonus.badges == ()


def test_programme_without_referral_rewards_has_no_referral_bonus() -> None:
    decision = decide(
        purchase(100),
        member(is_first_purchase_at_merchant=True, referred_by="inviter-1"),
        rule_set=rules(bonuses={"referral_inviter": 0, "referral_invitee": 0}),
    )

    assert decision.referral_bonus is None
    assert lines(decision) == {"base": 100, "first_order": 100}
