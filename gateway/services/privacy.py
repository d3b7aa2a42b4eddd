"""A member's data: all of it on request (:func:`member_data`), and its erasure (:func:`erase`).

Both cover the signed-in member and the custodial accounts their address claimed.

Erasure deletes what identifies the person and keeps what the chain already holds:

- deleted: ``issuance_inputs`` (as member and as inviter: the salted hashes stay on the ops
  and on chain and reveal nothing), ``customer_links``, ``member_counters``,
  ``wallet_challenges``; ``wallet_sessions`` are revoked;
- scrubbed: ``events.customer_id`` → ``"erased"``, ``payload`` → ``{type, order{id, amount,
  currency}}``, ``device_id``/``ip`` → NULL; the customer id in the stored idempotency
  answers of those events and in the merchants' webhook payloads; ``members.birth_month``;
- a derived custodial key is first stored encrypted (``key_enc``), then its origin
  (``key_merchant_id``/``key_customer_id``) is cleared: the member still signs and redeems;
- other members' events that name an erased customer as their referrer
  (``payload.referrer_customer_id``) read :data:`ERASED` there, and so do stored refusals
  that named it (``referrer '…' is not a customer``); their amounts, inputs and hashes stay;
- kept: ops, amounts, transactions, chain records (supply, settlement and the
  reconciliation stay whole).  One ``erasures`` row says when and how many rows.

An event of the customer accepted meanwhile cannot slip past: on PostgreSQL the erasure
first takes the accept path's lock of each of its (merchant, customer) pairs
(:func:`gateway.services.events.lock_customers`), so such an event is accepted before the
erasure reads (then it is erased, or its pending ops block the erasure) or after it commits
(then the link is gone: a returning customer, linked again).  SQLite writers take turns.
The slow search for referrers (a LIKE over the merchants' event payloads) runs before the
locks (:func:`find_referrers`); under them only its rows and the newest are read again.

Refused (409 ``erasure_blocked``) while an op of the member is pending or sent, or an event
is held: the inputs are needed until the chain has them.  A refund posted after the erasure
finds no order for the customer (``refund_unknown_order``): the link is gone.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Text, cast, delete, func, or_, select, update
from sqlalchemy.orm import Session

from gateway.context import GatewayContext
from gateway.db import is_postgres, transaction
from gateway.errors import ErasureBlocked
from gateway.models import (
    Base,
    ChainOp,
    CustomerLink,
    Erasure,
    Event,
    IdempotencyRecord,
    IssuanceInput,
    Member,
    MemberCounter,
    Redemption,
    WalletChallenge,
    WalletSession,
    WebhookDelivery,
)
from gateway.schemas import ErasurePublic, MemberDataPublic
from gateway.services.events import lock_customers
from gateway.services.sessions import session_member

#: What an erased customer id reads as.
ERASED = "erased"
#: Columns never shown, even to the member: secrets and their hashes.
SECRET_COLUMNS = frozenset({"key_enc", "token_hash", "secret_hash", "signature"})


def _members(session: Session, ws: WalletSession, *, lock: bool = False) -> list[Member]:
    """The session's member first, then the custodial accounts its address claimed."""
    member = session_member(session, ws, lock=lock)
    claimed = session.scalars(
        select(Member).where(Member.claimed_by == member.address).order_by(Member.id)
    )
    return [member, *claimed]


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def _row(row: Base) -> dict[str, Any]:
    """A row's columns as JSON values, secrets left out."""
    return {
        column.key: _plain(getattr(row, column.key))
        for column in row.__table__.columns
        if column.key not in SECRET_COLUMNS
    }


