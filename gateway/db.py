"""Database engine and sessions: SQLite (WAL) by default, PostgreSQL by URL.

SQLite gets WAL journaling, ``synchronous=NORMAL`` (durable at each WAL
checkpoint, crash-safe) and a busy timeout so the API, the worker and the
indexer can share one file.  PostgreSQL is used as is; workers there claim work
with ``FOR UPDATE SKIP LOCKED``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

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

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    return create_engine(url, pool_pre_ping=True, **kwargs)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A write session whose work commits together at the end, or not at all."""
    with factory() as session, session.begin():
        session.connection(execution_options={"pointsnet_write": True})
        yield session


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"
