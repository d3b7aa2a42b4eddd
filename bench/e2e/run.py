"""Running the e2e bench: one stack per mode, its two phases, then the baselines (the
pipelined relayer, the naive integration), each on its own anvil with the same settings."""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import subprocess
import time
import uuid
from collections import Counter
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bench.e2e.config import MERCHANTS, E2EConfig, Progress
from bench.e2e.figures import E2EReport, ModeResult, PhaseFigures, read_phase
from bench.e2e.load import build_requests, drive
from bench.e2e.naive import last_base_fee, run_naive
from bench.e2e.procstats import Monitor, memory_kib
from bench.e2e.profiling import Profiler, summarize_profile
from bench.e2e.relayer import run_relayer
from bench.e2e.report import write_chart
from bench.e2e.stack import GatewayStack
from bench.e2e.workload import Workload
from chain.config import PROJECT_ROOT
from chain.toolchain import anvil_binary


def python_speed_ms() -> float:
    """A yardstick for how fast this machine runs Python now: CPU milliseconds per
    million steps of a plain loop inside a function, best of three. It tells a quiet
    machine from a loaded one (and one machine from another) next to figures that are
    otherwise only comparable as ratios."""

    def loop(n: int) -> int:
        total = 0
        for i in range(n):
            total += i & 7
        return total

    best = math.inf
    for _ in range(3):
        start = time.process_time()
        loop(1_000_000)
        best = min(best, time.process_time() - start)
    return best * 1000


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
        "python_ms": f"{python_speed_ms():.0f}",
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
        gateway = [f"gateway-{role}" for role in stack.pids]
        for role, pid in stack.pids.items():
            monitor.watch(f"gateway-{role}", pid)  # the process and all below it
        monitor.watch("anvil", stack.node.pid)
        monitor.watch_file(stack.wal_path)
        if stack.database_name is not None:
            monitor.watch_postgres(stack.database_name)
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
                pids = stack.profile_targets()
                output = config.out_dir / f"profile-{config.tag}-{mode}.txt"
                profiler = Profiler(pids, output, progress)
            box = config.rate_seconds if rate else config.saturation_seconds
            t0 = time.time()
            with profiler or contextlib.nullcontext():
                load = asyncio.run(
                    drive(stack, requests, config.clients, request_rate, poll_every, box)
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
            figures.server_cpu_s, peak = monitor.window(gateway, t0, t1)
            figures.server_peak_rss_mib = peak / 1024 if peak else math.nan
            for role in stack.pids:
                figures.cpu_by_role[role] = monitor.window([f"gateway-{role}"], t0, t1)[0]
                figures.processes_by_role[role] = len(monitor.pids(f"gateway-{role}"))
            figures.anvil_cpu_s = monitor.window(["anvil"], t0, t1)[0]
            figures.last_base_fee_wei = last_base_fee(stack.node.url)
            if monitor.postgres_database is not None:
                figures.database_cpu_s = monitor.window(["postgres"], t0, t1)[0]
            if not drained:
                figures.note += f"; outbox not drained after {config.drain_timeout:.0f} s"
            phases.append(figures)
            progress(
                f"{label}: accepted {figures.accepted_per_s:,.0f}/s, "
                f"confirmed {figures.confirmed_per_s:,.0f}/s"
            )
            if profiler is not None:
                profile = {role: summarize_profile(f) for role, f in profiler.files.items()}
        monitor.sample()  # the gateway's processes as they are now, before it stops
        every = [pid for name in gateway for pid in monitor.pids(name)]
        peak_rss = sum(memory_kib(pid, "VmHWM") for pid in every) / 1024
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
    """The whole benchmark; see :mod:`bench.e2e`."""
    say = progress or (lambda _m: None)
    started = datetime.now(UTC)
    t0 = time.monotonic()
    modes = [run_mode(config, mode, say) for mode in config.modes]
    relayer = [run_relayer(config, say)] if config.relayer_seconds > 0 else []
    naive = run_naive(config, say)
    report = E2EReport(
        config={k: str(v) if isinstance(v, Path) else v for k, v in asdict(config).items()},
        machine=machine_info(),
        modes=modes,
        naive=naive,
        relayer=relayer,
        started=started.isoformat(timespec="seconds"),
        seconds=time.monotonic() - t0,
    )
    if config.out_dir is not None:
        config.out_dir.mkdir(parents=True, exist_ok=True)
        (config.out_dir / f"e2e-{config.tag}.json").write_text(report.to_json() + "\n")
        with contextlib.suppress(ImportError):
            write_chart(report, config.out_dir / f"e2e-{config.tag}.png")
    return report
