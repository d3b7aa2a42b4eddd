# ruff: noqa: RUF001 - the sentences are the wallet's, with multiplication signs and CJK punctuation
"""Plain words (:mod:`gateway.rules.explain`): clauses, their keys and the wallet's templates.

The clauses carry no language; the sentences live in ``wallet/i18n/<lang>.json``.
These tests hold the two together: every key explain can emit has a template in
both languages, every placeholder of a template is a param the clause carries, and
the seed programme reads as the sentences below.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from rules_factories import (
    NOW,
    campaign,
    check_ins,
    decide,
    history,
    item,
    member,
    original,
    purchase,
    refund,
    rules,
)
from rules_factories import activity as activity_event

from gateway.rules.decision import BreakdownLine
from gateway.rules.explain import (
    KEYS,
    Clause,
    explain_breakdown,
    explain_changes,
    explain_rule_set,
    utc_offset,
)
from gateway.rules.model import RuleSet, default_rule_set

I18N = Path(__file__).resolve().parents[3] / "wallet" / "i18n"
LANGUAGES = ("en", "zh-CN")
PLACEHOLDER = re.compile(r"\{(\w+)\}")
TIERS = ("silver", "gold", "platinum", "black")


def messages(lang: str) -> dict[str, str]:
    return dict(json.loads((I18N / f"{lang}.json").read_text(encoding="utf-8")))


def render(clause: Clause, lang: str = "en") -> str:
    """The clause as the wallet's ``t(key, params)`` fills it (every placeholder known)."""
    template = messages(lang)[clause.key]
    missing = set(PLACEHOLDER.findall(template)) - set(clause.params)
    assert not missing, f"{clause.key} ({lang}) has no params {sorted(missing)}"
    return PLACEHOLDER.sub(lambda m: str(clause.params[m.group(1)]), template)


def rich() -> RuleSet:
    """A programme that switches on everything the seed leaves off (and off what it has on)."""
    return rules(
        earn_rate="2.5",
        utc_offset_minutes=480,
        bonuses={"signup": 30, "birthday_multiplier": "1", "streak": 0, "share": 0},
        tiers={"levels": [
            {"name": "Bronze", "multiplier": "1"},
            {"name": "Silver", "multiplier": "1.2", "min_orders": 2, "min_spend": "150"},
            {"name": "Gold", "multiplier": "1.3", "min_orders": 5, "min_spend": "900",
             "max_recency_days": 150},
            {"name": "Platinum", "multiplier": "1.5", "min_orders": 12, "min_spend": "3000",
             "max_recency_days": 90},
            {"name": "Black", "multiplier": "2.0", "min_orders": 24, "min_spend": "10000",
             "max_recency_days": 60},
        ]},
        campaigns=[campaign("singles-day", 2), campaign("green", 3, categories=["eco", "home"])],
        velocity={"member_events_per_hour": None, "merchant_points_per_day": 5000,
                  "action": "reject"},
        clustering={"max_accounts_per_ip": None},
        badges={"enabled": ["first_order", "streak_7"], "top_referrer_referrals": 9},
    )  # fmt: skip


