"""Decisions are consistent by construction: lines sum, nothing negative, reasons known."""

from __future__ import annotations

import pytest

from gateway.rules.decision import REASONS, BreakdownLine, Decision, ReferralBonus, is_amount_based

LINE = BreakdownLine("base", "1 point per USD on 5.00 USD", 5)


@pytest.mark.parametrize(
    "fields",
    [
        {"status": "accepted", "points": 6, "breakdown": (LINE,)},
        {"status": "accepted", "clawback": 1},
        {"status": "accepted", "points": -1},
        {"status": "maybe"},
        {"status": "accepted", "reason": "because"},
        {"status": "held"},
        {"status": "rejected", "reason": "member_frozen", "points": 5, "breakdown": (LINE,)},
        {"status": "rejected", "reason": "member_frozen", "referral_bonus": ReferralBonus("i", 1)},
    ],
    ids=[
        "lines off",
        "clawback lines off",
        "negative points",
        "unknown status",
        "unknown reason",
        "held without a reason",
        "rejected with points",
        "rejected with a referral",
    ],
)
def test_inconsistent_decision_cannot_be_built(fields: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        Decision(**fields)  # type: ignore[arg-type]


def test_breakdown_line_points_are_never_negative() -> None:
    with pytest.raises(ValueError, match="negative"):
        BreakdownLine("base", "", -1)


@pytest.mark.parametrize(
    ("rule", "amount_based"),
    [
        ("base", True),
        ("tier", True),
        ("birthday", True),
        ("campaign:festival", True),
        ("first_order", False),
        ("referral_invitee", False),
        ("streak", False),
    ],
)
def test_amount_based_lines_are_base_and_multipliers(rule: str, amount_based: bool) -> None:
    assert is_amount_based(rule) is amount_based


def test_every_reason_is_a_described_snake_case_code() -> None:
    for code, meaning in REASONS.items():
        assert code.replace("_", "").isalnum() and code.islower()
        assert meaning
