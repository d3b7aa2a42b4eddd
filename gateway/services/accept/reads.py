"""What a chunk of events needs from the database, read once for all of them.

:func:`load` reads, for the chunk's customers, one query per table: their links
and members (and the inviters their referrals name), the members' counter
buckets, badges held or on their way, recent activity for the velocity limits,
unclawed refund shortfalls, the members seen on the chunk's devices and IPs,
and the original purchases (with their ops and earlier refunds) of the chunk's
refunds.  The result is a :class:`ChunkState` the chunk then evaluates against
in memory, updating it as each event is accepted, so later events of the same
chunk see the earlier ones' effects.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Select, bindparam, case, func, select
from sqlalchemy.orm import Session

from gateway.crypto import SecretBox
from gateway.models import ChainOp, CustomerLink, Event, Member, Merchant, table_of
from gateway.rules import engine as rules_engine
from gateway.rules.badges import BADGES_BY_ID
from gateway.rules.days import day_start_at
from gateway.rules.model import RuleSet
from gateway.schemas import EventCreate
from gateway.services.accept.counters import Bucket, BucketKey, read_buckets
from gateway.services.members import derived_address
from gateway.timeutil import aware, utc_now

LIVE = ("accepted", "submitted", "confirmed")


@dataclass
class MemberState:
    """A member as the chunk sees it; ``changed`` names the columns to write back."""

    id: str
    address: str
    birth_month: int | None = None
    frozen: bool = False
    tier: int = 0
    new: bool = False
    key_origin: tuple[int, str] | None = None  # a new member's first (merchant, customer)
    buckets: dict[BucketKey, Bucket] = field(default_factory=dict)
    badges: set[str] = field(default_factory=set)
    events_last_hour: int = 0
    points_today: int = 0
    owed: int = 0
    changed: set[str] = field(default_factory=set)


@dataclass
class LinkState:
    """A customer link as the chunk sees it (``id`` None: inserted by this chunk)."""

    id: int | None
    customer_id: str
    member_id: str
    referred_by: str | None = None
    referral_rewarded: bool = False
    changed: set[str] = field(default_factory=set)


@dataclass
class OpRef:
    """An op a later refund may refer to (``id`` None until it is written and read back)."""

    kind: str
    amount: int
    payload: dict[str, Any]
    id: int | None = None
    event_id: str = ""
    ref: str = ""


@dataclass
class Original:
    """A purchase a refund may refer to, with its ops."""

    event_id: str
    order_id: str
    points: int
    network_amount: Decimal
    order_amount: Decimal
    breakdown: list[dict[str, Any]]
    occurred_at: datetime
    ops: list[OpRef]


@dataclass
class ChunkState:
    """Everything the chunk's events are evaluated against."""

    links: dict[str, LinkState]
    members: dict[str, MemberState]
    addresses: dict[str, str]  # a new customer's derived address
    by_address: dict[str, MemberState]  # members met under a derived address
    referrals: dict[str, int]  # rewarded referrals per inviter
    devices: dict[str, set[str]]
    ips: dict[str, set[str]]
    originals: dict[tuple[str, str], Original]  # (customer, order) -> live purchase
    refunds_of: dict[str, list[tuple[int, Decimal | None]]]  # order -> (clawback, amount)
    merchant: rules_engine.MerchantSnapshot


