"""The sections of a rule set: tiers, campaigns, bonuses, caps, anti-abuse, badges.

Each section is an immutable pydantic model that refuses unknown keys, and its
defaults are the seed programme's values (see
:func:`gateway.rules.model.default_rule_set`).  Multipliers are never below 1:
a programme that wants to give fewer points lowers ``earn_rate`` instead, so
every multiplier line of a breakdown is a bonus (>= 0).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from gateway.rules.badges import BADGES, BADGES_BY_KEY
from gateway.rules.tiers import TIER_NAMES

#: Largest multiplier any rule may declare.
MAX_MULTIPLIER = Decimal(10)
#: Largest fixed bonus (points) any rule may declare.
MAX_BONUS = 1_000_000


def _multiplier(value: Decimal) -> Decimal:
    if value < 1:
        raise ValueError(
            f"multiplier {value} is below 1 and would take points away; lower earn_rate instead"
        )
    if value > MAX_MULTIPLIER:
        raise ValueError(f"multiplier {value} exceeds the maximum of {MAX_MULTIPLIER}")
    return value


Multiplier = Annotated[Decimal, AfterValidator(_multiplier)]
Points = Annotated[int, Field(ge=0, le=MAX_BONUS)]


class RuleModel(BaseModel):
    """Base of every rule-set model: immutable, unknown keys refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class TierLevel(RuleModel):
    """One tier: its multiplier and the RFM thresholds that reach it."""

    name: str
    multiplier: Multiplier
    min_orders: int = Field(default=0, ge=0)
    min_spend: Decimal = Field(default=Decimal(0), ge=0)
    max_recency_days: int | None = Field(default=None, ge=1)


def _recency_limit(level: TierLevel) -> float:
    return float("inf") if level.max_recency_days is None else level.max_recency_days


class TierRules(RuleModel):
    """The five tiers Bronze..Black, lowest first, measured over ``window_days``."""

    window_days: int = Field(default=365, ge=1, le=3660)
    levels: tuple[TierLevel, ...]

    @model_validator(mode="after")
    def _ladder(self) -> TierRules:
        names = tuple(level.name for level in self.levels)
        if names != TIER_NAMES:
            raise ValueError(f"tier levels must be exactly {', '.join(TIER_NAMES)} in that order")
        bronze = self.levels[0]
        if bronze.min_orders or bronze.min_spend or bronze.max_recency_days is not None:
            raise ValueError("Bronze is every member's tier: it takes no thresholds")
        for lower, upper in zip(self.levels, self.levels[1:], strict=False):
            if upper.multiplier < lower.multiplier:
                raise ValueError(f"{upper.name} multiplier is below {lower.name}'s")
            if upper.min_orders < lower.min_orders or upper.min_spend < lower.min_spend:
                raise ValueError(f"{upper.name} thresholds are below {lower.name}'s")
            if _recency_limit(upper) > _recency_limit(lower):
                raise ValueError(f"{upper.name} allows a longer recency than {lower.name}")
            if (upper.min_orders, upper.min_spend, _recency_limit(upper)) == (
                lower.min_orders,
                lower.min_spend,
                _recency_limit(lower),
            ):
                raise ValueError(f"{upper.name} thresholds equal {lower.name}'s: unreachable tier")
            if upper.max_recency_days is not None and upper.max_recency_days > self.window_days:
                raise ValueError(f"{upper.name} recency exceeds the {self.window_days}-day window")
        return self


class Campaign(RuleModel):
    """A time-boxed multiplier on purchases in ``[starts_at, ends_at)``, optionally per category."""

    key: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")
    name: str = Field(min_length=1, max_length=100)
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    multiplier: Multiplier
    categories: tuple[str, ...] | None = None

    @model_validator(mode="after")
    def _window_and_categories(self) -> Campaign:
        if self.ends_at <= self.starts_at:
            raise ValueError(
                f"campaign {self.key!r} must end after it starts "
                f"({self.ends_at.isoformat()} <= {self.starts_at.isoformat()})"
            )
        if self.categories is not None:
            folded = [c.strip().casefold() for c in self.categories]
            if not folded or not all(folded):
                raise ValueError(f"campaign {self.key!r}: categories must be non-empty names")
            if len(set(folded)) != len(folded):
                raise ValueError(f"campaign {self.key!r}: categories repeat")
        return self

    @field_validator("starts_at", "ends_at")
    @classmethod
    def _in_utc(cls, value: datetime) -> datetime:
        # Canonical form: instants in UTC, so equal windows hash equally.
        try:
            return value.astimezone(UTC)
        except OverflowError:  # e.g. 9999-12-31T23:00-05:00 is past the calendar's end
            raise ValueError(f"{value.isoformat()} is out of range in UTC") from None

    def is_active(self, at: datetime) -> bool:
        """Whether ``at`` falls in ``[starts_at, ends_at)``."""
        return self.starts_at <= at < self.ends_at

    def covers(self, category: str | None) -> bool:
        """Whether the campaign applies to an item of ``category`` (None: not an item)."""
        if self.categories is None:
            return True
        return category is not None and category.strip().casefold() in {
            c.strip().casefold() for c in self.categories
        }


class Bonuses(RuleModel):
    """Fixed rewards (points) and the birthday-month multiplier."""

    first_order: Points = 100
    signup: Points = 0
    check_in: Points = 5
    streak: Points = 50
    share: Points = 10
    review: Points = 20
    referral_inviter: Points = 200
    referral_invitee: Points = 100
    birthday_multiplier: Multiplier = Decimal(3)


class DailyCaps(RuleModel):
    """Rewarded shares and reviews per member per programme day."""

    share: int = Field(default=3, ge=0, le=100)
    review: int = Field(default=2, ge=0, le=100)


class Velocity(RuleModel):
    """Rate limits (None: no limit) and what exceeding one does to the event."""

    member_events_per_hour: int | None = Field(default=60, ge=1)
    member_points_per_day: int | None = Field(default=50_000, ge=1)
    merchant_events_per_minute: int | None = Field(default=1_000, ge=1)
    merchant_points_per_day: int | None = Field(default=10_000_000, ge=1)
    action: Literal["hold", "reject"] = "hold"


class Clustering(RuleModel):
    """Distinct members seen on one device / IP beyond which events are held for review."""

    max_accounts_per_device: int | None = Field(default=3, ge=1)
    max_accounts_per_ip: int | None = Field(default=20, ge=1)


class BadgeRules(RuleModel):
    """Which catalogue badges the programme awards, and the Top Referrer threshold."""

    enabled: tuple[str, ...] = tuple(badge.key for badge in BADGES)
    top_referrer_referrals: int = Field(default=5, ge=1, le=10_000)

    @model_validator(mode="after")
    def _known_keys(self) -> BadgeRules:
        unknown = sorted(set(self.enabled) - set(BADGES_BY_KEY))
        if unknown:
            raise ValueError(
                f"unknown badge keys {', '.join(unknown)}; known: {', '.join(BADGES_BY_KEY)}"
            )
        if len(set(self.enabled)) != len(self.enabled):
            raise ValueError("badge keys repeat")
        return self
