"""Database engine and sessions: SQLite (WAL) by default, PostgreSQL by URL.

SQLite gets WAL journaling, ``synchronous=NORMAL`` (durable at each WAL
checkpoint, crash-safe) and a busy timeout so the API, the worker and the
indexer can share one file.  PostgreSQL is used as is; workers there claim work
with ``FOR UPDATE SKIP LOCKED``.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url`` with the pragmas pointsnet relies on."""
    if url.startswith("sqlite"):
        # Connections to a local file are cheap: a large pool means a burst of
        # concurrent requests queues on SQLite's write lock, not on the pool.
        kwargs.setdefault("pool_size", 32)
        kwargs.setdefault("max_overflow", 64)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            # Truncate the WAL after checkpoints instead of letting it keep its peak size.
            cursor.execute("PRAGMA journal_size_limit=67108864")
            cursor.close()

        # Write transactions take the lock at BEGIN so concurrent writers queue
        # instead of failing with "database is locked" on lock upgrade; reads
        # begin deferred and run beside a writer (WAL).
        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            immediate = conn.get_execution_options().get("pointsnet_write", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        @event.listens_for(engine, "connect")
        def _no_pysqlite_begin(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None

        _write_locks[engine] = FairLock()
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    return create_engine(url, pool_pre_ping=True, **kwargs)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


class FairLock:
    """A lock granted in the order it was asked for (re-entrant per thread).

    SQLite's own wait for its write lock is polling with sleeps of up to 100 ms,
    so under load one writer (often the outbox worker) can lose for tens of
    seconds. Writers of one process queue here first, in arrival order.
    """

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._queue: deque[threading.Lock] = deque()
        self._owner: int | None = None
        self._depth = 0

    @contextmanager
    def held(self) -> Iterator[None]:
        me = threading.get_ident()
        with self._mutex:
            if self._owner == me:
                self._depth += 1
                turn = None
            elif self._owner is None and not self._queue:
                self._owner, self._depth, turn = me, 1, None
            else:
                turn = threading.Lock()
                turn.acquire()
                self._queue.append(turn)
        if turn is not None:
            turn.acquire()  # released by the holder before us, which made us the owner
            with self._mutex:
                self._owner, self._depth = me, 1
        try:
            yield
        finally:
            with self._mutex:
                self._depth -= 1
                if self._depth == 0:
                    self._owner = None
                    if self._queue:
                        self._owner = -1  # handed over: nobody barges in before the next
                        self._queue.popleft().release()


_write_locks: WeakKeyDictionary[Engine, FairLock] = WeakKeyDictionary()


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A write session whose work commits together at the end, or not at all.

    On SQLite, writers of this process take their turn in arrival order first.
    """
    bind = factory.kw.get("bind")
    lock = _write_locks.get(bind) if isinstance(bind, Engine) else None
    turn = lock.held() if lock is not None else nullcontext()
    with turn, factory() as session, session.begin():
        session.connection(execution_options={"pointsnet_write": True})
        yield session


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"
