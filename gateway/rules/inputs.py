"""What the engine is told about an event: the event, the member, the merchant.

The gateway builds these from the request and its database; the engine reads
nothing else.  Constructors check structure (aware times, Decimal money, the
order or refund an event type needs) and raise
:class:`~gateway.rules.errors.InvalidEvent`; whether the content earns points
is the engine's business.  Counters such as ``events_last_hour`` count the
events *before* this one, and "today" is :func:`gateway.rules.days.programme_day`.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Final, Literal, get_args

from gateway.rules.decision import BreakdownLine, ReferralBonus
from gateway.rules.errors import InvalidEvent
from gateway.rules.tiers import TIER_NAMES, Purchase

EventType = Literal["purchase", "refund", "signup", "review", "share", "referral", "check_in"]
EVENT_TYPES: Final[tuple[str, ...]] = get_args(EventType)


def _money(owner: object, name: str, minimum: Decimal, allow_equal: bool = True) -> None:
    value = getattr(owner, name)
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        raise InvalidEvent(f"{name} must be a Decimal, not {type(value).__name__}")
    amount = Decimal(value)
    if not amount.is_finite() or amount < minimum or (not allow_equal and amount == minimum):
        bound = ">=" if allow_equal else ">"
        raise InvalidEvent(f"{name} must be finite and {bound} {minimum}, got {value}")
    object.__setattr__(owner, name, amount)


def _aware(name: str, value: datetime) -> None:
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise InvalidEvent(f"{name} must be a timezone-aware datetime, got {value!r}")


def _counts(owner: object, *names: str) -> None:
    for name in names:
        if getattr(owner, name) < 0:
            raise InvalidEvent(f"{name} must be >= 0")


def _purchase(occurred_at: datetime, network_amount: Decimal) -> Purchase:
    _aware("purchase occurred_at", occurred_at)
    if isinstance(network_amount, bool) or not isinstance(network_amount, Decimal | int):
        raise InvalidEvent(f"purchase network_amount must be a Decimal, got {network_amount!r}")
    if not Decimal(network_amount).is_finite() or network_amount < 0:
        raise InvalidEvent(f"purchase network_amount must be >= 0, got {network_amount}")
    return Purchase(occurred_at, Decimal(network_amount))


@dataclass(frozen=True)
class ItemInput:
    """One order line: ``amount`` in the order's currency; ``eco`` for eco-labelled items."""

    sku: str
    category: str
    amount: Decimal
    eco: bool = False

    def __post_init__(self) -> None:
        _money(self, "amount", Decimal(0))


@dataclass(frozen=True)
class OrderInput:
    """A purchase's order: total ``amount`` in ``currency`` (ISO 4217) and its items."""

    order_id: str
    amount: Decimal
    currency: str
    items: Sequence[ItemInput] = ()

    def __post_init__(self) -> None:
        if not self.order_id:
            raise InvalidEvent("order_id must not be empty")
        _money(self, "amount", Decimal(0))
        object.__setattr__(self, "items", tuple(self.items))


@dataclass(frozen=True)
class RefundInput:
    """A refund of ``order_id``: ``amount`` in the order's currency, None for all of it."""

    order_id: str
    amount: Decimal | None = None

    def __post_init__(self) -> None:
        if not self.order_id:
            raise InvalidEvent("order_id must not be empty")
        if self.amount is not None:
            _money(self, "amount", Decimal(0), allow_equal=False)


@dataclass(frozen=True)
class EventInput:
    """One merchant event; ``order`` only on purchases, ``refund`` only on refunds."""

    type: EventType
    occurred_at: datetime
    order: OrderInput | None = None
    refund: RefundInput | None = None
    referrer_member: str | None = None
    device_id: str | None = None
    ip: str | None = None

    def __post_init__(self) -> None:
        if self.type not in EVENT_TYPES:
            raise InvalidEvent(f"type must be one of {', '.join(EVENT_TYPES)}, got {self.type!r}")
        _aware("occurred_at", self.occurred_at)
        if (self.order is not None) != (self.type == "purchase"):
            raise InvalidEvent("a purchase, and only a purchase, carries an order")
        if (self.refund is not None) != (self.type == "refund"):
            raise InvalidEvent("a refund, and only a refund, carries refund details")


