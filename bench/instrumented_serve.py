"""``pointsnet serve`` with SQL and write-lock instrumentation (``bench e2e --instrument``).

Run exactly like ``pointsnet serve --role ROLE`` (``python -m bench.instrumented_serve
--role ROLE``); on exit it writes
``<POINTSNET_DATA_DIR>/instrument-<role>.json`` with, per thread kind (API
request threads, outbox worker, indexer, webhook dispatcher):

- SQL statements executed and the time spent in them;
- every write transaction (``gateway.db.transaction``) by the function that
  opened it: how many, the time spent waiting for the write lock (``BEGIN
  IMMEDIATE``), and the time the lock was held (begin to end of commit).

Nothing in the gateway is changed: ``gateway.db.transaction`` and
``gateway.db.make_engine`` are wrapped (the originals still do the work, the SQLite
write turn included) before the gateway's modules import them.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.orm import Session, sessionmaker

import gateway.db as db

_lock = threading.Lock()
_statements: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])  # kind -> [count, seconds]
_transactions: dict[str, dict[str, Any]] = {}
_started = time.time()


def _kind() -> str:
    name = threading.current_thread().name
    if name.startswith("AnyIO"):
        return "api"
    return {"MainThread": "main"}.get(name, name)


def _record(caller: str, wait: float, hold: float) -> None:
    key = f"{_kind()}:{caller}"
    with _lock:
        entry = _transactions.setdefault(
            key, {"count": 0, "wait_s": 0.0, "hold_s": 0.0, "holds": []}
        )
        entry["count"] += 1
        entry["wait_s"] += wait
        entry["hold_s"] += hold
        if len(entry["holds"]) < 20_000:
            entry["holds"].append(hold)


_transaction = db.transaction


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """The gateway's write transaction, timed: the wait is until the write lock is held
    (this process's turn, then ``BEGIN IMMEDIATE`` on SQLite), the hold until the commit."""
    caller = sys._getframe(2).f_code.co_name
    t0 = time.perf_counter()
    committed = [0.0]
    with _transaction(factory) as session:
        t1 = time.perf_counter()

        @event.listens_for(session, "after_commit", once=True)
        def _committed(_session: Session) -> None:
            committed[0] = time.perf_counter()

        yield session
    t2 = committed[0] or time.perf_counter()
    _record(caller, t1 - t0, t2 - t1)


_make_engine = db.make_engine


def make_engine(url: str, **kwargs: Any) -> Engine:
    engine = _make_engine(url, **kwargs)
    starts: dict[int, float] = {}

    @event.listens_for(engine, "before_cursor_execute")
    def _before(*_args: Any) -> None:
        starts[threading.get_ident()] = time.perf_counter()

    @event.listens_for(engine, "after_cursor_execute")
    def _after(*_args: Any) -> None:
        spent = time.perf_counter() - starts.pop(threading.get_ident(), time.perf_counter())
        with _lock:
            entry = _statements[_kind()]
            entry[0] += 1
            entry[1] += spent

    return engine


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def _dump(role: str) -> None:
    out = Path(os.environ.get("POINTSNET_DATA_DIR", ".")) / f"instrument-{role}.json"
    with _lock:
        transactions = {
            key: {
                "count": e["count"],
                "wait_s": e["wait_s"],
                "hold_s": e["hold_s"],
                "hold_p50_ms": _pct(e["holds"], 50) * 1000,
                "hold_p99_ms": _pct(e["holds"], 99) * 1000,
            }
            for key, e in _transactions.items()
        }
        data = {
            "role": role,
            "seconds": time.time() - _started,
            "statements": {k: {"count": v[0], "seconds": v[1]} for k, v in _statements.items()},
            "transactions": transactions,
        }
    out.write_text(json.dumps(data, indent=2) + "\n")


def main() -> None:
    db.transaction = transaction
    db.make_engine = make_engine
    role = sys.argv[sys.argv.index("--role") + 1] if "--role" in sys.argv else "all"
    atexit.register(_dump, role)
    from gateway.cli import app

    app(["serve", *sys.argv[1:]])


if __name__ == "__main__":
    main()
