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
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from gateway.crypto import SecretBox
from gateway.models import ChainOp, CustomerLink, Event, Member, Merchant
from gateway.rules import engine as rules_engine
from gateway.rules.badges import BADGES_BY_ID
from gateway.rules.model import RuleSet
from gateway.schemas import EventCreate
from gateway.services.accept.counters import Bucket, BucketKey, read_buckets
from gateway.services.members import derived_address
from gateway.timeutil import aware

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
    bodies: list[EventCreate],
) -> ChunkState:  # fmt: skip
    """Read the chunk's state: one query per table (none for what no event needs)."""
    customers = {b.customer_id for b in bodies} | {
        b.referrer_customer_id for b in bodies if b.referrer_customer_id
    }
    links, members = _links(session, merchant.id, customers)
    addresses = {
        c: derived_address(box, merchant.id, c)
        for c in {b.customer_id for b in bodies} - set(links)
    }
    by_address = _members(session, Member.address.in_(addresses.values())) if addresses else {}
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
    missing = inviters - set(members)
    if missing:
        members.update(_members(session, Member.id.in_(missing)))
    for member_id, buckets in read_buckets(session, set(members)).items():
        members[member_id].buckets = buckets
    _badges(session, members)
    velocity = rules.velocity
    if members and (velocity.member_events_per_hour or velocity.member_points_per_day):
        _velocity(session, members)
    _owed(session, members)
    return ChunkState(
        links=links, members=members, addresses=addresses,
        by_address={m.address: m for m in by_address.values()},
        referrals=_referrals(session, inviters),
        devices=_seen(session, Event.device_id, {b.device_id for b in bodies if b.device_id})
        if rules.clustering.max_accounts_per_device is not None else {},
        ips=_seen(session, Event.ip, {b.ip for b in bodies if b.ip})
        if rules.clustering.max_accounts_per_ip is not None else {},
        originals=originals,
        refunds_of=_refunds(session, merchant.id, bodies),
        merchant=_merchant_snapshot(session, merchant, rules),
    )  # fmt: skip


def _links(
    session: Session, merchant_id: int, customers: set[str]
) -> tuple[dict[str, LinkState], dict[str, MemberState]]:
    links: dict[str, LinkState] = {}
    members: dict[str, MemberState] = {}
    rows = session.execute(
        select(
            CustomerLink.id, CustomerLink.customer_id, CustomerLink.referred_by,
            CustomerLink.referral_rewarded, Member.id.label("member_id"), Member.address,
            Member.birth_month, Member.frozen, Member.tier,
        )
        .join(Member, Member.id == CustomerLink.member_id)
        .where(CustomerLink.merchant_id == merchant_id, CustomerLink.customer_id.in_(customers))
    )  # fmt: skip
    for row in rows:
        links[row.customer_id] = LinkState(
            id=row.id, customer_id=row.customer_id, member_id=row.member_id,
            referred_by=row.referred_by, referral_rewarded=bool(row.referral_rewarded),
        )  # fmt: skip
        members[row.member_id] = MemberState(
            id=row.member_id, address=row.address, birth_month=row.birth_month,
            frozen=bool(row.frozen), tier=row.tier,
        )  # fmt: skip
    return links, members


def _members(session: Session, where: Any) -> dict[str, MemberState]:
    rows = session.execute(
        select(Member.id, Member.address, Member.birth_month, Member.frozen, Member.tier).where(
            where
        )
    )
    return {
        row.id: MemberState(
            id=row.id,
            address=row.address,
            birth_month=row.birth_month,
            frozen=bool(row.frozen),
            tier=row.tier,
        )
        for row in rows
    }


def _badges(session: Session, members: dict[str, MemberState]) -> None:
    """Badges each member holds or is about to receive (ops not failed)."""
    by_address = {m.address: m for m in members.values()}
    if not by_address:
        return
    rows = session.execute(
        select(ChainOp.member_address, ChainOp.badge_id).where(
            ChainOp.member_address.in_(by_address),
            ChainOp.kind == "badge",
            ChainOp.status != "failed",
        )
    )
    for address, badge in rows:
        if badge in BADGES_BY_ID:
            by_address[address].badges.add(BADGES_BY_ID[badge].key)


def _velocity(session: Session, members: dict[str, MemberState]) -> None:
    """Each member's events created in the last hour and points of the last day."""
    now = datetime.now(UTC)
    hour_ago, day_ago = now - timedelta(hours=1), now - timedelta(days=1)
    rows = session.execute(
        select(
            Event.member_id,
            func.sum(case((Event.created_at >= hour_ago, 1), else_=0)),
            func.coalesce(func.sum(Event.points), 0),
        )
        .where(Event.member_id.in_(members), Event.created_at >= day_ago)
        .group_by(Event.member_id)
    )
    for member_id, last_hour, points in rows:
        members[member_id].events_last_hour = int(last_hour or 0)
        members[member_id].points_today = int(points or 0)


