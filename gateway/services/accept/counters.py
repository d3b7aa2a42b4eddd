"""Per-member counter buckets: what one event adds, how they are stored and read.

A bucket is a member's activity at one merchant on one programme day
(:class:`gateway.models.MemberCounter`).  Every accepted event adds to its
bucket in the transaction that stores it (one multi-row upsert per chunk, whose
increments are atomic, so concurrent writers of one bucket add up); releasing a
held event moves it into the counts, rejecting one takes its held order out.

The rules' windows are sums of buckets, never running totals: the RFM window
(network-wide: every merchant's buckets), the check-in days of the last month,
the day's shares and reviews, whether the member ever ordered here.  The RFM
window is day-granular: a bucket's orders all count at its last order's time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, case, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from gateway.db import is_postgres
from gateway.models import MemberCounter, RuleSetVersion, table_of
from gateway.rules.days import programme_day
from gateway.rules.model import RuleSet
from gateway.timeutil import aware

#: The integer columns a delta adds to.
COUNTS = ("orders", "orders_held", "refunds", "check_ins", "shares", "reviews", "points")
#: Event types counted in a column of their own.
TYPE_COLUMNS = {"check_in": "check_ins", "share": "shares", "review": "reviews"}
#: Check-in days the engine is shown (a streak bonus comes every 7th day in a row).
CHECK_IN_DAYS = 31
#: Purchases older than this never reach a tier window (the ladder allows up to 3660 days,
#: the default is 365; this bound is what the accept path has always read).
TIER_HORIZON = timedelta(days=731)

BucketKey = tuple[int, date]  # (merchant id, programme day)


@dataclass
class Bucket:
    """One bucket's values (read, or added up in memory)."""

    orders: int = 0
    orders_held: int = 0
    refunds: int = 0
    check_ins: int = 0
    shares: int = 0
    reviews: int = 0
    points: int = 0
    spend: Decimal = field(default_factory=Decimal)
    last_order_at: datetime | None = None

    def add(self, other: Bucket) -> None:
        for name in COUNTS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.spend += other.spend
        if other.last_order_at is not None and (
            self.last_order_at is None or other.last_order_at > self.last_order_at
        ):
            self.last_order_at = other.last_order_at


def event_delta(
    kind: str, status: str, points: int, network_amount: Decimal, occurred_at: datetime
) -> Bucket:
    """What a stored event adds to its bucket: ``status`` is ``accepted`` (or live) or ``held``."""
    if status == "held":
        return Bucket(orders_held=1 if kind == "purchase" else 0)
    delta = Bucket(points=points)
    if kind == "purchase":
        delta.orders, delta.spend = 1, Decimal(network_amount)
        delta.last_order_at = occurred_at.astimezone(UTC)
    elif kind == "refund":
        delta.refunds = 1
    elif kind in TYPE_COLUMNS:
        setattr(delta, TYPE_COLUMNS[kind], 1)
    return delta


def released_delta(kind: str, points: int, network_amount: Decimal, at: datetime) -> Bucket:
    """A held event released: it counts now, and its held order no longer waits."""
    delta = event_delta(kind, "accepted", points, network_amount, at)
    delta.orders_held = -1 if kind == "purchase" else 0
    return delta


def rejected_delta(kind: str) -> Bucket:
    """A held event rejected: its held order is gone."""
    return Bucket(orders_held=-1 if kind == "purchase" else 0)


_C = table_of(MemberCounter)
#: A bucket's columns in the order :func:`read_buckets` unpacks them (tuples, not
#: named row access: a member may have hundreds of buckets).
_BUCKETS = select(
    _C.c.member_id, _C.c.merchant_id, _C.c.day, _C.c.orders, _C.c.orders_held, _C.c.refunds,
    _C.c.check_ins, _C.c.shares, _C.c.reviews, _C.c.points, _C.c.spend, _C.c.last_order_at,
).where(_C.c.member_id.in_(bindparam("members", expanding=True)))  # fmt: skip


def failed_delta(kind: str, points: int, network_amount: Decimal) -> Bucket:
    """A live event whose chain ops failed for good: it no longer counts.

    ``last_order_at`` stays (a maximum cannot be undone): recency may then count
    from a failed order, which errs by at most the bucket's day.
    """
    delta = event_delta(kind, "accepted", points, network_amount, _NO_TIME)
    for name in COUNTS:
        setattr(delta, name, -getattr(delta, name))
    delta.spend, delta.last_order_at = -delta.spend, None
    return delta


#: The time :func:`failed_delta` gives :func:`event_delta`: only ``last_order_at`` reads
#: it, and a failed event's delta drops that.
_NO_TIME = datetime.fromtimestamp(0, UTC)


