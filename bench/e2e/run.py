"""``pointsnet bench e2e``: the gateway end to end, beside a naive mint-per-event integration.

A benchmark, not a test: every figure comes from the run that prints it.

1. For each mode (``single``: one event per ``POST /v1/events``; ``batch``:
   ``POST /v1/events/batch`` with ``batch_size`` events per request) a fresh
   stack: its own anvil (automine, or interval mining with ``--block-time``),
   the contracts deployed, four merchants admitted, and the gateway as a real
   ``pointsnet serve`` process (role ``all``: the API in that process, the outbox
   worker with the webhook dispatcher and the indexer as its child processes; with
   ``--in-process`` all of them as threads of one process) on a fresh database in a
   temporary data dir.
2. Each merchant raises its merchant-wide velocity limits through
   ``PUT /v1/rules`` (the seed programme holds events beyond 1,000 a minute per
   merchant for review) and the bench waits until that rule set is on chain.
3. Two phases per mode: ``rate`` (open loop at ``--rate`` events/s; latency is
   counted from each request's *scheduled* time, so a backlog shows instead of
   hiding) and ``saturation`` (``--clients`` closed-loop clients back to back).
   After each phase the bench waits until the outbox is drained.
4. Confirmation times come from the database (``events.updated_at`` of a
   confirmed event is the worker's confirming commit) against each event's
   client send time, for every event; a sample of events is also polled through
   ``GET /v1/events/{id}`` as a client would.
5. The naive baseline on its own anvil (same mining): a plain OpenZeppelin
   ERC-20 ``mint`` transaction per event with web3.py (build, sign, send, wait
   for the receipt), sequential, then with several threads each with its own
   key and token. Time-boxed; the measured rate is applied to the full count.

Gateway CPU and peak RSS are read from ``/proc`` (or psutil) for each of the
gateway's processes (the API and the children it supervises, found by their
``--role``) and summed; the load generator runs on the same machine and its CPU
is reported beside it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, create_engine, func, select, text
from sqlalchemy.engine import make_url

from chain.config import PROJECT_ROOT, anvil_dev_key
from chain.deploy import deploy
from chain.devnet import Devnet, anvil_binary, free_port
from gateway.settings import Settings

#: The event mix (fractions of all events). Refunds are full refunds of an
#: earlier purchase of the same customer; check-ins and reviews earn fixed bonuses.
MIX: dict[str, float] = {
    "purchase_new": 0.28,
    "purchase_existing": 0.42,
    "refund": 0.10,
    "check_in": 0.10,
    "review": 0.10,
}

#: (name, currency, smallest order, largest order) of the bench merchants.
MERCHANTS: tuple[tuple[str, str, int, int], ...] = (
    ("Lumière Paris", "EUR", 20, 300),
    ("Sakura Goods", "JPY", 2_000, 40_000),
    ("Maple & Co", "USD", 15, 250),
    ("Thames Outfitters", "GBP", 15, 250),
)

#: Targets the run is compared against (reported, never adjusted).
TARGETS = {
    "batch_confirmed_per_s": 1_500.0,
    "single_confirmed_per_s": 500.0,
    "ratio_to_naive": 15.0,
    "accept_p99_ms_at_500": 25.0,
    "confirm_p50_s_1s_blocks": 1.5,
}

FINAL = ("confirmed", "failed", "rejected", "held")
IN_FLIGHT = ("accepted", "submitted")

Progress = Callable[[str], None]


@dataclass(frozen=True)
class E2EConfig:
    """What to run; the CLI's options."""

    events: int = 20_000
    clients: int = 8
    rate: float = 500.0
    block_time: float | None = None
    database_url: str | None = None
    mode: str = "both"  # single | batch | both
    batch_size: int = 100
    rate_share: float = 0.4  # fraction of each mode's events sent in the rate phase
    naive_threads: int = 4
    naive_seconds: float = 20.0  # time box of each naive variant
    rate_seconds: float = 60.0  # time box of the rate phase (sending)
    saturation_seconds: float = 120.0  # time box of the saturation phase (sending)
    gas_limit: int = 1_000_000_000
    drain_timeout: float = 240.0
    poll_samples: int = 200  # events polled through GET /v1/events/{id} per phase
    profile: bool = False  # py-spy record the server during each saturation phase
    in_process: bool = False  # serve --in-process: API, worker and indexer in one process
    keep: bool = False  # keep each stack's data dir (server logs, database)
    instrument: bool = False  # serve through bench/instrumented_serve.py (SQL, lock times)
    out_dir: Path | None = None  # raw JSON, chart and profiles
    seed: int = 7

    @property
    def tag(self) -> str:
        """Names the output files: ``automine`` or ``block1s``."""
        return "automine" if self.block_time is None else f"block{self.block_time:g}s"

    @property
    def modes(self) -> tuple[str, ...]:
        if self.mode == "both":
            return ("single", "batch")
        if self.mode in ("single", "batch"):
            return (self.mode,)
        raise ValueError(f"mode must be single, batch or both, not {self.mode!r}")


# ====================================================================== workload


@dataclass
class Planned:
    """One merchant event to send."""

    index: int
    merchant: int  # index into MERCHANTS
    kind: str  # a key of MIX
    customer: str
    key: str
    body: dict[str, Any]


class Workload:
    """A deterministic stream of mixed events over a growing customer base.

    A customer's successive events fall on successive days (in the past), so
    daily check-in and review caps do not zero them; each customer has its own
    device and one of a pool of home IPs (about three customers per IP).
    """

    def __init__(self, seed: int, tag: str, refund_lag: int) -> None:
        self.rng = random.Random(seed)
        self.tag = tag
        self.refund_lag = refund_lag
        self.count = 0
        self.customers: list[list[str]] = [[] for _ in MERCHANTS]
        self.open_orders: list[list[tuple[int, str, str, int]]] = [[] for _ in MERCHANTS]
        self.days: dict[str, int] = {}
        self.start = datetime.now(UTC).replace(hour=10, minute=0, second=0, microsecond=0)
        self.start -= timedelta(days=500)
        self.orders = 0

    def take(self, n: int, phase: str) -> list[Planned]:
        return [self.next(phase) for _ in range(n)]

    def forget(self, unsent: list[Planned]) -> None:
        """Events planned but never sent (a time box ran out): later events must not
        refund their orders or count their customers as existing."""
        indexes = {p.index for p in unsent}
        for orders in self.open_orders:
            orders[:] = [o for o in orders if o[0] not in indexes]
        gone = {p.customer for p in unsent if p.kind == "purchase_new"}
        for pool in self.customers:
            pool[:] = [c for c in pool if c not in gone]

    def _when(self, customer: str) -> str:
        day = self.days.get(customer, 0)
        self.days[customer] = day + 1
        minute = self.rng.randrange(0, 600)
        return (self.start + timedelta(days=day, minutes=minute)).strftime("%Y-%m-%dT%H:%M:%SZ")

    def _new_customer(self, merchant: int) -> str:
        customer = f"{self.tag}-c{merchant}-{len(self.customers[merchant])}"
        self.customers[merchant].append(customer)
        return customer

    def _existing(self, merchant: int) -> str | None:
        pool = self.customers[merchant]
        return self.rng.choice(pool) if pool else None

    def next(self, phase: str) -> Planned:
        index = self.count
        self.count += 1
        merchant = self.rng.randrange(len(MERCHANTS))
        roll, kind, acc = self.rng.random(), "purchase_new", 0.0
        for name, share in MIX.items():
            acc += share
            if roll < acc:
                kind = name
                break
        key = f"{phase}-{index}"
        if kind == "refund":
            eligible = [o for o in self.open_orders[merchant] if o[0] <= index - self.refund_lag]
            if eligible:
                order = self.rng.choice(eligible)
                self.open_orders[merchant].remove(order)
                _, customer, order_id, _amount = order
                body = {
                    "type": "refund",
                    "customer_id": customer,
                    "occurred_at": self._when(customer),
                    "refund": {"order_id": order_id},
                }
                return Planned(index, merchant, kind, customer, key, body)
            kind = "purchase_existing"
        customer_or_none = None if kind == "purchase_new" else self._existing(merchant)
        if customer_or_none is None:
            kind, customer = ("purchase_new", self._new_customer(merchant))
        else:
            customer = customer_or_none
        body = {"type": "check_in" if kind == "check_in" else kind.split("_")[0]}
        body.update(customer_id=customer, occurred_at=self._when(customer))
        body["device_id"] = f"dev-{customer}"
        body["ip"] = f"198.51.{hash(customer) % 200}.{hash(customer[::-1]) % 250 + 1}"
        if kind.startswith("purchase"):
            _name, currency, low, high = MERCHANTS[merchant]
            amount = self.rng.randint(low, high)
            self.orders += 1
            order_id = f"{self.tag}-o{self.orders}"
            category = self.rng.choice(("apparel", "home", "beauty", "food"))
            body["type"] = "purchase"
            body["order"] = {
                "id": order_id,
                "amount": f"{amount}.00",
                "currency": currency,
                "items": [
                    {"sku": f"sku-{self.rng.randrange(500)}", "category": category,
                     "amount": f"{amount}.00", "eco": self.rng.random() < 0.1}
                ],
            }  # fmt: skip
            self.open_orders[merchant].append((index, customer, order_id, amount))
        return Planned(index, merchant, kind, customer, key, body)


