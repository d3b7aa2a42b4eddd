"""A merchant's loyalty programme as data: :class:`RuleSet`, its seed and its hash.

A rule set is version-less content; the gateway stores each accepted one as a
new version and publishes :func:`rule_set_hash` on chain, so anyone holding the
JSON can check which rules computed an issuance.  The hash is keccak-256 of
:func:`canonical_json`: keys sorted, no whitespace, ASCII only, Decimals as
plain strings without trailing zeros (``"1.10"`` and ``"1.1"`` are one value),
datetimes in UTC ISO 8601, every default written out
(:mod:`gateway.rules.canonical`, shared with issuance inputs).  Equal content therefore
hashes equally whatever the key order or spelling of the input, and any change
of a value changes the hash.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from eth_utils import keccak
from pydantic import Field, ValidationError, field_validator

from gateway.rules.canonical import canonical_dumps
from gateway.rules.currencies import validate_currency
from gateway.rules.errors import InvalidRuleSet
from gateway.rules.sections import (
    BadgeRules,
    Bonuses,
    Campaign,
    Clustering,
    DailyCaps,
    RuleModel,
    TierLevel,
    TierRules,
    Velocity,
)


class RuleSet(RuleModel):
    """Everything that decides points and badges for one merchant's events.

    ``earn_rate`` is points per one network unit (USD by default) of the order
    amount converted at the dated FX rate; ``currency`` is the merchant's home
    currency (orders in any other are cross-border and converted the same way).
    Programme days (daily caps, check-in streaks, birthday month) are calendar
    days at the fixed ``utc_offset_minutes``.
    """

    currency: str
    earn_rate: Decimal = Field(gt=0, le=1000)
    utc_offset_minutes: int = Field(default=0, ge=-720, le=840)
    tiers: TierRules
    campaigns: tuple[Campaign, ...] = ()
    bonuses: Bonuses = Bonuses()
    caps: DailyCaps = DailyCaps()
    velocity: Velocity = Velocity()
    clustering: Clustering = Clustering()
    badges: BadgeRules = BadgeRules()

    @field_validator("currency")
    @classmethod
    def _iso_4217(cls, value: str) -> str:
        return validate_currency(value)

    @field_validator("campaigns")
    @classmethod
    def _unique_campaigns(cls, campaigns: tuple[Campaign, ...]) -> tuple[Campaign, ...]:
        keys = [campaign.key for campaign in campaigns]
        repeated = sorted({key for key in keys if keys.count(key) > 1})
        if repeated:
            raise ValueError(f"campaign keys repeat: {', '.join(repeated)}")
        return campaigns


#: The seed tier ladder: thresholds over 365 days, multipliers 1.0 .. 2.0.
SEED_TIERS = TierRules(
    window_days=365,
    levels=(
        TierLevel(name="Bronze", multiplier=Decimal("1.0")),
        TierLevel(
            name="Silver",
            multiplier=Decimal("1.1"),
            min_orders=3,
            min_spend=Decimal(300),
            max_recency_days=180,
        ),
        TierLevel(
            name="Gold",
            multiplier=Decimal("1.25"),
            min_orders=6,
            min_spend=Decimal(1000),
            max_recency_days=120,
        ),
        TierLevel(
            name="Platinum",
            multiplier=Decimal("1.5"),
            min_orders=12,
            min_spend=Decimal(3000),
            max_recency_days=90,
        ),
        TierLevel(
            name="Black",
            multiplier=Decimal("2.0"),
            min_orders=24,
            min_spend=Decimal(10000),
            max_recency_days=60,
        ),
    ),
)


def default_rule_set(currency: str) -> RuleSet:
    """The seed programme for a merchant selling in ``currency``.

    1 point per network unit, the :data:`SEED_TIERS` ladder, birthday month x3,
    first order +100, daily check-in +5 and +50 for each 7-day streak, share +10
    (3 a day), review +20 (2 a day), referral +200 inviter / +100 invitee, every
    badge enabled, Top Referrer at 5, no campaigns, velocity limits that hold.
    """
    return RuleSet(currency=currency, earn_rate=Decimal(1), tiers=SEED_TIERS)


def parse_rule_set(data: Mapping[str, Any] | str | bytes) -> RuleSet:
    """Validate a rule set from a mapping or JSON; :class:`InvalidRuleSet` lists every problem."""
    try:
        if isinstance(data, str | bytes):
            return RuleSet.model_validate_json(data)
        return RuleSet.model_validate(data)
    except ValidationError as error:
        raise InvalidRuleSet(
            [
                {
                    "loc": ".".join(str(part) for part in e["loc"]),
                    "message": e["msg"].removeprefix("Value error, "),
                    "type": e["type"],
                }
                for e in error.errors()
            ]
        ) from None


def canonical_json(rs: RuleSet) -> str:
    """The canonical JSON text of ``rs`` (see the module docstring)."""
    return canonical_dumps(rs.model_dump(mode="python"))


def rule_set_hash(rs: RuleSet) -> bytes:
    """keccak-256 (32 bytes) of :func:`canonical_json`, as published on chain."""
    return keccak(text=canonical_json(rs))
