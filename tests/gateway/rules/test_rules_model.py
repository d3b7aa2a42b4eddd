"""Rule sets: the seed programme, and every way a rule set is refused."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError
from rules_factories import NOW, SEED, campaign, seed_data

from gateway.rules.badges import BADGES
from gateway.rules.errors import InvalidRuleSet
from gateway.rules.model import RuleSet, canonical_json, default_rule_set, parse_rule_set
from gateway.rules.tiers import TIER_NAMES

SEED_CURRENCIES = ["USD", "EUR", "GBP", "CNY", "JPY", "SGD", "HKD", "AUD", "CAD"]


def tiers_with(level: int, **changes: Any) -> dict[str, Any]:
    """The seed tier ladder with one level changed."""
    tiers: dict[str, Any] = seed_data()["tiers"]
    tiers["levels"][level].update(changes)
    return tiers


@pytest.mark.parametrize("currency", SEED_CURRENCIES)
def test_default_rule_set_is_valid_for_every_seed_currency(currency: str) -> None:
    rules = default_rule_set(currency)

    assert rules.currency == currency
    assert rules.earn_rate == 1
    assert parse_rule_set(canonical_json(rules)) == rules


def test_default_rule_set_is_the_documented_programme() -> None:
    assert [level.name for level in SEED.tiers.levels] == list(TIER_NAMES)
    assert [level.multiplier for level in SEED.tiers.levels] == [
        Decimal(m) for m in ("1.0", "1.1", "1.25", "1.5", "2.0")
    ]
    assert SEED.tiers.window_days == 365
    assert SEED.bonuses.birthday_multiplier == 3
    assert (SEED.bonuses.first_order, SEED.bonuses.streak) == (100, 50)
    assert (SEED.bonuses.referral_inviter, SEED.bonuses.referral_invitee) == (200, 100)
    assert (SEED.caps.share, SEED.caps.review) == (3, 2)
    assert set(SEED.badges.enabled) == {badge.key for badge in BADGES}
    assert SEED.campaigns == ()


def test_rule_set_is_immutable() -> None:
    with pytest.raises(ValidationError):
        SEED.earn_rate = Decimal(2)


def test_parse_rule_set_accepts_json_text_and_mappings_alike() -> None:
    data = seed_data(campaigns=[campaign()])

    assert parse_rule_set(json.dumps(data)) == parse_rule_set(data)


def test_campaign_times_are_stored_in_utc() -> None:
    shifted = {**campaign(), "starts_at": "2025-06-15T20:00:00+08:00"}
    rules = parse_rule_set(seed_data(campaigns=[shifted]))

    assert rules.campaigns[0].starts_at.isoformat() == "2025-06-15T12:00:00+00:00"


# (what is wrong, overrides, loc of the error, part of its message)
BAD_RULE_SETS: list[tuple[str, dict[str, Any], str, str]] = [
    ("lower-case currency", {"currency": "usd"}, "currency", "not an ISO 4217"),
    ("made-up currency", {"currency": "XYZ"}, "currency", "not an ISO 4217"),
    ("zero earn rate", {"earn_rate": "0"}, "earn_rate", "greater than 0"),
    ("negative earn rate", {"earn_rate": "-1"}, "earn_rate", "greater than 0"),
    ("absurd earn rate", {"earn_rate": "1001"}, "earn_rate", "less than or equal to 1000"),
    ("unknown key", {"bogus": 1}, "bogus", "Extra inputs are not permitted"),
    ("unknown nested key", {"bonuses": {"foo": 1}}, "bonuses.foo", "Extra inputs"),
    ("utc offset beyond +14:00", {"utc_offset_minutes": 900}, "utc_offset_minutes", "840"),
    (
        "tier multiplier below 1",
        {"tiers": tiers_with(2, multiplier="0.5")},
        "tiers.levels.2.multiplier",
        "below 1 and would take points away",
    ),
    (
        "tier multiplier above 10",
        {"tiers": tiers_with(4, multiplier="11")},
        "tiers.levels.4.multiplier",
        "exceeds the maximum of 10",
    ),
    (
        "tier multipliers decreasing",
        {"tiers": tiers_with(2, multiplier="1.05")},
        "tiers",
        "Gold multiplier is below Silver's",
    ),
    (
        "tier thresholds decreasing",
        {"tiers": tiers_with(3, min_spend="500")},
        "tiers",
        "Platinum thresholds are below Gold's",
    ),
    (
        "higher tier with a longer recency",
        {"tiers": tiers_with(2, max_recency_days=200)},
        "tiers",
        "Gold allows a longer recency than Silver",
    ),
    (
        "two tiers with the same thresholds",
        {"tiers": tiers_with(2, min_orders=3, min_spend="300", max_recency_days=180)},
        "tiers",
        "unreachable tier",
    ),
    (
        "recency longer than the window",
        {"tiers": {**seed_data()["tiers"], "window_days": 90}},
        "tiers",
        "recency exceeds the 90-day window",
    ),
    (
        "Bronze with a threshold",
        {"tiers": tiers_with(0, min_orders=1)},
        "tiers",
        "Bronze is every member's tier",
    ),
    (
        "tiers out of order",
        {"tiers": tiers_with(1, name="Gold")},
        "tiers",
        "Bronze, Silver, Gold, Platinum, Black in that order",
    ),
    (
        "a tier missing",
        {"tiers": {"levels": seed_data()["tiers"]["levels"][:4]}},
        "tiers",
        "must be exactly",
    ),
    (
        "campaign ending when it starts",
        {"campaigns": [campaign(starts=NOW, ends=NOW)]},
        "campaigns.0",
        "must end after it starts",
    ),
    (
        "campaign with a naive time",
        {"campaigns": [{**campaign(), "starts_at": "2025-06-14T12:00:00"}]},
        "campaigns.0.starts_at",
        "timezone",
    ),
    (
        "campaign key not a slug",
        {"campaigns": [campaign(key="Festival!")]},
        "campaigns.0.key",
        "should match pattern",
    ),
    (
        "campaign with an empty category list",
        {"campaigns": [campaign(categories=[])]},
        "campaigns.0",
        "categories must be non-empty names",
    ),
    (
        "campaign with a repeated category",
        {"campaigns": [campaign(categories=["Books", "books"])]},
        "campaigns.0",
        "categories repeat",
    ),
    (
        "two campaigns with one key",
        {"campaigns": [campaign(), campaign()]},
        "campaigns",
        "campaign keys repeat: festival",
    ),
    (
        "campaign multiplier below 1",
        {"campaigns": [campaign(multiplier="0.9")]},
        "campaigns.0.multiplier",
        "below 1",
    ),
    (
        "birthday multiplier below 1",
        {"bonuses": {"birthday_multiplier": "0.5"}},
        "bonuses.birthday_multiplier",
        "below 1",
    ),
    ("negative bonus", {"bonuses": {"first_order": -1}}, "bonuses.first_order", ">= 0"),
    ("negative daily cap", {"caps": {"share": -1}}, "caps.share", ">= 0"),
    ("zero velocity limit", {"velocity": {"member_events_per_hour": 0}}, "velocity", ">= 1"),
    ("unknown velocity action", {"velocity": {"action": "ignore"}}, "velocity.action", "'hold'"),
    (
        "zero clustering threshold",
        {"clustering": {"max_accounts_per_device": 0}},
        "clustering.max_accounts_per_device",
        ">= 1",
    ),
    (
        "unknown badge key",
        {"badges": {"enabled": ["first_order", "golden_goose"]}},
        "badges",
        "unknown badge keys golden_goose",
    ),
    (
        "repeated badge key",
        {"badges": {"enabled": ["first_order", "first_order"]}},
        "badges",
        "badge keys repeat",
    ),
]


@pytest.mark.parametrize(
    ("overrides", "loc", "fragment"),
    [case[1:] for case in BAD_RULE_SETS],
    ids=[case[0] for case in BAD_RULE_SETS],
)
def test_invalid_rule_set_is_refused_with_a_clear_message(
    overrides: dict[str, Any], loc: str, fragment: str
) -> None:
    with pytest.raises(InvalidRuleSet) as refused:
        parse_rule_set(seed_data(**overrides))

    assert refused.value.code == "invalid_rule_set"
    problems = [(e["loc"], e["message"]) for e in refused.value.errors]
    matching = [m for where, m in problems if where.startswith(loc)]
    assert any(
        fragment.replace(">= ", "greater than or equal to ") in m or fragment in m for m in matching
    ), problems


def test_invalid_rule_set_lists_every_problem_at_once() -> None:
    with pytest.raises(InvalidRuleSet) as refused:
        parse_rule_set(seed_data(currency="usd", earn_rate="0", caps={"share": -1}))

    assert {e["loc"] for e in refused.value.errors} == {"currency", "earn_rate", "caps.share"}
    assert "currency" in str(refused.value)


def test_invalid_json_is_an_invalid_rule_set() -> None:
    with pytest.raises(InvalidRuleSet):
        parse_rule_set("{not json")


def test_rule_set_requires_currency_and_tiers() -> None:
    with pytest.raises(InvalidRuleSet) as refused:
        parse_rule_set({"earn_rate": "1"})

    assert {e["loc"] for e in refused.value.errors} == {"currency", "tiers"}


def test_rule_set_constructor_raises_pydantic_validation_errors() -> None:
    with pytest.raises(ValidationError):
        RuleSet.model_validate(seed_data(currency="usd"))
