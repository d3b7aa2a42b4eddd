"""Check-ins, shares, reviews, sign-ups and referral links."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from rules_factories import activity, check_ins, decide, lines, member, rules

from gateway.rules.badges import STREAK_7


def test_every_seventh_day_of_a_streak_earns_the_streak_bonus() -> None:
    fourteenth = decide(
        activity("check_in"), member(check_in_days=check_ins(*range(1, 14)), held_badges={STREAK_7})
    )

    assert lines(fourteenth) == {"check_in": 5, "streak": 50}
    assert fourteenth.badges == ()


def test_eighth_day_earns_only_the_check_in() -> None:
    decision = decide(activity("check_in"), member(check_in_days=check_ins(*range(1, 8))))

    assert lines(decision) == {"check_in": 5}


def test_streak_days_follow_the_programme_day() -> None:
    # 2025-06-15T20:00Z is June 16 at +08:00: June 10..15 complete a 7-day run there.
    at = datetime(2025, 6, 15, 20, 0, tzinfo=UTC)
    days = check_ins(0, 1, 2, 3, 4, 5)

    shanghai = decide(
        activity("check_in", at=at),
        member(check_in_days=days),
        rule_set=rules(utc_offset_minutes=480),
    )
    utc = decide(activity("check_in", at=at), member(check_in_days=days))

    assert lines(shanghai) == {"check_in": 5, "streak": 50}
    assert utc.reason == "check_in_duplicate"


def test_programme_without_check_in_points_still_rewards_streaks() -> None:
    decision = decide(
        activity("check_in"),
        member(check_in_days=check_ins(1, 2, 3, 4, 5, 6)),
        rule_set=rules(bonuses={"check_in": 0}),
    )

    assert lines(decision) == {"streak": 50}
    assert decision.badges == (STREAK_7,)


@pytest.mark.parametrize("kind", ["share", "review"])
def test_zero_cap_rewards_nothing(kind: str) -> None:
    decision = decide(activity(kind), rule_set=rules(caps={kind: 0}))

    assert (decision.status, decision.reason, decision.points) == (
        "accepted",
        f"{kind}_daily_cap",
        0,
    )


def test_capped_share_says_why() -> None:
    decision = decide(activity("share"), member(shares_today=3))

    assert decision.message == "3 shares rewarded today; the daily cap is 3"


def test_signup_earns_the_signup_bonus() -> None:
    decision = decide(activity("signup"), rule_set=rules(bonuses={"signup": 25}))

    assert lines(decision) == {"signup": 25}


def test_seed_signup_earns_nothing() -> None:
    decision = decide(activity("signup"))

    assert (decision.status, decision.points) == ("accepted", 0)


def test_signup_naming_an_inviter_records_the_referral() -> None:
    decision = decide(
        activity("signup", referrer_member="inviter-1"), member(is_first_purchase_at_merchant=True)
    )

    assert decision.status == "accepted"


@pytest.mark.parametrize(
    ("kind", "inviter", "who", "reason"),
    [
        ("referral", None, member(is_first_purchase_at_merchant=True), "referral_missing_referrer"),
        ("referral", "member-1", member(is_first_purchase_at_merchant=True), "referral_self"),
        (
            "referral",
            "inviter-2",
            member(is_first_purchase_at_merchant=True, referred_by="inviter-1"),
            "referral_already_set",
        ),
        ("referral", "inviter-1", member(), "referral_after_first_purchase"),
        ("signup", "member-1", member(is_first_purchase_at_merchant=True), "referral_self"),
    ],
    ids=["no inviter", "self", "already referred", "after a purchase", "self at sign-up"],
)
def test_unacceptable_referral_is_rejected(
    kind: str, inviter: str | None, who: object, reason: str
) -> None:
    decision = decide(activity(kind, referrer_member=inviter), who)  # type: ignore[arg-type]

    assert (decision.status, decision.reason, decision.points) == ("rejected", reason, 0)
