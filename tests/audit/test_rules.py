"""The rule-set audit's pure parts on hand-made records: history, statuses, checks of the
published text, the diff between versions, and the anomalies of rule issuance.

The hub refuses a text whose keccak is not its hash, a version published over a pending
one, and issuance under a version not in effect: only synthetic histories show that the
auditor would notice (the chain-backed test is test_rules_cli.py)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from eth_utils import keccak

from chain.audit import (
    IssuanceBatch,
    MerchantChange,
    ParameterChange,
    Record,
    RuleSetPublication,
    canonical_text,
    diff_rule_sets,
    find_anomalies,
    rule_anomalies,
    rule_timeline,
    rules_report,
    status_anomalies,
)
from chain.audit.rules import parse_rule_text

ALICE = "0x" + "a1" * 20
NOTICE = 60

BASE: dict[str, Any] = {
    "badges": {"enabled": ["first_order", "streak_7"]},
    "bonuses": {"first_order": 100, "signup": 0},
    "campaigns": [],
    "currency": "USD",
    "earn_rate": "1",
    "tiers": {
        "levels": [
            {"max_recency_days": None, "min_orders": 0, "min_spend": "0", "multiplier": "1",
             "name": "Bronze"},
            {"max_recency_days": 120, "min_orders": 6, "min_spend": "1000", "multiplier": "1.25",
             "name": "Gold"},
        ],
        "window_days": 365,
    },
}  # fmt: skip


def changed(**updates: Any) -> dict[str, Any]:
    content: dict[str, Any] = json.loads(json.dumps(BASE))
    content.update(updates)
    return content


def text_of(content: dict[str, Any]) -> str:
    return canonical_text(content)


def hash_of(text: str) -> str:
    return "0x" + keccak(text.encode()).hex()


def published(
    block: int,
    merchant: int,
    version: int,
    text: str,
    *,
    time: int,
    effective_at: int,
    rule_hash: str | None = None,
    raw: bytes | None = None,
) -> RuleSetPublication:
    logged = text.encode() if raw is None else raw
    return RuleSetPublication(
        block, 0, time, f"0x{block:064x}", "hub", "rule_set_published", merchant, version,
        rule_hash or hash_of(text), effective_at, logged.decode(errors="replace"),
        "0x" + logged.hex(),
    )  # fmt: skip


def added(block: int, merchant: int, name: str) -> MerchantChange:
    return MerchantChange(
        block, 0, block, f"0x{block:064x}", "hub", "merchant_added", merchant, name, ALICE,
        "active", 1_000,
    )  # fmt: skip


def notice(block: int, seconds: int) -> ParameterChange:
    return ParameterChange(
        block, 0, block, f"0x{block:064x}", "hub", "rule_notice_changed", seconds, None, None
    )


def batch(
    block: int, merchant: int, version: int, *, time: int, amount: int = 10, mint_kind: int = 0
) -> IssuanceBatch:
    return IssuanceBatch(
        block, 5, time, f"0x{block:064x}", "hub", "points_issued", merchant, version, 0, 1,
        amount, 1, amount, mint_kind,
    )  # fmt: skip


V1 = text_of(BASE)
V2 = text_of(changed(earn_rate="2"))


def two_versions() -> list[Record]:
    """Merchant 1: v1 at 100 (at once), v2 published at 200 taking effect at 260."""
    return [
        notice(1, NOTICE),
        added(2, 1, "Shop One"),
        published(3, 1, 1, V1, time=100, effective_at=100),
        batch(4, 1, 1, time=150, amount=40),
        published(5, 1, 2, V2, time=200, effective_at=200 + NOTICE),
        batch(6, 1, 1, time=230, amount=7),
        batch(7, 1, 2, time=300, amount=9),
    ]


# ---------------------------------------------------------------- history


def test_versions_statuses_and_times_follow_the_published_effective_times() -> None:
    before = rules_report(two_versions(), at=230)
    (merchant,) = before.merchants
    assert (merchant.merchant, merchant.name) == (1, "Shop One")
    v1, v2 = merchant.versions
    assert [v1.status, v2.status] == ["in_effect", "pending"]
    assert v1.superseded_at == 260 and v2.superseded_at is None
    assert before.notice_seconds == NOTICE
    assert before.ok, before.problems()

    after = rules_report(two_versions(), at=260)
    assert [v.status for v in after.merchants[0].versions] == ["superseded", "in_effect"]


def test_each_version_counts_what_was_issued_under_it() -> None:
    v1, v2 = rules_report(two_versions(), at=400).merchants[0].versions
    assert (v1.issued.batches, v1.issued.events, v1.issued.points) == (2, 2, 47)
    assert (v2.issued.batches, v2.issued.points) == (1, 9)


def test_the_diff_between_versions_is_in_the_report_and_its_json() -> None:
    report = rules_report(two_versions(), at=400)
    v1, v2 = report.merchants[0].versions
    assert v1.diff is None
    assert v2.diff is not None
    assert [line.text for line in v2.diff] == ["earn_rate: 1 → 2"]
    data = report.to_dict()
    second = data["merchants"][0]["versions"][1]
    assert second["diff"][0] == {
        "op": "~", "path": "earn_rate", "old": "1", "new": "2", "text": "earn_rate: 1 → 2",
    }  # fmt: skip
    assert second["text"] == V2
    assert second["hash"] == second["computed_hash"] == hash_of(V2)
    assert second["effective_at"] == "1970-01-01T00:04:20Z"
    assert data["merchants"][0]["current_version"] == 2
    assert json.loads(json.dumps(data)) == data


def test_only_the_asked_merchant_and_merchants_without_versions_are_listed() -> None:
    records = [*two_versions(), added(8, 2, "Shop Two")]
    everyone = rules_report(records, at=400)
    assert [(m.merchant, len(m.versions)) for m in everyone.merchants] == [(1, 2), (2, 0)]
    only = rules_report(records, at=400, merchant=2)
    assert [m.merchant for m in only.merchants] == [2]
    assert rules_report(records, at=400, merchant=9).merchants == ()


# ---------------------------------------------------------------- checks


def codes(records: Sequence[Record], at: int = 1_000) -> list[tuple[int, int, str]]:
    return rules_report(records, at=at).problems()


def test_a_text_that_does_not_hash_to_the_published_hash_fails() -> None:
    records = [published(3, 1, 1, V1, time=100, effective_at=100, rule_hash=hash_of(V2))]
    assert codes(records) == [(1, 1, "hash_mismatch")]
    version = rules_report(records, at=1_000).merchants[0].versions[0]
    assert version.hash_ok is False
    assert version.to_dict()["computed_hash"] == hash_of(V1)


def test_non_canonical_and_non_json_texts_fail() -> None:
    spaced = json.dumps(BASE, sort_keys=True)  # ", " and ": " separators
    unsorted = json.dumps({"b": 1, "a": 2}, separators=(",", ":"))
    assert codes([published(3, 1, 1, spaced, time=1, effective_at=1)]) == [(1, 1, "not_canonical")]
    assert codes([published(3, 1, 1, unsorted, time=1, effective_at=1)]) == [
        (1, 1, "not_canonical")
    ]
    for bad in ("{not json", "[1,2]", '{"a":NaN}'):
        assert codes([published(3, 1, 1, bad, time=1, effective_at=1)]) == [(1, 1, "not_json")]


def test_bytes_that_are_not_utf8_are_reported_as_such_and_hashed_as_logged() -> None:
    raw = b'{"a":"\xff"}'
    rule_hash = "0x" + keccak(raw).hex()
    records = [published(3, 1, 1, "", time=1, effective_at=1, rule_hash=rule_hash, raw=raw)]
    assert codes(records) == [(1, 1, "not_utf8")]
    (version,) = rules_report(records, at=1).merchants[0].versions
    assert version.hash_ok and version.text is None
    assert version.to_dict()["text"] == "0x" + raw.hex()
    assert parse_rule_text(raw)[2] == ["not_utf8"]


def test_timing_that_the_hub_forbids_is_reported() -> None:
    v3 = text_of(changed(earn_rate="3"))
    records: list[Record] = [
        notice(1, NOTICE),
        published(3, 1, 1, V1, time=100, effective_at=90),  # before its publication
        published(4, 1, 2, V2, time=200, effective_at=230),  # sooner than the notice
        published(5, 1, 4, v3, time=210, effective_at=400),  # gap, and v2 still pending
    ]
    assert codes(records) == [
        (1, 1, "effective_before_publication"),
        (1, 2, "notice_too_short"),
        (1, 4, "version_gap"),
        (1, 4, "published_while_pending"),
    ]


def test_the_notice_in_force_at_publication_is_the_one_checked() -> None:
    records: list[Record] = [
        notice(1, 0),
        published(3, 1, 1, V1, time=100, effective_at=100),
        published(4, 1, 2, V2, time=200, effective_at=200),
        notice(250, NOTICE),  # later notice does not apply to v2
    ]
    assert codes(records) == []


# ---------------------------------------------------------------- diff


def test_diff_names_keyed_items_set_members_and_removed_keys() -> None:
    campaign = {
        "categories": None, "ends_at": "2026-11-12T00:00:00+08:00", "key": "singles-day",
        "multiplier": "2", "name": "Singles Day", "starts_at": "2026-11-11T00:00:00+08:00",
    }  # fmt: skip
    new = changed(campaigns=[campaign], earn_rate="1.5")
    del new["bonuses"]["signup"]
    new["badges"]["enabled"] = ["first_order", "eco_guardian"]
    new["tiers"]["levels"][1]["multiplier"] = "1.3"
    new["tiers"]["levels"].append(
        {"max_recency_days": 30, "min_orders": 50, "min_spend": "50000", "multiplier": "3",
         "name": "Diamond"}
    )  # fmt: skip
    lines = [line.text for line in diff_rule_sets(BASE, new)]
    assert lines == [
        "- badges.enabled[streak_7]",
        "+ badges.enabled[eco_guardian]",
        "- bonuses.signup (was 0)",
        '+ campaigns[singles-day] "Singles Day" x2 2026-11-11T00:00:00+08:00 → '
        "2026-11-12T00:00:00+08:00",
        "earn_rate: 1 → 1.5",
        "tiers.levels[Gold].multiplier: 1.25 → 1.3",
        "+ tiers.levels[Diamond] x3 from 50 orders and 50000 spend, last order within 30 days",
    ]
    removed = diff_rule_sets(new, BASE)
    assert [(line.op, line.path) for line in removed if line.path.startswith("campaigns")] == [
        ("-", "campaigns[singles-day]")
    ]


def test_diff_sees_reordered_tiers_and_type_changes() -> None:
    new = json.loads(json.dumps(BASE))
    new["tiers"]["levels"].reverse()
    new["bonuses"]["first_order"] = True  # JSON true is not 1
    lines = [line.text for line in diff_rule_sets(BASE, new)]
    assert lines == [
        "bonuses.first_order: 100 → true",
        'tiers.levels order: ["Bronze","Gold"] → ["Gold","Bronze"]',
    ]
    assert diff_rule_sets(BASE, json.loads(json.dumps(BASE))) == []


# ---------------------------------------------------------------- anomalies and timeline


def test_issuance_under_a_version_not_yet_in_effect_is_an_anomaly() -> None:
    records = [
        *two_versions(),
        batch(8, 1, 2, time=259),  # one second early
        batch(9, 1, 1, time=500),  # superseded: allowed (delayed issuance)
    ]
    found = rule_anomalies(records)
    assert [(a.kind, a.block) for a in found] == [("rule_version_not_in_effect", 8)]
    assert found[0].details == {"rule_version": 2, "effective_at": 260}
    assert "rule_version_not_in_effect" in [a.kind for a in find_anomalies(records)]


def test_mint_kinds_the_hub_does_not_know_or_that_name_a_version_are_anomalies() -> None:
    records = [
        *two_versions(),
        batch(8, 1, 0, time=300, mint_kind=2),  # a payout: version 0, fine
        batch(9, 1, 0, time=300, mint_kind=7),
        batch(10, 1, 1, time=300, mint_kind=1),
    ]
    assert [(a.kind, a.block) for a in rule_anomalies(records)] == [
        ("unknown_mint_kind", 9),
        ("rule_version_not_expected", 10),
    ]
    # version 0 of a non-rule mint is no unknown rule version
    assert [a.block for a in status_anomalies(records) if a.kind == "unknown_rule_version"] == []


def test_the_timeline_shows_when_each_version_takes_effect() -> None:
    entries = [
        e for e in rule_timeline(two_versions(), 0, 10, now=230) if e.kind.startswith("rule")
    ]
    assert [(e.kind, e.ready_at, e.status) for e in entries] == [
        ("rule_notice_changed", None, None),
        ("rule_set_published", 100, "in effect"),
        ("rule_set_published", 260, "pending"),
    ]
    assert entries[0].description == "rule-change notice -> 60s"
    assert entries[2].description.endswith("(in effect from 1970-01-01T00:04:20Z)")
    assert entries[1].description.endswith("(in effect at once)")