def load(
    session: Session, box: SecretBox, merchant: Merchant, rules: RuleSet,
    bodies: list[EventCreate], now: datetime | None = None,
) -> ChunkState:  # fmt: skip
    """Read the chunk's state: one query per table (none for what no event needs).

    ``rules``: the version in effect, whose offset cuts the programme day of the
    "per day" velocity limits; ``now`` (aware; default the current time): the
    moment the limits count back from.
    """
    now = utc_now() if now is None else now
    conn = session.connection()
    customers = {b.customer_id for b in bodies} | {
        b.referrer_customer_id for b in bodies if b.referrer_customer_id
    }
    links, members = _links(conn, merchant.id, customers)
    addresses = {
        c: derived_address(box, merchant.id, c)
        for c in {b.customer_id for b in bodies} - set(links)
    }
    by_address = _members(conn, _MEMBERS_AT, set(addresses.values()))
    members.update({m.id: m for m in by_address.values()})
    originals = originals_of(session, merchant.id, bodies)
    inviters = {link.referred_by for link in links.values() if link.referred_by} | {
        links[b.referrer_customer_id].member_id for b in bodies if b.referrer_customer_id in links
    }
    inviters |= {  # whose referral bonus a refund takes back
        str(op.payload["inviter_id"])
        for original in originals.values()
        for op in original.ops
        if op.payload.get("referral") and op.payload.get("inviter_id")
    }
    members.update(_members(conn, _MEMBERS_BY_ID, inviters - set(members)))
    for member_id, buckets in read_buckets(session, set(members)).items():
        members[member_id].buckets = buckets
    _badges(conn, members)
    velocity = rules.velocity
    if members and (velocity.member_events_per_hour or velocity.member_points_per_day):
        _velocity(conn, members, now - timedelta(hours=1), day_start_at(rules, now))
    _owed(conn, members)
    clustering = rules.clustering
    return ChunkState(
        links=links, members=members, addresses=addresses,
        by_address={m.address: m for m in by_address.values()},
        referrals=_referrals(conn, inviters),
        devices=_seen(conn, _ON_DEVICE, {b.device_id for b in bodies if b.device_id})
        if clustering.max_accounts_per_device is not None else {},
        ips=_seen(conn, _ON_IP, {b.ip for b in bodies if b.ip})
        if clustering.max_accounts_per_ip is not None else {},
        originals=originals,
        refunds_of=_refunds(conn, merchant.id, bodies),
        merchant=_merchant_snapshot(conn, merchant, rules, now),
    )  # fmt: skip


# Statements built once (building one per chunk costs more than running it); the
# lists are expanding parameters.
_L, _M, _E, _O = table_of(CustomerLink), table_of(Member), table_of(Event), table_of(ChainOp)
_LINKS = (
    select(
        _L.c.id, _L.c.customer_id, _L.c.referred_by, _L.c.referral_rewarded,
        _M.c.id.label("member_id"), _M.c.address, _M.c.birth_month, _M.c.frozen, _M.c.tier,
    )
    .select_from(_L.join(_M, _M.c.id == _L.c.member_id))
    .where(
        _L.c.merchant_id == bindparam("merchant_id"),
        _L.c.customer_id.in_(bindparam("values", expanding=True)),
    )
)  # fmt: skip
_MEMBER_COLUMNS = (_M.c.id, _M.c.address, _M.c.birth_month, _M.c.frozen, _M.c.tier)
_MEMBERS_AT = select(*_MEMBER_COLUMNS).where(_M.c.address.in_(bindparam("values", expanding=True)))
_MEMBERS_BY_ID = select(*_MEMBER_COLUMNS).where(_M.c.id.in_(bindparam("values", expanding=True)))
_BADGES = select(_O.c.member_address, _O.c.badge_id).where(
    _O.c.member_address.in_(bindparam("values", expanding=True)),
    _O.c.kind == "badge",
    _O.c.status != "failed",
)
#: Per member: events since ``hour_ago``, points since ``day_start`` (a scan from the
#: earlier of the two, ``since``).
_VELOCITY = (
    select(
        _E.c.member_id,
        func.sum(case((_E.c.created_at >= bindparam("hour_ago"), 1), else_=0)),
        func.sum(case((_E.c.created_at >= bindparam("day_start"), _E.c.points), else_=0)),
    )
    .where(
        _E.c.member_id.in_(bindparam("values", expanding=True)),
        _E.c.created_at >= bindparam("since"),
    )
    .group_by(_E.c.member_id)
)
_UNBURNED = (
    select(_O.c.member_address, func.sum(_O.c.amount - _O.c.burned))
    .where(
        _O.c.member_address.in_(bindparam("values", expanding=True)),
        _O.c.kind == "clawback",
        _O.c.status == "confirmed",
        _O.c.burned.is_not(None),
    )
    .group_by(_O.c.member_address)
)
_NETTED = (
    select(_M.c.address, func.coalesce(func.sum(_E.c.clawback), 0))
    .select_from(_E.join(_M, _M.c.id == _E.c.member_id))
    .where(
        _M.c.address.in_(bindparam("values", expanding=True)),
        _E.c.type != "refund",
        _E.c.status != "failed",
    )
    .group_by(_M.c.address)
)
_REFERRALS = (
    select(_L.c.referred_by, func.count(_L.c.id))
    .where(
        _L.c.referred_by.in_(bindparam("values", expanding=True)),
        _L.c.referral_rewarded.is_(True),
    )
    .group_by(_L.c.referred_by)
)
_ON_DEVICE = (
    select(_E.c.device_id, _E.c.member_id)
    .where(_E.c.device_id.in_(bindparam("values", expanding=True)))
    .distinct()
)
_ON_IP = (
    select(_E.c.ip, _E.c.member_id)
    .where(_E.c.ip.in_(bindparam("values", expanding=True)))
    .distinct()
)
_PURCHASES = select(
    _E.c.id, _E.c.customer_id, _E.c.order_id, _E.c.points, _E.c.network_amount,
    _E.c.payload, _E.c.breakdown, _E.c.occurred_at,
).where(
    _E.c.merchant_id == bindparam("merchant_id"), _E.c.type == "purchase",
    _E.c.order_id.in_(bindparam("values", expanding=True)), _E.c.status.in_(LIVE),
)  # fmt: skip
_OPS_OF = (
    select(_O.c.id, _O.c.event_id, _O.c.kind, _O.c.amount, _O.c.payload, _O.c.ref)
    .where(_O.c.event_id.in_(bindparam("values", expanding=True)))
    .order_by(_O.c.id)
)
_REFUNDS = select(_E.c.order_id, _E.c.clawback, _E.c.payload).where(
    _E.c.merchant_id == bindparam("merchant_id"),
    _E.c.type == "refund",
    _E.c.order_id.in_(bindparam("values", expanding=True)),
    _E.c.status.in_((*LIVE, "held")),
)
_EVENTS_SINCE = select(func.count()).where(
    _E.c.merchant_id == bindparam("merchant_id"), _E.c.created_at >= bindparam("since")
)
#: The merchant's events since ``minute_ago`` and points since ``day_start`` (one scan
#: from the earlier of the two, ``since``).
_ACTIVITY_SINCE = select(
    func.sum(case((_E.c.created_at >= bindparam("minute_ago"), 1), else_=0)),
    func.sum(case((_E.c.created_at >= bindparam("day_start"), _E.c.points), else_=0)),
).where(_E.c.merchant_id == bindparam("merchant_id"), _E.c.created_at >= bindparam("since"))
_POINTS_SINCE = select(func.coalesce(func.sum(_E.c.points), 0)).where(
    _E.c.merchant_id == bindparam("merchant_id"), _E.c.created_at >= bindparam("since")
)


