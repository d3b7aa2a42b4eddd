"""The seed programme, one rule per row: given an event and a member, what is decided.

Each case names the rule it demonstrates; the numbers follow from
``default_rule_set("USD")`` (1 point per USD; tiers x1.0/1.1/1.25/1.5/2.0;
birthday x3; first order +100; check-in +5, 7-day streak +50; share +10, 3 a
day; review +20, 2 a day; referral +200 inviter / +100 invitee; velocity and
clustering limits that hold) and the default FX table (EUR 1.0350, JPY 0.006350).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from rules_factories import (
    NOW,
    SEED,
    activity,
    campaign,
    check_ins,
    decide,
    history,
    item,
    lines,
    member,
    merchant,
    original,
    purchase,
    refund,
    rules,
)

from gateway.rules.badges import (
    ECO_GUARDIAN,
    FIRST_ORDER,
    STREAK_7,
    TIER_BADGES,
    TIER_SILVER,
    TOP_REFERRER,
)
from gateway.rules.engine import (
    EventInput,
    MemberSnapshot,
    MerchantSnapshot,
    OriginalOutcome,
    ReferralBonus,
)
from gateway.rules.model import RuleSet

ALL_TIER_BADGES = frozenset(b for b in TIER_BADGES if b)
FESTIVAL = rules(campaigns=[campaign()])


@dataclass(frozen=True)
class Case:
    """One rule of the programme as an example."""

    rule: str
    event: EventInput
    who: MemberSnapshot = field(default_factory=member)
    shop: MerchantSnapshot = field(default_factory=merchant)
    rule_set: RuleSet = SEED
    outcome: OriginalOutcome | None = None
    breakdown: dict[str, int] = field(default_factory=dict)
    status: str = "accepted"
    reason: str | None = None
    badges: tuple[str, ...] = ()
    clawback: int = 0
    referral: ReferralBonus | None = None
    tier_after: int | None = None


CASES = [
    # Base rate and FX
    Case("base: 1 point per USD", purchase(100), breakdown={"base": 100}),
    Case("base: rounded down", purchase("99.99"), breakdown={"base": 99}),
    Case("fx: EUR 100 at 1.0350 is USD 103.50", purchase(100, "EUR"), breakdown={"base": 103}),
    Case("fx: JPY 10000 at 0.006350 is USD 63.50", purchase(10000, "JPY"), breakdown={"base": 63}),
    # Tiers and their multipliers
    *(
        Case(
            f"tier: {name} x{mult}",
            purchase(100),
            who=member(purchases=history(orders, each), held_badges=ALL_TIER_BADGES),
            breakdown={"base": 100, "tier": bonus},
            tier_after=tier,
        )
        for name, mult, orders, each, bonus, tier in [
            ("Silver", "1.1", 3, 100, 10, 1),
            ("Gold", "1.25", 6, 200, 25, 2),
            ("Platinum", "1.5", 12, 250, 50, 3),
            ("Black", "2.0", 24, 500, 100, 4),
        ]
    ),
    Case(
        "tier upgrade: the purchase reaching Silver awards the Silver badge",
        purchase(100),
        who=member(purchases=history(2, 100)),
        breakdown={"base": 100},
        badges=(TIER_SILVER,),
        tier_after=1,
    ),
    Case(
        "tier downgrade: purchases that left the 365-day window no longer count",
        purchase(100),
        who=member(purchases=history(5, 100, days_ago=366), current_tier=1),
        breakdown={"base": 100},
        tier_after=0,
    ),
    Case(
        "tier downgrade: no purchase within Silver's 180 days is Bronze",
        activity("check_in"),
        who=member(purchases=history(5, 100, days_ago=181), current_tier=1),
        breakdown={"check_in": 5},
        tier_after=0,
    ),
    # Birthday month and campaigns
    Case(
        "birthday month x3",
        purchase(100),
        member(birth_month=6),
        breakdown={"base": 100, "birthday": 200},
    ),
    Case(
        "birthday: another month x1", purchase(100), member(birth_month=7), breakdown={"base": 100}
    ),
    Case(
        "multipliers multiply: Gold x1.25 x birthday x3",
        purchase(100),
        who=member(birth_month=6, purchases=history(6, 200), held_badges=ALL_TIER_BADGES),
        breakdown={"base": 100, "tier": 25, "birthday": 250},
    ),
    Case(
        "campaign: festival x2 inside its window",
        purchase(100),
        rule_set=FESTIVAL,
        breakdown={"base": 100, "campaign:festival": 100},
    ),
    Case(
        "campaign: not before it starts",
        purchase(100),
        rule_set=rules(campaigns=[campaign(starts=NOW + timedelta(hours=1))]),
        breakdown={"base": 100},
    ),
    Case(
        "campaign: its end is exclusive",
        purchase(100),
        rule_set=rules(campaigns=[campaign(starts=NOW - timedelta(days=2), ends=NOW)]),
        breakdown={"base": 100},
    ),
    Case(
        "campaign: categories limit it to matching items",
        purchase(100, items=[item("electronics", 60), item("books", 40)]),
        rule_set=rules(campaigns=[campaign(categories=["electronics"])]),
        breakdown={"base": 100, "campaign:festival": 60},
    ),
    Case(
        "campaign: no matching category, no multiplier",
        purchase(100, items=[item("books", 100)]),
        rule_set=rules(campaigns=[campaign(categories=["electronics"])]),
        breakdown={"base": 100},
    ),
    Case(
        "campaigns do not stack: the best one applies",
        purchase(100),
        rule_set=rules(campaigns=[campaign("festival", 2), campaign("flash", 3)]),
        breakdown={"base": 100, "campaign:flash": 200},
    ),
    # First order and eco badges
    Case(
        "first order: +100 and the First Order badge",
        purchase(100),
        who=member(is_first_purchase_at_merchant=True),
        breakdown={"base": 100, "first_order": 100},
        badges=(FIRST_ORDER,),
    ),
    Case(
        "first order: once only",
        purchase(100),
        who=member(is_first_purchase_at_merchant=False, held_badges={FIRST_ORDER}),
        breakdown={"base": 100},
    ),
    Case(
        "eco item: the Eco Guardian badge",
        purchase(100, items=[item("home", 100, eco=True)]),
        breakdown={"base": 100},
        badges=(ECO_GUARDIAN,),
    ),
    Case(
        "eco item: badge already held",
        purchase(100, items=[item("home", 100, eco=True)]),
        who=member(held_badges={ECO_GUARDIAN}),
        breakdown={"base": 100},
    ),
    # Check-in streaks
    Case("check-in: +5", activity("check_in"), breakdown={"check_in": 5}),
    Case(
        "check-in: the 7th consecutive day adds +50 and the 7-Day Streak badge",
        activity("check_in"),
        who=member(check_in_days=check_ins(1, 2, 3, 4, 5, 6)),
        breakdown={"check_in": 5, "streak": 50},
        badges=(STREAK_7,),
    ),
    Case(
        "check-in: a missed day breaks the streak",
        activity("check_in"),
        who=member(check_in_days=check_ins(1, 2, 3, 4, 5, 7)),
        breakdown={"check_in": 5},
    ),
    Case(
        "check-in: twice a day earns once",
        activity("check_in"),
        who=member(check_in_days=check_ins(0)),
        reason="check_in_duplicate",
    ),
    # Shares and reviews with daily caps
    Case("share: +10", activity("share"), member(shares_today=2), breakdown={"share": 10}),
    Case("share: 3 a day", activity("share"), member(shares_today=3), reason="share_daily_cap"),
    Case("review: +20", activity("review"), member(reviews_today=1), breakdown={"review": 20}),
    Case("review: 2 a day", activity("review"), member(reviews_today=2), reason="review_daily_cap"),
    # Referrals
    Case(
        "referral: recorded, nothing earned yet",
        activity("referral", referrer_member="inviter-1"),
        who=member(is_first_purchase_at_merchant=True),
    ),
    Case(
        "referral: the invitee's first purchase rewards both sides",
        purchase(100),
        who=member(is_first_purchase_at_merchant=True, referred_by="inviter-1"),
        breakdown={"base": 100, "first_order": 100, "referral_invitee": 100},
        badges=(FIRST_ORDER,),
        referral=ReferralBonus("inviter-1", 200),
    ),
    Case(
        "referral: rewarded once",
        purchase(100),
        who=member(
            is_first_purchase_at_merchant=True, referred_by="inviter-1", referral_rewarded=True
        ),
        breakdown={"base": 100, "first_order": 100},
        badges=(FIRST_ORDER,),
    ),
    Case(
        "referral: the 5th successful referral makes a Top Referrer",
        purchase(100),
        who=member(
            is_first_purchase_at_merchant=True,
            referred_by="inviter-1",
            referrer_referrals=4,
            held_badges={FIRST_ORDER},
        ),
        breakdown={"base": 100, "first_order": 100, "referral_invitee": 100},
        referral=ReferralBonus("inviter-1", 200, (TOP_REFERRER,)),
    ),
    # Refunds
    Case(
        "full refund: everything the order earned, bonuses included",
        refund(),
        outcome=original(300, breakdown={"base": 100, "first_order": 100, "referral_invitee": 100}),
        clawback=300,
    ),
    Case(
        "partial refund: that share of the amount-based points, rounded up",
        refund(30),
        outcome=original(225, breakdown={"base": 100, "tier": 25, "first_order": 100}),
        clawback=38,
    ),
    Case(
        "refund: unknown order",
        refund(order_id="order-404"),
        outcome=original(100, breakdown={"base": 100}),
        status="rejected",
        reason="refund_unknown_order",
    ),
    Case(
        "refund: more than the order",
        refund(150),
        outcome=original(100, breakdown={"base": 100}),
        status="rejected",
        reason="refund_exceeds_order",
    ),
    # Anti-abuse
    Case(
        "velocity: 60 member events an hour, the 61st is held",
        purchase(100),
        who=member(events_last_hour=60),
        breakdown={"base": 100},
        status="held",
        reason="velocity_member",
    ),
    Case(
        "velocity: 50 000 member points a day",
        purchase(100),
        who=member(points_today=49_950),
        breakdown={"base": 100},
        status="held",
        reason="velocity_member",
    ),
    Case(
        "velocity: 1 000 merchant events a minute",
        purchase(100),
        shop=merchant(events_last_minute=1_000),
        breakdown={"base": 100},
        status="held",
        reason="velocity_merchant",
    ),
    Case(
        "velocity: 10 000 000 merchant points a day",
        purchase(100),
        shop=merchant(points_issued_today=9_999_950),
        breakdown={"base": 100},
        status="held",
        reason="velocity_merchant",
    ),
    Case(
        "velocity: a programme may reject instead of hold",
        purchase(100),
        who=member(events_last_hour=60),
        rule_set=rules(velocity={"action": "reject"}),
        status="rejected",
        reason="velocity_member",
    ),
    Case(
        "clustering: a 4th account on one device is held",
        purchase(100, device_id="device-1"),
        who=member(accounts_on_device=4),
        breakdown={"base": 100},
        status="held",
        reason="device_cluster",
    ),
    Case(
        "clustering: a 21st account on one IP is held",
        purchase(100, ip="203.0.113.7"),
        who=member(accounts_on_ip=21),
        breakdown={"base": 100},
        status="held",
        reason="ip_cluster",
    ),
    Case(
        "frozen member: rejected",
        purchase(100),
        who=member(frozen=True, frozen_reason="chargeback fraud"),
        status="rejected",
        reason="member_frozen",
    ),
    Case(
        "unknown currency: rejected",
        purchase(100, "CHF"),
        status="rejected",
        reason="unknown_currency",
    ),
    Case(
        "not an ISO 4217 code: rejected",
        purchase(100, "ABC"),
        status="rejected",
        reason="invalid_currency",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.rule for case in CASES])
def test_seed_programme_rule(case: Case) -> None:
    decision = decide(case.event, case.who, case.shop, case.rule_set, outcome=case.outcome)

    assert (decision.status, decision.reason) == (case.status, case.reason), decision.message
    assert lines(decision) == case.breakdown
    assert decision.points == sum(case.breakdown.values())
    assert decision.badges == case.badges
    assert decision.clawback == case.clawback
    assert decision.referral_bonus == case.referral
    if case.tier_after is not None:
        assert decision.tier_after == case.tier_after


def test_seed_programme_cases_have_unique_names() -> None:
    assert len({case.rule for case in CASES}) == len(CASES)