def every_clause() -> list[Clause]:
    """What explain says of varied programmes, changes and issuances."""
    seed, other = default_rule_set("USD"), rich()
    moved = rules(campaigns=[campaign("singles-day", 4), campaign("green", 3)])
    clauses = [*explain_rule_set(seed), *explain_rule_set(other)]
    clauses += explain_changes(seed, other) + explain_changes(other, seed)
    clauses += explain_changes(rules(campaigns=[campaign("singles-day", 2)]), moved)
    clauses += explain_changes(moved, other)
    decisions = [
        decide(purchase(124.2), member(birth_month=6, is_first_purchase_at_merchant=True)),
        decide(purchase(100, "EUR", [item("eco", 100)]), member(current_tier=2),
               rule_set=rules(campaigns=[campaign("green", 3, categories=["eco"])])),
        decide(activity_event("check_in"), member(check_in_days=check_ins(*range(1, 7)))),
        decide(activity_event("share")),
        decide(activity_event("review")),
        decide(activity_event("signup"), rule_set=other),
        decide(refund(), outcome=original(200, breakdown={"base": 100, "first_order": 100})),
        decide(refund(50), outcome=original(100, breakdown={"base": 100})),
    ]  # fmt: skip
    for decision in decisions:
        lines = decision.breakdown or decision.clawback_breakdown
        assert lines, decision
        clauses += explain_breakdown(lines, other, network_amount=decision.network_amount)
    odd = [
        {"rule": "referral_inviter", "points": 200}, {"rule": "referral_invitee", "points": 100},
        {"rule": "refund_shortfall", "points": -30}, {"rule": "campaign:gone", "points": 5},
        {"rule": "tier", "points": 12}, {"rule": "base", "points": 7},
    ]  # fmt: skip
    clauses += explain_breakdown(odd, other)
    clauses += explain_breakdown(
        [BreakdownLine("base", "", 124), BreakdownLine("tier", "", 31)], seed,
        network_amount=Decimal("124.2"), order_amount=Decimal("900"), currency="CNY", tier=2,
    )  # fmt: skip
    return clauses


# ---------------------------------------------------------------------- templates


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_key_explain_can_emit_has_a_template(lang: str) -> None:
    missing = KEYS - set(messages(lang))
    assert not missing, f"{lang}.json lacks {sorted(missing)}"


def test_templates_of_both_languages_name_the_same_placeholders() -> None:
    english, chinese = messages("en"), messages("zh-CN")
    for key in KEYS:
        assert set(PLACEHOLDER.findall(english[key])) == set(PLACEHOLDER.findall(chinese[key])), key


def test_what_explain_emits_is_in_keys_and_fills_every_placeholder() -> None:
    clauses = every_clause()
    emitted = {clause.key for clause in clauses}
    assert emitted <= KEYS, sorted(emitted - KEYS)
    for clause in clauses:
        for lang in LANGUAGES:
            assert "{" not in render(clause, lang), clause
        assert all(isinstance(v, str | int) or v is None for v in clause.params.values()), clause
    # Most of what KEYS promises is reached here (the rest: the rarer on/off variants).
    assert len(emitted) >= len(KEYS) * 2 // 3, sorted(KEYS - emitted)


def test_a_clause_is_json_as_the_api_answers_it() -> None:
    clause = explain_rule_set(default_rule_set("EUR"))[0]
    assert json.loads(json.dumps(clause.as_dict())) == {
        "key": "earn.base",
        "params": {"rate": "1", "unit": "USD"},
    }


# ---------------------------------------------------------------------- the seed programme


def test_the_seed_programme_in_plain_english() -> None:
    text = [render(clause) for clause in explain_rule_set(default_rule_set("EUR"))]
    assert text == [
        "Earn 1 points per USD you spend (other currencies are converted at the day's rate).",
        "A day of this programme runs from midnight to midnight at UTC+00:00.",
        "Your tier counts your orders and spending over the last 365 days.",
        "Bronze: every member, points ×1.",
        "Silver: points ×1.1 from 3 orders and 300 USD spent, the latest within 180 days.",
        "Gold: points ×1.25 from 6 orders and 1000 USD spent, the latest within 120 days.",
        "Platinum: points ×1.5 from 12 orders and 3000 USD spent, the latest within 90 days.",
        "Black: points ×2 from 24 orders and 10000 USD spent, the latest within 60 days.",
        "Points ×3 on purchases in your birthday month.",
        "100 bonus points on your first order here.",
        "5 points for checking in, once a day.",
        "50 extra points for every 7 days in a row you check in.",
        "10 points per share, up to 3 a day.",
        "20 points per review, up to 2 a day.",
        "Invite a friend: 200 points for you and 100 for them on their first order.",
        "The Top Referrer badge after 5 friends you invited have ordered.",
        "At most 60 activities an hour per member.",
        "At most 50000 points a day per member, across all partners.",
        "At most 1000 activities a minute for this partner.",
        "At most 10000000 points a day for this partner.",
        "Activity from more than 3 accounts on one device is reviewed.",
        "Activity from more than 20 accounts on one network address is reviewed.",
        "Activity beyond a limit waits for the partner's review.",
    ]


