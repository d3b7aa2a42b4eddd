"""Accepting merchant events: idempotency, rules, and the outbox, in one transaction.

``submit`` is the whole of ``POST /v1/events`` below HTTP:

1. look up the Idempotency-Key: a replay returns the stored answer (or
   refusal), a different body under the same key is refused;
2. in the same transaction: resolve the customer to a member, let the rules
   engine decide, store the event as ``accepted`` (or ``held``) with one
   ``ChainOp`` per on-chain effect, and store the answer under the key.

The batch endpoint does the same for many events in one transaction.

Nothing is sent to the chain here: the outbox worker does that.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from eth_utils import keccak
from sqlalchemy import bindparam, func, select, text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from gateway.context import GatewayContext
from gateway.db import is_postgres, transaction
from gateway.errors import (
    GatewayError,
    IdempotencyConflict,
    IdempotencyKeyReused,
    InvalidRequest,
    NotFound,
    RuleRejected,
)
from gateway.models import (
    ChainOp,
    CustomerLink,
    Event,
    IdempotencyRecord,
    Member,
    Merchant,
    RuleSetVersion,
    new_id,
    utcnow,
)
from gateway.rules import engine as rules_engine
from gateway.rules.badges import BADGES, badge_id
from gateway.rules.errors import RuleError
from gateway.rules.model import RuleSet
from gateway.schemas import EventCreate, EventPublic
from gateway.services import members as member_service
from gateway.services.merchants import latest_rule_set, load_rules
from gateway.timeutil import aware as _aware
from gateway.webhooks.dispatcher import queue_webhook

#: The breakdown line of points withheld to cover an earlier refund's shortfall.
SHORTFALL_LINE = "netted against points an earlier refund could not claw back"


#: Events accepted per write transaction by the batch endpoint.
CHUNK = 25
#: Attempts of one write transaction that lost a race (unique key, deadlock).
RETRIES = 5
#: deadlock_detected, serialization_failure
RETRYABLE_SQLSTATES = ("40P01", "40001")


def request_hash(body: EventCreate) -> str:
    """Hash of the request's meaning (canonical JSON of the validated body)."""
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def event_ref(merchant_id: int, idempotency_key: str, part: str) -> str:
    """The bytes32 reference of an event's issuance on chain (lets a gateway recover)."""
    return "0x" + keccak(f"{merchant_id}:{idempotency_key}:{part}".encode()).hex()


def submit(
    ctx: GatewayContext, merchant: Merchant, key: str, body: EventCreate
) -> tuple[int, dict[str, Any]]:
    """Accept one event exactly once; returns (HTTP status, JSON answer)."""
    status, answer = submit_many(ctx, merchant, [(key, body)])[0]
    if status >= 400:
        raise _stored_error(status, answer)
    return status, answer


def submit_many(
    ctx: GatewayContext, merchant: Merchant, items: list[tuple[str, EventCreate]]
) -> list[tuple[int, dict[str, Any]]]:
    """Accept events exactly once; one (status, answer) per item, in order.

    Events are accepted ``CHUNK`` to a write transaction: fewer commits than one
    per event, without holding SQLite's write lock so long that the outbox
    worker starves behind a large batch.

    Each item runs in a savepoint: a refused item leaves nothing behind but its
    stored refusal, and does not disturb the others.  The Idempotency-Key is
    stored with its answer in the same transaction, so a crash stores neither
    and the client's retry starts afresh.  Concurrent requests with the same
    key meet at the key's unique constraint: the loser retries and replays the
    winner's answer.
    """
    for item_key, _body in items:
        if not item_key or len(item_key) > 255:
            raise InvalidRequest("Idempotency-Key header is required (1 to 255 characters)")
    prepared = [(item_key, body, request_hash(body)) for item_key, body in items]
    answers: list[tuple[int, dict[str, Any]]] = []
    for start in range(0, len(prepared), CHUNK):
        answers += _submit_chunk(ctx, merchant, prepared[start : start + CHUNK])
    return answers


