"""The badge catalogue: keys, on-chain ids and how each badge is presented.

The engine awards badges by key (``"first_order"``); the gateway defines each
:class:`Badge` on the ``BadgeCollection`` contract under its ``id`` and renders
its SVG from ``name`` and ``icon`` (an icon name, no colour or emoji).  Ids are
stable forever: a new badge gets a new id, an old id is never reused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

FIRST_ORDER: Final = "first_order"
ECO_GUARDIAN: Final = "eco_guardian"
STREAK_7: Final = "streak_7"
TOP_REFERRER: Final = "top_referrer"
TIER_SILVER: Final = "tier_silver"
TIER_GOLD: Final = "tier_gold"
TIER_PLATINUM: Final = "tier_platinum"
TIER_BLACK: Final = "tier_black"

#: ``max_supply`` of badges anyone may earn (the contract's ``uint64`` maximum).
UNLIMITED_SUPPLY: Final = 2**64 - 1


@dataclass(frozen=True)
class Badge:
    """One badge type as defined on chain (``id``) and shown in the wallet."""

    id: int
    key: str
    name: str
    description: str
    icon: str
    soulbound: bool = True
    max_supply: int = UNLIMITED_SUPPLY


BADGES: Final[tuple[Badge, ...]] = (
    Badge(1, FIRST_ORDER, "First Order", "Placed a first order at a partner merchant.", "bag"),
    Badge(2, ECO_GUARDIAN, "Eco Guardian", "Bought an eco-labelled product.", "leaf"),
    Badge(3, STREAK_7, "7-Day Streak", "Checked in on seven consecutive days.", "calendar"),
    Badge(4, TOP_REFERRER, "Top Referrer", "Invited friends who went on to order.", "people"),
    Badge(10, TIER_SILVER, "Silver Member", "Reached the Silver tier.", "tier-silver"),
    Badge(11, TIER_GOLD, "Gold Member", "Reached the Gold tier.", "tier-gold"),
    Badge(12, TIER_PLATINUM, "Platinum Member", "Reached the Platinum tier.", "tier-platinum"),
    Badge(13, TIER_BLACK, "Black Member", "Reached the Black tier.", "tier-black"),
)

BADGES_BY_KEY: Final[dict[str, Badge]] = {badge.key: badge for badge in BADGES}
BADGES_BY_ID: Final[dict[int, Badge]] = {badge.id: badge for badge in BADGES}

#: Badge key of each tier (index = tier number; Bronze has none).
TIER_BADGES: Final[tuple[str | None, ...]] = (
    None,
    TIER_SILVER,
    TIER_GOLD,
    TIER_PLATINUM,
    TIER_BLACK,
)


def badge_id(key: str) -> int:
    """On-chain id of the badge ``key`` (``KeyError`` for a key not in the catalogue)."""
    return BADGES_BY_KEY[key].id