@dataclass(frozen=True, kw_only=True)
class MemberSnapshot:
    """What the rules need to know about the member at this merchant, before this event.

    ``purchases``: the member's purchases here in the tier window, each with its
    network amount net of earlier refunds (fully refunded ones left out).
    ``accounts_on_device`` / ``accounts_on_ip``: distinct members the gateway has
    seen on this event's device / IP, this member included.  ``referrer_*``
    describe the inviter in ``referred_by``: successful referrals so far and
    badges held.
    """

    member_id: str
    birth_month: int | None = None
    frozen: bool = False
    frozen_reason: str | None = None
    is_first_purchase_at_merchant: bool = False
    purchases: Sequence[tuple[datetime, Decimal]] = ()
    check_in_days: Collection[date] = ()
    shares_today: int = 0
    reviews_today: int = 0
    referred_by: str | None = None
    referral_rewarded: bool = False
    referrer_referrals: int = 0
    referrer_badges: AbstractSet[str] = frozenset()
    held_badges: AbstractSet[str] = frozenset()
    current_tier: int = 0
    events_last_hour: int = 0
    points_today: int = 0
    accounts_on_device: int = 0
    accounts_on_ip: int = 0

    def __post_init__(self) -> None:
        if not self.member_id:
            raise InvalidEvent("member_id must not be empty")
        if self.birth_month is not None and not 1 <= self.birth_month <= 12:
            raise InvalidEvent(f"birth_month must be 1..12, got {self.birth_month}")
        if not 0 <= self.current_tier < len(TIER_NAMES):
            raise InvalidEvent(f"current_tier must be 0..{len(TIER_NAMES) - 1}")
        _counts(self, "shares_today", "reviews_today", "referrer_referrals")
        _counts(self, "events_last_hour", "points_today", "accounts_on_device", "accounts_on_ip")
        object.__setattr__(self, "purchases", tuple(_purchase(*p) for p in self.purchases))
        object.__setattr__(self, "check_in_days", frozenset(self.check_in_days))
        object.__setattr__(self, "held_badges", frozenset(self.held_badges))
        object.__setattr__(self, "referrer_badges", frozenset(self.referrer_badges))


@dataclass(frozen=True, kw_only=True)
class MerchantSnapshot:
    """The merchant's activity before this event: points issued today, events last minute."""

    merchant_id: str = ""
    points_issued_today: int = 0
    events_last_minute: int = 0

    def __post_init__(self) -> None:
        _counts(self, "points_issued_today", "events_last_minute")


@dataclass(frozen=True, kw_only=True)
class OriginalOutcome:
    """The recorded outcome of the purchase a refund refers to.

    ``points`` is what the purchase issued (its ``breakdown`` sums to it, or is
    empty when not recorded: all points then count as amount-based).
    ``already_clawed_back`` and ``refunded_amount`` (order currency) accumulate
    the earlier refunds of the same order: pass both, or successive partial
    refunds cannot be told apart from a first one.  ``order_id``, when given,
    must be the refunded order; ``network_amount`` and ``occurred_at`` let
    ``tier_after`` account for the refund.
    """

    points: int
    order_amount: Decimal
    breakdown: Sequence[BreakdownLine] = ()
    already_clawed_back: int = 0
    refunded_amount: Decimal = Decimal(0)
    order_id: str | None = None
    network_amount: Decimal | None = None
    occurred_at: datetime | None = None
    referral_bonus: ReferralBonus | None = None

    def __post_init__(self) -> None:
        _money(self, "order_amount", Decimal(0))
        _money(self, "refunded_amount", Decimal(0))
        if self.network_amount is not None:
            _money(self, "network_amount", Decimal(0))
        object.__setattr__(self, "breakdown", tuple(self.breakdown))
        if self.points < 0 or not 0 <= self.already_clawed_back <= self.points:
            raise InvalidEvent("points must be >= 0 and already_clawed_back within 0..points")
        if self.breakdown and sum(line.points for line in self.breakdown) != self.points:
            raise InvalidEvent(f"the original breakdown does not sum to {self.points} points")
        if self.refunded_amount > self.order_amount:
            raise InvalidEvent("refunded_amount exceeds order_amount")
        if self.occurred_at is not None:
            _aware("occurred_at", self.occurred_at)
