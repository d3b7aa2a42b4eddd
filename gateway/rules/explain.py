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

Params are language-free values: Decimals (rates, multipliers, amounts) as their
canonical strings (``"1.25"``, as in the rule set's canonical JSON), points, caps and
days as integers, instants as ISO 8601 in UTC, the offset as ``"+08:00"``.  A tier's
``name`` is the rule set's (English) name and ``tier`` its index, a badge's ``name``
the catalogue's and ``badge`` its key: a page may show ``tier.<n>`` / ``badge.<key>``
in its own language instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from gateway.rules.activities import STREAK_DAYS
from gateway.rules.badges import BADGES_BY_KEY, TOP_REFERRER
from gateway.rules.canonical import decimal_text, instant_text
from gateway.rules.decision import CAMPAIGN_PREFIX, BreakdownLine
from gateway.rules.fx import NETWORK_UNIT
from gateway.rules.model import RuleSet
from gateway.rules.multipliers import CENT
from gateway.rules.sections import Campaign, TierLevel
from gateway.rules.tiers import tier_name

Param = str | int | None


@dataclass(frozen=True)
class Clause:
    """One sentence to be: a message ``key`` and the values of its placeholders."""

    key: str
    params: Mapping[str, Param] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """``{"key", "params"}``, as the API answers it."""
        return {"key": self.key, "params": dict(self.params)}


# The fields explained one key each, in the order they are read.
_BONUSES = (
    "first_order", "signup", "check_in", "streak", "share", "review",
    "referral_inviter", "referral_invitee", "birthday_multiplier",
)  # fmt: skip
_CAPS = ("share", "review")
_VELOCITY = (
    "member_events_per_hour", "member_points_per_day",
    "merchant_events_per_minute", "merchant_points_per_day",
)  # fmt: skip
_CLUSTERING = ("max_accounts_per_device", "max_accounts_per_ip")
_LIMITS = (*_VELOCITY, *_CLUSTERING)
_ACTIONS = ("hold", "reject")

#: ``why.*`` keys of the breakdown rules that need nothing but their points.
_FIXED_LINES = (
    "first_order", "referral_invitee", "referral_inviter", "signup", "check_in",
    "refund_full", "refund_partial", "refund_shortfall",
)  # fmt: skip

#: Every key this module can emit.
KEYS: frozenset[str] = frozenset(
    {
        *(f"earn.{k}" for k in (
            "base", "day", "tier_window", "tier_base", "tier", "tier_recent", "birthday",
            "campaign", "campaign_categories", "first_order", "signup", "check_in", "streak",
            "share", "review", "referral", "top_referrer",
        )),
        *(f"earn.limit.{name}" for name in _LIMITS),
        *(f"earn.limit_action.{action}" for action in _ACTIONS),
        *(f"why.{k}" for k in (
            "base", "base_fx", "base_points", "tier", "tier_points", "birthday", "campaign",
            "streak", "share", "review", "other", *_FIXED_LINES,
        )),
        *(f"change.{k}" for k in (
            "currency", "earn_rate", "day", "tier_window", "tier.multiplier", "tier.orders",
            "tier.spend", "tier.recency", "tier.recency.on", "tier.recency.off",
            "campaign_added", "campaign_added_categories", "campaign_changed",
            "campaign_changed_categories", "campaign_removed", "badge_on", "badge_off",
            "top_referrer",
        )),
        *(f"change.bonus.{name}" for name in _BONUSES),
        *(f"change.cap.{name}" for name in _CAPS),
        *(f"change.limit.{name}{suffix}" for name in _LIMITS for suffix in ("", ".on", ".off")),
        *(f"change.limit_action.{action}" for action in _ACTIONS),
    }
)  # fmt: skip


def number(value: Decimal | int) -> str:
    """A Decimal as the rule set's canonical JSON writes it (``"1.1"``, ``"0"``)."""
    return decimal_text(Decimal(value))


def utc_offset(minutes: int) -> str:
    """``480`` -> ``"+08:00"``, ``-300`` -> ``"-05:00"``."""
    sign = "-" if minutes < 0 else "+"
    hours, rest = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}:{rest:02d}"


def _money(amount: Decimal) -> str:
    """An amount as money is written: two decimals (``"124.20"``)."""
    return f"{amount.quantize(CENT):f}"


def _c(key: str, **params: Param) -> Clause:
    return Clause(key, params)


# ---------------------------------------------------------------------- a rule set


