"""The e2e bench's process accounting: a gateway role is its whole process tree (uvicorn's
workers included), processes that exit keep their CPU, a local PostgreSQL server counts
its shared processes and the run's own backends (fake process tables; one real tree)."""

from __future__ import annotations

import subprocess
import sys
import time

import psutil
import pytest

from bench.e2e.procstats import Monitor, Proc, assign_trees, postgres_ours

#: role all with --workers 2: the API process (uvicorn's manager) over two spawned API
#: workers, the supervised outbox worker (with a child of its own) and the indexer.
API, UVI1, UVI2, WORKER, WORKER_CHILD, INDEXER, STRANGER = 100, 101, 102, 103, 105, 104, 200


def table(cpu: dict[int, float], rss: dict[int, int] | None = None) -> list[Proc]:
    parents = {API: 1, UVI1: API, UVI2: API, WORKER: API, WORKER_CHILD: WORKER, INDEXER: API}
    parents[STRANGER] = 1
    return [
        Proc(pid, parents[pid], float(pid), seconds, (rss or {}).get(pid, 1_000))
        for pid, seconds in cpu.items()
    ]


ROOTS = {"gateway-api": API, "gateway-worker": WORKER, "gateway-indexer": INDEXER}


def test_each_process_goes_to_the_watched_root_nearest_above_it() -> None:
    cpu = {pid: 0.0 for pid in (API, UVI1, UVI2, WORKER, WORKER_CHILD, INDEXER, STRANGER)}
    owner = assign_trees(table(cpu), ROOTS)
    assert owner == {
        API: "gateway-api", UVI1: "gateway-api", UVI2: "gateway-api",
        WORKER: "gateway-worker", WORKER_CHILD: "gateway-worker", INDEXER: "gateway-indexer",
    }  # fmt: skip


def fed(*tables: list[Proc]) -> Monitor:
    """A monitor that reads ``tables`` one per sample, and has taken every sample."""
    feed = iter(tables)
    monitor = Monitor(read=lambda _roots: next(feed))
    for name, pid in ROOTS.items():
        monitor.watch(name, pid)
    for t, _ in enumerate(tables):
        monitor.sample()
        monitor.samples[-1] = (float(t), monitor.samples[-1][1])  # wall time = sample index
    return monitor


def test_the_api_counts_its_uvicorn_workers_and_a_gone_worker_keeps_its_cpu() -> None:
    start = {API: 1.0, UVI1: 10.0, UVI2: 20.0, WORKER: 5.0, WORKER_CHILD: 1.0, INDEXER: 2.0}
    middle = {**start, API: 1.1, UVI1: 13.0, UVI2: 24.0, WORKER: 6.0, WORKER_CHILD: 1.5}
    end = dict(middle)
    del end[UVI2]  # exited after the middle sample: its 4 s stay counted
    end.update({API: 1.2, UVI1: 15.0, INDEXER: 2.5})
    monitor = fed(table(start), table(middle), table(end))
    api_cpu, _ = monitor.window(["gateway-api"], 0, 2)
    assert api_cpu == pytest.approx(0.2 + 5.0 + 4.0)  # manager + both uvicorn workers
    worker_cpu, _ = monitor.window(["gateway-worker"], 0, 2)
    assert worker_cpu == pytest.approx(1.0 + 0.5)  # the worker's own child included
    every = ["gateway-api", "gateway-worker", "gateway-indexer"]
    assert monitor.window(every, 0, 2)[0] == pytest.approx(9.2 + 1.5 + 0.5)
    assert monitor.pids("gateway-api") == (API, UVI1)


def test_peak_rss_is_the_largest_sum_over_the_tree_in_one_sample() -> None:
    cpu = {API: 0.0, UVI1: 0.0, UVI2: 0.0, WORKER: 0.0, INDEXER: 0.0}
    first = table(cpu, {API: 50_000, UVI1: 100_000, UVI2: 100_000, WORKER: 80_000})
    second = table(cpu, {API: 50_000, UVI1: 150_000, UVI2: 90_000, WORKER: 60_000})
    monitor = fed(first, second)
    assert monitor.window(["gateway-api"], 0, 1)[1] == 50_000 + 150_000 + 90_000
    # together: 330,000 then 350,000 KiB (not the sum of each group's own peak, 370,000)
    both = monitor.window(["gateway-api", "gateway-worker"], 0, 1)[1]
    assert both == 50_000 + 150_000 + 90_000 + 60_000


