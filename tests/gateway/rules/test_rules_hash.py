"""Rule-set hashes: what the chain publishes must identify content, not spelling."""

from __future__ import annotations

import json
from datetime import timedelta, timezone
from typing import Any

import pytest
from eth_utils import keccak
from rules_factories import NOW, SEED, campaign, seed_data

from gateway.rules.model import (
    RuleSet,
    canonical_json,
    default_rule_set,
    parse_rule_set,
    rule_set_hash,
)

#: keccak-256 of the seed programme in USD.  This changes only when the seed or
#: the canonical form changes, and either is a new rule-set version on chain.
SEED_USD_HASH = "e09590e327009e79541edff2b82b1998d669227cb117a03915ae3dceff2e8e59"


def reversed_keys(value: Any) -> Any:
    """The same data with every mapping's keys in reverse order."""
    if isinstance(value, dict):
        return {key: reversed_keys(value[key]) for key in reversed(list(value))}
    if isinstance(value, list):
        return [reversed_keys(item) for item in value]
    return value


def test_hash_is_32_bytes_of_keccak_over_the_canonical_json() -> None:
    digest = rule_set_hash(SEED)

    assert len(digest) == 32
    assert digest == keccak(text=canonical_json(SEED))


def test_seed_hash_is_pinned() -> None:
    assert rule_set_hash(default_rule_set("USD")).hex() == SEED_USD_HASH


def test_canonical_json_sorts_keys_without_spaces_and_writes_decimals_as_strings() -> None:
    text = canonical_json(SEED)

    assert " " not in text.replace("not for", "")
    assert text == json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"))
    assert '"earn_rate":"1"' in text
    assert '"multiplier":"1.25"' in text
    assert text.isascii()


def test_same_content_has_the_same_hash() -> None:
    assert rule_set_hash(default_rule_set("EUR")) == rule_set_hash(default_rule_set("EUR"))


def test_key_order_is_irrelevant() -> None:
    data = seed_data(campaigns=[campaign()])

    assert rule_set_hash(parse_rule_set(reversed_keys(data))) == rule_set_hash(parse_rule_set(data))


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [({"earn_rate": "1.000"}, {"earn_rate": "1"}), ({"earn_rate": 1}, {"earn_rate": "1.0"})],
)
def test_decimal_spelling_is_irrelevant(
    spelling: dict[str, Any], canonical: dict[str, Any]
) -> None:
    assert rule_set_hash(parse_rule_set(seed_data(**spelling))) == rule_set_hash(
        parse_rule_set(seed_data(**canonical))
    )


def test_time_zone_spelling_of_campaign_times_is_irrelevant() -> None:
    beijing = timezone(timedelta(hours=8))
    utc = campaign()
    shifted = campaign(
        starts=(NOW - timedelta(days=1)).astimezone(beijing),
        ends=(NOW + timedelta(days=1)).astimezone(beijing),
    )

    assert shifted["starts_at"] != utc["starts_at"]
    assert rule_set_hash(parse_rule_set(seed_data(campaigns=[shifted]))) == rule_set_hash(
        parse_rule_set(seed_data(campaigns=[utc]))
    )


def test_defaults_written_out_or_omitted_hash_the_same() -> None:
    sparse = {"currency": "USD", "earn_rate": "1", "tiers": seed_data()["tiers"]}

    assert rule_set_hash(parse_rule_set(sparse)) == rule_set_hash(SEED)


CHANGES: list[tuple[str, dict[str, Any]]] = [
    ("currency", {"currency": "EUR"}),
    ("earn rate", {"earn_rate": "1.01"}),
    ("day boundary", {"utc_offset_minutes": 480}),
    ("tier window", {"tiers": {**seed_data()["tiers"], "window_days": 364}}),
    ("a campaign", {"campaigns": [campaign()]}),
    ("first-order bonus", {"bonuses": {"first_order": 101}}),
    ("birthday multiplier", {"bonuses": {"birthday_multiplier": "2"}}),
    ("share cap", {"caps": {"share": 4}}),
    ("velocity action", {"velocity": {"action": "reject"}}),
    ("velocity limit off", {"velocity": {"member_events_per_hour": None}}),
    ("clustering threshold", {"clustering": {"max_accounts_per_ip": 21}}),
    ("top referrer threshold", {"badges": {"top_referrer_referrals": 6}}),
    ("a badge disabled", {"badges": {"enabled": ["first_order"]}}),
]


@pytest.mark.parametrize("overrides", [c[1] for c in CHANGES], ids=[c[0] for c in CHANGES])
def test_any_change_changes_the_hash(overrides: dict[str, Any]) -> None:
    changed = RuleSet.model_validate(seed_data(**overrides))

    assert changed != SEED
    assert rule_set_hash(changed) != rule_set_hash(SEED)


def test_campaign_order_is_content() -> None:
    first = parse_rule_set(seed_data(campaigns=[campaign("a"), campaign("b")]))
    second = parse_rule_set(seed_data(campaigns=[campaign("b"), campaign("a")]))

    assert rule_set_hash(first) != rule_set_hash(second)