def explain_rule_set(rules: RuleSet, unit: str = NETWORK_UNIT) -> list[Clause]:
    """How ``rules`` earns, a clause per rule that gives anything (``earn.*``)."""
    clauses = [
        _c("earn.base", rate=number(rules.earn_rate), unit=unit),
        _c("earn.day", offset=utc_offset(rules.utc_offset_minutes)),
        _c("earn.tier_window", days=rules.tiers.window_days),
    ]
    clauses += [_tier(index, level, unit) for index, level in enumerate(rules.tiers.levels)]
    bonuses, caps = rules.bonuses, rules.caps
    if bonuses.birthday_multiplier != 1:
        clauses.append(_c("earn.birthday", multiplier=number(bonuses.birthday_multiplier)))
    clauses += [_campaign("earn.campaign", campaign) for campaign in rules.campaigns]
    for key, points in (("first_order", bonuses.first_order), ("signup", bonuses.signup)):
        if points:
            clauses.append(_c(f"earn.{key}", points=points))
    if bonuses.check_in:
        clauses.append(_c("earn.check_in", points=bonuses.check_in))
    if bonuses.streak:
        clauses.append(_c("earn.streak", points=bonuses.streak, days=STREAK_DAYS))
    for key, points, cap in (
        ("share", bonuses.share, caps.share),
        ("review", bonuses.review, caps.review),
    ):
        if points and cap:
            clauses.append(_c(f"earn.{key}", points=points, cap=cap))
    if bonuses.referral_inviter or bonuses.referral_invitee:
        clauses.append(
            _c("earn.referral", inviter=bonuses.referral_inviter, invitee=bonuses.referral_invitee)
        )
    if TOP_REFERRER in rules.badges.enabled:
        clauses.append(_c("earn.top_referrer", referrals=rules.badges.top_referrer_referrals))
    limits = _limits(rules)
    clauses += [_c(f"earn.limit.{name}", limit=limit) for name, limit in limits.items() if limit]
    if any(limits[name] for name in _VELOCITY):
        clauses.append(_c(f"earn.limit_action.{rules.velocity.action}"))
    return clauses


def _tier(index: int, level: TierLevel, unit: str) -> Clause:
    multiplier = number(level.multiplier)
    if index == 0:
        return _c("earn.tier_base", tier=index, name=level.name, multiplier=multiplier)
    thresholds: dict[str, Param] = {
        "tier": index, "name": level.name, "multiplier": multiplier,
        "orders": level.min_orders, "spend": number(level.min_spend), "unit": unit,
    }  # fmt: skip
    if level.max_recency_days is None:
        return Clause("earn.tier", thresholds)
    return Clause("earn.tier_recent", {**thresholds, "recency_days": level.max_recency_days})


def _campaign(prefix: str, campaign: Campaign) -> Clause:
    params: dict[str, Param] = {
        "name": campaign.name, "multiplier": number(campaign.multiplier),
        "starts": instant_text(campaign.starts_at), "ends": instant_text(campaign.ends_at),
    }  # fmt: skip
    if campaign.categories is None:
        return Clause(prefix, params)
    return Clause(f"{prefix}_categories", {**params, "categories": ", ".join(campaign.categories)})


def _limits(rules: RuleSet) -> dict[str, int | None]:
    velocity, clustering = rules.velocity, rules.clustering
    return {
        **{name: getattr(velocity, name) for name in _VELOCITY},
        **{name: getattr(clustering, name) for name in _CLUSTERING},
    }


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
            return _c("why.base_points", rate=rate, unit=unit, points=points)
        amount = _money(network_amount)
        if currency is not None and currency != unit and order_amount is not None:
            return _c(
                "why.base_fx", rate=rate, unit=unit, amount=amount, points=points,
                order_amount=_money(order_amount), currency=currency,
            )  # fmt: skip
        return _c("why.base", rate=rate, unit=unit, amount=amount, points=points)
    if rule == "tier":
        if tier is None or not 0 <= tier < len(rules.tiers.levels):
            return _c("why.tier_points", points=points)
        multiplier = number(rules.tiers.levels[tier].multiplier)
        return _c("why.tier", tier=tier, name=tier_name(tier), multiplier=multiplier, points=points)
    if rule == "birthday":
        return _c("why.birthday", multiplier=number(bonuses.birthday_multiplier), points=points)
    if rule.startswith(CAMPAIGN_PREFIX):
        key = rule.removeprefix(CAMPAIGN_PREFIX)
        campaign = next((c for c in rules.campaigns if c.key == key), None)
        if campaign is not None:
            multiplier = number(campaign.multiplier)
            return _c("why.campaign", name=campaign.name, multiplier=multiplier, points=points)
    if rule == "streak":
        return _c("why.streak", points=points, days=STREAK_DAYS)
    if rule in _CAPS:
        return _c(f"why.{rule}", points=points, cap=getattr(caps, rule))
    if rule in _FIXED_LINES:
        return _c(f"why.{rule}", points=abs(points))
    return _c("why.other", rule=rule, points=points)