def count_failed(session: Session, events: list[Any]) -> None:
    """Take events that were live (accepted or submitted) and now failed out of their
    buckets: one read of the rule versions that decided them, one upsert.

    Each event's bucket is its :func:`~gateway.rules.days.programme_day` under the
    version that decided it (``rule_version``), as when it was counted in.

    ``events``: rows with ``member_id``, ``merchant_id``, ``type``, ``points``,
    ``network_amount``, ``occurred_at`` and ``rule_version`` (``Event`` objects do).
    For the outbox worker, when it marks events failed.
    """
    if not events:
        return
    rules = _rule_sets(session, {(e.merchant_id, e.rule_version) for e in events})
    deltas: dict[tuple[str, int, date], Bucket] = {}
    for event in events:
        day = programme_day(
            rules[(event.merchant_id, event.rule_version)], aware(event.occurred_at)
        )
        key = (event.member_id, event.merchant_id, day)
        delta = failed_delta(event.type, event.points, Decimal(event.network_amount or 0))
        deltas.setdefault(key, Bucket()).add(delta)
    write_deltas(session, deltas)


def _rule_sets(session: Session, versions: set[tuple[int, int]]) -> dict[tuple[int, int], RuleSet]:
    """The rule sets of these (merchant, version) pairs: one query."""
    table = table_of(RuleSetVersion)
    rows = session.connection().execute(
        select(table.c.merchant_id, table.c.version, table.c.content).where(
            table.c.merchant_id.in_({merchant for merchant, _v in versions}),
            table.c.version.in_({version for _m, version in versions}),
        )
    )
    found = {
        (merchant, version): RuleSet.model_validate(content)
        for merchant, version, content in rows
        if (merchant, version) in versions
    }
    missing = versions - set(found)
    if missing:  # an event names the version that decided it: the row exists
        raise LookupError(f"rule set versions not found: {sorted(missing)}")
    return found


def read_buckets(session: Session, member_ids: set[str]) -> dict[str, dict[BucketKey, Bucket]]:
    """Every bucket of these members (all merchants, all days): one query."""
    found: dict[str, dict[BucketKey, Bucket]] = {member: {} for member in member_ids}
    if not member_ids:
        return found
    rows = session.connection().execute(_BUCKETS, {"members": list(member_ids)})
    for (
        member_id, merchant_id, day, orders, held, refunds, check_ins, shares, reviews, points,
        spend, last_order_at,
    ) in rows:  # fmt: skip
        found[member_id][(merchant_id, _day(day))] = Bucket(
            orders=orders, orders_held=held, refunds=refunds, check_ins=check_ins,
            shares=shares, reviews=reviews, points=points, spend=Decimal(spend),
            last_order_at=_utc(last_order_at) if last_order_at is not None else None,
        )  # fmt: skip
    return found


def write_deltas(session: Session, deltas: dict[tuple[str, int, date], Bucket]) -> None:
    """Add the deltas to their buckets: one upsert, executemany (atomic increments)."""
    if not deltas:
        return
    rows: list[dict[str, Any]] = [
        {
            "member_id": member, "merchant_id": merchant, "day": day,
            **{name: getattr(delta, name) for name in COUNTS},
            "spend": delta.spend,
            "last_order_at": delta.last_order_at,
        }
        for (member, merchant, day), delta in sorted(deltas.items())
    ]  # fmt: skip
    postgres = is_postgres(session)
    session.connection().execute(_UPSERTS[postgres], rows)


def _upsert(postgres: bool) -> Any:
    """Add a row's counts to its bucket, creating it if new (built once per dialect)."""
    table = table_of(MemberCounter)
    insert = pg_insert(table) if postgres else sqlite_insert(table)
    new = insert.excluded
    last, new_last = table.c.last_order_at, new.last_order_at
    return insert.on_conflict_do_update(
        index_elements=["member_id", "merchant_id", "day"],
        set_={
            **{name: table.c[name] + new[name] for name in (*COUNTS, "spend")},
            "last_order_at": case(
                (new_last.is_(None), last),
                (last.is_(None) | (new_last > last), new_last),
                else_=last,
            ),
        },
    )


_UPSERTS = {False: _upsert(False), True: _upsert(True)}


def tier_purchases(
    buckets: dict[BucketKey, Bucket], at: datetime
) -> list[tuple[datetime, Decimal]]:
    """The purchases the RFM window sees, as the engine takes them (one per order)."""
    horizon = at - TIER_HORIZON
    purchases: list[tuple[datetime, Decimal]] = []
    for bucket in buckets.values():
        when = bucket.last_order_at
        if bucket.orders <= 0 or when is None or when <= horizon:
            continue
        purchases.append((when, max(bucket.spend, Decimal(0))))
        purchases.extend((when, Decimal(0)) for _ in range(bucket.orders - 1))
    return purchases


def check_in_days(buckets: dict[BucketKey, Bucket], merchant_id: int, today: date) -> list[date]:
    """The days of the last month the member checked in here."""
    since = today - timedelta(days=CHECK_IN_DAYS)
    return sorted(
        day
        for (merchant, day), bucket in buckets.items()
        if merchant == merchant_id and bucket.check_ins > 0 and day >= since
    )


def ordered_here(buckets: dict[BucketKey, Bucket], merchant_id: int) -> bool:
    """Whether the member has a live or held purchase at this merchant, ever."""
    return (
        sum(
            bucket.orders + bucket.orders_held
            for (merchant, _day), bucket in buckets.items()
            if merchant == merchant_id
        )
        > 0
    )


def _day(value: date | str) -> date:
    return date.fromisoformat(value) if isinstance(value, str) else value


def _utc(value: datetime | str) -> datetime:
    when = datetime.fromisoformat(value) if isinstance(value, str) else value
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
