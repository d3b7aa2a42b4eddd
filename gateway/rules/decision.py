"""What the engine decides for one event: :class:`Decision` and its parts.

A decision is ``accepted`` (issue ``points``, claw back ``clawback``), ``held``
(the same outcome, waiting for a human review; ``reason`` says why) or
``rejected`` (nothing happens; ``reason`` says why).  ``reason`` is a stable
code from :data:`REASONS`; an accepted decision may carry one too when a rule
capped it to zero points.  ``breakdown`` lines sum to ``points`` and
``clawback_breakdown`` lines to ``clawback``: the constructor refuses anything
else.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Final, Literal

from gateway.rules.fx import FxRate

Status = Literal["accepted", "held", "rejected"]

# Breakdown rule keys.  Amount-based lines scale with the order amount (a partial
# refund claws back its share of them); the others are fixed per event.
RULE_BASE: Final = "base"
RULE_TIER: Final = "tier"
RULE_BIRTHDAY: Final = "birthday"
CAMPAIGN_PREFIX: Final = "campaign:"
RULE_FIRST_ORDER: Final = "first_order"
RULE_REFERRAL_INVITEE: Final = "referral_invitee"
RULE_SIGNUP: Final = "signup"
RULE_CHECK_IN: Final = "check_in"
RULE_STREAK: Final = "streak"
RULE_SHARE: Final = "share"
RULE_REVIEW: Final = "review"
RULE_REFUND_FULL: Final = "refund_full"
RULE_REFUND_PARTIAL: Final = "refund_partial"

#: Every ``Decision.reason`` code, with what it means.
REASONS: Final[dict[str, str]] = {
    "member_frozen": "the member is frozen: no points are issued",
    "velocity_member": "the member exceeded an events-per-hour or points-per-day limit",
    "velocity_merchant": "the merchant exceeded an events-per-minute or points-per-day limit",
    "device_cluster": "too many members use this device: held for review",
    "ip_cluster": "too many members use this IP address: held for review",
    "invalid_currency": "the order's currency is not an ISO 4217 code",
    "unknown_currency": "the FX table has no rate for the order's currency",
    "fx_rate_unavailable": "the FX table has no rate dated on or before the event",
    "invalid_event": "the event is structurally wrong",
    "refund_unknown_order": "the refunded order is not a recorded purchase",
    "refund_exceeds_order": "the refund exceeds what is left of the order",
    "referral_missing_referrer": "a referral event names no inviter",
    "referral_self": "a member cannot refer themselves",
    "referral_already_set": "the member was already referred",
    "referral_after_first_purchase": "the member already purchased: too late to be referred",
    "check_in_duplicate": "the member already checked in this programme day (0 points)",
    "share_daily_cap": "the daily cap of rewarded shares is reached (0 points)",
    "review_daily_cap": "the daily cap of rewarded reviews is reached (0 points)",
}


def is_amount_based(rule: str) -> bool:
    """Whether breakdown lines of ``rule`` scale with the order amount."""
    return rule in (RULE_BASE, RULE_TIER, RULE_BIRTHDAY) or rule.startswith(CAMPAIGN_PREFIX)


@dataclass(frozen=True)
class BreakdownLine:
    """``points`` contributed by ``rule`` (a stable key), explained by ``description``."""

    rule: str
    description: str
    points: int

    def __post_init__(self) -> None:
        if self.points < 0:
            raise ValueError(f"breakdown line {self.rule!r} has negative points {self.points}")


@dataclass(frozen=True)
class ReferralBonus:
    """Points (and badges) for ``member``, the inviter, issued separately by the gateway."""

    member: str
    points: int
    badges: tuple[str, ...] = ()


@dataclass(frozen=True)
class Decision:
    """The engine's answer for one event (see the module docstring)."""

    status: Status
    reason: str | None = None
    message: str = ""
    points: int = 0
    clawback: int = 0
    breakdown: tuple[BreakdownLine, ...] = ()
    clawback_breakdown: tuple[BreakdownLine, ...] = ()
    badges: tuple[str, ...] = ()
    referral_bonus: ReferralBonus | None = None
    referral_clawback: ReferralBonus | None = None
    tier_before: int = 0
    tier_after: int = 0
    tier_changed: bool = False
    network_amount: Decimal | None = None
    fx_rate: FxRate | None = None

    def __post_init__(self) -> None:
        if self.status not in ("accepted", "held", "rejected"):
            raise ValueError(f"unknown decision status {self.status!r}")
        if self.reason is not None and self.reason not in REASONS:
            raise ValueError(f"unknown decision reason {self.reason!r}")
        if self.status != "accepted" and self.reason is None:
            raise ValueError(f"a {self.status} decision needs a reason")
        if self.points < 0 or self.clawback < 0:
            raise ValueError("points and clawback are never negative")
        if sum(line.points for line in self.breakdown) != self.points:
            raise ValueError(f"breakdown does not sum to {self.points} points")
        if sum(line.points for line in self.clawback_breakdown) != self.clawback:
            raise ValueError(f"clawback breakdown does not sum to {self.clawback}")
        if self.status == "rejected" and (
            self.points or self.clawback or self.badges or self.referral_bonus
        ):
            raise ValueError("a rejected decision issues and claws back nothing")


def total(lines: Sequence[BreakdownLine]) -> int:
    """The points of ``lines`` together."""
    return sum(line.points for line in lines)


def rejected(reason: str, message: str, tier: int) -> Decision:
    """A rejection for ``reason``; the member's tier stays ``tier``."""
    return Decision(
        status="rejected", reason=reason, message=message, tier_before=tier, tier_after=tier
    )