def _submit_chunk(
    ctx: GatewayContext, merchant: Merchant, chunk: list[tuple[str, EventCreate, str]]
) -> list[tuple[int, dict[str, Any]]]:
    for attempt in range(RETRIES):
        try:
            with transaction(ctx.sessions) as session:
                _lock_customers(session, merchant.id, chunk)
                shared = _Shared(session, merchant, [item_key for item_key, _b, _d in chunk])
                return [
                    _submit_one(ctx, session, shared, item_key, body, digest)
                    for item_key, body, digest in chunk
                ]
        except IntegrityError:
            continue  # a concurrent request stored one of the keys first: replay it
        except OperationalError as exc:
            # PostgreSQL: two batches creating the same new customers in another
            # order deadlock on the unique key; the server aborts one. SQLite: another
            # process held the write lock past the busy timeout. Run it again.
            lost = getattr(exc.orig, "sqlstate", None) in RETRYABLE_SQLSTATES
            if not lost and "database is locked" not in str(exc.orig):  # SQLite's busy timeout
                raise
            time.sleep(random.uniform(0.0, 0.05 * (attempt + 1)))
    raise IdempotencyConflict("Idempotency-Key contention; retry")


def _lock_customers(
    session: Session, merchant_id: int, chunk: list[tuple[str, EventCreate, str]]
) -> None:
    """PostgreSQL: lock the chunk's customers (and referrers) in one global order.

    Two transactions touching the same customers in different orders would
    otherwise deadlock on the customer-link unique key or the member rows, and
    the server would abort one after a second.  Transaction-scoped advisory
    locks taken in key order make them wait for each other instead.  SQLite has
    one writer at a time and needs none of this.
    """
    if not is_postgres(session):
        return
    customers = {body.customer_id for _key, body, _digest in chunk}
    customers |= {body.referrer_customer_id for _k, body, _d in chunk if body.referrer_customer_id}
    keys = sorted({_customer_lock_key(merchant_id, customer) for customer in customers})
    session.execute(
        text(
            "SELECT count(pg_advisory_xact_lock(k))"
            " FROM (SELECT k FROM unnest(CAST(:keys AS bigint[])) AS k ORDER BY k) AS ordered"
        ),
        {"keys": keys},
    )


