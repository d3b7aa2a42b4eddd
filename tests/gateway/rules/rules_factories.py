"""Builders for rules-engine tests: seed rules, events, members, histories.

Every builder takes the few values a test cares about and fills the rest with
the quietest possible defaults: a Bronze member with no history, no birthday,
no badges, far from every limit, buying in USD on 2025-06-15 (a Sunday) at noon UTC.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from gateway.rules.decision import BreakdownLine, Decision
from gateway.rules.engine import (
    EventInput,
    ItemInput,
    MemberSnapshot,
    MerchantSnapshot,
    OrderInput,
    OriginalOutcome,
    RefundInput,
    evaluate,
)
from gateway.rules.fx import FxTable, default_fx_table
from gateway.rules.model import RuleSet, default_rule_set
from gateway.rules.tiers import Purchase

NOW = datetime(2025, 6, 15, 12, 0, tzinfo=UTC)
TODAY = NOW.date()
SEED = default_rule_set("USD")
FX = default_fx_table()


def money(value: str | int | Decimal) -> Decimal:
    """A Decimal from a readable literal."""
    return Decimal(str(value))


def item(category: str = "general", amount: str | int = 10, eco: bool = False) -> ItemInput:
    """One order line."""
    return ItemInput(sku=f"sku-{category}", category=category, amount=money(amount), eco=eco)


def purchase(
    amount: str | int | Decimal = 100,
    currency: str = "USD",
    items: Sequence[ItemInput] = (),
    at: datetime = NOW,
    order_id: str = "order-1",
    **event: Any,
) -> EventInput:
    """A purchase event."""
    order = OrderInput(order_id=order_id, amount=money(amount), currency=currency, items=items)
    return EventInput(type="purchase", occurred_at=at, order=order, **event)


def refund(
    amount: str | int | None = None, order_id: str = "order-1", at: datetime = NOW
) -> EventInput:
    """A refund event (``amount`` None: the whole order)."""
    value = None if amount is None else money(amount)
    return EventInput(
        type="refund", occurred_at=at, refund=RefundInput(order_id=order_id, amount=value)
    )


def activity(kind: str, at: datetime = NOW, **event: Any) -> EventInput:
    """A check-in, share, review, sign-up or referral event."""
    return EventInput(type=kind, occurred_at=at, **event)  # type: ignore[arg-type]


def member(**fields: Any) -> MemberSnapshot:
    """A member snapshot; ``member_id`` defaults to ``"member-1"``."""
    fields.setdefault("member_id", "member-1")
    return MemberSnapshot(**fields)


def merchant(**fields: Any) -> MerchantSnapshot:
    """A merchant snapshot far from every limit unless told otherwise."""
    fields.setdefault("merchant_id", "merchant-1")
    return MerchantSnapshot(**fields)


def history(
    count: int, each: str | int, days_ago: int = 1, spacing_days: int = 1, at: datetime = NOW
) -> list[Purchase]:
    """``count`` purchases of ``each`` network units, the latest ``days_ago`` days before ``at``."""
    return [
        Purchase(at - timedelta(days=days_ago + i * spacing_days), money(each))
        for i in range(count)
    ]


def check_ins(*days_ago: int) -> frozenset[date]:
    """Programme days with a check-in, counted back from today."""
    return frozenset(TODAY - timedelta(days=d) for d in days_ago)


def _merge(base: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def seed_data(**overrides: Any) -> dict[str, Any]:
    """The seed programme as plain data, with nested ``overrides`` merged in."""
    return _merge(SEED.model_dump(mode="json"), overrides)


def rules(**overrides: Any) -> RuleSet:
    """The seed programme with nested ``overrides`` (validated)."""
    return RuleSet.model_validate(seed_data(**overrides))


def campaign(
    key: str = "festival",
    multiplier: str | int = 2,
    starts: datetime = NOW - timedelta(days=1),
    ends: datetime = NOW + timedelta(days=1),
    categories: Iterable[str] | None = None,
) -> dict[str, Any]:
    """Campaign data (around ``NOW`` unless told otherwise)."""
    return {
        "key": key,
        "name": key.replace("-", " ").title(),
        "starts_at": starts.isoformat(),
        "ends_at": ends.isoformat(),
        "multiplier": str(multiplier),
        "categories": None if categories is None else list(categories),
    }


def original(
    points: int,
    order_amount: str | int = 100,
    breakdown: Mapping[str, int] | None = None,
    **fields: Any,
) -> OriginalOutcome:
    """A recorded purchase outcome for refunds (breakdown as ``{rule: points}``)."""
    lines = [BreakdownLine(rule, rule, pts) for rule, pts in (breakdown or {}).items()]
    fields.setdefault("order_id", "order-1")
    fields.setdefault("network_amount", money(order_amount))
    return OriginalOutcome(
        points=points, order_amount=money(order_amount), breakdown=lines, **fields
    )


def decide(
    event: EventInput,
    who: MemberSnapshot | None = None,
    shop: MerchantSnapshot | None = None,
    rule_set: RuleSet = SEED,
    fx: FxTable = FX,
    outcome: OriginalOutcome | None = None,
) -> Decision:
    """:func:`evaluate` with quiet defaults."""
    return evaluate(rule_set, fx, event, who or member(), shop or merchant(), outcome)


def lines(decision: Decision) -> dict[str, int]:
    """The breakdown as ``{rule: points}``."""
    return {line.rule: line.points for line in decision.breakdown}
