"""Event and snapshot inputs refuse malformed data with ``invalid_event``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from rules_factories import NOW

from gateway.rules.engine import (
    EVENT_TYPES,
    EventInput,
    ItemInput,
    MemberSnapshot,
    MerchantSnapshot,
    OrderInput,
    RefundInput,
)
from gateway.rules.errors import InvalidEvent
from gateway.rules.tiers import Purchase

ORDER = OrderInput(order_id="o", amount=Decimal(1), currency="USD")
NAIVE = datetime(2025, 6, 15, 12, 0)

MALFORMED: list[tuple[str, Callable[[], object]]] = [
    ("naive occurred_at", lambda: EventInput(type="check_in", occurred_at=NAIVE)),
    ("unknown type", lambda: EventInput(type="gift", occurred_at=NOW)),  # type: ignore[arg-type]
    ("purchase without order", lambda: EventInput(type="purchase", occurred_at=NOW)),
    ("order on a share", lambda: EventInput(type="share", occurred_at=NOW, order=ORDER)),
    ("refund without details", lambda: EventInput(type="refund", occurred_at=NOW)),
    (
        "refund details on a purchase",
        lambda: EventInput(
            type="purchase", occurred_at=NOW, order=ORDER, refund=RefundInput(order_id="o")
        ),
    ),
    ("float amount", lambda: OrderInput(order_id="o", amount=1.5, currency="USD")),  # type: ignore[arg-type]
    ("negative amount", lambda: OrderInput(order_id="o", amount=Decimal(-1), currency="USD")),
    ("NaN amount", lambda: OrderInput(order_id="o", amount=Decimal("NaN"), currency="USD")),
    ("empty order id", lambda: OrderInput(order_id="", amount=Decimal(1), currency="USD")),
    ("negative item", lambda: ItemInput(sku="s", category="c", amount=Decimal(-1))),
    ("zero refund", lambda: RefundInput(order_id="o", amount=Decimal(0))),
    ("empty refund order id", lambda: RefundInput(order_id="")),
    ("empty member id", lambda: MemberSnapshot(member_id="")),
    ("birth month 13", lambda: MemberSnapshot(member_id="m", birth_month=13)),
    ("tier 5", lambda: MemberSnapshot(member_id="m", current_tier=5)),
    ("negative counter", lambda: MemberSnapshot(member_id="m", events_last_hour=-1)),
    (
        "naive purchase in history",
        lambda: MemberSnapshot(member_id="m", purchases=[(NAIVE, Decimal(1))]),
    ),
    (
        "float purchase amount",
        lambda: MemberSnapshot(member_id="m", purchases=[(NOW, 1.0)]),  # type: ignore[list-item]
    ),
    ("negative merchant counter", lambda: MerchantSnapshot(points_issued_today=-1)),
]


@pytest.mark.parametrize("build", [m[1] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
def test_malformed_input_is_an_invalid_event(build: Callable[[], object]) -> None:
    with pytest.raises(InvalidEvent) as refused:
        build()

    assert refused.value.code == "invalid_event"


def test_event_types_are_the_seven_merchant_events() -> None:
    assert set(EVENT_TYPES) == {
        "purchase",
        "refund",
        "signup",
        "review",
        "share",
        "referral",
        "check_in",
    }


def test_integers_are_accepted_as_money() -> None:
    order = OrderInput(order_id="o", amount=12, currency="USD")  # type: ignore[arg-type]

    assert order.amount == Decimal(12)
    assert isinstance(order.amount, Decimal)


def test_snapshot_normalises_collections() -> None:
    snapshot = MemberSnapshot(
        member_id="m",
        purchases=[(NOW, Decimal(5))],
        check_in_days=[date(2025, 6, 14)],
        held_badges={"first_order"},
    )

    assert snapshot.purchases == (Purchase(NOW, Decimal(5)),)
    assert snapshot.check_in_days == frozenset({date(2025, 6, 14)})
    assert snapshot.held_badges == frozenset({"first_order"})


def test_any_time_zone_is_accepted() -> None:
    event = EventInput(type="share", occurred_at=datetime(2025, 6, 15, tzinfo=UTC))

    assert event.occurred_at.utcoffset() is not None
