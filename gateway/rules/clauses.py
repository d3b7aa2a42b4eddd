"""Clauses: a sentence in no language, a message key and its params.

The shared part of :mod:`gateway.rules.explain` and :mod:`gateway.rules.rule_changes`:
:class:`Clause`, how values are written into params, and the rule-set fields that
are explained one key each.

Params are language-free values: Decimals (rates, multipliers, amounts) as their
canonical strings (``"1.25"``, as in the rule set's canonical JSON), points, caps and
days as integers, instants as ISO 8601 in UTC, the offset as ``"+08:00"``.  A tier's
``name`` is the rule set's (English) name and ``tier`` its index, a badge's ``name``
the catalogue's and ``badge`` its key: a page may show ``tier.<n>`` / ``badge.<key>``
in its own language instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from gateway.rules.canonical import decimal_text, instant_text
from gateway.rules.model import RuleSet
from gateway.rules.multipliers import CENT
from gateway.rules.sections import Campaign

Param = str | int | None


@dataclass(frozen=True)
class Clause:
    """One sentence to be: a message ``key`` and the values of its placeholders."""

    key: str
    params: Mapping[str, Param] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """``{"key", "params"}``, as the API answers it."""
        return {"key": self.key, "params": dict(self.params)}


# The fields explained one key each, in the order they are read.
BONUSES = (
    "first_order", "signup", "check_in", "streak", "share", "review",
    "referral_inviter", "referral_invitee", "birthday_multiplier",
)  # fmt: skip
CAPS = ("share", "review")
VELOCITY = (
    "member_events_per_hour", "member_points_per_day",
    "merchant_events_per_minute", "merchant_points_per_day",
)  # fmt: skip
CLUSTERING = ("max_accounts_per_device", "max_accounts_per_ip")
LIMITS = (*VELOCITY, *CLUSTERING)
ACTIONS = ("hold", "reject")


def clause(key: str, **params: Param) -> Clause:
    return Clause(key, params)


def number(value: Decimal | int) -> str:
    """A Decimal as the rule set's canonical JSON writes it (``"1.1"``, ``"0"``)."""
    return decimal_text(Decimal(value))


def money(amount: Decimal) -> str:
    """An amount as money is written: two decimals (``"124.20"``)."""
    return f"{amount.quantize(CENT):f}"


def utc_offset(minutes: int) -> str:
    """``480`` -> ``"+08:00"``, ``-300`` -> ``"-05:00"``."""
    sign = "-" if minutes < 0 else "+"
    hours, rest = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}:{rest:02d}"


def campaign_clause(prefix: str, campaign: Campaign) -> Clause:
    """``prefix`` (or ``prefix_categories`` for a campaign limited to categories)."""
    params: dict[str, Param] = {
        "name": campaign.name, "multiplier": number(campaign.multiplier),
        "starts": instant_text(campaign.starts_at), "ends": instant_text(campaign.ends_at),
    }  # fmt: skip
    if campaign.categories is None:
        return Clause(prefix, params)
    return Clause(f"{prefix}_categories", {**params, "categories": ", ".join(campaign.categories)})


def limits_of(rules: RuleSet) -> dict[str, int | None]:
    """The velocity and clustering limits by field name (None: no limit)."""
    velocity, clustering = rules.velocity, rules.clustering
    return {
        **{name: getattr(velocity, name) for name in VELOCITY},
        **{name: getattr(clustering, name) for name in CLUSTERING},
    }
