"""Membership tiers from RFM: recency, frequency and monetary value of purchases.

A member's tier is a pure function of their purchase history at one merchant
and a moment ``at``: only purchases in the rolling window ``(at - window_days,
at]`` count.  The tier is the highest level whose every threshold the member
meets: at least ``min_orders`` orders (frequency), at least ``min_spend``
network units spent (monetary) and, where set, a last purchase no more than
``max_recency_days`` ago (recency).  Upgrades and downgrades are therefore not
separate rules: as purchases enter and leave the window the tier follows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Final, NamedTuple

from gateway.rules.errors import InvalidEvent

if TYPE_CHECKING:
    from gateway.rules.model import RuleSet

TIER_NAMES: Final = ("Bronze", "Silver", "Gold", "Platinum", "Black")
BRONZE, SILVER, GOLD, PLATINUM, BLACK = range(len(TIER_NAMES))


class Purchase(NamedTuple):
    """One purchase of the member's history: when, and its amount in network units."""

    occurred_at: datetime
    network_amount: Decimal


@dataclass(frozen=True)
class Rfm:
    """Recency (time since the last purchase, None without one), frequency, monetary."""

    recency: timedelta | None
    frequency: int
    monetary: Decimal


def tier_name(tier: int) -> str:
    """``"Bronze"`` for 0 up to ``"Black"`` for 4."""
    if not 0 <= tier < len(TIER_NAMES):
        raise ValueError(f"tier must be 0..{len(TIER_NAMES) - 1}, got {tier}")
    return TIER_NAMES[tier]


def rfm(purchases: Iterable[tuple[datetime, Decimal]], at: datetime, window_days: int) -> Rfm:
    """RFM of the purchases in the window ``(at - window_days, at]``."""
    if at.utcoffset() is None:
        raise InvalidEvent(f"time {at.isoformat()} has no timezone")
    start = at - timedelta(days=window_days)
    counted = [(when, amount) for when, amount in purchases if start < when <= at]
    if not counted:
        return Rfm(recency=None, frequency=0, monetary=Decimal(0))
    last = max(when for when, _ in counted)
    return Rfm(
        recency=at - last,
        frequency=len(counted),
        monetary=sum((amount for _, amount in counted), Decimal(0)),
    )


def compute_tier(
    rules: RuleSet, purchases: Iterable[tuple[datetime, Decimal]], at: datetime
) -> int:
    """The tier (0 Bronze .. 4 Black) that ``purchases`` earn at ``at`` under ``rules``."""
    ladder = rules.tiers
    measured = rfm(purchases, at, ladder.window_days)
    tier = BRONZE
    for level_number, level in enumerate(ladder.levels):
        if level_number == BRONZE:
            continue
        recent = level.max_recency_days is None or (
            measured.recency is not None
            and measured.recency <= timedelta(days=level.max_recency_days)
        )
        if (
            recent
            and measured.frequency >= level.min_orders
            and measured.monetary >= level.min_spend
        ):
            tier = level_number
    return tier