# ====================================================================== process figures


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` (its threads included)."""
    try:
        import psutil

        times = psutil.Process(pid).cpu_times()
        return float(times.user + times.system)
    except ImportError:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except Exception:
        return math.nan


def _postgres_cpu_seconds() -> float:
    """CPU seconds of a local PostgreSQL server: its live processes, plus the backends
    that already exited (reaped by the postmaster, so counted in its children's times)."""
    try:
        import psutil
    except ImportError:
        return math.nan
    total = 0.0
    for proc in psutil.process_iter(["name", "cpu_times", "ppid"]):
        times = proc.info["cpu_times"]
        if proc.info["name"] != "postgres" or times is None:
            continue
        total += times.user + times.system
        with contextlib.suppress(psutil.Error):
            if psutil.Process(proc.info["ppid"]).name() != "postgres":  # the postmaster
                total += times.children_user + times.children_system
    return total


def _memory_kib(pid: int, field_name: str) -> int:
    """A ``/proc/<pid>/status`` memory figure (VmRSS, VmHWM) in KiB; 0 if unavailable."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    try:
        import psutil

        return int(psutil.Process(pid).memory_info().rss // 1024)
    except Exception:
        return 0


class Monitor:
    """Samples CPU and RSS of named processes every ``interval`` seconds in a thread."""

    def __init__(self, interval: float = 0.25) -> None:
        self.interval = interval
        self.pids: dict[str, int] = {}
        self.samples: list[tuple[float, dict[str, tuple[float, int]]]] = []
        self.file: Path | None = None
        self.file_peak = 0
        self.postgres = False  # also sum the CPU of local "postgres" processes
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-monitor", daemon=True)

    def __enter__(self) -> Monitor:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def watch(self, name: str, pid: int) -> None:
        self.pids[name] = pid

    def watch_file(self, path: Path | None) -> None:
        """Track the largest size ``path`` reaches (the SQLite WAL)."""
        self.file = path

    def snapshot(self) -> dict[str, tuple[float, int]]:
        figures = {
            name: (_cpu_seconds(pid), _memory_kib(pid, "VmRSS"))
            for name, pid in list(self.pids.items())
        }
        if self.postgres:
            figures["postgres"] = (_postgres_cpu_seconds(), 0)
        return figures

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.time(), self.snapshot()))
            if self.file is not None:
                with contextlib.suppress(OSError):
                    self.file_peak = max(self.file_peak, self.file.stat().st_size)
            self._stop.wait(self.interval)

    def window(self, name: str, t0: float, t1: float) -> tuple[float, int]:
        """(CPU seconds, peak RSS KiB) of ``name`` between wall times ``t0`` and ``t1``."""
        inside = [s for t, s in self.samples if t0 <= t <= t1 and name in s]
        if len(inside) < 2:
            return math.nan, 0
        cpu = inside[-1][name][0] - inside[0][name][0]
        return cpu, max(s[name][1] for s in inside)


# ====================================================================== the stack


@dataclass
class MerchantKey:
    id: int
    name: str
    api_key: str


class GatewayStack:
    """anvil + contracts + merchants + ``pointsnet serve`` in a subprocess, on a fresh DB."""

    def __init__(self, config: E2EConfig, label: str, progress: Progress) -> None:
        self.config = config
        self.label = label
        self.progress = progress
        self.tmp = Path(tempfile.mkdtemp(prefix=f"pointsnet-e2e-{label}-"))
        self.node: Devnet | None = None
        #: The processes the bench started, by role: "api" (role all, supervising the
        #: others), "all" (--in-process), or "api" + "worker" + "indexer" (--instrument).
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        #: Every process of the gateway by role, its supervised children included.
        self.pids: dict[str, int] = {}
        self._logs: list[Any] = []
        #: What bench/instrumented_serve.py wrote, by role (with --instrument).
        self.instrument: dict[str, Any] = {}
        self.port = free_port()
        self.merchants: list[MerchantKey] = []
        self.engine: Engine | None = None
        self.database_url = ""
        self._drop_database: Callable[[], None] | None = None
        self.keep = config.keep

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> GatewayStack:
        try:
            self._start()
        except BaseException:
            self.keep = True
            self.__exit__()
            raise
        return self

    def _start(self) -> None:
        from gateway.context import GatewayContext
        from gateway.migrate import upgrade
        from gateway.services.merchants import register

        rpc_port = free_port()
        self.node = Devnet(
            port=rpc_port,
            block_time=self.config.block_time,
            gas_limit=self.config.gas_limit,
            log_file=self.tmp / "anvil.log",
        ).start()
        self.database_url = self._fresh_database()
        settings = Settings(
            data_dir=self.tmp,
            rpc_url=self.node.url,
            devnet_port=rpc_port,
            timelock_delay=0,
            database_url=self.database_url,
            port=self.port,
            _env_file=None,  # type: ignore[call-arg]
        )
        deploy(settings)
        context = GatewayContext.open(settings)
        upgrade(context.engine)
        for name, currency, _low, _high in MERCHANTS:
            created = register(context, name, currency)
            self.merchants.append(MerchantKey(created.id, created.name, created.api_key))
        context.engine.dispose()
        self.engine = _engine(self.database_url)
        self._start_server()
        self._raise_merchant_limits()

    def _fresh_database(self) -> str:
        url = self.config.database_url
        if not url:
            return f"sqlite:///{self.tmp / 'gateway.db'}"
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite":
            path = Path(parsed.database or "gateway.db")
            path = path.with_name(f"{path.stem}-{self.label}-{uuid.uuid4().hex[:6]}{path.suffix}")
            return str(parsed.set(database=str(path)))
        # PostgreSQL (or another server): a database of our own, dropped at the end.
        name = f"pointsnet_e2e_{self.label}_{uuid.uuid4().hex[:8]}"
        admin = _engine(url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))

        def drop() -> None:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()

        self._drop_database = drop
        return parsed.set(database=name).render_as_string(hide_password=False)

    def _server_env(self) -> dict[str, str]:
        assert self.node is not None
        env = {k: v for k, v in os.environ.items() if not k.startswith("POINTSNET_")}
        env.update(
            POINTSNET_DATA_DIR=str(self.tmp),
            POINTSNET_RPC_URL=self.node.url,
            POINTSNET_DEVNET_PORT=str(self.node.port),
            POINTSNET_TIMELOCK_DELAY="0",
            POINTSNET_DATABASE_URL=self.database_url,
            POINTSNET_HOST="127.0.0.1",
            POINTSNET_PORT=str(self.port),
            # The default limiter holds one API key to 1,000 requests/s; the
            # bench measures the gateway, not the limiter.
            POINTSNET_RATE_LIMIT_PER_MINUTE=str(10**9),
        )
        env["PYTHONPATH"] = str(PROJECT_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        return env

    def _spawn(self, name: str, *args: str) -> None:
        if self.config.instrument:
            command = [sys.executable, "-m", "bench.instrumented_serve"]
        else:
            command = [sys.executable, "-m", "gateway.cli", "serve"]
        command += args
        log = (self.tmp / f"server-{name}.log").open("wb")
        self._logs.append(log)
        self.processes[name] = subprocess.Popen(
            command, cwd=self.tmp, env=self._server_env(), stdin=subprocess.DEVNULL,
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip

    def _start_server(self) -> None:
        if self.config.in_process:
            self._spawn("all", "--in-process")
        elif self.config.instrument:
            # The supervisor's children would run plain gateway.cli: each role is started
            # through the instrumented script instead (the same three processes).
            for role in ("api", "worker", "indexer"):
                self._spawn(role, "--role", role)
        else:
            self._spawn("api")  # role all: the API here, worker and indexer its children
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for role, proc in self.processes.items():
                if proc.poll() is not None:
                    raise RuntimeError(
                        f"gateway ({role}) exited early; see {self.tmp}/server-{role}.log"
                    )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + "/healthz", timeout=1, trust_env=False).status_code == 200:
                    break
            time.sleep(0.1)
        else:
            raise RuntimeError(f"gateway did not answer within 60 s; see {self.tmp}/server-*.log")
        self.pids = {role: proc.pid for role, proc in self.processes.items()}
        if set(self.processes) == {"api"}:
            self.pids.update(self._supervised_children(self.processes["api"].pid, deadline))

    def _supervised_children(self, pid: int, deadline: float) -> dict[str, int]:
        """The worker and indexer processes the role-all supervisor ``pid`` started."""
        children: dict[str, int] = {}
        while time.monotonic() < deadline:
            children = _child_roles(pid)
            if {"worker", "indexer"} <= set(children):
                return children
            time.sleep(0.1)
        raise RuntimeError(f"gateway children not found (saw {children}); see {self.tmp}")

    def headers(self, merchant: int) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.merchants[merchant].api_key}"}

    def _raise_merchant_limits(self) -> None:
        raise_merchant_limits(self.url, [m.api_key for m in self.merchants], timeout=60)

    def wait_drained(self, timeout: float) -> bool:
        """Wait until no event is accepted or submitted; False on timeout."""
        from gateway.models import ChainOp, Event

        assert self.engine is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.engine.connect() as conn:
                events = conn.scalar(
                    select(func.count(Event.id)).where(Event.status.in_(IN_FLIGHT))
                )
                ops = conn.scalar(
                    select(func.count(ChainOp.id)).where(ChainOp.status.in_(("pending", "sent")))
                )
            if not events and not ops:
                return True
            time.sleep(0.2)
        return False

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
        for proc in self.processes.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for proc in self.processes.values():
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        spawned = {proc.pid for proc in self.processes.values()}
        for pid in set(self.pids.values()) - spawned:  # what a killed supervisor left behind
            with contextlib.suppress(OSError):
                if b"--supervised-by" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    os.kill(pid, signal.SIGKILL)
        self.pids = {}
        for log in self._logs:
            log.close()
        self._logs = []

    def __exit__(self, *_exc: object) -> None:
        self.stop_gateway()
        for path in self.tmp.glob("instrument-*.json"):
            with contextlib.suppress(OSError, ValueError):
                self.instrument[path.stem.removeprefix("instrument-")] = json.loads(
                    path.read_text()
                )
        if self.engine is not None:
            self.engine.dispose()
        if self.node is not None:
            self.node.stop()
        if self._drop_database is not None:
            with contextlib.suppress(Exception):
                self._drop_database()
        if self.keep:
            self.progress(f"kept {self.tmp} (server-*.log, anvil.log, database) for inspection")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


def _child_roles(pid: int) -> dict[str, int]:
    """The child processes of ``pid`` by the ``--role`` on their command line."""
    children: list[tuple[int, list[str]]] = []
    try:
        import psutil

        for child in psutil.Process(pid).children():
            with contextlib.suppress(psutil.Error):
                children.append((child.pid, child.cmdline()))
    except ImportError:
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    command = stat.with_name("cmdline").read_bytes().decode()
                    children.append((int(stat.parent.name), command.split("\0")))
    return {
        command[command.index("--role") + 1]: child
        for child, command in children
        if "--role" in command[:-1]
    }


def _engine(url: str, **kwargs: Any) -> Engine:
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return create_engine(url, **kwargs)


# ====================================================================== load


@dataclass
class Request:
    merchant: int
    path: str
    body: bytes
    keys: list[str]
    idempotency_key: str | None = None


@dataclass
class Sent:
    """What one request did: times (perf counter and wall clock) and the answer."""

    scheduled: float
    start: float
    end: float
    wall_start: float
    status: int
    n_events: int
    accepted: dict[str, str]  # idempotency key -> event id (202, status accepted/confirmed)
    outcomes: Counter[str]
    keys: list[str]  # idempotency keys of the events in the request


@dataclass
class LoadResult:
    sent: list[Sent]
    t0_wall: float
    t1_wall: float
    polled: list[float]  # client-observed event→confirmed seconds (polled)
    client_cpu: float


def build_requests(planned: list[Planned], mode: str, batch_size: int) -> list[Request]:
    if mode == "single":
        return [
            Request(p.merchant, "/v1/events", json.dumps(p.body).encode(), [p.key], p.key)
            for p in planned
        ]
    requests: list[Request] = []
    buffers: list[list[Planned]] = [[] for _ in MERCHANTS]

    def flush(merchant: int) -> None:
        items = buffers[merchant]
        body = {"events": [{"idempotency_key": p.key, "event": p.body} for p in items]}
        requests.append(
            Request(merchant, "/v1/events/batch", json.dumps(body).encode(), [p.key for p in items])
        )
        buffers[merchant] = []

    for p in planned:
        buffers[p.merchant].append(p)
        if len(buffers[p.merchant]) >= batch_size:
            flush(p.merchant)
    for merchant, items in enumerate(buffers):
        if items:
            flush(merchant)
    return requests


def _parse(request: Request, response: httpx.Response) -> tuple[dict[str, str], Counter[str]]:
    accepted: dict[str, str] = {}
    outcomes: Counter[str] = Counter()
    try:
        body = response.json()
    except ValueError:
        outcomes[f"http_{response.status_code}"] += len(request.keys)
        return accepted, outcomes
    if request.idempotency_key is not None:
        if response.status_code == 202:
            accepted[request.idempotency_key] = body["id"]
            outcomes[body["status"]] += 1
        else:
            outcomes[body.get("error", {}).get("code", f"http_{response.status_code}")] += 1
        return accepted, outcomes
    if response.status_code != 200:
        outcomes[f"http_{response.status_code}"] += len(request.keys)
        return accepted, outcomes
    for item in body["data"]:
        if item["status_code"] == 202:
            accepted[item["idempotency_key"]] = item["event"]["id"]
            outcomes[item["event"]["status"]] += 1
        else:
            outcomes[(item.get("error") or {}).get("code", str(item["status_code"]))] += 1
    return accepted, outcomes


async def _drive(
    stack: GatewayStack,
    requests: list[Request],
    clients: int,
    rate: float | None,
    poll_every: int,
    seconds: float = math.inf,
) -> LoadResult:
    """Send ``requests`` (open loop at ``rate`` requests/s, or closed loop) from ``clients``;
    no request starts after ``seconds``."""
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    headers = [
        {**stack.headers(i), "Content-Type": "application/json"} for i in range(len(MERCHANTS))
    ]
    sent: list[Sent] = []
    polled: list[float] = []
    pollers: list[asyncio.Task[None]] = []
    loop = asyncio.get_running_loop()
    cpu0 = time.process_time()
    async with (
        httpx.AsyncClient(base_url=stack.url, limits=limits, timeout=300, trust_env=False) as http,
        httpx.AsyncClient(base_url=stack.url, timeout=60, trust_env=False) as poll_http,
    ):

        async def poll(event_id: str, merchant: int, wall_start: float) -> None:
            # Every 10% of the time waited so far (at least 0.1 s): within 10% of the
            # latency, without hundreds of GETs per event loading the gateway it measures.
            deadline = time.time() + 300
            while time.time() < deadline:
                await asyncio.sleep(max(0.1, 0.1 * (time.time() - wall_start)))
                try:
                    answer = await poll_http.get(
                        f"/v1/events/{event_id}", headers=headers[merchant]
                    )
                except httpx.HTTPError:
                    continue
                if answer.status_code == 200 and answer.json()["status"] in FINAL:
                    polled.append(time.time() - wall_start)
                    return

        async def send(index: int, request: Request, scheduled: float) -> None:
            h = headers[request.merchant]
            if request.idempotency_key is not None:
                h = {**h, "Idempotency-Key": request.idempotency_key}
            wall = time.time()
            start = loop.time()
            try:
                response = await http.post(request.path, content=request.body, headers=h)
                accepted, outcomes = _parse(request, response)
                status = response.status_code
            except httpx.HTTPError as exc:
                accepted, outcomes, status = {}, Counter({type(exc).__name__: 1}), 0
            end = loop.time()
            n = len(request.keys)
            record = Sent(scheduled, start, end, wall, status, n, accepted, outcomes, request.keys)
            sent.append(record)
            if poll_every and index % poll_every == 0 and accepted:
                first = next(iter(accepted.values()))
                pollers.append(asyncio.create_task(poll(first, request.merchant, wall)))

        t0_wall = time.time()
        stop_sending = loop.time() + seconds
        if rate is None:
            queue = iter(enumerate(requests))

            async def client() -> None:
                for index, request in queue:
                    if loop.time() > stop_sending:
                        return
                    await send(index, request, loop.time())

            await asyncio.gather(*(client() for _ in range(clients)))
        else:
            gate = asyncio.Semaphore(clients)
            tasks: list[asyncio.Task[None]] = []
            begin = loop.time()

            async def gated(index: int, request: Request, scheduled: float) -> None:
                try:
                    await send(index, request, scheduled)
                finally:
                    gate.release()

            for index, request in enumerate(requests):
                if loop.time() > stop_sending:
                    break
                due = begin + index / rate
                delay = due - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                await gate.acquire()
                tasks.append(asyncio.create_task(gated(index, request, due)))
            await asyncio.gather(*tasks)
        t1_wall = time.time()
        if pollers:
            await asyncio.wait(pollers, timeout=300)
    return LoadResult(sent, t0_wall, t1_wall, polled, time.process_time() - cpu0)


# ====================================================================== figures


def pct(values: list[float], q: float) -> float:
    """The ``q``-th percentile (nearest rank) of ``values``; NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[rank]


@dataclass
class PhaseFigures:
    """Everything the table shows for one phase (or one naive variant)."""

    name: str
    events: int
    offered_rate: float | None
    planned: int = 0
    accepted: int = 0
    confirmed: int = 0
    on_chain: int = 0  # confirmed events that carried at least one on-chain op
    unfinished: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    mix: dict[str, int] = field(default_factory=dict)
    send_seconds: float = 0.0
    confirm_seconds: float = 0.0
    accepted_per_s: float = 0.0
    confirmed_per_s: float = 0.0
    steady_confirmed_per_s: float = 0.0  # best 10-s window
    accept_ms: dict[str, float] = field(default_factory=dict)
    confirm_s: dict[str, float] = field(default_factory=dict)  # all events, DB timestamps
    polled_s: dict[str, float] = field(default_factory=dict)  # sampled, client polling
    polled_samples: int = 0
    gas: dict[str, float] = field(default_factory=dict)
    txs: dict[str, int] = field(default_factory=dict)
    server_cpu_s: float = math.nan
    server_peak_rss_mib: float = math.nan
    anvil_cpu_s: float = math.nan
    database_cpu_s: float = math.nan  # a local PostgreSQL server's processes, if used
    client_cpu_s: float = math.nan
    cpu_by_role: dict[str, float] = field(default_factory=dict)  # gateway processes
    timeline: list[int] = field(default_factory=list)  # confirmed per second from phase start
    note: str = ""
    extrapolated: bool = False

    def ms(self, values: list[float]) -> dict[str, float]:
        return {f"p{q}": pct(values, q) * 1000 for q in (50, 95, 99)}


def _nan_sum(a: float, b: float) -> float:
    return b if math.isnan(a) else a + b


def _seconds(values: list[float]) -> dict[str, float]:
    return {f"p{q}": pct(values, q) for q in (50, 95, 99)}


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _timeline(t0: float, moments: list[float]) -> list[int]:
    if not moments:
        return []
    bins = [0] * (int(max(moments) - t0) + 1)
    for moment in moments:
        bins[max(0, int(moment - t0))] += 1
    return bins


def _best_window(timeline: list[int], width: int = 10) -> float:
    if not timeline:
        return 0.0
    width = min(width, len(timeline))
    return max(sum(timeline[i : i + width]) for i in range(len(timeline) - width + 1)) / width


def read_phase(stack: GatewayStack, figures: PhaseFigures, load: LoadResult, prefix: str) -> None:
    """Fill ``figures`` from the load result and the gateway's database."""
    from gateway.models import ChainOp, ChainTx, Event

    assert stack.engine is not None
    send_wall: dict[str, float] = {}
    outcomes: Counter[str] = Counter()
    accept_latency: list[float] = []
    for s in load.sent:
        outcomes.update(s.outcomes)
        accept_latency.extend([s.end - s.scheduled] * s.n_events)
        for key in s.accepted:
            send_wall[key] = s.wall_start
    figures.outcomes = dict(outcomes)
    figures.accepted = sum(len(s.accepted) for s in load.sent)
    figures.send_seconds = load.t1_wall - load.t0_wall
    figures.accepted_per_s = figures.accepted / figures.send_seconds
    figures.accept_ms = figures.ms(accept_latency)
    figures.polled_s = _seconds(load.polled)
    figures.polled_samples = len(load.polled)
    figures.client_cpu_s = load.client_cpu
    with stack.engine.connect() as conn:
        rows = conn.execute(
            select(
                Event.idempotency_key, Event.status, Event.updated_at, Event.tx_hash,
                Event.points, Event.clawback,
            ).where(Event.idempotency_key.like(prefix + "%"))
        ).all()  # fmt: skip
        tx_rows = conn.execute(
            select(ChainTx.id, ChainTx.kind, ChainTx.gas_used, ChainTx.status)
            .where(
                ChainTx.id.in_(
                    select(ChainOp.tx_id)
                    .join(Event, Event.id == ChainOp.event_id)
                    .where(Event.idempotency_key.like(prefix + "%"))
                )
            )
            .order_by(ChainTx.id)
        ).all()
        tx_ids = [r.id for r in tx_rows]
        op_rows = conn.execute(
            select(ChainOp.tx_id, ChainOp.kind, ChainOp.member_address, ChainOp.id)
            .where(ChainOp.tx_id.in_(tx_ids), ChainOp.status == "confirmed")
            .order_by(ChainOp.id)
        ).all()
        seen_before = {
            r[0]
            for r in conn.execute(
                select(ChainOp.member_address).where(
                    ChainOp.kind == "issue",
                    ChainOp.status == "confirmed",
                    ChainOp.tx_id.not_in(tx_ids or [-1]),
                    ChainOp.id < (min(r.id for r in op_rows) if op_rows else 0),
                )
            )
        }
    confirm_moments: list[float] = []
    confirm_latency: list[float] = []
    for row in rows:
        if row.status == "confirmed":
            figures.confirmed += 1
            figures.on_chain += 1 if row.tx_hash else 0
            moment = _aware(row.updated_at).timestamp()
            confirm_moments.append(moment)
            if row.idempotency_key in send_wall:
                confirm_latency.append(moment - send_wall[row.idempotency_key])
        elif row.status in IN_FLIGHT:
            figures.unfinished += 1
    figures.confirm_s = _seconds(confirm_latency)
    if confirm_moments:
        figures.confirm_seconds = max(confirm_moments) - load.t0_wall
        figures.confirmed_per_s = figures.confirmed / figures.confirm_seconds
    figures.timeline = _timeline(load.t0_wall, confirm_moments)
    figures.steady_confirmed_per_s = _best_window(figures.timeline)
    _gas_figures(figures, tx_rows, op_rows, seen_before)


def _gas_figures(
    figures: PhaseFigures, tx_rows: Sequence[Any], op_rows: Sequence[Any], seen_before: set[str]
) -> None:
    """Gas per event from ``chain_txs.gas_used``: all-in, and per issuance (new / existing)."""
    ops_by_tx: dict[int, list[Any]] = {}
    for op in op_rows:
        ops_by_tx.setdefault(op.tx_id, []).append(op)
    kinds: Counter[str] = Counter()
    total = 0
    samples: list[tuple[int, int, int]] = []  # (gas, new members, existing members)
    seen = set(seen_before)
    for tx in tx_rows:
        if tx.status != "confirmed" or tx.gas_used is None:
            continue
        kinds[tx.kind] += 1
        total += int(tx.gas_used)
        if tx.kind == "issue":
            new = existing = 0
            for op in ops_by_tx.get(tx.id, []):
                if op.member_address in seen:
                    existing += 1
                else:
                    new += 1
                    seen.add(op.member_address)
            if new + existing:
                samples.append((int(tx.gas_used), new, existing))
    figures.txs = dict(kinds)
    figures.gas["all_in_per_event"] = total / figures.events if figures.events else math.nan
    issued = sum(n + e for _g, n, e in samples)
    figures.gas["issue_per_op"] = sum(g for g, _n, _e in samples) / issued if issued else math.nan
    figures.gas["issue_ops_per_tx"] = issued / len(samples) if samples else math.nan
    fit = _fit_new_existing(samples)
    if fit is not None:
        figures.gas["fixed_per_tx"], figures.gas["new_member"], figures.gas["existing_member"] = fit


def _fit_new_existing(samples: list[tuple[int, int, int]]) -> tuple[float, float, float] | None:
    """Least squares ``gas = a + b*new + c*existing`` over issueBatch transactions.

    None when the batches do not vary enough in their mix to tell b from c.
    """
    if len(samples) < 6:
        return None
    xs = [(1.0, float(n), float(e)) for _g, n, e in samples]
    ys = [float(g) for g, _n, _e in samples]
    ata = [[sum(x[i] * x[j] for x in xs) for j in range(3)] for i in range(3)]
    aty = [sum(x[i] * y for x, y in zip(xs, ys, strict=True)) for i in range(3)]

    def det(m: list[list[float]]) -> float:
        return (
            m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
            - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
            + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
        )

    d = det(ata)
    scale = max(abs(v) for row in ata for v in row) ** 3
    if scale == 0 or abs(d) / scale < 1e-12:
        return None
    solution = []
    for k in range(3):
        m = [row[:] for row in ata]
        for i in range(3):
            m[i][k] = aty[i]
        solution.append(det(m) / d)
    a, b, c = solution
    if b <= 0 or c <= 0:
        return None
    return a, b, c


# ====================================================================== profiling


class Profiler:
    """``py-spy record`` on each gateway process for the duration of a ``with`` block.

    ``--gil`` samples only the thread holding the GIL: where the process's
    Python CPU goes, which is what limits a single gateway process.
    """

    def __init__(self, pids: dict[str, int], output: Path, progress: Progress) -> None:
        self.pids = pids
        self.output = output  # one file per process: <stem>-<role><suffix>
        self.progress = progress
        self.procs: list[subprocess.Popen[bytes]] = []
        self.files: dict[str, Path] = {}

    def __enter__(self) -> Profiler:
        spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        if not Path(spy).exists():
            self.progress("py-spy not found (pip install py-spy): no profile")
            return self
        self.output.parent.mkdir(parents=True, exist_ok=True)
        for role, pid in self.pids.items():
            path = self.output.with_name(f"{self.output.stem}-{role}{self.output.suffix}")
            self.files[role] = path
            command = [spy, "record", "--pid", str(pid), "--rate", "97", "--format", "raw"]
            command += ["--nonblocking", "--threads", "--gil", "--output", str(path)]
            quiet = subprocess.DEVNULL
            self.procs.append(subprocess.Popen(command, stdout=quiet, stderr=quiet))
        return self

    def __exit__(self, *_exc: object) -> None:
        for proc in self.procs:
            proc.send_signal(signal.SIGINT)
        for proc in self.procs:
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


#: Where a sampled stack's time goes, by the first matching frame (most specific first).
PROFILE_BUCKETS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("indexer", ("indexer.py",)),
    ("webhook dispatcher", ("webhooks.py",)),
    (
        "worker: RPC (estimate_gas, fees, send, receipts)",
        ("sender.py", "web3/", "requests/", "urllib3/"),
    ),
    ("worker: DB (pack, store, finalize)", ("worker.py",)),
    ("accept: _member_snapshot SQL", ("_member_snapshot", "_held_badges", "_accounts_seen")),
    ("accept: _merchant_snapshot SQL", ("_merchant_snapshot",)),
    ("accept: _claim_key (idempotency txn 1)", ("_claim_key",)),
    ("accept: _finish_key + commit (txn 2)", ("_finish_key",)),
    ("accept: custodial member (keygen + encrypt)", ("resolve_customer",)),
    ("accept: rules engine", ("rules/",)),
    ("accept: _create_ops / refresh", ("_create_ops",)),
    ("accept: refund lookups", ("_original_purchase", "_original_outcome")),
    ("accept: other in _accept", ("_accept",)),
    ("accept: commit / BEGIN IMMEDIATE wait", ("submit",)),
    ("API: auth + rate limit", ("current_merchant", "authenticate")),
    ("API: rest of the request (routing, validation, JSON)", ("fastapi/", "starlette/")),
    ("HTTP server (uvicorn, asyncio)", ("uvicorn/", "asyncio/", "httptools", "uvloop")),
)


def summarize_profile(path: Path, top: int = 25) -> dict[str, Any]:
    """Shares of samples by bucket, by thread, and the top functions (inclusive)."""
    if not path.exists():
        return {}
    total = 0
    buckets: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    sqlite_inside: Counter[str] = Counter()
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        total += count
        frames = stack.split(";")
        threads[frames[0].split(" ")[0] if frames else "?"] += count
        for frame in set(frames):
            inclusive[frame] += count
        # Innermost project frame decides the bucket.
        chosen = "other"
        for name, needles in PROFILE_BUCKETS:
            if any(n in stack for n in needles):
                chosen = name
                break
        buckets[chosen] += count
        if any(("execute" in f and "sqlite" in f) or "do_execute" in f for f in frames):
            sqlite_inside[chosen] += count
    if "other" in buckets:
        buckets["other (stacks cut short by non-blocking sampling)"] = buckets.pop("other")
    return {
        "samples": total,
        "buckets": {k: v / total for k, v in buckets.most_common()} if total else {},
        "sql_execute_share_by_bucket": {k: v / total for k, v in sqlite_inside.most_common()},
        "threads": {k: v / total for k, v in threads.most_common()} if total else {},
        "top_inclusive": [
            (frame, count / total)
            for frame, count in inclusive.most_common(top * 4)
            if any(p in frame for p in ("gateway/", "chain/", "sqlalchemy", "sqlite3", "web3"))
        ][:top]
        if total
        else [],
    }


# ====================================================================== naive baseline


class NaiveIntegration:
    """What a typical integration does: web3.py, one ``mint`` per event, wait for each receipt.

    Each thread has its own key and its own NaiveERC20 (``mint`` is owner-only),
    deployed before the clock starts. ``build_transaction`` estimates gas and
    prices fees per transaction, as web3.py does by default.
    """

    def __init__(self, url: str, workload: Workload, budget: int, seconds: float) -> None:
        from chain.artifacts import load_artifact

        self.url = url
        self.workload = workload
        self.budget = budget
        self.seconds = seconds
        self.artifact = load_artifact("NaiveERC20")
        self.lock = threading.Lock()
        self.addresses: dict[str, str] = {}
        self.minted: set[tuple[str, str]] = set()
        #: (wall start, send latency, confirm latency, wall confirmed, gas, new member)
        self.records: list[tuple[float, float, float, float, int, bool]] = []
        self.stop_at = math.inf

    def _w3(self) -> Any:
        from web3 import Web3

        return Web3(Web3.HTTPProvider(self.url, request_kwargs={"timeout": 60}))

    def deploy_token(self, key: str) -> Any:
        from eth_account import Account

        w3 = self._w3()
        account = Account.from_key(key)
        factory = w3.eth.contract(abi=self.artifact["abi"], bytecode=self.artifact["bytecode"])
        nonce = w3.eth.get_transaction_count(account.address)
        tx = factory.constructor().build_transaction({"from": account.address, "nonce": nonce})
        tx_hash = w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)
        receipt = w3.eth.wait_for_transaction_receipt(tx_hash)
        return w3.eth.contract(address=receipt["contractAddress"], abi=self.artifact["abi"])

    def _next_recipient(self, token: str) -> tuple[str, bool] | None:
        """The next event's member, and whether it is new to ``token``."""
        with self.lock:
            if self.budget <= 0 or time.time() >= self.stop_at:
                return None
            self.budget -= 1
            customer = self.workload.next("naive").customer
            if customer not in self.addresses:
                self.addresses[customer] = "0x" + os.urandom(20).hex()
            to = self.addresses[customer]
            new = (token, to) not in self.minted
            self.minted.add((token, to))
        from web3 import Web3

        return Web3.to_checksum_address(to), new

    def mint_loop(self, key: str, token: Any) -> None:
        from eth_account import Account

        w3 = token.w3
        account = Account.from_key(key)
        nonce = int(w3.eth.get_transaction_count(account.address))
        while (recipient := self._next_recipient(token.address)) is not None:
            to, new = recipient
            wall, start = time.time(), time.perf_counter()
            tx = token.functions.mint(to, 100).build_transaction(
                {"from": account.address, "nonce": nonce}
            )
            tx_hash = w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)
            sent_at = time.perf_counter()
            receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=120)
            done = time.perf_counter()
            nonce += 1
            record = (
                wall,
                sent_at - start,
                done - start,
                time.time(),
                int(receipt["gasUsed"]),
                new,
            )
            with self.lock:
                self.records.append(record)

    def run(self, keys: list[str]) -> tuple[float, float]:
        """Mint until the budget or the time box runs out; returns (t0, t1) wall times."""
        tokens = [self.deploy_token(key) for key in keys]
        threads = [
            threading.Thread(target=self.mint_loop, args=(key, token), name=f"naive-{i}")
            for i, (key, token) in enumerate(zip(keys, tokens, strict=True))
        ]
        t0 = time.time()
        self.stop_at = t0 + self.seconds
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return t0, time.time()


def run_naive(config: E2EConfig, progress: Progress) -> list[PhaseFigures]:
    """The naive baseline on its own anvil: sequential, then ``naive_threads`` threads."""
    results: list[PhaseFigures] = []
    variants = [("naive sequential", 1)]
    if config.naive_threads > 1:
        variants.append((f"naive {config.naive_threads} threads", config.naive_threads))
    with tempfile.TemporaryDirectory(prefix="pointsnet-e2e-naive-") as tmp:
        port = free_port()
        node = Devnet(
            port=port,
            block_time=config.block_time,
            gas_limit=config.gas_limit,
            log_file=Path(tmp) / "anvil.log",
        )
        with node:
            anvil_pid = node.pid or 0
            workload = Workload(config.seed, "naive", refund_lag=1_000)
            for name, threads in variants:
                progress(
                    f"{name}: a mint transaction per event, time box {config.naive_seconds:.0f} s"
                )
                naive = NaiveIntegration(node.url, workload, config.events, config.naive_seconds)
                keys = [anvil_dev_key(3 + i) for i in range(threads)]
                cpu0, anvil0 = time.process_time(), _cpu_seconds(anvil_pid)
                t0, t1 = naive.run(keys)
                figures = _naive_figures(name, naive.records, t0, t1, config.events)
                figures.client_cpu_s = time.process_time() - cpu0
                figures.anvil_cpu_s = _cpu_seconds(anvil_pid) - anvil0
                results.append(figures)
    return results


def _naive_figures(
    name: str, records: list[tuple[float, float, float, float, int, bool]],
    t0: float, t1: float, wanted: int,
) -> PhaseFigures:  # fmt: skip
    figures = PhaseFigures(name, len(records), None)
    figures.extrapolated = len(records) < wanted
    figures.accepted = figures.confirmed = figures.on_chain = len(records)
    figures.send_seconds = figures.confirm_seconds = t1 - t0
    figures.accepted_per_s = figures.confirmed_per_s = len(records) / (t1 - t0)
    figures.accept_ms = figures.ms([r[1] for r in records])
    figures.confirm_s = _seconds([r[2] for r in records])
    figures.timeline = _timeline(t0, [r[3] for r in records])
    figures.steady_confirmed_per_s = _best_window(figures.timeline)
    gas_new = [r[4] for r in records if r[5]]
    gas_old = [r[4] for r in records if not r[5]]
    figures.gas = {
        "all_in_per_event": sum(r[4] for r in records) / max(1, len(records)),
        "new_member": sum(gas_new) / len(gas_new) if gas_new else math.nan,
        "existing_member": sum(gas_old) / len(gas_old) if gas_old else math.nan,
    }
    figures.txs = {"mint": len(records)}
    if figures.extrapolated and records:
        full = wanted / figures.confirmed_per_s
        figures.note = (
            f"time-boxed: {len(records):,} events measured in {t1 - t0:.1f} s; "
            f"{wanted:,} events would take ~{full:,.0f} s ({full / 60:,.1f} min) at that rate"
        )
    return figures


# ====================================================================== run


@dataclass
class ModeResult:
    mode: str
    phases: list[PhaseFigures]
    db_bytes: int  # with the gateway stopped, after a full checkpoint
    db_events: int
    server_peak_rss_mib: float
    wal_peak_bytes: int  # SQLite: the largest the write-ahead log grew during the run
    profile: dict[str, Any] = field(default_factory=dict)
    #: With --instrument: SQL statements and write-lock waits/holds by role and caller.
    instrument: dict[str, Any] = field(default_factory=dict)


@dataclass
class E2EReport:
    config: dict[str, Any]
    machine: dict[str, str]
    modes: list[ModeResult]
    naive: list[PhaseFigures]
    started: str
    seconds: float

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, default=str)


def machine_info() -> dict[str, str]:
    """nproc, CPU model, memory and versions, for the record."""
    import platform

    import fastapi
    import sqlalchemy
    import uvicorn
    import web3

    cpu = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = "?"
    with contextlib.suppress(OSError, IndexError, ValueError):
        kib = int(Path("/proc/meminfo").read_text().split("\n")[0].split()[1])
        mem = f"{kib / 2**20:.0f} GiB"
    anvil = "?"
    with contextlib.suppress(Exception):
        out = subprocess.run(
            [str(anvil_binary()), "--version"], capture_output=True, text=True, timeout=10
        )
        anvil = out.stdout.strip().splitlines()[0]
    revision = "?"
    with contextlib.suppress(Exception):
        head = subprocess.run(
            ["git", "-C", str(PROJECT_ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, timeout=10,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "-C", str(PROJECT_ROOT), "status", "--porcelain", "--", "gateway", "chain"],
            capture_output=True, text=True, timeout=10,
        ).stdout.strip()  # fmt: skip
        revision = head + (" + uncommitted changes in gateway/ or chain/" if dirty else "")
    return {
        "revision": revision,
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "memory": mem,
        "os": platform.platform(),
        "python": platform.python_version(),
        "anvil": anvil,
        "web3": web3.__version__,
        "fastapi": fastapi.__version__,
        "uvicorn": uvicorn.__version__,
        "sqlalchemy": sqlalchemy.__version__,
        "sqlite": __import__("sqlite3").sqlite_version,
    }


def run_mode(config: E2EConfig, mode: str, progress: Progress) -> ModeResult:
    """One fresh stack; the rate phase, then the saturation phase."""
    per_request = 1 if mode == "single" else config.batch_size
    lag = max(1_000, 2 * (config.clients + len(MERCHANTS)) * per_request)
    workload = Workload(config.seed, f"{mode}-{uuid.uuid4().hex[:6]}", refund_lag=lag)
    n_rate = int(config.events * config.rate_share)
    n_sat = config.events - n_rate
    phases: list[PhaseFigures] = []
    profile: dict[str, Any] = {}
    progress(f"{mode}: starting anvil, deploying, admitting {len(MERCHANTS)} merchants, serving")
    with GatewayStack(config, mode, progress) as stack, Monitor() as monitor:
        assert stack.node is not None and stack.node.pid
        for role, pid in stack.pids.items():
            monitor.watch(f"gateway-{role}", pid)
        monitor.watch("anvil", stack.node.pid)
        monitor.watch_file(stack.wal_path)
        monitor.postgres = stack.wal_path is None
        plan = [("rate", n_rate, config.rate), ("saturation", n_sat, None)]
        for phase, n, rate in plan:
            if n <= 0:
                continue
            planned = workload.take(n, f"{mode}-{phase}")
            requests = build_requests(planned, mode, config.batch_size)
            request_rate = rate / per_request if rate else None
            poll_every = max(1, len(requests) // max(1, config.poll_samples))
            label = f"{mode} / {phase}"
            what = f"{rate:,.0f} events/s offered" if rate else f"{config.clients} clients"
            progress(f"{label}: {n:,} events in {len(requests):,} requests, {what}")
            profiler: Profiler | None = None
            if config.profile and phase == "saturation" and config.out_dir is not None:
                pids = dict(stack.pids)
                output = config.out_dir / f"profile-{config.tag}-{mode}.txt"
                profiler = Profiler(pids, output, progress)
            box = config.rate_seconds if rate else config.saturation_seconds
            t0 = time.time()
            with profiler or contextlib.nullcontext():
                load = asyncio.run(
                    _drive(stack, requests, config.clients, request_rate, poll_every, box)
                )
                drained = stack.wait_drained(config.drain_timeout)
            t1 = time.time()
            sent_keys = {key for s in load.sent for key in s.keys}
            unsent = [p for p in planned if p.key not in sent_keys]
            workload.forget(unsent)
            figures = PhaseFigures(label, n - len(unsent), rate)
            figures.planned = n
            if unsent:
                figures.extrapolated = True
                figures.note = (
                    f"time-boxed: sending stopped after {box:.0f} s with {n - len(unsent):,} "
                    f"of {n:,} planned events sent; figures are for the events sent"
                )
            figures.mix = dict(Counter(p.kind for p in planned if p.key in sent_keys))
            read_phase(stack, figures, load, f"{mode}-{phase}-")
            for role in stack.pids:
                cpu, peak = monitor.window(f"gateway-{role}", t0, t1)
                figures.server_cpu_s = _nan_sum(figures.server_cpu_s, cpu)
                figures.server_peak_rss_mib = _nan_sum(figures.server_peak_rss_mib, peak / 1024)
                figures.cpu_by_role[role] = cpu
            figures.anvil_cpu_s = monitor.window("anvil", t0, t1)[0]
            if monitor.postgres:
                figures.database_cpu_s = monitor.window("postgres", t0, t1)[0]
            if not drained:
                figures.note += f"; outbox not drained after {config.drain_timeout:.0f} s"
            phases.append(figures)
            progress(
                f"{label}: accepted {figures.accepted_per_s:,.0f}/s, "
                f"confirmed {figures.confirmed_per_s:,.0f}/s"
            )
            if profiler is not None:
                profile = {role: summarize_profile(f) for role, f in profiler.files.items()}
        peak_rss = sum(_memory_kib(pid, "VmHWM") for pid in stack.pids.values()) / 1024
        wal_peak = monitor.file_peak
        db_bytes = stack.database_bytes()
        assert stack.engine is not None
        with stack.engine.connect() as conn:
            from gateway.models import Event

            db_events = int(conn.scalar(select(func.count(Event.id))) or 0)
    return ModeResult(
        mode, phases, db_bytes, db_events, peak_rss, wal_peak, profile, stack.instrument
    )


def run_e2e_bench(config: E2EConfig, progress: Progress | None = None) -> E2EReport:
    """The whole benchmark; see the module docstring."""
    say = progress or (lambda _m: None)
    started = datetime.now(UTC)
    t0 = time.monotonic()
    modes = [run_mode(config, mode, say) for mode in config.modes]
    naive = run_naive(config, say)
    report = E2EReport(
        config={k: str(v) if isinstance(v, Path) else v for k, v in asdict(config).items()},
        machine=machine_info(),
        modes=modes,
        naive=naive,
        started=started.isoformat(timespec="seconds"),
        seconds=time.monotonic() - t0,
    )
    if config.out_dir is not None:
        config.out_dir.mkdir(parents=True, exist_ok=True)
        (config.out_dir / f"e2e-{config.tag}.json").write_text(report.to_json() + "\n")
        with contextlib.suppress(ImportError):
            write_chart(report, config.out_dir / f"e2e-{config.tag}.png")
    return report


# ====================================================================== output


def _fmt(value: float | None, digits: int = 0, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:,.{digits}f}{unit}"


def render_table(report: E2EReport) -> Any:
    """The main table: one column per phase and naive variant."""
    from rich.table import Table

    columns: list[PhaseFigures] = [p for m in report.modes for p in m.phases] + report.naive
    title = "pointsnet bench e2e — " + (
        "automine" if report.config["block_time"] is None else
        f"{report.config['block_time']} s blocks"
    )  # fmt: skip
    table = Table(title=title, show_lines=False)
    table.add_column("figure")
    for p in columns:
        table.add_column(p.name + (" *" if p.extrapolated else ""), justify="right")
    db = {m.mode: m for m in report.modes}

    def row(label: str, get: Callable[[PhaseFigures], str]) -> None:
        table.add_row(label, *(get(p) for p in columns))

    row(
        "events sent (of planned)",
        lambda p: f"{p.events:,}" + (f" (of {p.planned:,})" if p.planned > p.events else ""),
    )
    row("offered rate (events/s)", lambda p: _fmt(p.offered_rate) if p.offered_rate else "max")
    row("accepted (202)", lambda p: f"{p.accepted:,}")
    row("events accepted/s", lambda p: _fmt(p.accepted_per_s))
    row("events confirmed/s (first send → last confirm)", lambda p: _fmt(p.confirmed_per_s))
    row("confirmed/s, best 10 s window", lambda p: _fmt(p.steady_confirmed_per_s))
    for q in ("p50", "p95", "p99"):
        table.add_row(f"accept latency {q} (ms)", *(_fmt(p.accept_ms.get(q), 1) for p in columns))
    for q in ("p50", "p95", "p99"):
        table.add_row(
            f"event→confirmed {q} (s, all events)", *(_fmt(p.confirm_s.get(q), 2) for p in columns)
        )
    row(
        "event→confirmed p50/p99 (s, polled sample)",
        lambda p: (
            f"{_fmt(p.polled_s.get('p50'), 2)} / {_fmt(p.polled_s.get('p99'), 2)} "
            f"(n={p.polled_samples})"
            if p.polled_samples
            else "—"
        ),
    )
    row("gas / event, all-in (all txs ÷ events)", lambda p: _fmt(p.gas.get("all_in_per_event")))
    row("gas / issuance, new member", lambda p: _fmt(p.gas.get("new_member")))
    row("gas / issuance, existing member", lambda p: _fmt(p.gas.get("existing_member")))
    row("issuances per issueBatch tx", lambda p: _fmt(p.gas.get("issue_ops_per_tx"), 1))
    row("transactions", lambda p: ", ".join(f"{k} {v:,}" for k, v in sorted(p.txs.items())))
    row("gateway CPU (s) / per 1k events", lambda p: (
        f"{_fmt(p.server_cpu_s, 1)} / {_fmt(1000 * p.server_cpu_s / max(1, p.events), 2)}"
        if not math.isnan(p.server_cpu_s) else "—"))  # fmt: skip
    row("gateway peak RSS (MiB)", lambda p: _fmt(p.server_peak_rss_mib))
    row("anvil CPU (s)", lambda p: _fmt(p.anvil_cpu_s, 1))
    if any(not math.isnan(p.database_cpu_s) for p in columns):
        row("PostgreSQL server CPU (s, local)", lambda p: _fmt(p.database_cpu_s, 1))
    row("load generator / integration CPU (s)", lambda p: _fmt(p.client_cpu_s, 1))

    def per_mode(p: PhaseFigures, figure: Callable[[ModeResult], str]) -> str:
        return next((figure(m) for mode, m in db.items() if p.name.startswith(mode)), "—")

    row(
        "DB size per 10k events (MiB, whole run)",
        lambda p: per_mode(p, lambda m: _fmt(m.db_bytes / max(1, m.db_events) * 10_000 / 2**20, 1)),
    )
    row(
        "SQLite WAL peak (MiB, whole run)",
        lambda p: per_mode(p, lambda m: _fmt(m.wal_peak_bytes / 2**20)),
    )

    row("non-202 / held / rejected", _other_outcomes)
    row("not confirmed at the end", lambda p: f"{p.unfinished:,}")
    return table


def _other_outcomes(p: PhaseFigures) -> str:
    other = {k: v for k, v in p.outcomes.items() if k not in ("accepted", "confirmed")}
    return ", ".join(f"{k} {v}" for k, v in other.items()) or "0"


def ratios(report: E2EReport) -> list[tuple[str, float, float | None]]:
    """(what, gateway ÷ naive confirmed/s, naive gas ÷ gateway gas) per saturation phase."""
    out: list[tuple[str, float, float | None]] = []
    for mode in report.modes:
        for phase in mode.phases:
            for naive in report.naive:
                if naive.confirmed_per_s <= 0:
                    continue
                gas_gw = phase.gas.get("all_in_per_event", math.nan)
                gas_naive = naive.gas.get("all_in_per_event", math.nan)
                out.append(
                    (
                        f"{phase.name} ÷ {naive.name}",
                        phase.confirmed_per_s / naive.confirmed_per_s,
                        gas_naive / gas_gw if gas_gw and not math.isnan(gas_gw) else None,
                    )
                )
    return out


def target_lines(report: E2EReport) -> list[tuple[str, str, str, bool | None]]:
    """(target, required, measured, met) — None where the run cannot judge it."""
    by_name = {p.name: p for m in report.modes for p in m.phases}
    seq = next((n for n in report.naive if "sequential" in n.name), None)
    lines: list[tuple[str, str, str, bool | None]] = []

    def best(mode: str) -> PhaseFigures | None:
        found = [p for n, p in by_name.items() if n.startswith(mode)]
        return max(found, key=lambda p: p.confirmed_per_s) if found else None

    for mode, key, label in (
        ("batch", "batch_confirmed_per_s", "events confirmed/s through the batch endpoint"),
        ("single", "single_confirmed_per_s", "events confirmed/s one per request"),
    ):
        phase = best(mode)
        if phase is not None:
            need = TARGETS[key]
            lines.append((label, f"≥ {need:,.0f}", _fmt(phase.confirmed_per_s),
                          phase.confirmed_per_s >= need))  # fmt: skip
    if seq is not None and seq.confirmed_per_s > 0:
        for mode in ("batch", "single"):
            phase = best(mode)
            if phase is not None:
                ratio = phase.confirmed_per_s / seq.confirmed_per_s
                lines.append((f"{mode} ÷ naive sequential (confirmed/s)", "≥ 15x",
                              f"{ratio:,.1f}x", ratio >= TARGETS["ratio_to_naive"]))  # fmt: skip
    rate_single = by_name.get("single / rate")
    if rate_single is not None:
        p99 = rate_single.accept_ms.get("p99", math.nan)
        offered = rate_single.offered_rate or 0
        lines.append((f"accept p99 at {offered:,.0f} events/s offered (single)", "≤ 25 ms",
                      _fmt(p99, 1, " ms"), p99 <= 25 if offered >= 500 else None))  # fmt: skip
    block_time = report.config["block_time"]
    for name, phase in by_name.items():
        if name.endswith("rate"):
            p50 = phase.confirm_s.get("p50", math.nan)
            judged = p50 <= TARGETS["confirm_p50_s_1s_blocks"] if block_time == 1 else None
            mining = "1 s blocks" if block_time == 1 else "automine"
            lines.append((f"event→confirmed p50 ({name}, {mining})",
                          "≤ 1.5 s with 1 s blocks", _fmt(p50, 2, " s"), judged))  # fmt: skip
    return lines


def _smooth(timeline: list[int], width: int = 5) -> list[float]:
    """Trailing moving average over ``width`` seconds (batches confirm in bursts)."""
    out: list[float] = []
    for i in range(len(timeline)):
        window = timeline[max(0, i - width + 1) : i + 1]
        out.append(sum(window) / len(window))
    return out


def write_chart(report: E2EReport, path: Path) -> None:
    """Confirmed events per second (5 s average) and cumulative confirmed events over time,
    for each gateway phase and each naive variant."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = [(p.name, p.timeline, "-" if "saturation" in p.name else "--")
              for m in report.modes for p in m.phases]  # fmt: skip
    series += [(n.name, n.timeline, ":") for n in report.naive]
    fig, (rate_ax, total_ax) = plt.subplots(2, 1, figsize=(10, 8), dpi=110, sharex=True)
    for name, timeline, style in series:
        if not timeline:
            continue
        xs = list(range(1, len(timeline) + 1))
        rate_ax.plot(xs, _smooth(timeline), style, label=name, linewidth=1.8)
        cumulative, running = [], 0
        for count in timeline:
            running += count
            cumulative.append(running)
        total_ax.plot(xs, cumulative, style, label=name, linewidth=1.8)
    block = report.config["block_time"]
    mining = "automine" if block is None else f"{block} s blocks"
    m = report.machine
    rate_ax.set_title(
        "pointsnet bench e2e: events confirmed on chain — gateway vs naive ERC-20 mint per event\n"
        f"({mining}; {m.get('nproc')} cores {m.get('cpu')}; revision {m.get('revision', '?')})",
        fontsize=9,
    )
    rate_ax.set_ylabel("events confirmed / s (5 s average)")
    total_ax.set_ylabel("events confirmed (cumulative)")
    total_ax.set_xlabel("seconds since the phase's first request (naive: time-boxed)")
    for ax in (rate_ax, total_ax):
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def iter_profile_lines(report: E2EReport) -> Iterator[str]:
    for mode in report.modes:
        for role, summary in mode.profile.items():
            if not summary:
                continue
            yield (
                f"where the GIL goes in the gateway ({role}) during {mode.mode} / saturation "
                f"({summary['samples']:,} py-spy --gil samples):"
            )
            for name, share in summary["buckets"].items():
                yield f"  {share:6.1%}  {name}"


def iter_instrument_lines(report: E2EReport) -> Iterator[str]:
    """The SQLite write lock: who held it, how long, who waited (with --instrument)."""
    for mode in report.modes:
        for role, data in mode.instrument.items():
            wall = float(data["seconds"])
            statements = data["statements"]
            yield (
                f"write lock in the {mode.mode} run ({role} process, {wall:.0f} s incl. setup): "
                + ", ".join(f"{k} {v['count']:,} statements" for k, v in statements.items())
            )
            rows = sorted(data["transactions"].items(), key=lambda kv: -kv[1]["hold_s"])
            held = sum(e["hold_s"] for _k, e in rows)
            yield f"  lock held {held:.1f} s = {held / wall:.0%} of the process's life"
            for key, e in rows[:12]:
                yield (
                    f"  {key:42s} n={e['count']:6,d}  held {e['hold_s']:6.1f} s "
                    f"(p50 {e['hold_p50_ms']:5.1f} ms, p99 {e['hold_p99_ms']:6.1f} ms)  "
                    f"waited {e['wait_s']:7.1f} s"
                )


def print_report(report: E2EReport, console: Any) -> None:
    """Table, ratios to the naive baseline, targets, notes and profile shares."""
    from rich.table import Table

    columns = sum(len(m.phases) for m in report.modes) + len(report.naive)
    console.width = max(console.width, 52 + 26 * columns)
    console.print(render_table(report))
    for p in [p for m in report.modes for p in m.phases] + report.naive:
        if p.note:
            console.print(f"* {p.name}: {p.note}")
    ratio_table = Table(title="gateway ÷ naive")
    for column in ("phases", "confirmed/s ratio", "gas ratio (naive ÷ gateway, all-in)"):
        ratio_table.add_column(column, justify="right" if column != "phases" else "left")
    for what, speed, gas in ratios(report):
        ratio_table.add_row(what, f"{speed:,.1f}x", f"{gas:,.2f}x" if gas else "—")
    console.print(ratio_table)
    target_table = Table(title="targets")
    for column in ("target", "required", "measured", "met"):
        target_table.add_column(column)
    for what, need, got, met in target_lines(report):
        verdict = "n/a" if met is None else ("[green]yes[/green]" if met else "[red]no[/red]")
        target_table.add_row(what, need, got, verdict)
    console.print(target_table)
    for line in iter_profile_lines(report):
        console.print(line, markup=False, highlight=False)
    for line in iter_instrument_lines(report):
        console.print(line, markup=False, highlight=False)
    m = report.machine
    console.print(
        f"machine: {m['nproc']} cores ({m['cpu']}), {m['memory']}, Python {m['python']}, "
        f"{m['anvil']}, SQLite {m['sqlite']}; run took {report.seconds:.0f} s"
    )
    if report.config.get("out_dir"):
        console.print(f"raw figures and chart in {report.config['out_dir']}/")


def raise_merchant_limits(url: str, api_keys: list[str], *, timeout: float) -> None:
    """Give each merchant a high-volume rule set (merchant-wide velocity limits lifted)
    and wait until every one is published on chain."""
    with httpx.Client(base_url=url, timeout=30, trust_env=False) as client:
        headers = [{"Authorization": f"Bearer {key}"} for key in api_keys]
        for header in headers:
            rules = client.get("/v1/rules", headers=header).json()["rules"]
            rules["velocity"].update(merchant_events_per_minute=None, merchant_points_per_day=None)
            client.put("/v1/rules", json=rules, headers=header).raise_for_status()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(client.get("/v1/rules", headers=h).json()["published"] for h in headers):
                return
            time.sleep(0.1)
    raise RuntimeError(f"the merchants' rule sets were not published on chain in {timeout:.0f} s")
