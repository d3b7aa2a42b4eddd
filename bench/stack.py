"""The one stack launcher: anvil, the contracts, merchants, the gateway, teardown.

Every benchmark, the chaos harness and every test kit start their network here:

1. :class:`Stack` takes a data directory (a temporary one by default), starts
   anvil (:class:`chain.devnet.Devnet`: automine or ``block_time``, its gas
   limit, its state persisted if asked), deploys the contracts
   (:func:`chain.deploy.deploy`), opens the gateway's database, migrates it
   and admits the merchants (:func:`open_network`).
2. It spawns the gateway as real processes (``python -m gateway.cli serve ...``,
   one log per process in the data directory, an environment built from the
   stack's settings), kills and restarts them, restarts anvil, waits for
   ``/healthz``.
3. On exit it stops the processes, closes the database, stops anvil and removes
   a temporary data directory unless asked to keep it.

:class:`bench.inprocess.InProcessGateway` is the other way to run the gateway on a
stack: the app under a ``TestClient`` and an outbox worker driven from this process.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

import httpx
from sqlalchemy import Engine, func, select

from chain.config import PROJECT_ROOT
from chain.deploy import deploy
from chain.devnet import Devnet, free_port
from gateway.context import GatewayContext
from gateway.migrate import upgrade
from gateway.models import ChainOp, ChainTx, Event
from gateway.services.merchants import NewMerchant, register
from gateway.settings import Settings

Progress = Callable[[str], None]

#: The two partners most stacks admit: (name, home currency).
TWO_MERCHANTS: tuple[tuple[str, str], ...] = (("Lumière Paris", "EUR"), ("Sakura Goods", "JPY"))
#: What test networks (and the in-process scripts) change from the stack's settings:
#: batches sent at once, no fee bumps, /metrics computed on every scrape, a new rule set
#: in effect as soon as it is published (no notice; a test of the notice sets one), and
#: the chain head read at each use (a rule set published is seen by the next request).
TEST_SETTINGS: dict[str, Any] = {
    "batch_max_wait": 0.0,
    "tx_stuck_after": 3600,
    "metrics_max_age": 0.0,
    "rule_notice_seconds": 0,
    "chain_clock_interval": 0.0,
}
#: How the gateway is started: ``pointsnet serve`` run by this interpreter.
SERVE = (sys.executable, "-m", "gateway.cli", "serve")


def open_network(
    settings: Settings, merchants: Sequence[tuple[str, str]] = TWO_MERCHANTS
) -> tuple[GatewayContext, list[NewMerchant]]:
    """Deploy the contracts, open the gateway's database and admit ``merchants``."""
    deploy(settings)
    context = GatewayContext.open(settings)
    upgrade(context.engine)
    return context, [register(context, name, currency) for name, currency in merchants]


def lift_merchant_limits(client: httpx.Client, api_keys: Sequence[str]) -> None:
    """Queue, for each merchant, its rule set with the merchant-wide velocity limits
    lifted (the seed programme holds events beyond 1,000 a minute for review); on a
    network deployed without rule notice it is in effect once published."""
    for key in api_keys:
        header = {"Authorization": f"Bearer {key}"}
        rules = client.get("/v1/rules", headers=header).json()["rules"]
        rules["velocity"].update(merchant_events_per_minute=None, merchant_points_per_day=None)
        client.put("/v1/rules", json=rules, headers=header).raise_for_status()


def wait_published(client: httpx.Client, api_keys: Sequence[str], timeout: float) -> None:
    """Wait until every merchant's latest rule set is in effect: published on chain, and
    its effective time reached by the chain's clock (the gateway picks versions by it),
    with no version after it queued or waiting."""
    headers = [{"Authorization": f"Bearer {key}"} for key in api_keys]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answers = [client.get("/v1/rules", headers=h).json() for h in headers]
        if all(a["status"] == "in_effect" and a["upcoming"] is None for a in answers):
            return
        time.sleep(0.1)
    raise RuntimeError(f"the merchants' rule sets were not in effect within {timeout:.0f} s")


def in_flight(engine: Engine, *, txs: bool = True) -> int:
    """Events accepted or submitted, chain ops pending or sent, and (``txs``) stored
    transactions signed or sent: what is left before the gateway is drained."""
    queries = [
        select(func.count(Event.id)).where(Event.status.in_(("accepted", "submitted"))),
        select(func.count(ChainOp.id)).where(ChainOp.status.in_(("pending", "sent"))),
    ]
    if txs:
        queries.append(select(func.count(ChainTx.id)).where(ChainTx.status.in_(("signed", "sent"))))
    with engine.connect() as conn:
        return sum(int(conn.scalar(query) or 0) for query in queries)


