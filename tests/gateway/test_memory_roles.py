"""What the gateway's processes load: ``pointsnet serve --role worker|indexer`` as role
all starts them (supervised), and the API, on a deployed network.

Each Python module a process imports stays in its memory: the HTTP API (FastAPI,
uvicorn), the migrations (alembic) and the compiler (solcx) are not the background
roles' business, and the indexer, which reads logs over raw JSON-RPC, needs neither
web3 nor the signing keys. The API process leaves the migrations to a child process
(``pointsnet db upgrade``). A role that starts importing them again grows by tens of MiB
(issue 14's budget for the whole gateway is 300 MiB); the peak RSS bounds below leave
about a fifth of headroom over what was measured when they were set (worker 115 MiB,
indexer 78 MiB, idle).
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.stack import Stack

#: Runs ``pointsnet serve`` (as ``python -m gateway.cli`` does) with the arguments after
#: ``-c``; once the role runs (its first thread started, or the API's port open) and has
#: had a second, prints what the process loaded and its peak RSS, and exits.
PROBE = """
import json, os, socket, sys, threading, time

role = sys.argv[3]

def running():
    if role == "api":
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", int(os.environ["POINTSNET_PORT"]))) == 0
    name = {"worker": "outbox-worker-0", "indexer": "indexer"}[role]
    return any(thread.name == name for thread in threading.enumerate())

def report():
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if running():
            break
        time.sleep(0.05)
    else:
        os._exit(3)
    time.sleep(1.0)
    peak = next(int(line.split()[1]) for line in open("/proc/self/status")
                if line.startswith("VmHWM:"))
    print(json.dumps({"modules": sorted(sys.modules), "peak_rss_kib": peak}), flush=True)
    os._exit(0)

threading.Thread(target=report, daemon=True).start()
sys.argv = ["pointsnet", *sys.argv[1:]]
from gateway.cli import app
app()
"""

#: Modules no background role loads.
NOT_IN_BACKGROUND = ("fastapi", "starlette", "uvicorn", "alembic", "solcx", "gateway.app")
#: Modules the indexer does not load either.
NOT_IN_INDEXER = ("web3", "eth_account", "httpx", "gateway.context", "gateway.outbox")
#: Peak RSS bounds, MiB.
PEAK_RSS_MIB = {"worker": 140, "indexer": 95}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with Stack(tmp_path_factory.mktemp("memory")) as deployed:
        yield deployed


def probe_role(stack: Stack, role: str, tmp: Path, **env: str) -> dict[str, object]:
    """Run ``role`` as a supervised child of this process; what its probe reported."""
    command = [sys.executable, "-c", PROBE, "serve", "--role", role]
    command += ["--supervised-by", str(os.getpid())]
    done = subprocess.run(
        command, cwd=tmp, env=stack.server_env(**env), capture_output=True, timeout=120,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    report: dict[str, object] = json.loads(done.stdout.decode().strip().splitlines()[-1])
    return report


def loaded(report: dict[str, object], names: tuple[str, ...]) -> list[str]:
    modules = report["modules"]
    assert isinstance(modules, list)
    return [name for name in names if name in modules]


@pytest.mark.parametrize("role", ["worker", "indexer"])
def test_background_role_loads_neither_the_api_nor_the_migrations(
    stack: Stack, role: str, tmp_path: Path
) -> None:
    report = probe_role(stack, role, tmp_path)
    assert loaded(report, NOT_IN_BACKGROUND) == []
    if role == "indexer":
        assert loaded(report, NOT_IN_INDEXER) == []
    else:  # the probe sees what the role runs: the worker signs with web3's stack
        assert loaded(report, ("web3", "gateway.outbox")) == ["web3", "gateway.outbox"]
    peak_mib = int(str(report["peak_rss_kib"])) / 1024
    assert peak_mib <= PEAK_RSS_MIB[role], f"{role} peaked at {peak_mib:.0f} MiB"


def test_api_process_leaves_the_migrations_to_a_child(stack: Stack, tmp_path: Path) -> None:
    database = tmp_path / "fresh.db"
    report = probe_role(stack, "api", tmp_path, database_url=f"sqlite:///{database}")
    assert loaded(report, ("gateway.app", "alembic")) == ["gateway.app"]
    with sqlite3.connect(database) as migrated:  # by `pointsnet db upgrade`, before serving
        assert migrated.execute("SELECT version_num FROM alembic_version").fetchall()
