"""The SQLite writers' lock: one holder at a time, granted in arrival order, re-entrant."""

from __future__ import annotations

import threading
import time

from gateway.db import FairLock


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
