"""Amount-based points of a purchase: the base rate and the multipliers on top.

How multipliers combine: the tier multiplier, the birthday-month multiplier and
a campaign multiplier *multiply*.  Campaigns do not stack with one another: each
part of the order gets the single best campaign active at ``occurred_at`` that
covers it (the first one in rule-set order on a tie).  The parts are the items,
by category, plus whatever the order amount has beyond its items (shipping,
unitemised goods), which only campaigns without categories cover.  When the
items add up to more than the order amount (a discount), each item's share is
its amount over the items' total.

Rounding: each stage is computed exactly, then floored once; every breakdown
line is the difference between consecutive floored stages, so the lines are
never negative and always sum to ``floor(network amount x earn_rate x tier x
birthday x campaign)``.
"""

from __future__ import annotations

import decimal
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_FLOOR, Decimal

from gateway.rules.decision import (
    CAMPAIGN_PREFIX,
    RULE_BASE,
    RULE_BIRTHDAY,
    RULE_TIER,
    BreakdownLine,
)
from gateway.rules.fx import PRECISION, FxRate
from gateway.rules.inputs import OrderInput
from gateway.rules.model import RuleSet
from gateway.rules.sections import Campaign
from gateway.rules.tiers import tier_name

CENT = Decimal("0.01")


@dataclass(frozen=True)
class Stage:
    """A cumulative exact value after one more rule, and the line that rule earns."""

    rule: str
    description: str
    value: Decimal


def floor(value: Decimal) -> int:
    """``value`` rounded down to an integer."""
    return int(value.to_integral_value(rounding=ROUND_FLOOR))


def campaign_extras(
    order: OrderInput, active: Sequence[Campaign]
) -> tuple[Decimal, list[tuple[Campaign, Decimal]]]:
    """The order's weight denominator and each winning campaign's extra weight.

    A part of amount ``a`` won by a campaign of multiplier ``m`` adds
    ``a * (m - 1)``; the campaign factor of the order is ``(D + extras) / D``.
    """
    items_total = sum((item.amount for item in order.items), Decimal(0))
    denominator = max(order.amount, items_total)
    parts: list[tuple[str | None, Decimal]] = [(i.category, i.amount) for i in order.items]
    parts.append((None, denominator - items_total))
    extras: dict[str, Decimal] = {}
    for category, amount in parts:
        covering = [c for c in active if c.covers(category)]
        if amount <= 0 or not covering:
            continue
        best = max(covering, key=lambda c: c.multiplier)
        extras[best.key] = extras.get(best.key, Decimal(0)) + amount * (best.multiplier - 1)
    return denominator, [(c, extras[c.key]) for c in active if extras.get(c.key)]


@dataclass(frozen=True)
class Pricing:
    """What prices one purchase: its order at ``at``, the order amount in the network's
    unit ``fx_unit`` (at ``fx_rate``), the tier the member held before it, and whether
    it falls in the member's birthday month."""

    order: OrderInput
    at: datetime
    network_amount: Decimal
    fx_rate: FxRate
    fx_unit: str
    tier: int
    birthday: bool


def amount_lines(rules: RuleSet, pricing: Pricing) -> list[BreakdownLine]:
    """The amount-based breakdown lines of one purchase (base first, then multipliers)."""
    with decimal.localcontext(prec=PRECISION):
        stages = _stages(rules, pricing)
        lines: list[BreakdownLine] = []
        previous = 0
        for stage in stages:
            reached = floor(stage.value)
            lines.append(BreakdownLine(stage.rule, stage.description, reached - previous))
            previous = reached
        return lines


def _stages(rules: RuleSet, pricing: Pricing) -> list[Stage]:
    order, at, network_amount = pricing.order, pricing.at, pricing.network_amount
    fx_rate, fx_unit, tier = pricing.fx_rate, pricing.fx_unit, pricing.tier
    shown = network_amount.quantize(CENT)
    unit_points = "point" if rules.earn_rate == 1 else "points"
    base = f"{rules.earn_rate} {unit_points} per {fx_unit} on {shown} {fx_unit}"
    if order.currency != fx_unit:
        base += (
            f" ({order.amount} {order.currency} at {fx_rate.rate}"
            f" from {fx_rate.source}, {fx_rate.as_of.isoformat()})"
        )
    stages = [Stage(RULE_BASE, base, network_amount * rules.earn_rate)]
    level = rules.tiers.levels[tier]
    if level.multiplier != 1:
        value = stages[-1].value * level.multiplier
        stages.append(Stage(RULE_TIER, f"{tier_name(tier)} tier x{level.multiplier}", value))
    factor = rules.bonuses.birthday_multiplier
    if pricing.birthday and factor != 1:
        stages.append(Stage(RULE_BIRTHDAY, f"birthday month x{factor}", stages[-1].value * factor))
    active = [c for c in rules.campaigns if c.is_active(at)]
    denominator, extras = campaign_extras(order, active)
    multiplied = stages[-1].value
    cumulative = Decimal(0)
    for campaign, extra in extras:
        cumulative += extra
        value = multiplied * (denominator + cumulative) / denominator
        share = (extra / (campaign.multiplier - 1) / denominator * 100).quantize(Decimal(1))
        description = f"{campaign.name} x{campaign.multiplier} on {share}% of the order"
        stages.append(Stage(CAMPAIGN_PREFIX + campaign.key, description, value))
    return stages