def test_the_seed_programme_reads_in_chinese_too() -> None:
    text = [render(clause, "zh-CN") for clause in explain_rule_set(default_rule_set("CNY"))]
    assert text[0] == "每消费 1 USD 得 1 积分（其他币种按当日汇率换算）。"
    assert "每次分享得 10 积分，每天最多 3 次。" in text
    assert len(text) == len(explain_rule_set(default_rule_set("CNY")))


def test_rules_that_give_nothing_say_nothing() -> None:
    quiet = rules(
        bonuses={"first_order": 0, "check_in": 0, "streak": 0, "share": 5, "review": 0,
                 "referral_inviter": 0, "referral_invitee": 0, "birthday_multiplier": "1"},
        caps={"share": 0},
        velocity={"member_events_per_hour": None, "member_points_per_day": None,
                  "merchant_events_per_minute": None, "merchant_points_per_day": None},
        badges={"enabled": []},
    )  # fmt: skip
    keys = [clause.key for clause in explain_rule_set(quiet)]
    assert keys == [
        "earn.base", "earn.day", "earn.tier_window", "earn.tier_base", *["earn.tier_recent"] * 4,
        "earn.limit.max_accounts_per_device", "earn.limit.max_accounts_per_ip",
    ]  # fmt: skip


def test_campaigns_name_their_window_in_utc_and_their_categories() -> None:
    starts = datetime(2026, 11, 11, tzinfo=UTC)
    data = campaign("singles-day", 2, starts, starts + timedelta(days=1), ["Apparel", "shoes"])
    clause = next(c for c in explain_rule_set(rules(campaigns=[data])) if "campaign" in c.key)
    assert clause == Clause(
        "earn.campaign_categories",
        {"name": "Singles Day", "multiplier": "2", "starts": "2026-11-11T00:00:00+00:00",
         "ends": "2026-11-12T00:00:00+00:00", "categories": "Apparel, shoes"},
    )  # fmt: skip


@pytest.mark.parametrize(("minutes", "text"), [(0, "+00:00"), (480, "+08:00"), (-300, "-05:00"),
                                                (345, "+05:45"), (-570, "-09:30")])  # fmt: skip
def test_the_programme_day_offset_is_written_as_utc_plus_or_minus(minutes: int, text: str) -> None:
    assert utc_offset(minutes) == text


# ---------------------------------------------------------------------- an issuance


def test_a_first_order_explained_line_by_line() -> None:
    decision = decide(purchase(124.2), member(is_first_purchase_at_merchant=True))
    seed = default_rule_set("USD")
    clauses = explain_breakdown(decision.breakdown, seed, network_amount=decision.network_amount)
    assert [render(c) for c in clauses] == [
        "1 points per USD on 124.20 USD: 124 points.",
        "First-order bonus: 100 points.",
    ]
    assert sum(int(c.params["points"] or 0) for c in clauses) == decision.points


def test_a_converted_order_names_its_currency_and_the_tier_its_multiplier() -> None:
    seed = default_rule_set("EUR")
    lines = [{"rule": "base", "points": 108, "description": "…"}, {"rule": "tier", "points": 27}]
    clauses = explain_breakdown(
        lines, seed, network_amount=Decimal("108.6"), order_amount=Decimal("100"),
        currency="EUR", tier=2,
    )  # fmt: skip
    assert [render(c) for c in clauses] == [
        "1 points per USD on 108.60 USD (100.00 EUR converted): 108 points.",
        "Gold tier ×1.25: 27 more points.",
    ]