def member_data(session: Session, ws: WalletSession) -> MemberDataPublic:
    """Everything held about the signed-in member, as stored."""
    members = _members(session, ws)
    ids = [m.id for m in members]
    addresses = [m.address for m in members]

    def rows(query: Any) -> list[dict[str, Any]]:
        return [_row(r) for r in session.scalars(query)]

    return MemberDataPublic(
        member=_row(members[0]),
        claimed=[_row(m) for m in members[1:]],
        links=rows(select(CustomerLink).where(CustomerLink.member_id.in_(ids))),
        events=rows(select(Event).where(Event.member_id.in_(ids)).order_by(Event.created_at)),
        inputs=rows(select(IssuanceInput).where(IssuanceInput.member_id.in_(ids))),
        counters=rows(select(MemberCounter).where(MemberCounter.member_id.in_(ids))),
        redemptions=rows(select(Redemption).where(Redemption.member_address.in_(addresses))),
        sessions=rows(select(WalletSession).where(WalletSession.member_id.in_(ids))),
        erasures=rows(select(Erasure).where(Erasure.member_address.in_(addresses))),
    )


def _scrub(value: Any, customers: set[str]) -> tuple[Any, bool]:
    """``value`` with every customer id of ``customers`` (under a ``customer_id`` key, or a
    ``*_customer_id`` one) replaced by :data:`ERASED`; whether anything changed."""
    if isinstance(value, dict):
        changed, out = False, {}
        for key, item in value.items():
            if key.endswith("customer_id") and item in customers:
                out[key], changed = ERASED, True
            else:
                out[key], hit = _scrub(item, customers)
                changed = changed or hit
        return out, changed
    if isinstance(value, list):
        scrubbed = [_scrub(item, customers) for item in value]
        return [s for s, _ in scrubbed], any(hit for _, hit in scrubbed)
    return value, False


def _scrub_rows(rows: Iterable[Any], attribute: str, customers: set[str]) -> int:
    count = 0
    for row in rows:
        value, changed = _scrub(getattr(row, attribute), customers)
        if changed:
            setattr(row, attribute, value)
            count += 1
    return count


def _reduced_payload(payload: dict[str, Any]) -> dict[str, Any]:
    """What an erased event's payload keeps: its type and its order's id and amount."""
    kept: dict[str, Any] = {"type": payload.get("type")}
    order = payload.get("order")
    if isinstance(order, dict):
        kept["order"] = {k: order.get(k) for k in ("id", "amount", "currency")}
    return kept


def _linked(session: Session, ids: list[str]) -> set[tuple[int, str]]:
    """The (merchant, customer) pairs linked to these members."""
    query = select(CustomerLink.merchant_id, CustomerLink.customer_id).where(
        CustomerLink.member_id.in_(ids)
    )
    return {(merchant, customer) for merchant, customer in session.execute(query)}


def _lock_links(session: Session, ws: WalletSession) -> None:
    """PostgreSQL: hold the accept path's lock of every (merchant, customer) linked to the
    session's member and its claimed accounts, taken before any row lock (the accept path
    takes it before it writes a member row), again for links that appear meanwhile."""
    if not is_postgres(session):
        return
    locked: set[tuple[int, str]] = set()
    while True:
        pairs = _linked(session, [m.id for m in _members(session, ws)])
        if pairs <= locked:
            return
        lock_customers(session, pairs)
        locked |= pairs


def _named(column: Any, customers: Iterable[str]) -> Any:
    """Rows whose JSON ``column`` holds one of ``customers`` as a string (a narrowing LIKE:
    :func:`_scrub` decides; SQLite's LIKE ignores case, which only widens it)."""
    text = cast(column, Text)
    quoted = (
        '%"' + c.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + '"%'
        for c in sorted(customers)
    )
    return or_(*(text.like(pattern, escape="\\") for pattern in quoted))


#: How far back the locked re-scan for referrers reaches behind the unlocked one: longer
#: than an accept transaction takes from stamping its rows to its commit, and than the
#: clocks of the gateway's machines differ.
RESCAN_MARGIN = timedelta(minutes=5)


