"""The SQLite writers' lock: one holder at a time, granted in arrival order, re-entrant."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from gateway.db import FairLock, ProcessWriteLock


def test_one_holder_at_a_time_and_reentrant() -> None:
    lock = FairLock()
    inside = 0
    most = 0

    def work() -> None:
        nonlocal inside, most
        for _ in range(100):
            with lock.held(), lock.held():
                inside += 1
                most = max(most, inside)
                time.sleep(0.0001)
                inside -= 1

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert most == 1 and inside == 0


def test_waiters_get_the_lock_in_arrival_order() -> None:
    lock = FairLock()
    order: list[int] = []
    started: list[threading.Thread] = []
    with lock.held():
        for i in range(6):
            thread = threading.Thread(target=lambda i=i: _record(lock, order, i))
            thread.start()
            started.append(thread)
            time.sleep(0.05)  # let it queue before the next one arrives
    for thread in started:
        thread.join(10)
    assert order == list(range(6))


def _record(lock: FairLock, order: list[int], i: int) -> None:
    with lock.held():
        order.append(i)


def test_a_background_writer_waiting_goes_before_request_writers_that_come_later(
    tmp_path: Path,
) -> None:
    """Across processes (separate lock files' descriptors stand for processes here): a
    waiting outbox worker gets SQLite's write lock next, even when the API process asks
    again the moment it lets go (as its next queued request thread does)."""
    database = tmp_path / "gateway.db"
    api = ProcessWriteLock(database, background=False)
    worker = ProcessWriteLock(database, background=True)
    order: list[str] = []

    def work() -> None:
        worker.acquire()
        order.append("worker")
        time.sleep(0.05)
        worker.release()

    for _ in range(5):
        order.clear()
        api.acquire()
        thread = threading.Thread(target=work)
        thread.start()
        time.sleep(0.1)  # the worker waits, holding the turn
        api.release()
        api.acquire()  # the API's next request, at once
        order.append("request")
        api.release()
        thread.join(10)
        assert order == ["worker", "request"]


def test_request_writers_of_different_processes_exclude_each_other(tmp_path: Path) -> None:
    first = ProcessWriteLock(tmp_path / "gateway.db", background=False)
    second = ProcessWriteLock(tmp_path / "gateway.db", background=False)
    first.acquire()
    got = threading.Event()
    waiter = threading.Thread(target=lambda: (second.acquire(), got.set(), second.release()))
    waiter.start()
    assert not got.wait(0.2)
    first.release()
    assert got.wait(5)
    waiter.join(5)