def _customer_lock_key(merchant_id: int, customer_id: str) -> int:
    """A signed 64-bit advisory-lock key for (merchant, customer); collisions only serialize."""
    digest = hashlib.blake2b(f"{merchant_id}:{customer_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class _Shared:
    """What the events of one write transaction share, read once for all of them.

    The stored answers under the transaction's Idempotency-Keys, the merchant's
    current rule set, and the merchant's velocity counters (read only when the
    rule set limits them, then counted on as this transaction accepts events).
    """

    def __init__(self, session: Session, merchant: Merchant, keys: list[str]) -> None:
        self.merchant = merchant
        self.records = {
            record.key: record
            for record in session.scalars(
                select(IdempotencyRecord).where(
                    IdempotencyRecord.merchant_id == merchant.id,
                    IdempotencyRecord.key.in_(set(keys)),
                )
            )
        }
        self.rule_row = latest_rule_set(session, merchant.id)
        self.rules = _parsed_rules(self.rule_row)
        self._counters: rules_engine.MerchantSnapshot | None = None
        self._session = session

    def merchant_snapshot(self) -> rules_engine.MerchantSnapshot:
        if self._counters is None:
            self._counters = _merchant_snapshot(
                self._session, self.merchant,
                events=self.rules.velocity.merchant_events_per_minute is not None,
                points=self.rules.velocity.merchant_points_per_day is not None,
            )  # fmt: skip
        return self._counters

    def count(self, event: Event) -> None:
        """An event this transaction stored counts against the merchant's limits."""
        if self._counters is not None:
            self._counters = rules_engine.MerchantSnapshot(
                merchant_id=self._counters.merchant_id,
                points_issued_today=self._counters.points_issued_today + event.points,
                events_last_minute=self._counters.events_last_minute + 1,
            )


#: Parsed rule sets by (merchant, version, hash): a stored version never changes.
_RULES_CACHE: dict[tuple[int, int, str], RuleSet] = {}


def _parsed_rules(row: RuleSetVersion) -> RuleSet:
    """The rule-set version, parsed once per process rather than once per event."""
    key = (row.merchant_id, row.version, row.hash)
    rules = _RULES_CACHE.get(key)
    if rules is None:
        if len(_RULES_CACHE) >= 1024:
            _RULES_CACHE.clear()
        rules = _RULES_CACHE[key] = load_rules(row)
    return rules


def _submit_one(
    ctx: GatewayContext, session: Session, shared: _Shared, key: str, body: EventCreate,
    digest: str,
) -> tuple[int, dict[str, Any]]:  # fmt: skip
    record = shared.records.get(key)
    if record is not None:
        if record.request_hash != digest:
            error = IdempotencyKeyReused(
                "this Idempotency-Key was used with a different request body",
                idempotency_key=key,
            )
            return error.status, _error_body(error)
        assert record.status_code is not None and record.response is not None
        return record.status_code, record.response
    try:
        with session.begin_nested():
            event, member = _accept(ctx, session, shared, key, body)
            status, answer = 202, public(event, session, member).model_dump(mode="json")
            _store_answer(session, shared, key, digest, status, answer)
            session.flush()  # the member, event, ops and answer: one flush
    except GatewayError as exc:
        # A refusal is an answer too: the same request gets the same refusal (its row
        # goes to the database with the next item's flush, or at commit).
        status, answer = exc.status, _error_body(exc)
        _store_answer(session, shared, key, digest, status, answer)
    return status, answer


def _store_answer(
    session: Session, shared: _Shared, key: str, digest: str, status: int,
    answer: dict[str, Any],
) -> None:  # fmt: skip
    record = IdempotencyRecord(
        merchant_id=shared.merchant.id, key=key, request_hash=digest,
        state="done", status_code=status, response=answer,
    )  # fmt: skip
    session.add(record)
    shared.records[key] = record  # the same key later in this request replays it


def _error_body(exc: GatewayError) -> dict[str, Any]:
    return {"error": {"code": exc.code, "message": exc.message, "details": exc.details}}


def _stored_error(status: int, response: dict[str, Any]) -> GatewayError:
    error = GatewayError(response["error"]["message"], **response["error"].get("details", {}))
    error.code = response["error"]["code"]
    error.status = status
    return error


# ------------------------------------------------------------------ accept


def _accept(
    ctx: GatewayContext, session: Session, shared: _Shared, key: str, body: EventCreate
) -> tuple[Event, Member]:
    merchant = shared.merchant
    link, member = member_service.resolve_customer(session, ctx.box, merchant.id, body.customer_id)
    if body.birth_month is not None and member.birth_month is None:
        member.birth_month = body.birth_month
    referrer_member = None
    if body.referrer_customer_id is not None:
        referrer = member_service.find_link(session, merchant.id, body.referrer_customer_id)
        if referrer is None:
            raise NotFound(
                f"referrer {body.referrer_customer_id!r} is not a customer of this merchant",
                referrer_customer_id=body.referrer_customer_id,
            )
        referrer_member = referrer.member_id
        if link.referred_by is None and referrer.member_id != member.id:
            link.referred_by = referrer.member_id
    rule_row, rules = shared.rule_row, shared.rules
    original = _original_purchase(session, merchant.id, body) if body.type == "refund" else None
    try:
        decision = rules_engine.evaluate(
            rules,
            ctx.fx,
            _event_input(body, referrer_member),
            _member_snapshot(session, merchant, link, member, body),
            shared.merchant_snapshot(),
            _original_outcome(session, original) if original is not None else None,
        )
    except RuleError as exc:
        raise InvalidRequest(str(exc), code=getattr(exc, "code", "invalid_event")) from exc
    if decision.status == "rejected":
        raise RuleRejected(
            f"event rejected: {decision.message or decision.reason}", reason=decision.reason
        )
    network_amount = Decimal(0)
    if body.order is not None:
        network_amount = ctx.fx.convert(body.order.amount, body.order.currency, body.occurred_at)
    breakdown = [line_dict(line) for line in decision.breakdown]
    points, clawback = decision.points, decision.clawback
    netted = (
        min(member_service.shortfall_owed(session, member.address), points)
        if body.type != "refund"
        else 0
    )
    if netted:
        # An earlier refund could not claw back points already spent: net them here.
        points, clawback = points - netted, netted
        breakdown.append(
            {"rule": "refund_shortfall", "points": -netted, "description": SHORTFALL_LINE}
        )
    now = utcnow()
    event = Event(
        id=new_id(),  # set here, not at the flush: the ops and the answer need them now
        created_at=now,
        updated_at=now,
        merchant_id=merchant.id,
        idempotency_key=key,
        type=body.type,
        customer_id=body.customer_id,
        member_id=member.id,
        occurred_at=body.occurred_at,
        order_id=body.order.id if body.order else (body.refund.order_id if body.refund else None),
        network_amount=network_amount,
        payload=body.model_dump(mode="json"),
        status="held" if decision.status == "held" else "accepted",
        reason=decision.reason,
        points=points,
        clawback=clawback,
        breakdown=breakdown,
        badges=list(decision.badges),
        rule_version=rule_row.version,
        device_id=body.device_id,
        ip=body.ip,
        ops=[],
    )
    session.add(event)
    shared.count(event)
    if event.status == "accepted":
        _create_ops(session, merchant, event, member, decision, original, link)
    return event, member


def release(
    ctx: GatewayContext, merchant: Merchant, event_id: str, approve: bool
) -> dict[str, Any]:
    """Release a held event to the outbox, or reject it."""
    with transaction(ctx.sessions) as session:
        event = _own_event(session, merchant.id, event_id)
        if event.status != "held":
            raise InvalidRequest(f"event is {event.status}, not held", status=event.status)
        if not approve:
            event.status, event.reason = "rejected", "rejected_by_merchant"
        else:
            member = session.get(Member, event.member_id)
            link = member_service.get_link(session, merchant.id, event.customer_id)
            assert member is not None
            event.status, event.reason = "accepted", None
            decision = _StoredDecision(event)
            original = (
                _original_purchase(session, merchant.id, EventCreate.model_validate(event.payload))
                if event.type == "refund"
                else None
            )
            _create_ops(session, merchant, event, member, decision, original, link)
        return public(event, session).model_dump(mode="json")


class _StoredDecision:
    """A held event's recorded decision, replayed when it is released."""

    def __init__(self, event: Event) -> None:
        self.points = event.points
        self.clawback = event.clawback
        self.badges = list(event.badges)
        self.referral_bonus = None
        self.tier_after = None


def _create_ops(
    session: Session,
    merchant: Merchant,
    event: Event,
    member: Member,
    decision: Any,
    original: Event | None,
    link: CustomerLink,
) -> None:
    """One ChainOp per on-chain effect of the decision."""
    ops: list[ChainOp] = []

    def add(kind: str, address: str, part: str, **fields: Any) -> None:
        ops.append(
            ChainOp(
                event_id=event.id,
                merchant_id=merchant.id,
                rule_version=event.rule_version,
                kind=kind,
                member_address=address,
                ref=event_ref(merchant.id, event.idempotency_key, part),
                **fields,
            )
        )

    if event.points > 0:
        add("issue", member.address, "points", amount=event.points)
    if event.type == "refund" and event.clawback > 0:
        assert original is not None
        issued = next(
            op for op in original.ops if op.kind == "issue" and not op.payload.get("referral")
        )
        add("clawback", member.address, "clawback", amount=event.clawback,
            payload={"original_op_id": issued.id})  # fmt: skip
    for key in decision.badges:
        add("badge", member.address, f"badge:{key}", badge_id=badge_id(key))
    bonus = decision.referral_bonus
    inviter = session.get(Member, bonus.member) if bonus is not None else None
    if bonus is not None and inviter is not None:
        if bonus.points > 0:
            add("issue", inviter.address, "referral", amount=bonus.points,
                payload={"referral": True, "inviter_id": inviter.id})  # fmt: skip
        for key in bonus.badges:
            add("badge", inviter.address, f"referral-badge:{key}", badge_id=badge_id(key))
        link.referral_rewarded = True
    claw = getattr(decision, "referral_clawback", None)
    if claw is not None and claw.points > 0 and original is not None:
        inviter = session.get(Member, claw.member)
        referral = next((op for op in original.ops if op.payload.get("referral")), None)
        if inviter is not None and referral is not None:
            add("clawback", inviter.address, "referral-clawback", amount=claw.points,
                payload={"original_op_id": referral.id})  # fmt: skip
    if decision.tier_after is not None and decision.tier_after != member.tier:
        old, member.tier = member.tier, decision.tier_after
        add("tier", member.address, "tier", tier=decision.tier_after)
        queue_webhook(session, merchant.id, "tier.changed", {
            "customer_id": event.customer_id, "member": member.address,
            "old_tier": old, "new_tier": decision.tier_after,
        })  # fmt: skip
    event.ops.extend(ops)
    if not ops:
        event.status = "confirmed"  # nothing to put on chain


# ------------------------------------------------------------------ snapshots for the engine


def _event_input(body: EventCreate, referrer_member: str | None) -> rules_engine.EventInput:
    order = None
    if body.order is not None:
        order = rules_engine.OrderInput(
            order_id=body.order.id,
            amount=body.order.amount,
            currency=body.order.currency,
            items=[
                rules_engine.ItemInput(sku=i.sku, category=i.category, amount=i.amount, eco=i.eco)
                for i in body.order.items
            ],
        )
    refund = None
    if body.refund is not None:
        refund = rules_engine.RefundInput(order_id=body.refund.order_id, amount=body.refund.amount)
    return rules_engine.EventInput(
        type=body.type,
        occurred_at=body.occurred_at,
        order=order,
        refund=refund,
        referrer_member=referrer_member,
        device_id=body.device_id,
        ip=body.ip,
    )


_LIVE = ("accepted", "submitted", "confirmed")


def _member_snapshot(
    session: Session, merchant: Merchant, link: CustomerLink, member: Member, body: EventCreate
) -> rules_engine.MemberSnapshot:
    """Everything the rules need about the member, from the gateway's records.

    Tiers are network-wide (one tier on chain per member), so purchases count
    across all partners, in network units.  The member's counters come from one
    read of the member's events (a member has tens to hundreds, not millions).
    """
    at = body.occurred_at
    day_start = at.replace(hour=0, minute=0, second=0, microsecond=0)
    day_end = day_start + timedelta(days=1)
    tier_window, check_in_window = at - timedelta(days=731), day_start - timedelta(days=31)
    now = datetime.now(UTC)
    hour_ago, day_ago = now - timedelta(hours=1), now - timedelta(days=1)
    purchases: list[tuple[datetime, Decimal]] = []
    check_in_days: set[date] = set()
    purchases_here = shares_today = reviews_today = last_hour = points_today = 0
    for row in session.execute(_MEMBER_HISTORY, {"member_id": member.id}):
        occurred, created = _aware(row.occurred_at), _aware(row.created_at)
        here, live = row.merchant_id == merchant.id, row.status in _LIVE
        if row.type == "purchase":
            if live and occurred >= tier_window:
                purchases.append((occurred, Decimal(row.network_amount)))
            purchases_here += here and (live or row.status == "held")
        elif here and row.type == "check_in" and live and occurred >= check_in_window:
            check_in_days.add(occurred.date())
        elif here and row.type in ("share", "review") and day_start <= occurred < day_end:
            shares_today += row.type == "share"
            reviews_today += row.type == "review"
        last_hour += created >= hour_ago
        points_today += row.points if created >= day_ago else 0
    inviter_referrals, inviter_badges = 0, frozenset[str]()
    if link.referred_by is not None:
        inviter_referrals = int(
            session.scalar(
                select(func.count(CustomerLink.id)).where(
                    CustomerLink.referred_by == link.referred_by,
                    CustomerLink.referral_rewarded.is_(True),
                )
            )
            or 0
        )
        inviter = session.get(Member, link.referred_by)
        inviter_badges = _held_badges(session, inviter.address) if inviter else frozenset()
    return rules_engine.MemberSnapshot(
        member_id=member.id,
        birth_month=member.birth_month,
        frozen=member.frozen,
        is_first_purchase_at_merchant=not purchases_here,
        purchases=purchases,
        check_in_days=sorted(check_in_days),
        shares_today=shares_today,
        reviews_today=reviews_today,
        referred_by=link.referred_by,
        referral_rewarded=link.referral_rewarded,
        referrer_referrals=inviter_referrals,
        referrer_badges=inviter_badges,
        held_badges=_held_badges(session, member.address),
        current_tier=member.tier,
        events_last_hour=last_hour,
        points_today=points_today,
        accounts_on_device=_accounts_seen(session, Event.device_id, body.device_id, member.id),
        accounts_on_ip=_accounts_seen(session, Event.ip, body.ip, member.id),
    )


#: The member's events, as ``_member_snapshot`` reads them (one statement, built once).
_MEMBER_HISTORY = select(
    Event.merchant_id, Event.type, Event.status, Event.occurred_at, Event.network_amount,
    Event.created_at, Event.points,
).where(Event.member_id == bindparam("member_id"))  # fmt: skip


def _held_badges(session: Session, address: str) -> frozenset[str]:
    """Badge keys the address holds or is about to receive."""
    ids = set(session.scalars(_BADGES_HELD, {"address": address}).all())
    return frozenset(b.key for b in BADGES if b.id in ids)


_BADGES_HELD = select(ChainOp.badge_id).where(
    ChainOp.member_address == bindparam("address"),
    ChainOp.kind == "badge",
    ChainOp.status != "failed",
)


def _accounts_seen(session: Session, column: Any, value: str | None, member_id: str) -> int:
    """How many distinct members (this one included) used this device id or IP."""
    if not value:
        return 1
    others = session.scalar(_OTHERS_ON[column.key], {"value": value, "member_id": member_id})
    return int(others or 0) + 1


#: Other members that used a device id / an IP, by the column's name.
_OTHERS_ON = {
    column.key: select(func.count(func.distinct(Event.member_id))).where(
        column == bindparam("value"), Event.member_id != bindparam("member_id")
    )
    for column in (Event.device_id, Event.ip)
}


def _merchant_snapshot(
    session: Session, merchant: Merchant, *, events: bool, points: bool
) -> rules_engine.MerchantSnapshot:
    """The merchant's velocity counters; each is read only when a limit needs it (the
    daily points scan the day's events)."""
    now = datetime.now(UTC)
    last_minute: int | None = 0
    issued_today: int | None = 0
    if events:
        last_minute = session.scalar(
            select(func.count()).where(
                Event.merchant_id == merchant.id, Event.created_at >= now - timedelta(minutes=1)
            )
        )
    if points:
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


def _original_purchase(session: Session, merchant_id: int, body: EventCreate) -> Event | None:
    assert body.refund is not None
    return session.scalars(
        select(Event).where(
            Event.merchant_id == merchant_id,
            Event.type == "purchase",
            Event.order_id == body.refund.order_id,
            Event.customer_id == body.customer_id,
            Event.status.in_(_LIVE),
        )
    ).first()


def _original_outcome(session: Session, original: Event) -> rules_engine.OriginalOutcome:
    earlier = session.execute(
        select(Event.clawback, Event.payload).where(
            Event.merchant_id == original.merchant_id,
            Event.type == "refund",
            Event.order_id == original.order_id,
            Event.status.in_((*_LIVE, "held")),
        )
    ).all()
    order = original.payload.get("order") or {}
    order_amount = Decimal(str(order.get("amount", "0")))
    refunded = sum(
        (Decimal(str(p["refund"]["amount"])) if p["refund"].get("amount") else order_amount
         for _c, p in earlier),
        Decimal(0),
    )  # fmt: skip
    bonus = None
    referral_op = next((op for op in original.ops if op.payload.get("referral")), None)
    if referral_op is not None:
        bonus = rules_engine.ReferralBonus(
            member=str(referral_op.payload["inviter_id"]), points=referral_op.amount
        )
    return rules_engine.OriginalOutcome(
        order_id=str(original.order_id),
        points=original.points,
        order_amount=order_amount,
        network_amount=Decimal(original.network_amount),
        breakdown=[rules_engine.BreakdownLine(**line) for line in original.breakdown],
        already_clawed_back=sum(int(c) for c, _p in earlier),
        refunded_amount=min(refunded, order_amount),
        occurred_at=_aware(original.occurred_at),
        referral_bonus=bonus,
    )


# ------------------------------------------------------------------ reading


def _own_event(session: Session, merchant_id: int, event_id: str) -> Event:
    event = session.get(Event, event_id)
    if event is None or event.merchant_id != merchant_id:
        raise NotFound(f"no event {event_id}", event_id=event_id)
    return event


def get_event(session: Session, merchant_id: int, event_id: str) -> EventPublic:
    return public(_own_event(session, merchant_id, event_id), session)


def public(event: Event, session: Session, member: Member | None = None) -> EventPublic:
    """The event as its merchant sees it (``member``: the event's member, when at hand)."""
    member = member or session.get(Member, event.member_id)
    return EventPublic(
        id=event.id,
        idempotency_key=event.idempotency_key,
        type=event.type,  # type: ignore[arg-type]
        customer_id=event.customer_id,
        member_address=member.address if member else "",
        status=event.status,  # type: ignore[arg-type]
        reason=event.reason,
        points=event.points,
        clawback=event.clawback,
        breakdown=event.breakdown,
        badges=event.badges,
        rule_version=event.rule_version,
        tx_hash=event.tx_hash,
        block_number=event.block_number,
        occurred_at=_aware(event.occurred_at),
        created_at=_aware(event.created_at),
    )


def line_dict(line: Any) -> dict[str, Any]:
    return {"rule": line.rule, "description": line.description, "points": int(line.points)}