@dataclass(frozen=True)
class Referrers:
    """What an unlocked first read found naming the member's customers as referrers (the
    events of other members, the stored 404 refusals), and from when a re-scan must look."""

    customers: dict[int, frozenset[str]]
    events: frozenset[str]
    answers: frozenset[int]
    events_since: datetime
    answers_since: datetime


def _by_merchant(pairs: Iterable[tuple[int, str]]) -> dict[int, frozenset[str]]:
    grouped: dict[int, set[str]] = {}
    for merchant, customer in pairs:
        grouped.setdefault(merchant, set()).add(customer)
    return {merchant: frozenset(customers) for merchant, customers in grouped.items()}


def find_referrers(context: GatewayContext, ws: WalletSession) -> Referrers:
    """The slow part of the referrer scrub, before the erasure takes any lock: a LIKE over
    the JSON of each merchant's events and 404 answers (no index knows referrers), in a
    read of its own (on SQLite beside the writers, on PostgreSQL while events still flow).
    The erasure then re-reads only these rows and those stamped since the scan began."""
    events_since = context.clock.now() - RESCAN_MARGIN
    answers_since = datetime.now(UTC) - RESCAN_MARGIN  # stored answers take the wall clock
    events: set[str] = set()
    answers: set[int] = set()
    with context.sessions() as session:
        ids = [m.id for m in _members(session, ws)]
        customers = _by_merchant(_linked(session, ids))
        for merchant_id, named in customers.items():
            events.update(session.scalars(select(Event.id).where(
                Event.merchant_id == merchant_id, _named(Event.payload, named)
            )))  # fmt: skip
            answers.update(session.scalars(select(IdempotencyRecord.id).where(
                IdempotencyRecord.merchant_id == merchant_id,
                IdempotencyRecord.status_code == 404,
                _named(IdempotencyRecord.response, named),
            )))  # fmt: skip
    return Referrers(customers, frozenset(events), frozenset(answers), events_since, answers_since)


def _scrub_referrers(
    session: Session, by_merchant: dict[int, frozenset[str]], ids: list[str], found: Referrers
) -> tuple[int, int]:
    """Other members' events naming an erased customer as their referrer, and stored
    refusals naming it (``referrer '…' is not a customer``), with :data:`ERASED` in its
    place; (events, answers) changed.  Their amounts, breakdowns and inputs stay (the
    inputs name the inviter's member id, never its customer id).  Under the erasure's
    locks: the rows ``found`` names and those stamped since its scan began, or every row
    of a merchant for customers linked since (the scan did not look for them)."""
    events = answers = 0
    for merchant_id, customers in sorted(by_merchant.items()):
        scanned = customers <= found.customers.get(merchant_id, frozenset())
        recent_events = or_(Event.id.in_(found.events), Event.created_at >= found.events_since)
        naming = session.scalars(
            select(Event).where(
                Event.merchant_id == merchant_id,
                Event.member_id.not_in(ids),
                _named(Event.payload, customers),
                *([recent_events] if scanned else []),
            )
        )
        events += _scrub_rows(naming, "payload", set(customers))
        recent_answers = or_(
            IdempotencyRecord.id.in_(found.answers),
            IdempotencyRecord.created_at >= found.answers_since,
        )
        refusals = session.scalars(
            select(IdempotencyRecord).where(
                IdempotencyRecord.merchant_id == merchant_id,
                IdempotencyRecord.status_code == 404,
                _named(IdempotencyRecord.response, customers),
                *([recent_answers] if scanned else []),
            )
        )
        for record in refusals:
            response, changed = _scrub(record.response, set(customers))
            error = response.get("error") if isinstance(response, dict) else None
            if changed and isinstance(error, dict) and isinstance(error.get("message"), str):
                for customer in customers:
                    error["message"] = error["message"].replace(repr(customer), repr(ERASED))
            if changed:
                record.response = response
                answers += 1
    return events, answers


