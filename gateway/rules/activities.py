"""Events without an order: check-in, share, review, sign-up, referral.

- Check-in: ``bonuses.check_in`` once per programme day (a second check-in the
  same day is accepted with 0 points, reason ``check_in_duplicate``).  When the
  check-in completes a run of 7 consecutive days (7, 14, 21...) it also earns
  ``bonuses.streak``, and the 7-Day Streak badge the first time.
- Share / review: ``bonuses.share`` / ``bonuses.review`` until the member's
  daily cap; beyond it, accepted with 0 points and ``share_daily_cap`` /
  ``review_daily_cap``.
- Referral (or a sign-up naming a ``referrer_member``): records who invited the
  member; nothing is earned until the member's first purchase.  Refused for a
  missing inviter, self-referral, a member already referred, or a member who
  has already purchased here.
- Sign-up: ``bonuses.signup``.
"""

from __future__ import annotations

from gateway.rules.badges import STREAK_7
from gateway.rules.days import consecutive_days_ending, programme_day
from gateway.rules.decision import (
    RULE_CHECK_IN,
    RULE_REVIEW,
    RULE_SHARE,
    RULE_SIGNUP,
    RULE_STREAK,
    BreakdownLine,
    Decision,
    rejected,
    total,
)
from gateway.rules.earning import new_badges
from gateway.rules.fx import FxTable
from gateway.rules.inputs import EventInput, MemberSnapshot
from gateway.rules.model import RuleSet

#: Consecutive check-in days that complete a streak (the badge says 7).
STREAK_DAYS = 7


def _accepted(
    lines: list[BreakdownLine],
    tier: int,
    reason: str | None = None,
    message: str = "",
    badges: tuple[str, ...] = (),
) -> Decision:
    return Decision(
        status="accepted",
        reason=reason,
        message=message,
        points=total(lines),
        breakdown=tuple(lines),
        badges=badges,
        tier_before=tier,
        tier_after=tier,
    )


def evaluate_check_in(
    rules: RuleSet, fx: FxTable, event: EventInput, member: MemberSnapshot, tier: int
) -> Decision:
    """Daily check-in points, plus the streak bonus and badge on each 7th day in a row."""
    day = programme_day(rules, event.occurred_at)
    done = set(member.check_in_days)
    if day in done:
        return _accepted([], tier, "check_in_duplicate", f"already checked in on {day}")
    lines: list[BreakdownLine] = []
    if rules.bonuses.check_in:
        lines.append(BreakdownLine(RULE_CHECK_IN, f"check-in on {day}", rules.bonuses.check_in))
    streak = consecutive_days_ending(day, done)
    badges: tuple[str, ...] = ()
    if streak % STREAK_DAYS == 0:
        if rules.bonuses.streak:
            lines.append(
                BreakdownLine(RULE_STREAK, f"{streak}-day check-in streak", rules.bonuses.streak)
            )
        badges = new_badges(rules, member.held_badges, [STREAK_7])
    return _accepted(lines, tier, badges=badges)


def _capped(rule: str, points: int, cap: int, done_today: int, tier: int, what: str) -> Decision:
    if done_today >= cap:
        message = f"{done_today} {what}s rewarded today; the daily cap is {cap}"
        return _accepted([], tier, f"{rule}_daily_cap", message)
    lines = (
        [BreakdownLine(rule, f"{what} {done_today + 1} of {cap} today", points)] if points else []
    )
    return _accepted(lines, tier)


def evaluate_share(
    rules: RuleSet, fx: FxTable, event: EventInput, member: MemberSnapshot, tier: int
) -> Decision:
    """Share reward until the member's daily cap."""
    return _capped(
        RULE_SHARE, rules.bonuses.share, rules.caps.share, member.shares_today, tier, "share"
    )


def evaluate_review(
    rules: RuleSet, fx: FxTable, event: EventInput, member: MemberSnapshot, tier: int
) -> Decision:
    """Review reward until the member's daily cap."""
    return _capped(
        RULE_REVIEW, rules.bonuses.review, rules.caps.review, member.reviews_today, tier, "review"
    )


def referral_problem(event: EventInput, member: MemberSnapshot, tier: int) -> Decision | None:
    """The rejection of a referral link this event would record, or None if acceptable."""
    inviter = event.referrer_member
    if not inviter:
        return rejected("referral_missing_referrer", "the referral names no inviter", tier)
    if inviter == member.member_id:
        return rejected("referral_self", f"{inviter} cannot refer themselves", tier)
    if member.referred_by is not None:
        message = f"{member.member_id} was already referred by {member.referred_by}"
        return rejected("referral_already_set", message, tier)
    if not member.is_first_purchase_at_merchant:
        message = f"{member.member_id} already purchased here: too late to be referred"
        return rejected("referral_after_first_purchase", message, tier)
    return None


def evaluate_referral(
    rules: RuleSet, fx: FxTable, event: EventInput, member: MemberSnapshot, tier: int
) -> Decision:
    """Record an inviter; rewards come with the member's first purchase."""
    problem = referral_problem(event, member, tier)
    if problem is not None:
        return problem
    message = f"referred by {event.referrer_member}; rewarded on the first purchase"
    return _accepted([], tier, message=message)


def evaluate_signup(
    rules: RuleSet, fx: FxTable, event: EventInput, member: MemberSnapshot, tier: int
) -> Decision:
    """Sign-up bonus; a named inviter is recorded like a referral event."""
    if event.referrer_member is not None:
        problem = referral_problem(event, member, tier)
        if problem is not None:
            return problem
    points = rules.bonuses.signup
    lines = [BreakdownLine(RULE_SIGNUP, "sign-up bonus", points)] if points else []
    return _accepted(lines, tier)
