"""Plain words for a rule set, an issuance and a change of rules, in no language.

Each function returns :class:`Clause` values: a stable message ``key`` and its
``params``; the wallet and the audit page hold the sentences, one template per key
and language (``wallet/i18n/en.json``, ``zh-CN.json``, with ``{param}``
placeholders), so the same clause reads in English or Chinese and a test checks that
every key in :data:`KEYS` has both.

- :func:`explain_rule_set` (``earn.*``): how the programme earns, in the order a
  member reads it: base rate, programme day, tier ladder, birthday, campaigns,
  bonuses, limits.
- :func:`explain_breakdown` (``why.*``): the lines of one issuance, one clause each.
- :func:`explain_changes` (``change.*``): what differs from one version to the next.

The params of each key are described in :mod:`gateway.rules.clauses`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from gateway.rules.activities import STREAK_DAYS
from gateway.rules.badges import TOP_REFERRER
from gateway.rules.clauses import (
    ACTIONS,
    CAPS,
    LIMITS,
    VELOCITY,
    Clause,
    Param,
    campaign_clause,
    clause,
    limits_of,
    money,
    number,
    utc_offset,
)
from gateway.rules.decision import CAMPAIGN_PREFIX, BreakdownLine
from gateway.rules.fx import NETWORK_UNIT
from gateway.rules.model import RuleSet
from gateway.rules.rule_changes import CHANGE_KEYS, explain_changes
from gateway.rules.sections import TierLevel
from gateway.rules.tiers import tier_name

__all__ = [
    "KEYS", "Clause", "explain_breakdown", "explain_changes", "explain_rule_set", "utc_offset",
]  # fmt: skip

#: ``why.*`` keys of the breakdown rules that need nothing but their points.
_FIXED_LINES = (
    "first_order", "referral_invitee", "referral_inviter", "signup", "check_in",
    "refund_full", "refund_partial", "refund_shortfall",
)  # fmt: skip

#: Every key explain can emit (those of :func:`explain_changes` included).
KEYS: frozenset[str] = frozenset(
    {
        *(f"earn.{k}" for k in (
            "base", "day", "tier_window", "tier_base", "tier", "tier_recent", "birthday",
            "campaign", "campaign_categories", "first_order", "signup", "check_in", "streak",
            "share", "review", "referral", "top_referrer",
        )),
        *(f"earn.limit.{name}" for name in LIMITS),
        *(f"earn.limit_action.{action}" for action in ACTIONS),
        *(f"why.{k}" for k in (
            "base", "base_fx", "base_points", "tier", "tier_points", "birthday", "campaign",
            "streak", "share", "review", "other", *_FIXED_LINES,
        )),
        *CHANGE_KEYS,
    }
)  # fmt: skip


# ---------------------------------------------------------------------- a rule set


def explain_rule_set(rules: RuleSet, unit: str = NETWORK_UNIT) -> list[Clause]:
    """How ``rules`` earns, a clause per rule that gives anything (``earn.*``)."""
    clauses = [
        clause("earn.base", rate=number(rules.earn_rate), unit=unit),
        clause("earn.day", offset=utc_offset(rules.utc_offset_minutes)),
        clause("earn.tier_window", days=rules.tiers.window_days),
    ]
    clauses += [_tier(index, level, unit) for index, level in enumerate(rules.tiers.levels)]
    bonuses, caps = rules.bonuses, rules.caps
    if bonuses.birthday_multiplier != 1:
        clauses.append(clause("earn.birthday", multiplier=number(bonuses.birthday_multiplier)))
    clauses += [campaign_clause("earn.campaign", campaign) for campaign in rules.campaigns]
    for key, points in (("first_order", bonuses.first_order), ("signup", bonuses.signup)):
        if points:
            clauses.append(clause(f"earn.{key}", points=points))
    if bonuses.check_in:
        clauses.append(clause("earn.check_in", points=bonuses.check_in))
    if bonuses.streak:
        clauses.append(clause("earn.streak", points=bonuses.streak, days=STREAK_DAYS))
    for key, points, cap in (
        ("share", bonuses.share, caps.share),
        ("review", bonuses.review, caps.review),
    ):
        if points and cap:
            clauses.append(clause(f"earn.{key}", points=points, cap=cap))
    if bonuses.referral_inviter or bonuses.referral_invitee:
        clauses.append(
            clause(
                "earn.referral", inviter=bonuses.referral_inviter, invitee=bonuses.referral_invitee
            )
        )
    if TOP_REFERRER in rules.badges.enabled:
        clauses.append(clause("earn.top_referrer", referrals=rules.badges.top_referrer_referrals))
    limits = limits_of(rules)
    clauses += [
        clause(f"earn.limit.{name}", limit=limit) for name, limit in limits.items() if limit
    ]
    if any(limits[name] for name in VELOCITY):
        clauses.append(clause(f"earn.limit_action.{rules.velocity.action}"))
    return clauses


def _tier(index: int, level: TierLevel, unit: str) -> Clause:
    multiplier = number(level.multiplier)
    if index == 0:
        return clause("earn.tier_base", tier=index, name=level.name, multiplier=multiplier)
    thresholds: dict[str, Param] = {
        "tier": index, "name": level.name, "multiplier": multiplier,
        "orders": level.min_orders, "spend": number(level.min_spend), "unit": unit,
    }  # fmt: skip
    if level.max_recency_days is None:
        return Clause("earn.tier", thresholds)
    return Clause("earn.tier_recent", {**thresholds, "recency_days": level.max_recency_days})


# ---------------------------------------------------------------------- an issuance


def explain_breakdown(
    lines: Sequence[BreakdownLine | Mapping[str, Any]],
    rules: RuleSet,
    *,
    network_amount: Decimal | None = None,
    order_amount: Decimal | None = None,
    currency: str | None = None,
    unit: str = NETWORK_UNIT,
    tier: int | None = None,
) -> list[Clause]:
    """Why an issuance (or clawback) is what it is: one ``why.*`` clause per line.

    ``lines``: the engine's lines or the stored ``{rule, points, ...}`` dicts (the
    inviter's op may pass ``{"rule": "referral_inviter", "points": n}``);
    ``network_amount`` (in ``unit``), ``order_amount`` and ``currency`` are the
    order's, ``tier`` the member's tier before it, when known.
    """
    return [
        _why(rule, points, rules, network_amount, order_amount, currency, unit, tier)
        for rule, points in (_line(line) for line in lines)
    ]


def _line(line: BreakdownLine | Mapping[str, Any]) -> tuple[str, int]:
    if isinstance(line, BreakdownLine):
        return line.rule, line.points
    return str(line["rule"]), int(line["points"])


def _why(
    rule: str, points: int, rules: RuleSet, network_amount: Decimal | None,
    order_amount: Decimal | None, currency: str | None, unit: str, tier: int | None,
) -> Clause:  # fmt: skip
    bonuses, caps = rules.bonuses, rules.caps
    if rule == "base":
        rate = number(rules.earn_rate)
        if network_amount is None:
            return clause("why.base_points", rate=rate, unit=unit, points=points)
        amount = money(network_amount)
        if currency is not None and currency != unit and order_amount is not None:
            return clause(
                "why.base_fx", rate=rate, unit=unit, amount=amount, points=points,
                order_amount=money(order_amount), currency=currency,
            )  # fmt: skip
        return clause("why.base", rate=rate, unit=unit, amount=amount, points=points)
    if rule == "tier":
        if tier is None or not 0 <= tier < len(rules.tiers.levels):
            return clause("why.tier_points", points=points)
        multiplier = number(rules.tiers.levels[tier].multiplier)
        return clause(
            "why.tier", tier=tier, name=tier_name(tier), multiplier=multiplier, points=points
        )
    if rule == "birthday":
        return clause("why.birthday", multiplier=number(bonuses.birthday_multiplier), points=points)
    if rule.startswith(CAMPAIGN_PREFIX):
        key = rule.removeprefix(CAMPAIGN_PREFIX)
        campaign = next((c for c in rules.campaigns if c.key == key), None)
        if campaign is not None:
            multiplier = number(campaign.multiplier)
            return clause("why.campaign", name=campaign.name, multiplier=multiplier, points=points)
    if rule == "streak":
        return clause("why.streak", points=points, days=STREAK_DAYS)
    if rule in CAPS:
        return clause(f"why.{rule}", points=points, cap=getattr(caps, rule))
    if rule in _FIXED_LINES:
        return clause(f"why.{rule}", points=abs(points))
    return clause("why.other", rule=rule, points=points)
