"""``pointsnet bench e2e --api-processes N --lanes N``: from the command line to the
processes the stack spawns, their environment and the report's header (no anvil)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

import bench.e2e
from bench.e2e import stack as e2e_stack
from bench.e2e.config import E2EConfig
from bench.e2e.figures import E2EReport, ModeResult, PhaseFigures
from bench.e2e.report import render_table
from bench.e2e.stack import GatewayStack
from bench.e2e_markdown import table
from gateway.cli import app


def run_cli(monkeypatch: pytest.MonkeyPatch, *args: str) -> tuple[int, list[E2EConfig]]:
    seen: list[E2EConfig] = []

    def fake_run(config: E2EConfig, progress: Any = None) -> E2EReport:
        seen.append(config)
        return E2EReport(dict(config.__dict__), {}, [], [], "", 0.0)

    monkeypatch.setattr(bench.e2e, "run_e2e_bench", fake_run)
    monkeypatch.setattr(bench.e2e, "print_report", lambda *_a: None)
    result = CliRunner().invoke(app, ["bench", "e2e", "--out", "", *args])
    return result.exit_code, seen


def test_the_options_reach_the_config(monkeypatch: pytest.MonkeyPatch) -> None:
    code, seen = run_cli(monkeypatch, "--api-processes", "2", "--lanes", "3")
    assert code == 0
    assert (seen[0].api_processes, seen[0].lanes) == (2, 3)
    code, seen = run_cli(monkeypatch)
    assert (seen[0].api_processes, seen[0].lanes) == (1, 1)


@pytest.mark.parametrize(
    "args",
    [
        ("--api-processes", "0"),
        ("--lanes", "0"),
        ("--lanes", "17"),  # the devnet derives at most 16 signer keys
        ("--api-processes", "2", "--instrument"),  # spawned workers are not instrumented
    ],
)
def test_impossible_layouts_are_refused(monkeypatch: pytest.MonkeyPatch, args: tuple[str]) -> None:
    code, seen = run_cli(monkeypatch, *args)
    assert code == 2 and not seen


@pytest.fixture
def spawned(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, ...]]]:
    """Record what GatewayStack._start_server spawns instead of starting it."""
    calls: list[tuple[str, ...]] = []

    class FakeProcess:
        pid = 4242

    def spawn(self: GatewayStack, name: str, *args: str, **_kw: str) -> FakeProcess:
        calls.append((name, *args))
        self.processes[name] = FakeProcess()  # type: ignore[assignment]
        return FakeProcess()

    monkeypatch.setattr(GatewayStack, "spawn", spawn)
    monkeypatch.setattr(GatewayStack, "wait_healthy", lambda *_a, **_k: None)
    monkeypatch.setattr(
        GatewayStack, "_supervised_children", lambda *_a: {"worker": 1, "indexer": 2}
    )
    yield calls


def stack_for(config: E2EConfig) -> GatewayStack:
    stack = GatewayStack(config, "batch", lambda _m: None)
    stack._start_server()
    shutil.rmtree(stack.data_dir)
    return stack


def test_api_processes_and_lanes_reach_serve_and_the_deploy(
    spawned: list[tuple[str, ...]],
) -> None:
    stack = stack_for(E2EConfig(api_processes=2, lanes=2))
    assert spawned == [("api", "--workers", "2")]
    assert stack.env["POINTSNET_SIGNERS"] == "2"  # every gateway process: two lanes
    assert stack.server_env()["POINTSNET_SIGNERS"] == "2"
    assert stack.settings.signers == 2  # the deploy funds and grants both keys
    assert stack.pids == {"api": 4242, "worker": 1, "indexer": 2}


def test_the_default_is_one_api_process_and_one_lane(spawned: list[tuple[str, ...]]) -> None:
    stack = stack_for(E2EConfig())
    assert spawned == [("api",)]
    assert stack.settings.signers == 1 and stack.env["POINTSNET_SIGNERS"] == "1"


def test_other_layouts_pass_the_api_processes_on(spawned: list[tuple[str, ...]]) -> None:
    stack_for(E2EConfig(api_processes=3, in_process=True))
    stack_for(E2EConfig(instrument=True))
    assert spawned == [
        ("all", "--in-process", "--workers", "3"),
        ("api", "--role", "api"),
        ("worker", "--role", "worker"),
        ("indexer", "--role", "indexer"),
    ]


def test_uvicorns_workers_are_profiled_in_place_of_their_manager(
    spawned: list[tuple[str, ...]], monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = stack_for(E2EConfig(api_processes=2))
    monkeypatch.setattr(e2e_stack, "spawned_workers", lambda pid: [7, 8] if pid == 4242 else [])
    assert stack.profile_targets() == {"worker": 1, "indexer": 2, "api-1": 7, "api-2": 8}


def report(config: E2EConfig) -> E2EReport:
    phase = PhaseFigures("batch / saturation", 1_000, None, confirmed_per_s=500.0)
    phase.server_cpu_s, phase.database_cpu_s = 2.0, 1.5
    phase.txs_by_sender = {"0xA": 7, "0xB": 6}
    phase.processes_by_role = {"api": 4, "worker": 1, "indexer": 1}
    phase.cpu_by_role = {"api": 1.2, "worker": 0.5, "indexer": 0.3}
    return E2EReport(
        {**config.__dict__, "out_dir": None}, {}, [ModeResult("batch", [phase], 1, 1, 1.0, 0)],
        [], "", 0.0,
    )  # fmt: skip


def test_the_report_says_the_layout_and_the_lanes(tmp_path: Path) -> None:
    url = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    r = report(E2EConfig(database_url=url, api_processes=2, lanes=2))
    title = str(render_table(r).title)
    assert title.endswith("; 2 API processes, 2 signer lanes, PostgreSQL")
    data = json.loads(r.to_json())
    assert (data["config"]["api_processes"], data["config"]["lanes"]) == (2, 2)
    markdown = table(data)
    assert "Gateway: 2 API processes, 2 signer lanes, PostgreSQL." in markdown
    assert "| confirmed txs per signer lane | 7 / 6 |" in markdown
    assert "| PostgreSQL server CPU ms/event | 1.5 |" in markdown
    assert "| gateway CPU ms/event | 2.0 |" in markdown
    assert "| gateway CPU ms/event by role | api 1.20, worker 0.50, indexer 0.30 |" in markdown
    one = report(E2EConfig())
    assert str(render_table(one).title).endswith("; 1 API process, 1 signer lane, SQLite")
    console = Console(record=True, width=200)
    console.print(render_table(r))
    text = console.export_text()
    assert "api 1.20, worker 0.50, indexer 0.30" in text  # ms per event, by role
    assert "api 4, worker 1, indexer 1" in text