def test_a_reused_pid_is_another_process() -> None:
    first = [Proc(API, 1, 1.0, 3.0, 0), Proc(UVI1, API, 1.0, 7.0, 0)]
    # uvicorn restarted a worker; the new one got the same pid: it starts from 0.5 s, so
    # the window adds 0.5 s, not 0.5 - 7.0.
    second = [Proc(API, 1, 1.0, 3.0, 0), Proc(UVI1, API, 9.0, 0.5, 0)]
    feed = iter([first, second])
    monitor = Monitor(read=lambda _roots: next(feed))
    monitor.watch("gateway-api", API)
    monitor.sample()
    monitor.sample()
    assert monitor.samples[-1][1]["gateway-api"].cpu_s - monitor.samples[0][1][
        "gateway-api"
    ].cpu_s == pytest.approx(0.5)


def pg(pid: int, title: str, cpu: float) -> Proc:
    return Proc(pid, 1, 1.0, cpu, 0, "postgres", title)


def test_postgres_counts_the_servers_shared_processes_and_the_runs_backends() -> None:
    ours = "pointsnet_e2e_batch_1a2b3c4d"
    assert postgres_ours(pg(1, "/usr/lib/postgresql/15/bin/postgres -D /var/lib/x", 0), ours)
    assert postgres_ours(pg(2, "postgres: 15/main: checkpointer ", 0), ours)
    assert postgres_ours(pg(3, "postgres: 15/main: walwriter ", 0), ours)
    assert postgres_ours(
        pg(4, f"postgres: 15/main: postgres {ours} 127.0.0.1(40848) idle", 0), ours
    )
    assert postgres_ours(pg(5, f"postgres: app {ours} [local] INSERT", 0), ours)
    other = "postgres: 15/main: postgres pointsnet_test_5a326919dce3 127.0.0.1(40850) idle"
    assert not postgres_ours(pg(6, other, 0), ours)
    python = Proc(7, 1, 1.0, 0.0, 0, "python3", f"{ours} 127.0.0.1(1)")
    assert not postgres_ours(python, ours)

    def server(t: float) -> list[Proc]:
        return [
            pg(2, "postgres: 15/main: walwriter ", 1.0 + t),
            pg(4, f"postgres: 15/main: postgres {ours} 127.0.0.1(40848) idle", 10.0 + 3 * t),
            pg(6, other, 50.0 + 100 * t),  # another run's backend: not ours
        ]

    feed = iter([server(0), server(1)])
    monitor = Monitor(read=lambda _roots: next(feed))
    monitor.watch_postgres(ours, postmaster=1)
    monitor.sample()
    monitor.sample()
    first, last = monitor.samples[0][1]["postgres"], monitor.samples[-1][1]["postgres"]
    assert last.cpu_s - first.cpu_s == pytest.approx(1.0 + 3.0)
    assert last.pids == (2, 4)


BURNER = """
import subprocess, sys, time
burn = "import time\\nt = time.process_time()\\n"
burn += "while time.process_time() - t < 0.3: pass\\ntime.sleep(30)"
children = [subprocess.Popen([sys.executable, "-c", burn]) for _ in range(2)]
print("started", flush=True)
time.sleep(30)
"""


def test_a_real_tree_counts_the_cpu_of_the_children() -> None:
    root = subprocess.Popen([sys.executable, "-c", BURNER], stdout=subprocess.PIPE)
    try:
        assert root.stdout is not None and root.stdout.readline() == b"started\n"
        monitor = Monitor(interval=0.05)
        monitor.watch("tree", root.pid)

        def total() -> float:  # CPU since the processes started, the children's included
            return monitor.samples[-1][1]["tree"].cpu_s if monitor.samples else 0.0

        with monitor:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and total() < 0.6:  # each child burns 0.3 s
                time.sleep(0.1)
        assert len(monitor.pids("tree")) == 3
        assert 0.6 <= total() < 1.5  # the root itself only sleeps
        assert monitor.samples[-1][1]["tree"].rss_kib > 3 * 5_000  # three interpreters
    finally:
        for child in psutil.Process(root.pid).children():
            child.kill()
        root.kill()
        root.wait()