def test_campaign_streak_and_capped_lines() -> None:
    festive = rules(campaigns=[campaign("festival", 2)])
    clauses = explain_breakdown(
        [BreakdownLine("campaign:festival", "", 100), BreakdownLine("streak", "", 50),
         BreakdownLine("share", "", 10), BreakdownLine("mystery", "", 1)],
        festive,
    )  # fmt: skip
    assert [render(c) for c in clauses] == [
        "Festival ×2: 100 more points.",
        "7-day check-in streak: 50 points.",
        "Share (up to 3 a day): 10 points.",
        "mystery: 1 points.",
    ]


# ---------------------------------------------------------------------- a change


def test_equal_versions_change_nothing() -> None:
    assert explain_changes(default_rule_set("EUR"), default_rule_set("EUR")) == []
    assert explain_changes(rich(), rich()) == []


def test_a_doubled_earn_rate_is_one_clause() -> None:
    seed = default_rule_set("EUR")
    doubled = RuleSet.model_validate({**seed.model_dump(), "earn_rate": Decimal(2)})
    assert explain_changes(seed, doubled) == [
        Clause("change.earn_rate", {"unit": "USD", "from": "1", "to": "2"})
    ]
    assert render(explain_changes(seed, doubled)[0]) == "Points per USD: 1 → 2."


def test_changes_of_campaigns_limits_tiers_and_badges() -> None:
    seed = rules()
    new = rich()
    changes = {clause.key: dict(clause.params) for clause in explain_changes(seed, new)}
    assert changes["change.day"] == {"from": "+00:00", "to": "+08:00"}
    assert changes["change.campaign_added"]["name"] == "Singles Day"
    assert changes["change.campaign_added_categories"]["categories"] == "eco, home"
    assert changes["change.tier.recency.off"] == {"tier": 1, "name": "Silver", "from": 180}
    assert changes["change.tier.recency"] == {"tier": 2, "name": "Gold", "from": 120, "to": 150}
    assert changes["change.limit.member_events_per_hour.off"] == {"from": 60}
    assert changes["change.limit.merchant_points_per_day"] == {"from": 10_000_000, "to": 5000}
    assert "change.limit_action.reject" in changes
    off = [c.params["badge"] for c in explain_changes(seed, new) if c.key == "change.badge_off"]
    assert off == ["eco_guardian", "top_referrer", *(f"tier_{t}" for t in TIERS)]
    assert changes["change.bonus.birthday_multiplier"] == {"from": "3", "to": "1"}
    back = {clause.key: dict(clause.params) for clause in explain_changes(new, seed)}
    assert back["change.limit.member_events_per_hour.on"] == {"to": 60}
    assert back["change.tier.recency.on"] == {"tier": 1, "name": "Silver", "to": 180}
    removed = [c.params for c in explain_changes(new, seed) if c.key == "change.campaign_removed"]
    assert removed == [{"name": "Singles Day"}, {"name": "Green"}]
    assert "change.limit_action.hold" in back


def test_a_changed_campaign_is_named_once_with_its_new_terms() -> None:
    before = rules(campaigns=[campaign("festival", 2)])
    after = rules(campaigns=[campaign("festival", 3)])
    assert [render(c) for c in explain_changes(before, after)] == [
        "Changed: Festival is now points ×3 from "
        f"{(NOW - timedelta(days=1)).isoformat()} until {(NOW + timedelta(days=1)).isoformat()}."
    ]


def test_a_tier_line_names_the_tier_the_member_held() -> None:
    # A member at Gold (6 orders of 200 USD) is explained by Gold's multiplier.
    decision = decide(purchase(100), member(current_tier=2, purchases=history(6, 200)))
    tier_line = next(line for line in decision.breakdown if line.rule == "tier")
    clause = explain_breakdown([tier_line], default_rule_set("USD"), tier=2)[0]
    assert clause.params == {"tier": 2, "name": "Gold", "multiplier": "1.25", "points": 25}
