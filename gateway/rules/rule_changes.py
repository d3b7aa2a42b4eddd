"""What one version of a merchant's rules changes from the one before, in clauses.

:func:`explain_changes` compares two rule sets field by field and names each change
with a ``change.*`` key (see :mod:`gateway.rules.clauses` for the params); limits
that may be off say whether they were switched on (``.on``) or off (``.off``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from gateway.rules.badges import BADGES_BY_KEY
from gateway.rules.clauses import (
    ACTIONS,
    BONUSES,
    CAPS,
    LIMITS,
    Clause,
    Param,
    campaign_clause,
    clause,
    limits_of,
    number,
    utc_offset,
)
from gateway.rules.fx import NETWORK_UNIT
from gateway.rules.model import RuleSet
from gateway.rules.sections import Campaign

#: Every key :func:`explain_changes` can emit.
CHANGE_KEYS: frozenset[str] = frozenset(
    {
        *(f"change.{k}" for k in (
            "currency", "earn_rate", "day", "tier_window", "tier.multiplier", "tier.orders",
            "tier.spend", "tier.recency", "tier.recency.on", "tier.recency.off",
            "campaign_added", "campaign_added_categories", "campaign_changed",
            "campaign_changed_categories", "campaign_removed", "badge_on", "badge_off",
            "top_referrer",
        )),
        *(f"change.bonus.{name}" for name in BONUSES),
        *(f"change.cap.{name}" for name in CAPS),
        *(f"change.limit.{name}{suffix}" for name in LIMITS for suffix in ("", ".on", ".off")),
        *(f"change.limit_action.{action}" for action in ACTIONS),
    }
)  # fmt: skip


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
    for name in BONUSES:
        changed(f"change.bonus.{name}", getattr(old.bonuses, name), getattr(new.bonuses, name))
    for name in CAPS:
        changed(f"change.cap.{name}", getattr(old.caps, name), getattr(new.caps, name))
    old_limits, new_limits = limits_of(old), limits_of(new)
    for name in LIMITS:
        clauses += _optional(f"change.limit.{name}", old_limits[name], new_limits[name], {})
    if old.velocity.action != new.velocity.action:
        clauses.append(clause(f"change.limit_action.{new.velocity.action}"))
    was_on, now_on = set(old.badges.enabled), set(new.badges.enabled)
    for key in new.badges.enabled:
        if key not in was_on:
            clauses.append(clause("change.badge_on", badge=key, name=BADGES_BY_KEY[key].name))
    for key in old.badges.enabled:
        if key not in now_on:
            clauses.append(clause("change.badge_off", badge=key, name=BADGES_BY_KEY[key].name))
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
        campaign_clause("change.campaign_added", campaign)
        for campaign in new
        if campaign.key not in before
    ]
    clauses += [
        campaign_clause("change.campaign_changed", campaign)
        for campaign in new
        if campaign.key in before and before[campaign.key] != campaign
    ]
    clauses += [
        clause("change.campaign_removed", name=campaign.name)
        for campaign in old
        if campaign.key not in after
    ]
    return clauses
