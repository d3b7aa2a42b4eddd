"""The e2e bench's stack: the one launcher (:class:`bench.stack.Stack`) with the bench's
four merchants, a fresh database, and ``pointsnet serve`` in one of three layouts.

- default: ``serve`` (role all: the API in that process, the worker and indexer as
  the children it supervises);
- ``--in-process``: ``serve --in-process`` (every role a thread of one process);
- ``--instrument``: the three roles as separate processes, each started through
  :mod:`bench.instrumented_serve`.

``--api-processes N`` (N > 1) adds ``--workers N`` to the process serving the API: uvicorn
then runs the API in N spawned processes below it (the process itself only manages them,
and supervises the worker and indexer in the default layout). ``--lanes N`` sets
``POINTSNET_SIGNERS`` (the devnet's signer pool, one nonce lane each) for the deploy,
which funds the keys and grants them the issuer role, and for every gateway process: the
outbox worker process then runs one signer lane per key.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from bench.e2e.config import ANVIL_ARGS, MERCHANTS, E2EConfig, Progress
from bench.e2e.procstats import child_roles, spawned_workers
from bench.stack import SERVE, Stack, wait_drained

#: ``--instrument``: serve through the instrumented wrapper.
INSTRUMENTED = (sys.executable, "-m", "bench.instrumented_serve")


class GatewayStack(Stack):
    """anvil + contracts + merchants + ``pointsnet serve`` in subprocesses, on a fresh DB."""

    def __init__(self, config: E2EConfig, label: str, progress: Progress) -> None:
        super().__init__(
            merchants=[(name, currency) for name, currency, _low, _high in MERCHANTS],
            block_time=config.block_time,
            gas_limit=config.gas_limit,
            anvil_args=ANVIL_ARGS,
            # The default limiter holds one API key to 1,000 requests/s; the
            # bench measures the gateway, not the limiter.
            env={
                "POINTSNET_RATE_LIMIT_PER_MINUTE": str(10**9),
                "POINTSNET_SIGNERS": str(config.lanes),
            },
            settings={"signers": config.lanes},
            serve=INSTRUMENTED if config.instrument else SERVE,
            keep=config.keep,
            prefix=f"pointsnet-e2e-{label}-",
            progress=progress,
        )
        self.config = config
        self.label = label
        #: Every process of the gateway by role, its supervised children included.
        self.pids: dict[str, int] = {}
        #: What bench/instrumented_serve.py wrote, by role (with --instrument).
        self.instrument: dict[str, Any] = {}
        self.engine: Engine | None = None
        self.database_url = ""
        self._drop_database: Callable[[], None] | None = None

    def start(self) -> Self:
        """The stack on a fresh database, the gateway serving, the merchants' limits lifted."""
        self.database_url = self._fresh_database()
        self.overrides["database_url"] = self.database_url
        super().start()
        self.close_context()
        self.engine = engine_for(self.database_url)
        self._start_server()
        self.lift_merchant_limits(timeout=60)
        return self

    def _fresh_database(self) -> str:
        url = self.config.database_url
        if not url:
            return f"sqlite:///{self.data_dir / 'gateway.db'}"
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite":
            path = Path(parsed.database or "gateway.db")
            path = path.with_name(f"{path.stem}-{self.label}-{uuid.uuid4().hex[:6]}{path.suffix}")
            return str(parsed.set(database=str(path)))
        # PostgreSQL (or another server): a database of our own, dropped at the end.
        name = f"pointsnet_e2e_{self.label}_{uuid.uuid4().hex[:8]}"
        admin = engine_for(url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))

        def drop() -> None:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()

        self._drop_database = drop
        return parsed.set(database=name).render_as_string(hide_password=False)

    def _start_server(self) -> None:
        workers = self.config.api_processes
        api = ("--workers", str(workers)) if workers > 1 else ()
        if self.config.in_process:
            self.spawn("all", "--in-process", *api)
        elif self.config.instrument:
            # The supervisor's children would run plain gateway.cli: each role is started
            # through the instrumented wrapper instead (the same three processes).
            for role in ("api", "worker", "indexer"):
                self.spawn(role, "--role", role, *(api if role == "api" else ()))
        else:
            self.spawn("api", *api)  # role all: the API here, worker and indexer its children
        deadline = time.monotonic() + 60
        self.wait_healthy(timeout=60)
        self.pids = {role: proc.pid for role, proc in self.processes.items()}
        if set(self.processes) == {"api"}:
            self.pids.update(self._supervised_children(self.processes["api"].pid, deadline))

    def _supervised_children(self, pid: int, deadline: float) -> dict[str, int]:
        """The worker and indexer processes the role-all supervisor ``pid`` started."""
        children: dict[str, int] = {}
        while time.monotonic() < deadline:
            children = child_roles(pid)
            if {"worker", "indexer"} <= set(children):
                return children
            time.sleep(0.1)
        raise RuntimeError(f"gateway children not found (saw {children}); see {self.data_dir}")

    def profile_targets(self) -> dict[str, int]:
        """The processes to profile, by name: each role's process, and with several API
        processes uvicorn's workers (``api-1``, ...) in place of the process managing them."""
        targets = dict(self.pids)
        for role in ("api", "all"):
            workers = spawned_workers(targets[role]) if role in targets else []
            if workers:
                if role == "api":
                    del targets[role]  # only uvicorn's manager there
                targets.update({f"api-{i}": pid for i, pid in enumerate(workers, 1)})
        return targets

    @property
    def database_name(self) -> str | None:
        """The run's own PostgreSQL database (None on SQLite)."""
        assert self.engine is not None
        return None if self.engine.dialect.name == "sqlite" else self.engine.url.database

    def wait_drained(self, timeout: float) -> bool:
        """Wait until no event is accepted or submitted; False on timeout."""
        assert self.engine is not None
        return wait_drained(self.engine, timeout, txs=False)

    @property
    def wal_path(self) -> Path | None:
        """The SQLite write-ahead log (None on PostgreSQL)."""
        assert self.engine is not None
        if self.engine.dialect.name != "sqlite":
            return None
        return Path(f"{self.engine.url.database}-wal")

    def database_bytes(self) -> int:
        """The database's size with the gateway stopped (SQLite: after a full checkpoint)."""
        self.stop_gateway()
        assert self.engine is not None
        if self.engine.dialect.name == "sqlite":
            with self.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            path = Path(self.engine.url.database or "")
            return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())
        with self.engine.connect() as conn:
            return int(conn.scalar(text("SELECT pg_database_size(current_database())")) or 0)

    def stop_gateway(self) -> None:
        """Stop the gateway's processes (SIGINT, then SIGKILL after 20 s; a supervisor stops
        its children itself); idempotent."""
        self.stop_processes(signal.SIGINT, timeout=20)
        spawned = {proc.pid for proc in self.processes.values()}
        for pid in set(self.pids.values()) - spawned:  # what a killed supervisor left behind
            with contextlib.suppress(OSError):
                if b"--supervised-by" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    os.kill(pid, signal.SIGKILL)
        self.pids = {}

    def __exit__(self, *_exc: object) -> None:
        self.stop_gateway()
        for path in self.data_dir.glob("instrument-*.json"):
            with contextlib.suppress(OSError, ValueError):
                self.instrument[path.stem.removeprefix("instrument-")] = json.loads(
                    path.read_text()
                )
        if self.engine is not None:
            self.engine.dispose()
        if self._drop_database is not None:
            with contextlib.suppress(Exception):
                self._drop_database()
        super().__exit__()


def engine_for(url: str, **kwargs: Any) -> Engine:
    """An engine on ``url`` (``postgresql://`` through psycopg 3)."""
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return create_engine(url, **kwargs)
