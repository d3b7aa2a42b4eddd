"""The set-based accept path: statements per chunk, in-chunk effects, counter buckets.

``submit_many`` reads what a chunk needs with one query per table and writes one
multi-row statement per table, so its statement count per chunk is bounded
whatever the chunk holds; events of one chunk see each other's effects; the
(member, merchant, day) buckets it keeps equal what the events say.
"""

from __future__ import annotations

import importlib
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from gateway_kit import Gateway, purchase
from sqlalchemy import event, select

from gateway.models import ChainOp, Event, Member, MemberCounter, Merchant
from gateway.schemas import EventCreate
from gateway.services.accept.counters import count_failed
from gateway.services.events import CHUNK, release, submit_many

#: What one chunk may cost at most, whatever its events: BEGIN, the reads (keys,
#: rule set, links, members, buckets, badges, velocity, shortfalls, devices, IPs,
#: originals and their ops, earlier refunds, merchant velocity) and one write per
#: table, COMMIT.  Per-event statements would cost CHUNK more each.
STATEMENTS_PER_CHUNK = 30


def _merchant(gateway: Gateway, index: int = 0) -> Merchant:
    with gateway.context.sessions() as session:
        merchant = session.get(Merchant, gateway.merchants[index].id)
        assert merchant is not None
        session.expunge(merchant)
        return merchant


