"""The badge catalogue the gateway defines on chain."""

from __future__ import annotations

import re

from gateway.rules.badges import (
    BADGES,
    BADGES_BY_ID,
    BADGES_BY_KEY,
    ECO_GUARDIAN,
    FIRST_ORDER,
    STREAK_7,
    TIER_BADGES,
    TIER_BLACK,
    TIER_GOLD,
    TIER_PLATINUM,
    TIER_SILVER,
    TOP_REFERRER,
    UNLIMITED_SUPPLY,
    badge_id,
)


def test_badge_ids_are_fixed() -> None:
    assert {key: badge_id(key) for key in BADGES_BY_KEY} == {
        FIRST_ORDER: 1,
        ECO_GUARDIAN: 2,
        STREAK_7: 3,
        TOP_REFERRER: 4,
        TIER_SILVER: 10,
        TIER_GOLD: 11,
        TIER_PLATINUM: 12,
        TIER_BLACK: 13,
    }


def test_ids_and_keys_are_unique() -> None:
    assert len(BADGES_BY_ID) == len(BADGES_BY_KEY) == len(BADGES)


def test_catalogue_names_the_programmes_badges() -> None:
    assert [BADGES_BY_KEY[k].name for k in (FIRST_ORDER, ECO_GUARDIAN, STREAK_7, TOP_REFERRER)] == [
        "First Order",
        "Eco Guardian",
        "7-Day Streak",
        "Top Referrer",
    ]


def test_every_badge_is_definable_on_chain() -> None:
    for badge in BADGES:
        assert 0 < badge.max_supply <= UNLIMITED_SUPPLY == 2**64 - 1
        assert badge.soulbound
        assert badge.description
        assert re.fullmatch(r"[a-z][a-z0-9-]*", badge.icon), badge.icon


def test_tier_badges_follow_the_tiers() -> None:
    assert TIER_BADGES == (None, TIER_SILVER, TIER_GOLD, TIER_PLATINUM, TIER_BLACK)