def _owed(session: Session, members: dict[str, MemberState]) -> None:
    """Points refunds could not claw back, less what later earnings netted (rarely any)."""
    by_address = {m.address: m for m in members.values()}
    if not by_address:
        return
    unburned = dict(
        session.execute(
            select(ChainOp.member_address, func.sum(ChainOp.amount - ChainOp.burned))
            .where(
                ChainOp.member_address.in_(by_address),
                ChainOp.kind == "clawback",
                ChainOp.status == "confirmed",
                ChainOp.burned.is_not(None),
            )
            .group_by(ChainOp.member_address)
        ).all()
    )
    owing = [address for address, amount in unburned.items() if amount]
    if not owing:
        return
    netted = dict(
        session.execute(
            select(Member.address, func.coalesce(func.sum(Event.clawback), 0))
            .join(Member, Member.id == Event.member_id)
            .where(Member.address.in_(owing), Event.type != "refund", Event.status != "failed")
            .group_by(Member.address)
        ).all()
    )
    for address in owing:
        by_address[address].owed = max(0, int(unburned[address]) - int(netted.get(address) or 0))


def _referrals(session: Session, inviters: set[str]) -> dict[str, int]:
    if not inviters:
        return {}
    rows = session.execute(
        select(CustomerLink.referred_by, func.count(CustomerLink.id))
        .where(CustomerLink.referred_by.in_(inviters), CustomerLink.referral_rewarded.is_(True))
        .group_by(CustomerLink.referred_by)
    )
    return {str(inviter): int(count) for inviter, count in rows}


def _seen(session: Session, column: Any, values: set[str]) -> dict[str, set[str]]:
    """The distinct members that used each device id (or IP)."""
    seen: dict[str, set[str]] = {value: set() for value in values}
    if values:
        rows = session.execute(select(column, Event.member_id).where(column.in_(values)).distinct())
        for value, member_id in rows:
            seen[value].add(member_id)
    return seen


def originals_of(
    session: Session, merchant_id: int, bodies: list[EventCreate]
) -> dict[tuple[str, str], Original]:
    """The live purchases the chunk's refunds refer to, with their ops."""
    wanted = {(b.customer_id, b.refund.order_id) for b in bodies if b.refund is not None}
    if not wanted:
        return {}
    events = session.execute(
        select(
            Event.id, Event.customer_id, Event.order_id, Event.points, Event.network_amount,
            Event.payload, Event.breakdown, Event.occurred_at,
        ).where(
            Event.merchant_id == merchant_id, Event.type == "purchase",
            Event.order_id.in_({order for _c, order in wanted}), Event.status.in_(LIVE),
        )
    ).all()  # fmt: skip
    found: dict[tuple[str, str], Original] = {}
    for row in events:
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
        ops = session.execute(
            select(
                ChainOp.id,
                ChainOp.event_id,
                ChainOp.kind,
                ChainOp.amount,
                ChainOp.payload,
                ChainOp.ref,
            )
            .where(ChainOp.event_id.in_(by_event))
            .order_by(ChainOp.id)
        )
        for op in ops:
            by_event[op.event_id].ops.append(
                OpRef(op.kind, op.amount, dict(op.payload), op.id, op.event_id, op.ref)
            )
    return found


def _refunds(
    session: Session, merchant_id: int, bodies: list[EventCreate]
) -> dict[str, list[tuple[int, Decimal | None]]]:
    """Earlier refunds (live or held) of the orders the chunk refunds."""
    orders = {b.refund.order_id for b in bodies if b.refund is not None}
    refunds: dict[str, list[tuple[int, Decimal | None]]] = defaultdict(list)
    if orders:
        rows = session.execute(
            select(Event.order_id, Event.clawback, Event.payload).where(
                Event.merchant_id == merchant_id,
                Event.type == "refund",
                Event.order_id.in_(orders),
                Event.status.in_((*LIVE, "held")),
            )
        )
        for order_id, clawback, payload in rows:
            amount = (payload.get("refund") or {}).get("amount")
            refunds[str(order_id)].append((int(clawback), Decimal(str(amount)) if amount else None))
    return refunds


def _merchant_snapshot(
    session: Session, merchant: Merchant, rules: RuleSet
) -> rules_engine.MerchantSnapshot:
    """The merchant's velocity counters; each is read only when a limit needs it."""
    now = datetime.now(UTC)
    last_minute: int | None = 0
    issued_today: int | None = 0
    if rules.velocity.merchant_events_per_minute is not None:
        last_minute = session.scalar(
            select(func.count()).where(
                Event.merchant_id == merchant.id, Event.created_at >= now - timedelta(minutes=1)
            )
        )
    if rules.velocity.merchant_points_per_day is not None:
        issued_today = session.scalar(
            select(func.coalesce(func.sum(Event.points), 0)).where(
                Event.merchant_id == merchant.id, Event.created_at >= now - timedelta(days=1)
            )
        )
    return rules_engine.MerchantSnapshot(
        merchant_id=str(merchant.id),
        points_issued_today=int(issued_today or 0),
        events_last_minute=int(last_minute or 0),
    )