@contextmanager
def _counting(gateway: Gateway) -> Iterator[list[str]]:
    """The statements this thread runs in the block."""
    statements: list[str] = []
    me = threading.get_ident()

    def record(_conn: Any, _cursor: Any, sql: str, *_rest: Any) -> None:
        if threading.get_ident() == me:
            statements.append(sql)

    event.listen(gateway.context.engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(gateway.context.engine, "before_cursor_execute", record)


def _mixed(run: str, n: int) -> list[tuple[str, EventCreate]]:
    """``n`` events of the bench's kinds: new and returning customers, activities, refunds."""
    bodies: list[dict[str, Any]] = []
    for i in range(n):
        customer = f"{run}-c{i % (n // 3)}"
        at = f"2026-11-{10 + i % 15:02d}T10:{i % 60:02d}:00Z"
        kind = i % 6
        if kind in (0, 1):
            bodies.append({**purchase(customer, f"{run}-o{i}"), "occurred_at": at,
                           "device_id": f"{run}-dev{i % 7}", "ip": f"{run}-ip{i % 5}"})  # fmt: skip
        elif kind == 2:
            bodies.append({"type": "check_in", "customer_id": customer, "occurred_at": at})
        elif kind == 3:
            bodies.append({"type": "share", "customer_id": customer, "occurred_at": at})
        elif kind == 4:
            bodies.append({"type": "review", "customer_id": customer, "occurred_at": at})
        else:
            earlier = i - 5  # a purchase of this request (same chunk or an earlier one)
            refund = {"order_id": f"{run}-o{earlier}"}
            bodies.append({"type": "refund", "customer_id": f"{run}-c{earlier % (n // 3)}",
                           "occurred_at": at, "refund": refund})  # fmt: skip
    return [(f"{run}-k{i}", EventCreate.model_validate(b)) for i, b in enumerate(bodies)]


def test_a_chunk_costs_a_bounded_number_of_statements(gateway: Gateway) -> None:
    merchant = _merchant(gateway)
    run = uuid.uuid4().hex[:8]
    submit_many(gateway.context, merchant, _mixed(run + "w", 30))  # warm: known customers
    items = _mixed(run, 100)
    with _counting(gateway) as statements:
        answers = submit_many(gateway.context, merchant, items)
    assert sum(1 for status, _a in answers if status == 202) >= 90, answers
    chunks = -(-len(items) // CHUNK)
    assert len(statements) <= STATEMENTS_PER_CHUNK * chunks, "\n".join(statements)
    # Replays cost the key lookup only.
    with _counting(gateway) as replayed:
        assert submit_many(gateway.context, merchant, items) == answers
    assert len(replayed) <= 4 * chunks, "\n".join(replayed)


def test_events_of_one_chunk_see_each_other(gateway: Gateway) -> None:
    merchant = _merchant(gateway)
    run = uuid.uuid4().hex[:8]
    customer = f"{run}-alice"
    day = "2026-11-21T09:00:00Z"
    bodies = [
        purchase(customer, f"{run}-A1"),
        purchase(customer, f"{run}-A2"),
        {"type": "check_in", "customer_id": customer, "occurred_at": day},
        {"type": "check_in", "customer_id": customer, "occurred_at": day},
        {"type": "refund", "customer_id": customer, "occurred_at": day,
         "refund": {"order_id": f"{run}-A1"}},
        {"type": "refund", "customer_id": customer, "occurred_at": day,
         "refund": {"order_id": f"{run}-A1"}},
    ]  # fmt: skip
    items = [(f"{run}-{i}", EventCreate.model_validate(b)) for i, b in enumerate(bodies)]
    answers = submit_many(gateway.context, merchant, items)
    first, second, check_in, again, refund, refund_again = answers
    assert first[0] == second[0] == check_in[0] == again[0] == refund[0] == 202, answers
    rules = [line["rule"] for line in first[1]["breakdown"]]
    assert "first_order" in rules
    assert "first_order" not in [line["rule"] for line in second[1]["breakdown"]]
    assert first[1]["member_address"] == second[1]["member_address"]  # one member
    assert check_in[1]["points"] > 0 and again[1]["points"] == 0
    assert again[1]["reason"] == "check_in_duplicate"
    assert refund[1]["clawback"] == first[1]["points"]
    assert refund_again[0] == 422  # nothing left of the order to refund
    with gateway.context.sessions() as session:
        issued = session.scalars(
            select(ChainOp).where(ChainOp.event_id == first[1]["id"], ChainOp.kind == "issue")
        ).one()
        clawback = session.scalars(
            select(ChainOp).where(ChainOp.event_id == refund[1]["id"], ChainOp.kind == "clawback")
        ).one()
        assert clawback.payload == {"original_op_id": issued.id}
        assert session.scalar(select(Event.id).where(Event.idempotency_key == f"{run}-5")) is None


def test_a_refused_first_event_creates_no_member(gateway: Gateway) -> None:
    merchant = _merchant(gateway)
    run = uuid.uuid4().hex[:8]
    body = {**purchase(f"{run}-bob", f"{run}-B1"), "referrer_customer_id": f"{run}-nobody"}
    [(status, answer)] = submit_many(
        gateway.context, merchant, [(f"{run}-k", EventCreate.model_validate(body))]
    )
    assert status == 404, answer
    with gateway.context.sessions() as session:
        assert (
            session.scalar(select(Member.id).where(Member.key_customer_id == f"{run}-bob")) is None
        )


def _buckets(gateway: Gateway) -> dict[tuple[str, int, Any], dict[str, Any]]:
    with gateway.context.sessions() as session:
        return {
            (row.member_id, row.merchant_id, row.day): {
                "orders": row.orders,
                "orders_held": row.orders_held,
                "spend": Decimal(row.spend).normalize(),
                "refunds": row.refunds,
                "check_ins": row.check_ins,
                "shares": row.shares,
                "reviews": row.reviews,
                "points": row.points,
            }
            for row in session.scalars(select(MemberCounter))
        }


def _recomputed(gateway: Gateway) -> dict[tuple[str, int, Any], dict[str, Any]]:
    """The buckets migration 0007 backfills from the events (the reference)."""
    migration = importlib.import_module("gateway.migrations.versions.0007_member_counters")
    with gateway.context.engine.connect() as conn:
        rows = migration._backfill(conn)
    return {
        (r["member_id"], r["merchant_id"], r["day"]): {
            k: (Decimal(v).normalize() if k == "spend" else v)
            for k, v in r.items()
            if k not in ("member_id", "merchant_id", "day", "last_order_at")
        }
        for r in rows
    }


def test_buckets_equal_what_the_events_say_through_hold_release_and_reject(
    gateway: Gateway,
) -> None:
    merchant = _merchant(gateway)
    run = uuid.uuid4().hex[:8]
    submit_many(gateway.context, merchant, _mixed(run, 40))
    # Purchases on one shared device are held (device clustering): release one, reject one.
    held = []
    for i in range(6):
        body = {**purchase(f"{run}-dev{i}", f"{run}-D{i}"), "device_id": f"{run}-shared"}
        [(status, answer)] = submit_many(
            gateway.context, merchant, [(f"{run}-d{i}", EventCreate.model_validate(body))]
        )
        assert status == 202, answer
        if answer["status"] == "held":
            held.append(answer["id"])
    assert len(held) >= 2
    release(gateway.context, merchant, held[0], approve=True)
    release(gateway.context, merchant, held[1], approve=False)
    actual = {k: v for k, v in _buckets(gateway).items() if any(v.values())}
    expected = {k: v for k, v in _recomputed(gateway).items() if any(v.values())}
    assert actual == expected


def test_events_that_fail_for_good_leave_their_buckets(gateway: Gateway) -> None:
    """``count_failed`` is what the outbox worker calls when it marks events failed."""
    merchant = _merchant(gateway)
    run = uuid.uuid4().hex[:8]
    answers = submit_many(gateway.context, merchant, _mixed(run, 12))
    failing = [a["id"] for status, a in answers if status == 202 and a["status"] == "accepted"]
    with gateway.context.sessions() as session, session.begin():
        events = list(session.scalars(select(Event).where(Event.id.in_(failing[:3]))))
        count_failed(session, events)
        for failed in events:
            failed.status = "failed"
    actual = {k: v for k, v in _buckets(gateway).items() if any(v.values())}
    expected = {k: v for k, v in _recomputed(gateway).items() if any(v.values())}
    assert actual == expected


def test_concurrent_requests_with_one_key_store_one_event(gateway: Gateway) -> None:
    """Same key, same body: every request gets the one answer. Same key, other bodies
    (other customers: nothing else serializes them): one wins, the others get 422."""
    merchant = _merchant(gateway)
    run = uuid.uuid4().hex[:8]
    same = EventCreate.model_validate(purchase(f"{run}-x", f"{run}-X1"))
    others = [EventCreate.model_validate(purchase(f"{run}-y{i}", f"{run}-Y{i}")) for i in range(4)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        alike = list(pool.map(lambda _i: submit_many(
            gateway.context, merchant, [(f"{run}-same", same)]), range(4)))  # fmt: skip
        unlike = list(pool.map(lambda body: submit_many(
            gateway.context, merchant, [(f"{run}-other", body)]), others))  # fmt: skip
    assert all(answer == alike[0] for answer in alike) and alike[0][0][0] == 202
    statuses = sorted(answers[0][0] for answers in unlike)
    assert statuses == [202, 422, 422, 422], unlike
    with gateway.context.sessions() as session:
        for key in (f"{run}-same", f"{run}-other"):
            stored = session.scalars(select(Event.id).where(Event.idempotency_key == key)).all()
            assert len(stored) == 1