def erase(context: GatewayContext, ws: WalletSession) -> ErasurePublic:
    """Erase the signed-in member's data (see the module docstring); 409 ``erasure_blocked``
    while an op is pending or sent or an event held."""
    found = find_referrers(context, ws)
    with transaction(context.sessions) as session:
        _lock_links(session, ws)
        members = _members(session, ws, lock=True)
        ids = [m.id for m in members]
        addresses = [m.address for m in members]
        in_flight = int(
            session.scalar(
                select(func.count(ChainOp.id)).where(
                    ChainOp.member_address.in_(addresses), ChainOp.status.in_(("pending", "sent"))
                )
            )
            or 0
        )
        held = int(
            session.scalar(
                select(func.count(Event.id)).where(Event.member_id.in_(ids), Event.status == "held")
            )
            or 0
        )
        if in_flight or held:
            raise ErasureBlocked(in_flight, held)
        links = list(session.scalars(select(CustomerLink).where(CustomerLink.member_id.in_(ids))))
        customers = {link.customer_id for link in links}
        merchants = {link.merchant_id for link in links}
        by_merchant = _by_merchant((link.merchant_id, link.customer_id) for link in links)
        counts: dict[str, int] = {}

        def count(name: str, result: Any) -> None:
            counts[name] = counts.get(name, 0) + int(result.rowcount or 0)

        for member in members:  # keep the custodial key, forget where it came from
            if member.key_merchant_id is not None and member.key_customer_id is not None:
                key = context.box.custodial_key(member.key_merchant_id, member.key_customer_id)
                member.key_enc = context.box.encrypt(key)
                member.key_merchant_id = member.key_customer_id = None
            member.birth_month = None
        counts["members"] = len(members)
        events = list(session.scalars(select(Event).where(Event.member_id.in_(ids))))
        keys = {(e.merchant_id, e.idempotency_key) for e in events}
        for event in events:
            event.customer_id = ERASED
            event.payload = _reduced_payload(event.payload)
            event.device_id = event.ip = None
        counts["events"] = len(events)
        answers = [
            record
            for record in session.scalars(
                select(IdempotencyRecord).where(IdempotencyRecord.key.in_({key for _, key in keys}))
            )
            if (record.merchant_id, record.key) in keys
        ]
        counts["idempotency_keys"] = _scrub_rows(answers, "response", customers)
        deliveries = session.scalars(
            select(WebhookDelivery).where(WebhookDelivery.merchant_id.in_(merchants))
        )
        counts["webhook_deliveries"] = _scrub_rows(deliveries, "payload", customers)
        referrals = _scrub_referrers(session, by_merchant, ids, found)
        counts["referring_events"], counts["referring_answers"] = referrals
        count("issuance_inputs", session.execute(
            delete(IssuanceInput).where(IssuanceInput.member_id.in_(ids))
        ))  # fmt: skip
        count("customer_links", session.execute(
            delete(CustomerLink).where(CustomerLink.member_id.in_(ids))
        ))  # fmt: skip
        count("member_counters", session.execute(
            delete(MemberCounter).where(MemberCounter.member_id.in_(ids))
        ))  # fmt: skip
        count("wallet_challenges", session.execute(
            delete(WalletChallenge).where(WalletChallenge.member_id.in_(ids))
        ))  # fmt: skip
        for link in links:  # link codes for the member's customer ids
            count("wallet_challenges", session.execute(
                delete(WalletChallenge).where(
                    WalletChallenge.merchant_id == link.merchant_id,
                    WalletChallenge.customer_id == link.customer_id,
                )
            ))  # fmt: skip
        now = context.clock.now()
        count("wallet_sessions", session.execute(
            update(WalletSession)
            .where(WalletSession.member_id.in_(ids), WalletSession.revoked_at.is_(None))
            .values(revoked_at=now)
        ))  # fmt: skip
        session.add(Erasure(member_address=members[0].address, requested_at=now, counts=counts))
        return ErasurePublic(address=members[0].address, requested_at=now, counts=counts)