def _links(
    conn: Connection, merchant_id: int, customers: set[str]
) -> tuple[dict[str, LinkState], dict[str, MemberState]]:
    links: dict[str, LinkState] = {}
    members: dict[str, MemberState] = {}
    for row in conn.execute(_LINKS, {"merchant_id": merchant_id, "values": list(customers)}):
        links[row.customer_id] = LinkState(
            id=row.id, customer_id=row.customer_id, member_id=row.member_id,
            referred_by=row.referred_by, referral_rewarded=bool(row.referral_rewarded),
        )  # fmt: skip
        members[row.member_id] = MemberState(
            id=row.member_id, address=row.address, birth_month=row.birth_month,
            frozen=bool(row.frozen), tier=row.tier,
        )  # fmt: skip
    return links, members


def _members(conn: Connection, statement: Select[Any], values: set[str]) -> dict[str, MemberState]:
    if not values:
        return {}
    return {
        row.id: MemberState(
            id=row.id,
            address=row.address,
            birth_month=row.birth_month,
            frozen=bool(row.frozen),
            tier=row.tier,
        )
        for row in conn.execute(statement, {"values": list(values)})
    }


def _badges(conn: Connection, members: dict[str, MemberState]) -> None:
    """Badges each member holds or is about to receive (ops not failed)."""
    by_address = {m.address: m for m in members.values()}
    if by_address:
        for address, badge in conn.execute(_BADGES, {"values": list(by_address)}):
            if badge in BADGES_BY_ID:
                by_address[address].badges.add(BADGES_BY_ID[badge].key)


def _velocity(
    conn: Connection, members: dict[str, MemberState], hour_ago: datetime, day_start: datetime
) -> None:
    """Each member's events created since ``hour_ago`` (all merchants) and points since
    ``day_start``, the start of this merchant's programme day."""
    rows = conn.execute(
        _VELOCITY,
        {"values": list(members), "hour_ago": hour_ago, "day_start": day_start,
         "since": min(hour_ago, day_start)},
    )  # fmt: skip
    for member_id, last_hour, points in rows:
        members[member_id].events_last_hour = int(last_hour or 0)
        members[member_id].points_today = int(points or 0)


