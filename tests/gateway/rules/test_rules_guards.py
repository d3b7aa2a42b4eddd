"""Anti-abuse: frozen members, velocity limits, device and IP clustering."""

from __future__ import annotations

import pytest
from rules_factories import activity, decide, lines, member, merchant, purchase, rules

from gateway.rules.badges import FIRST_ORDER


def test_events_up_to_a_limit_are_accepted() -> None:
    decision = decide(purchase(100), member(events_last_hour=59, points_today=49_900))

    assert (decision.status, decision.reason) == ("accepted", None)


def test_held_event_keeps_what_it_would_issue() -> None:
    decision = decide(
        purchase(100, device_id="device-1"),
        member(is_first_purchase_at_merchant=True, referred_by="inviter-1", accounts_on_device=4),
    )

    assert (decision.status, decision.reason) == ("held", "device_cluster")
    assert lines(decision) == {"base": 100, "first_order": 100, "referral_invitee": 100}
    assert decision.badges == (FIRST_ORDER,)
    assert decision.referral_bonus is not None
    assert "4 members on device device-1" in decision.message


def test_rejected_event_issues_nothing() -> None:
    decision = decide(
        purchase(100),
        member(points_today=50_000, is_first_purchase_at_merchant=True),
        rule_set=rules(velocity={"action": "reject"}),
    )

    assert (decision.status, decision.reason) == ("rejected", "velocity_member")
    assert (decision.points, decision.breakdown, decision.badges) == (0, (), ())
    assert decision.message == "member points per day: 50200 would exceed the limit of 50000"


def test_merchant_points_count_the_inviters_reward() -> None:
    who = member(is_first_purchase_at_merchant=True, referred_by="inviter-1")
    # member gets 300, inviter 200: 9 999 500 + 500 is exactly the limit.
    at_limit = decide(purchase(100), who, merchant(points_issued_today=9_999_500))
    over = decide(purchase(100), who, merchant(points_issued_today=9_999_501))

    assert at_limit.status == "accepted"
    assert (over.status, over.reason) == ("held", "velocity_merchant")


def test_limits_set_to_none_are_off() -> None:
    unlimited = rules(
        velocity={
            "member_events_per_hour": None,
            "member_points_per_day": None,
            "merchant_events_per_minute": None,
            "merchant_points_per_day": None,
        },
        clustering={"max_accounts_per_device": None, "max_accounts_per_ip": None},
    )
    decision = decide(
        purchase(100, device_id="d", ip="198.51.100.1"),
        member(
            events_last_hour=10**6, points_today=10**9, accounts_on_device=99, accounts_on_ip=99
        ),
        merchant(events_last_minute=10**6, points_issued_today=10**12),
        rule_set=unlimited,
    )

    assert decision.status == "accepted"


def test_velocity_counts_zero_point_events_too() -> None:
    decision = decide(activity("share"), member(shares_today=3, events_last_hour=60))

    assert (decision.status, decision.reason, decision.points) == ("held", "velocity_member", 0)


def test_velocity_reason_comes_before_clustering() -> None:
    decision = decide(
        purchase(100, device_id="device-1"), member(events_last_hour=60, accounts_on_device=9)
    )

    assert decision.reason == "velocity_member"


def test_clustering_needs_the_device_or_ip_on_the_event() -> None:
    decision = decide(purchase(100), member(accounts_on_device=9, accounts_on_ip=99))

    assert decision.status == "accepted"


@pytest.mark.parametrize("kind", ["purchase", "check_in", "share", "review", "signup", "referral"])
def test_frozen_member_is_rejected_for_every_earning_event(kind: str) -> None:
    event = purchase(100) if kind == "purchase" else activity(kind, referrer_member="inviter-1")
    who = member(frozen=True, frozen_reason="chargeback fraud", is_first_purchase_at_merchant=True)

    decision = decide(event, who)

    assert (decision.status, decision.reason, decision.points) == ("rejected", "member_frozen", 0)
    assert decision.message == "member member-1 is frozen: chargeback fraud"
