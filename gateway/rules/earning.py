"""Purchases: amount-based points, the first-order bonus, referral rewards, badges.

A purchase earns the amount-based lines of :mod:`gateway.rules.multipliers`
(the tier multiplier is the tier the member holds *before* this purchase), then:

- the first-order bonus and the First Order badge on the member's first
  purchase at this merchant (the gateway's flag; the badge only if not held);
- on that first purchase of a referred member whose referral was not yet
  rewarded: the invitee bonus as a line, the inviter's bonus (and the Top
  Referrer badge on reaching the threshold) as ``referral_bonus``, which the
  gateway issues separately;
- the Eco Guardian badge when any item is eco-labelled;
- the badge of every tier up to ``tier_after`` not yet held.
"""

from __future__ import annotations

import decimal
from collections.abc import Iterable

from gateway.rules.badges import ECO_GUARDIAN, FIRST_ORDER, TIER_BADGES, TOP_REFERRER
from gateway.rules.days import programme_day
from gateway.rules.decision import (
    RULE_FIRST_ORDER,
    RULE_REFERRAL_INVITEE,
    BreakdownLine,
    Decision,
    ReferralBonus,
    total,
)
from gateway.rules.fx import PRECISION, FxTable
from gateway.rules.inputs import EventInput, MemberSnapshot
from gateway.rules.model import RuleSet
from gateway.rules.multipliers import Pricing, amount_lines
from gateway.rules.tiers import Purchase, compute_tier


def new_badges(
    rules: RuleSet, held: Iterable[str], candidates: Iterable[str | None]
) -> tuple[str, ...]:
    """The enabled ``candidates`` not in ``held``, once each, in order."""
    held_set = set(held)
    awarded: list[str] = []
    for key in candidates:
        if key and key in rules.badges.enabled and key not in held_set and key not in awarded:
            awarded.append(key)
    return tuple(awarded)


def _referral(rules: RuleSet, member: MemberSnapshot) -> ReferralBonus | None:
    inviter = member.referred_by
    if (
        inviter is None
        or inviter == member.member_id
        or member.referral_rewarded
        or not member.is_first_purchase_at_merchant
    ):
        return None
    reaches_top = member.referrer_referrals + 1 >= rules.badges.top_referrer_referrals
    badges = new_badges(rules, member.referrer_badges, [TOP_REFERRER if reaches_top else None])
    return ReferralBonus(member=inviter, points=rules.bonuses.referral_inviter, badges=badges)


def evaluate_purchase(
    rules: RuleSet, fx: FxTable, event: EventInput, member: MemberSnapshot, tier: int
) -> Decision:
    """The accepted outcome of a purchase by ``member`` holding ``tier`` before it."""
    order = event.order
    if order is None:  # pragma: no cover - EventInput guarantees it
        raise AssertionError("a purchase carries an order")
    at = event.occurred_at
    rate = fx.rate_at(order.currency, at)
    with decimal.localcontext(prec=PRECISION):
        network_amount = order.amount * rate.rate
    birthday = member.birth_month == programme_day(rules, at).month
    pricing = Pricing(order, at, network_amount, rate, fx.unit, tier, birthday)
    lines = amount_lines(rules, pricing)
    candidates: list[str | None] = []
    if member.is_first_purchase_at_merchant:
        candidates.append(FIRST_ORDER)
        if rules.bonuses.first_order:
            lines.append(
                BreakdownLine(RULE_FIRST_ORDER, "first order bonus", rules.bonuses.first_order)
            )
    referral = _referral(rules, member)
    if referral is not None and rules.bonuses.referral_invitee:
        lines.append(
            BreakdownLine(
                RULE_REFERRAL_INVITEE,
                f"welcome bonus for joining on {referral.member}'s invitation",
                rules.bonuses.referral_invitee,
            )
        )
    if referral is not None and not referral.points and not referral.badges:
        referral = None
    if any(item.eco for item in order.items):
        candidates.append(ECO_GUARDIAN)
    tier_after = compute_tier(rules, [*member.purchases, Purchase(at, network_amount)], at)
    candidates.extend(TIER_BADGES[1 : tier_after + 1])
    return Decision(
        status="accepted",
        points=total(lines),
        breakdown=tuple(lines),
        badges=new_badges(rules, member.held_badges, candidates),
        referral_bonus=referral,
        tier_before=tier,
        tier_after=tier_after,
        network_amount=network_amount,
        fx_rate=rate,
    )