def wait_drained(
    engine: Engine,
    timeout: float,
    *,
    txs: bool = True,
    poll: float = 0.2,
    between: Callable[[], None] | None = None,
) -> bool:
    """Wait until nothing is :func:`in_flight` (False on timeout); with ``between``
    (run before each look) a database error counts as busy and is looked at again."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if between is None:
            busy = in_flight(engine, txs=txs)
        else:
            between()
            try:
                busy = in_flight(engine, txs=txs)
            except Exception:  # the database is busy (or restarting): look again
                busy = 1
        if not busy:
            return True
        time.sleep(poll)
    return False


class Stack:
    """anvil + contracts + merchants + gateway processes in one data directory.

    ``settings`` override the stack's gateway settings (data dir, RPC URL, devnet
    port, a free API port, no timelock delay, no rule notice (rule sets in effect once
    published), no ``.env`` file); ``anvil_args`` are added to
    anvil's command line (e.g. its base fee); ``env`` adds ``POINTSNET_*``
    variables to every process spawned. Without ``data_dir`` a temporary
    directory is made, and removed on exit unless ``keep``.
    """

    def __init__(
        self,
        data_dir: Path | None = None,
        *,
        merchants: Sequence[tuple[str, str]] = TWO_MERCHANTS,
        block_time: float | None = None,
        gas_limit: int | None = None,
        anvil_args: Sequence[str] = (),
        persist_state: bool = False,
        anvil_timeout: float = 30.0,
        settings: Mapping[str, Any] | None = None,
        env: Mapping[str, str] | None = None,
        serve: Sequence[str] = SERVE,
        keep: bool = False,
        prefix: str = "pointsnet-stack-",
        progress: Progress | None = None,
    ) -> None:
        if data_dir is None:
            self.data_dir = Path(tempfile.mkdtemp(prefix=prefix))
            self.keep = keep
        else:
            self.data_dir = data_dir.expanduser().resolve()
            self.data_dir.mkdir(parents=True, exist_ok=True)
            self.keep = True
        self.merchant_specs = tuple(merchants)
        self.block_time = block_time
        self.gas_limit = gas_limit
        self.anvil_args = tuple(anvil_args)
        self.persist_state = persist_state
        self.anvil_timeout = anvil_timeout
        #: Settings overrides; may be changed until the stack starts.
        self.overrides: dict[str, Any] = dict(settings or {})
        self.env = dict(env or {})
        self.serve = list(serve)
        self.progress = progress or (lambda _message: None)
        self.rpc_port = free_port()
        self.node: Devnet | None = None
        self._settings: Settings | None = None
        self.context: GatewayContext | None = None
        self.merchants: list[NewMerchant] = []
        #: The gateway processes spawned, by name (the latest of each name).
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        #: pid of every process spawned -> (its log, the log's size when it started).
        self.logs: dict[int, tuple[Path, int]] = {}

    # ------------------------------------------------------------ start / stop

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.keep = True
            self.__exit__()
            raise
        return self

    def start(self) -> Self:
        """anvil, the contracts, the database and the merchants."""
        self.start_anvil()
        self.context, self.merchants = open_network(self.settings, self.merchant_specs)
        return self

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            values: dict[str, Any] = {
                "data_dir": self.data_dir,
                "rpc_url": self.rpc_url,
                "devnet_port": self.rpc_port,
                "timelock_delay": 0,
                "rule_notice_seconds": 0,
                "_env_file": None,
            }
            if "port" not in self.overrides:  # a free one: never a dev server's 8000
                values["port"] = free_port()
            self._settings = Settings(**{**values, **self.overrides})
        return self._settings

    @property
    def rpc_url(self) -> str:
        return f"http://127.0.0.1:{self.rpc_port}"

    @property
    def url(self) -> str:
        """Where the API answers once spawned."""
        return f"http://127.0.0.1:{self.settings.port}"

    @property
    def api_keys(self) -> list[str]:
        return [merchant.api_key for merchant in self.merchants]

    def headers(self, merchant: int) -> dict[str, str]:
        """The bearer token of merchant number ``merchant``."""
        return {"Authorization": f"Bearer {self.merchants[merchant].api_key}"}

    def start_anvil(self) -> Devnet:
        """Start anvil (again: with ``persist_state`` it reloads its state)."""
        devnet_dir = self.data_dir / "devnet" if self.persist_state else self.data_dir
        self.node = Devnet(
            port=self.rpc_port,
            state_file=devnet_dir / "state.json" if self.persist_state else None,
            block_time=self.block_time,
            gas_limit=self.gas_limit,
            log_file=devnet_dir / "anvil.log",
            extra_args=self.anvil_args,
        ).start(timeout=self.anvil_timeout)
        return self.node

    def stop_anvil(self, timeout: float = 30.0) -> None:
        """SIGTERM: anvil writes its state (if persisted) and exits; its mempool is lost."""
        if self.node is not None:
            self.node.stop(timeout=timeout)
            self.node = None

    def close_context(self) -> None:
        """Close this process's database connections (the gateway processes keep theirs)."""
        if self.context is not None:
            self.context.engine.dispose()
            self.context = None

    def __exit__(self, *_exc: object) -> None:
        self.stop_processes()
        self.close_context()
        self.stop_anvil()
        if self.keep:
            self.progress(f"kept {self.data_dir} (server logs, anvil, database) for inspection")
        else:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    # ------------------------------------------------------------ gateway processes

    def server_env(self, fault: str | None = None, **extra: str) -> dict[str, str]:
        """The environment of a gateway process: none of this shell's ``POINTSNET_*``,
        the stack's settings, ``env``, ``extra``, and the fault point if any."""
        settings = self.settings
        env = {k: v for k, v in os.environ.items() if not k.startswith("POINTSNET_")}
        env.update(
            POINTSNET_DATA_DIR=str(self.data_dir),
            POINTSNET_RPC_URL=settings.rpc_url,
            POINTSNET_DEVNET_PORT=str(self.rpc_port),
            POINTSNET_TIMELOCK_DELAY="0",
            POINTSNET_RULE_NOTICE_SECONDS=str(settings.effective_rule_notice),
            POINTSNET_DATABASE_URL=settings.effective_database_url,
            POINTSNET_HOST="127.0.0.1",
            POINTSNET_PORT=str(settings.port),
        )
        env.update(self.env)
        env.update({f"POINTSNET_{name.upper()}": value for name, value in extra.items()})
        if fault:
            env["POINTSNET_FAULT"] = fault
        env["PYTHONPATH"] = str(PROJECT_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        return env

    def spawn(
        self,
        name: str,
        *args: str,
        fault: str | None = None,
        log: Path | None = None,
        **extra_env: str,
    ) -> subprocess.Popen[bytes]:
        """``pointsnet serve ARGS`` as a process named ``name``, its output appended to
        ``log`` (default ``server-<name>.log`` in the data directory)."""
        path = log or self.data_dir / f"server-{name}.log"
        with path.open("ab") as out:
            stamp = datetime.now(UTC).isoformat()
            out.write(f"--- start {stamp} {' '.join(args)} fault={fault}\n".encode())
            out.flush()
            process = subprocess.Popen(
                [*self.serve, *args], cwd=self.data_dir, env=self.server_env(fault, **extra_env),
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
            self.logs[process.pid] = (path, out.tell())
        self.processes[name] = process
        return process

    def log_since_start(self, process: subprocess.Popen[bytes]) -> bytes:
        """What ``process`` has written to its log so far."""
        path, start = self.logs[process.pid]
        with path.open("rb") as log:
            log.seek(start)
            return log.read()

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Signal one gateway process (SIGKILL: no cleanup, no flush) and reap it."""
        process = self.processes.get(name)
        if process is not None and process.poll() is None:
            process.send_signal(sig)
            process.wait()

    def stop_processes(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> None:
        """Signal every gateway process, then SIGKILL what is left after ``timeout``."""
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(sig)
        for process in self.processes.values():
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def exited_early(self) -> None:
        """Raise if a gateway process has exited."""
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise RuntimeError(f"gateway ({name}) exited early; see {self.log_of(name)}")

    def log_of(self, name: str) -> Path:
        return self.logs[self.processes[name].pid][0]

    def wait_healthy(
        self, timeout: float = 60.0, while_waiting: Callable[[], None] | None = None
    ) -> None:
        """Wait until the API answers ``/healthz``; between tries ``while_waiting``
        (default: raise if a process exited)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            (while_waiting or self.exited_early)()
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + "/healthz", timeout=1, trust_env=False).status_code == 200:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"the API did not answer within {timeout:.0f} s; see {self.data_dir}")

    def lift_merchant_limits(self, timeout: float) -> None:
        """Through the spawned API: the merchants' velocity limits lifted, in effect on chain."""
        with httpx.Client(base_url=self.url, timeout=30, trust_env=False) as client:
            lift_merchant_limits(client, self.api_keys)
            wait_published(client, self.api_keys, timeout)


__all__ = [
    "TEST_SETTINGS",
    "TWO_MERCHANTS",
    "Stack",
    "in_flight",
    "lift_merchant_limits",
    "open_network",
    "wait_drained",
    "wait_published",
]