# ---------------------------------------------------------------------- a change


def explain_changes(old: RuleSet, new: RuleSet, unit: str = NETWORK_UNIT) -> list[Clause]:
    """What ``new`` changes from ``old`` (``change.*``); empty when they are equal."""
    clauses: list[Clause] = []

    def changed(key: str, before: Any, after: Any, **extra: Param) -> None:
        if before != after:
            clauses.append(Clause(key, {**extra, "from": _value(before), "to": _value(after)}))

    changed("change.currency", old.currency, new.currency)
    changed("change.earn_rate", old.earn_rate, new.earn_rate, unit=unit)
    changed("change.day", utc_offset(old.utc_offset_minutes), utc_offset(new.utc_offset_minutes))
    changed("change.tier_window", old.tiers.window_days, new.tiers.window_days)
    for index, (was, level) in enumerate(zip(old.tiers.levels, new.tiers.levels, strict=True)):
        tier: dict[str, Param] = {"tier": index, "name": level.name}
        changed("change.tier.multiplier", was.multiplier, level.multiplier, **tier)
        changed("change.tier.orders", was.min_orders, level.min_orders, **tier)
        changed("change.tier.spend", was.min_spend, level.min_spend, **tier, unit=unit)
        recency = (was.max_recency_days, level.max_recency_days)
        clauses += _optional("change.tier.recency", *recency, tier)
    clauses += _campaign_changes(old.campaigns, new.campaigns)
    for name in _BONUSES:
        changed(f"change.bonus.{name}", getattr(old.bonuses, name), getattr(new.bonuses, name))
    for name in _CAPS:
        changed(f"change.cap.{name}", getattr(old.caps, name), getattr(new.caps, name))
    old_limits, new_limits = _limits(old), _limits(new)
    for name in _LIMITS:
        clauses += _optional(f"change.limit.{name}", old_limits[name], new_limits[name], {})
    if old.velocity.action != new.velocity.action:
        clauses.append(_c(f"change.limit_action.{new.velocity.action}"))
    was_on, now_on = set(old.badges.enabled), set(new.badges.enabled)
    for key in new.badges.enabled:
        if key not in was_on:
            clauses.append(_c("change.badge_on", badge=key, name=BADGES_BY_KEY[key].name))
    for key in old.badges.enabled:
        if key not in now_on:
            clauses.append(_c("change.badge_off", badge=key, name=BADGES_BY_KEY[key].name))
    changed(
        "change.top_referrer",
        old.badges.top_referrer_referrals,
        new.badges.top_referrer_referrals,
    )
    return clauses


def _value(value: Any) -> Param:
    if isinstance(value, Decimal):
        return number(value)
    if value is None or isinstance(value, str | int):
        return value
    raise TypeError(f"no clause value for {value!r}")  # pragma: no cover - fields are typed


def _optional(
    key: str, before: int | None, after: int | None, extra: Mapping[str, Param]
) -> list[Clause]:
    """A change of a limit that may be off (None): set, switched on, or switched off."""
    if before == after:
        return []
    if before is None:
        return [Clause(f"{key}.on", {**extra, "to": after})]
    if after is None:
        return [Clause(f"{key}.off", {**extra, "from": before})]
    return [Clause(key, {**extra, "from": before, "to": after})]


def _campaign_changes(old: Sequence[Campaign], new: Sequence[Campaign]) -> list[Clause]:
    before = {campaign.key: campaign for campaign in old}
    after = {campaign.key: campaign for campaign in new}
    clauses = [
        _campaign("change.campaign_added", campaign)
        for campaign in new
        if campaign.key not in before
    ]
    clauses += [
        _campaign("change.campaign_changed", campaign)
        for campaign in new
        if campaign.key in before and before[campaign.key] != campaign
    ]
    clauses += [
        _c("change.campaign_removed", name=campaign.name)
        for campaign in old
        if campaign.key not in after
    ]
    return clauses
