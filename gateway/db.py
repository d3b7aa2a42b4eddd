"""Database engine and sessions: SQLite (WAL) by default, PostgreSQL by URL.

SQLite gets WAL journaling, ``synchronous=NORMAL`` (durable at each WAL
checkpoint, crash-safe) and a busy timeout so the API, the worker and the
indexer can share one file.  PostgreSQL is used as is; workers there claim work
with ``FOR UPDATE SKIP LOCKED``.
"""

from __future__ import annotations

import fcntl
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

#: A row lock that orders writers of the row without waiting for inserts that reference
#: it (PostgreSQL: FOR NO KEY UPDATE; such inserts take FOR KEY SHARE on the row, which a
#: plain FOR UPDATE waits for): for counters such as a merchant's next sequence number.
NO_KEY_UPDATE: dict[str, Any] = {"key_share": True}

#: Whether this process's database writes are background work (the outbox worker,
#: the indexer) that request handlers must not keep waiting: see ``ProcessWriteLock``.
_background_writer = False


def write_in_background() -> None:
    """Mark this process's SQLite writers as background work (call before opening the
    database): while one waits for the write lock, request writers let it go first."""
    global _background_writer
    _background_writer = True


#: Page cache of each SQLite connection, KiB (SQLite's default: 2,000). The API keeps a
#: connection per busy request thread, each cache filling to its size, and another
#: process's commit empties it anyway (WAL): at 1 MiB, an API process under eight
#: concurrent batch clients peaked at 160-163 MiB instead of 175-183.
SQLITE_CACHE_KIB = 1024


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
            cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
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

        database = make_url(url).database or ""
        on_disk = database not in ("", ":memory:") and not database.startswith("file:")
        across = ProcessWriteLock(Path(database), _background_writer) if on_disk else None
        _write_locks[engine] = FairLock(across)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    return create_engine(url, pool_pre_ping=True, **kwargs)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


class ProcessWriteLock:
    """SQLite's one writer, shared in order between the processes of one database.

    Role all runs the API, the outbox worker and the indexer as three processes.
    Left to SQLite's busy handler (polling with sleeps of up to 100 ms) the worker
    lost every time: the API's threads hand the lock on without a gap, and nothing
    was confirmed while requests kept coming. Two lock files next to the database
    (``flock``: the waiter sleeps in the kernel, and a crashed holder's lock goes
    with its process) put the processes in line:

    - every writer holds ``<db>.writer.lock`` from before ``BEGIN IMMEDIATE`` to
      after ``COMMIT``;
    - a background writer (``write_in_background``) takes ``<db>.turn.lock``
      exclusively until it holds the writer lock, and request writers pass the
      turn lock (shared, at once released) on their way in: while a background
      writer waits, no request writer gets ahead of it, so it waits for at most the
      transactions already in line.

    Threads of one process are put in line by ``FairLock`` first: one thread per
    process at a time uses these (process-wide) locks.
    """

    def __init__(self, database: Path, background: bool) -> None:
        self.background = background
        self._writer = (database.parent / f"{database.name}.writer.lock").open("a")
        self._turn = (database.parent / f"{database.name}.turn.lock").open("a")

    def acquire(self) -> None:
        if self.background:
            fcntl.flock(self._turn, fcntl.LOCK_EX)
            try:
                fcntl.flock(self._writer, fcntl.LOCK_EX)
            finally:
                fcntl.flock(self._turn, fcntl.LOCK_UN)
        else:
            fcntl.flock(self._turn, fcntl.LOCK_SH)
            fcntl.flock(self._turn, fcntl.LOCK_UN)
            fcntl.flock(self._writer, fcntl.LOCK_EX)

    def release(self) -> None:
        fcntl.flock(self._writer, fcntl.LOCK_UN)


class FairLock:
    """A lock granted in the order it was asked for (re-entrant per thread).

    SQLite's own wait for its write lock is polling with sleeps of up to 100 ms,
    so under load one writer (often the outbox worker) can lose for tens of
    seconds. Writers of one process queue here first, in arrival order; with
    ``across``, the holder then takes its process's turn among the database's
    other processes.
    """

    def __init__(self, across: ProcessWriteLock | None = None) -> None:
        self._across = across
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
        outermost = self._depth == 1
        if outermost and self._across is not None:
            try:
                self._across.acquire()
            except BaseException:
                self._leave()
                raise
        try:
            yield
        finally:
            if outermost and self._across is not None:
                self._across.release()
            self._leave()

    def _leave(self) -> None:
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


def is_postgres(bind: Engine | Session) -> bool:
    """Whether an engine, or the engine a session is bound to, is PostgreSQL."""
    engine = bind.bind if isinstance(bind, Session) else bind
    return engine is not None and engine.dialect.name == "postgresql"