def _owed(conn: Connection, members: dict[str, MemberState]) -> None:
    """Points refunds could not claw back, less what later earnings netted (rarely any)."""
    by_address = {m.address: m for m in members.values()}
    if not by_address:
        return
    unburned = dict(conn.execute(_UNBURNED, {"values": list(by_address)}).all())
    owing = [address for address, amount in unburned.items() if amount]
    if not owing:
        return
    netted = dict(conn.execute(_NETTED, {"values": owing}).all())
    for address in owing:
        by_address[address].owed = max(0, int(unburned[address]) - int(netted.get(address) or 0))


def _referrals(conn: Connection, inviters: set[str]) -> dict[str, int]:
    if not inviters:
        return {}
    rows = conn.execute(_REFERRALS, {"values": list(inviters)})
    return {str(inviter): int(count) for inviter, count in rows}


def _seen(conn: Connection, statement: Select[Any], values: set[str]) -> dict[str, set[str]]:
    """The distinct members that used each device id (or IP)."""
    seen: dict[str, set[str]] = {value: set() for value in values}
    if values:
        for value, member_id in conn.execute(statement, {"values": list(values)}):
            seen[value].add(member_id)
    return seen


def originals_of(
    session: Session, merchant_id: int, bodies: list[EventCreate]
) -> dict[tuple[str, str], Original]:
    """The live purchases the refunds among ``bodies`` refer to, with their ops."""
    wanted = {(b.customer_id, b.refund.order_id) for b in bodies if b.refund is not None}
    if not wanted:
        return {}
    conn = session.connection()
    orders = list({order for _c, order in wanted})
    found: dict[tuple[str, str], Original] = {}
    for row in conn.execute(_PURCHASES, {"merchant_id": merchant_id, "values": orders}):
        key = (row.customer_id, str(row.order_id))
        if key in wanted and key not in found:
            order = row.payload.get("order") or {}
            found[key] = Original(
                event_id=row.id, order_id=str(row.order_id), points=row.points,
                network_amount=Decimal(row.network_amount),
                order_amount=Decimal(str(order.get("amount", "0"))),
                breakdown=list(row.breakdown), occurred_at=aware(row.occurred_at), ops=[],
            )  # fmt: skip
    by_event = {original.event_id: original for original in found.values()}
    if by_event:
        for op in conn.execute(_OPS_OF, {"values": list(by_event)}):
            by_event[op.event_id].ops.append(
                OpRef(op.kind, op.amount, dict(op.payload), op.id, op.event_id, op.ref)
            )
    return found


def _refunds(
    conn: Connection, merchant_id: int, bodies: list[EventCreate]
) -> dict[str, list[tuple[int, Decimal | None]]]:
    """Earlier refunds (live or held) of the orders the chunk refunds."""
    orders = {b.refund.order_id for b in bodies if b.refund is not None}
    refunds: dict[str, list[tuple[int, Decimal | None]]] = defaultdict(list)
    if orders:
        rows = conn.execute(_REFUNDS, {"merchant_id": merchant_id, "values": list(orders)})
        for order_id, clawback, payload in rows:
            amount = (payload.get("refund") or {}).get("amount")
            refunds[str(order_id)].append((int(clawback), Decimal(str(amount)) if amount else None))
    return refunds


def _merchant_snapshot(
    conn: Connection, merchant: Merchant, rules: RuleSet, now: datetime
) -> rules_engine.MerchantSnapshot:
    """The merchant's velocity counters: events in the minute before ``now``, points
    since its programme day began; read only when a limit needs them (both from one
    scan when both limits are set)."""
    minute_ago, day_start = now - timedelta(minutes=1), day_start_at(rules, now)
    events = rules.velocity.merchant_events_per_minute is not None
    points = rules.velocity.merchant_points_per_day is not None
    last_minute: int | None = 0
    issued_today: int | None = 0
    if events and points:
        last_minute, issued_today = conn.execute(
            _ACTIVITY_SINCE,
            {
                "merchant_id": merchant.id,
                "since": min(minute_ago, day_start),
                "minute_ago": minute_ago,
                "day_start": day_start,
            },
        ).one()
    elif events:
        last_minute = conn.scalar(_EVENTS_SINCE, {"merchant_id": merchant.id, "since": minute_ago})
    elif points:
        issued_today = conn.scalar(_POINTS_SINCE, {"merchant_id": merchant.id, "since": day_start})
    return rules_engine.MerchantSnapshot(
        merchant_id=str(merchant.id),
        points_issued_today=int(issued_today or 0),
        events_last_minute=int(last_minute or 0),
    )
