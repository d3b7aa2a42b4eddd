"""``pointsnet serve`` (role all, the default) as a real process: the API in the supervisor,
the outbox worker and the indexer as its child processes, restarted when they die and
stopped with it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest
from factories import devnet_settings, open_network
from gateway_kit import purchase
from sqlalchemy import create_engine, func, select

from chain.devnet import Devnet, free_port
from gateway.models import IndexedBlock
from gateway.services.merchants import NewMerchant
from gateway.settings import Settings


@dataclass
class Served:
    """A ``pointsnet serve`` process on a deployed network with one merchant."""

    process: subprocess.Popen[bytes]
    settings: Settings
    merchant: NewMerchant
    url: str
    log: Path

    def children(self) -> dict[str, int]:
        """The supervisor's live child processes, by the role on their command line."""
        found: dict[str, int] = {}
        for child in psutil.Process(self.process.pid).children():
            try:
                if child.status() == psutil.STATUS_ZOMBIE:
                    continue
                command = child.cmdline()
            except psutil.Error:
                continue
            if "--role" in command:
                found[command[command.index("--role") + 1]] = child.pid
        return found

    def post_purchase(self, customer: str) -> str:
        key = uuid.uuid4().hex
        headers = {"Authorization": f"Bearer {self.merchant.api_key}", "Idempotency-Key": key}
        answer = httpx.post(
            f"{self.url}/v1/events", json=purchase(customer, key), headers=headers, timeout=10
        )
        assert answer.status_code == 202, answer.text
        return str(answer.json()["id"])

    def status(self, event_id: str) -> str:
        headers = {"Authorization": f"Bearer {self.merchant.api_key}"}
        answer = httpx.get(f"{self.url}/v1/events/{event_id}", headers=headers, timeout=10)
        return str(answer.json()["status"])


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for its parent to reap it does not)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {timeout:.0f} s")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    with Devnet(port=free_port(), log_file=tmp_path / "anvil.log") as node:
        settings = devnet_settings(tmp_path, node, port=free_port())
        context, merchants = open_network(settings, (("Lumière Paris", "EUR"),))
        context.engine.dispose()
        env = {k: v for k, v in os.environ.items() if not k.startswith("POINTSNET_")}
        env.update(
            POINTSNET_DATA_DIR=str(tmp_path),
            POINTSNET_RPC_URL=node.url,
            POINTSNET_DEVNET_PORT=str(node.port),
            POINTSNET_TIMELOCK_DELAY="0",
            POINTSNET_BATCH_MAX_WAIT="0",
            POINTSNET_HOST="127.0.0.1",
            POINTSNET_PORT=str(settings.port),
        )
        log = tmp_path / "serve.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "gateway.cli", "serve"],
                cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        url = f"http://127.0.0.1:{settings.port}"
        served = Served(process, settings, merchants[0], url, log)
        try:
            wait_until(lambda: _healthy(served), 60, f"serve answering (see {log})")
            yield served
        finally:
            if process.poll() is None:  # the test failed half-way: leave nothing running
                for child in psutil.Process(process.pid).children(recursive=True):
                    with contextlib.suppress(psutil.Error):
                        child.kill()
                process.kill()
                process.wait()


def _healthy(served: Served) -> bool:
    if served.process.poll() is not None:
        raise AssertionError(f"serve exited with {served.process.returncode}: {served.log}")
    try:
        return httpx.get(served.url + "/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_serve_runs_worker_and_indexer_as_supervised_processes_and_stops_them(
    served: Served,
) -> None:
    children = served.children()
    assert set(children) == {"worker", "indexer"}
    assert served.process.pid not in children.values()

    first = [served.post_purchase(f"alice-{i}") for i in range(3)]
    wait_until(lambda: all(served.status(e) == "confirmed" for e in first), 20, "events confirmed")
    with create_engine(served.settings.effective_database_url).connect() as conn:
        wait_until(
            lambda: (conn.scalar(select(func.count()).select_from(IndexedBlock)) or 0) > 0,
            10,
            "the indexer child indexing blocks",
        )

    os.kill(children["worker"], signal.SIGKILL)
    wait_until(
        lambda: served.children().get("worker") not in (None, children["worker"]),
        10,
        "the worker restarted",
    )
    assert served.children()["indexer"] == children["indexer"]
    later = served.post_purchase("bob")
    wait_until(lambda: served.status(later) == "confirmed", 20, "event confirmed after restart")

    running = served.children()
    served.process.send_signal(signal.SIGTERM)
    assert served.process.wait(20) == 0
    assert not [pid for pid in running.values() if alive(pid)]
    log = served.log.read_text()
    assert "worker (pid" in log and "restarting it" in log


def test_serve_children_stop_when_the_supervisor_is_killed(served: Served) -> None:
    children = served.children()
    assert set(children) == {"worker", "indexer"}
    served.process.kill()
    served.process.wait()
    wait_until(
        lambda: not [pid for pid in children.values() if alive(pid)],
        10,
        "orphaned children stopping",
    )
