"""Concurrent requests: no pool exhaustion, no duplicate members, no dead worker thread.

These failures were first seen under load in ``pointsnet bench e2e``: 16
concurrent clients drained the connection pool (500s, and the worker thread
died on the pool's timeout), and two first events of one customer racing on
PostgreSQL ended in a unique-key violation (500).
"""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from gateway_kit import Gateway, purchase
from sqlalchemy import func, select
from sqlalchemy.exc import TimeoutError as PoolTimeout

from gateway.db import is_postgres, transaction
from gateway.models import CustomerLink, Event
from gateway.outbox.worker import OutboxWorker
from gateway.schemas import EventCreate
from gateway.services.events import _lock_customers


def _post(gateway: Gateway, body: dict[str, object], key: str) -> tuple[int, dict[str, object]]:
    response = gateway.client.post("/v1/events", json=body, headers=gateway.headers(key=key))
    return response.status_code, response.json()


def test_many_concurrent_requests_are_all_answered(gateway: Gateway) -> None:
    run = uuid.uuid4().hex[:8]
    bodies = [(purchase(f"conc-{run}-{i}", f"CO-{run}-{i}"), uuid.uuid4().hex) for i in range(48)]
    with ThreadPoolExecutor(max_workers=48) as pool:
        results = list(pool.map(lambda args: _post(gateway, *args), bodies))
    assert [status for status, _ in results] == [202] * len(bodies)
    gateway.settle()
    with gateway.context.sessions() as session:
        confirmed = session.scalar(
            select(func.count(Event.id)).where(
                Event.customer_id.like(f"conc-{run}-%"), Event.status == "confirmed"
            )
        )
    assert confirmed == len(bodies)


def test_first_events_of_one_customer_racing_make_one_member(gateway: Gateway) -> None:
    customer = f"race-{uuid.uuid4().hex[:8]}"
    bodies = [(purchase(customer, f"RA-{customer}-{i}"), uuid.uuid4().hex) for i in range(16)]
    barrier = threading.Barrier(len(bodies))

    def post_together(args: tuple[dict[str, object], str]) -> tuple[int, dict[str, object]]:
        barrier.wait()
        return _post(gateway, *args)

    with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        results = list(pool.map(post_together, bodies))
    assert [status for status, _ in results] == [202] * len(bodies)
    assert len({answer["member_address"] for _, answer in results}) == 1
    with gateway.context.sessions() as session:
        links = session.scalar(
            select(func.count(CustomerLink.id)).where(CustomerLink.customer_id == customer)
        )
    assert links == 1


def test_a_crashing_worker_cycle_does_not_end_the_worker(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    worker = OutboxWorker(gateway.context.link, gateway.context.sessions)
    stop = threading.Event()
    calls: list[int] = []

    def flaky_cycle() -> bool:
        calls.append(1)
        if len(calls) == 1:
            raise PoolTimeout("QueuePool limit reached")
        if len(calls) == 2:
            raise RuntimeError("a bug in one cycle")
        stop.set()
        return False

    monkeypatch.setattr(worker, "run_once", flaky_cycle)
    monkeypatch.setattr(stop, "wait", lambda timeout=None: stop.is_set())
    worker.run(stop)
    assert len(calls) == 3


def test_concurrent_batches_creating_the_same_customers_all_succeed(gateway: Gateway) -> None:
    """Batches that create the same new customers in different orders deadlock on
    PostgreSQL's unique key unless the loser is run again."""
    run = uuid.uuid4().hex[:8]
    customers = [f"dl-{run}-{i}" for i in range(30)]

    def batch(n: int) -> list[dict[str, object]]:
        order = customers[n % 2 :: 1] if n % 2 == 0 else list(reversed(customers))
        return [
            {"idempotency_key": uuid.uuid4().hex, "event": purchase(c, f"DL-{run}-{n}-{c}")}
            for c in order
        ]

    barrier = threading.Barrier(6)

    def post_batch(n: int) -> tuple[int, list[int]]:
        body = {"events": batch(n)}
        barrier.wait()
        response = gateway.client.post("/v1/events/batch", json=body, headers=gateway.headers())
        codes = [item["status_code"] for item in response.json()["data"]]
        return response.status_code, codes

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(post_batch, range(6)))
    assert [status for status, _ in results] == [200] * 6
    assert {code for _, codes in results for code in codes} == {202}
    with gateway.context.sessions() as session:
        links = session.scalar(
            select(func.count(CustomerLink.id)).where(CustomerLink.customer_id.like(f"dl-{run}-%"))
        )
    assert links == len(customers)


def test_transactions_sharing_a_customer_take_turns(gateway: Gateway) -> None:
    """Accept transactions lock their customers in one global order before writing.

    Without it, two PostgreSQL transactions that create the same customers in
    opposite orders deadlock and one is aborted after a second (the test above
    then depends on retries racing the deadlock detector).  SQLite's single
    writer makes the second one wait anyway; PostgreSQL lets a transaction with
    other customers through at once.
    """
    run = uuid.uuid4().hex[:8]
    merchant_id = gateway.merchants[0].id

    def chunk(*customers: str) -> list[tuple[str, EventCreate, str]]:
        bodies = [
            EventCreate.model_validate(purchase(f"tt-{run}-{c}", f"TT-{run}-{c}"))
            for c in customers
        ]
        return [(uuid.uuid4().hex, body, "") for body in bodies]

    holding, release = threading.Event(), threading.Event()

    def first() -> None:
        with transaction(gateway.context.sessions) as session:
            _lock_customers(session, merchant_id, chunk("a", "b"))
            holding.set()
            release.wait(10)

    def locked_after(customers: tuple[str, ...]) -> float:
        started = time.monotonic()
        with transaction(gateway.context.sessions) as session:
            _lock_customers(session, merchant_id, chunk(*customers))
        return time.monotonic() - started

    with ThreadPoolExecutor(max_workers=3) as pool:
        holder = pool.submit(first)
        assert holding.wait(10)
        overlapping = pool.submit(locked_after, ("b", "a"))
        if is_postgres(gateway.context.engine):
            # Other customers: done while the first transaction still holds its locks.
            pool.submit(locked_after, ("c", "d")).result(5)
        time.sleep(0.5)
        assert not overlapping.done()
        release.set()
        holder.result(10)
        assert overlapping.result(10) >= 0.5
