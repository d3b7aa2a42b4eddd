"""CPU and memory of the processes under measurement, counted as process trees (psutil).

A watched process is the root of a tree: ``pointsnet serve`` and everything it starts
(uvicorn's worker processes with ``--workers N``, the worker and indexer children of role
all, a multiprocessing helper). Each sample reads the watched processes and those below
them once (pid, parent, start time, CPU, RSS; children from
``/proc/<pid>/task/*/children``, not a scan of the machine) and books each process to the
watched root nearest above it (a watched process inside another's tree is its own group).
A :class:`CpuLedger` keeps the last CPU seen of every process, by pid and start time, so
the CPU of a process that exits stays counted; only what it spent after its last sample
(at most one interval) is missed. A process's own user + system time is counted, never
its reaped children's (they are counted themselves), so nothing is counted twice.

A local PostgreSQL server can be watched too (:meth:`Monitor.watch_postgres`: the tree
of its postmaster): its shared processes (postmaster, checkpointer, background and WAL
writers, autovacuum: they also serve the server's other databases) plus the backends
connected to the run's own database (not those of other databases, e.g. another test
run's).
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil


@dataclass(frozen=True)
class Proc:
    """One process as a sample saw it."""

    pid: int
    ppid: int
    started: float  # creation time: a reused pid is another process
    cpu_s: float  # user + system of this process (all its threads, not its children)
    rss_kib: int
    name: str = ""
    cmdline: str = ""  # read for postgres processes only

    @property
    def key(self) -> tuple[int, float]:
        return (self.pid, self.started)


def _proc(process: psutil.Process) -> Proc:
    with process.oneshot():
        times, name = process.cpu_times(), process.name()
        cmdline = " ".join(process.cmdline()) if name == "postgres" else ""
        return Proc(
            process.pid, process.ppid(), process.create_time(), times.user + times.system,
            process.memory_info().rss // 1024, name, cmdline,
        )  # fmt: skip


#: Linux lists each thread's children in /proc/<pid>/task/<tid>/children (CONFIG_PROC_CHILDREN):
#: a tree is then read without scanning every process of the machine.
_CHILDREN_FILES = Path(f"/proc/self/task/{os.getpid()}/children").exists()


def _children(pid: int) -> list[int]:
    if not _CHILDREN_FILES:
        return [child.pid for child in psutil.Process(pid).children()]
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            found += [int(child) for child in (task / "children").read_text().split()]
    return found


def read_processes(roots: Iterable[int]) -> list[Proc]:
    """``roots`` and every process below them, read once (gone ones left out)."""
    procs: list[Proc] = []
    seen: set[int] = set()
    todo = list(roots)
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        try:
            procs.append(_proc(psutil.Process(pid)))
            todo += _children(pid)
        except (psutil.Error, OSError):
            continue  # exited meanwhile
    return procs


def postmaster_pid() -> int | None:
    """The local PostgreSQL server's first process (the parent of all its others)."""
    for process in psutil.process_iter(["name", "ppid"]):
        if process.info["name"] != "postgres":
            continue
        with contextlib.suppress(psutil.Error):
            if psutil.Process(process.info["ppid"]).name() != "postgres":
                return int(process.pid)
    return None


def assign_trees(procs: Iterable[Proc], roots: dict[str, int]) -> dict[int, str]:
    """pid -> the name of the watched root nearest above it (or itself)."""
    children: dict[int, list[int]] = {}
    alive = set()
    for proc in procs:
        alive.add(proc.pid)
        children.setdefault(proc.ppid, []).append(proc.pid)
    root_pids = set(roots.values())
    owner: dict[int, str] = {}
    for name, root in roots.items():
        if root not in alive:
            continue
        todo = [root]
        while todo:
            pid = todo.pop()
            owner[pid] = name
            todo += [c for c in children.get(pid, ()) if c not in root_pids]
    return owner


#: A PostgreSQL client backend's process title: ``postgres: [cluster: ]user database
#: host(port)|[local] state``; anything else a ``postgres`` process runs is the server's own.
_BACKEND = re.compile(r"^postgres: (?:\S+: )?\S+ (\S+) (?:\[local\]|\S+\(\d+\))")


def postgres_ours(proc: Proc, database: str) -> bool:
    """Whether ``proc`` is a PostgreSQL server process working for ``database``: one of
    the server's shared processes, or a backend connected to that database."""
    if proc.name != "postgres":
        return False
    backend = _BACKEND.match(proc.cmdline)
    return backend is None or backend.group(1) == database


@dataclass
class CpuLedger:
    """Cumulative CPU seconds per group, over every process ever seen in the group."""

    last: dict[tuple[int, float], tuple[str, float]] = field(default_factory=dict)

    def see(self, group: str, proc: Proc) -> None:
        """Record ``proc``'s CPU so far; a process stays in the group it was first seen in."""
        first_group = self.last.get(proc.key, (group, 0.0))[0]
        self.last[proc.key] = (first_group, proc.cpu_s)

    def totals(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for group, cpu in self.last.values():
            out[group] = out.get(group, 0.0) + cpu
        return out


@dataclass(frozen=True)
class Usage:
    """A group at one sample: CPU seconds so far (processes gone included), the RSS summed
    over its live processes, and those processes."""

    cpu_s: float
    rss_kib: int
    pids: tuple[int, ...]


class Monitor:
    """Samples the CPU and RSS of watched process trees every ``interval`` seconds in a
    thread (``read`` replaces :func:`read_processes`, for tests)."""

    def __init__(
        self, interval: float = 0.25, read: Callable[[Iterable[int]], list[Proc]] = read_processes
    ) -> None:
        self.interval = interval
        self.read = read
        self.roots: dict[str, int] = {}
        self.postgres_database: str | None = None
        self.postmaster: int | None = None
        self.ledger = CpuLedger()
        self.samples: list[tuple[float, dict[str, Usage]]] = []
        self.file: Path | None = None
        self.file_peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-monitor", daemon=True)

    def __enter__(self) -> Monitor:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def watch(self, name: str, pid: int) -> None:
        """Count ``pid`` and the processes below it as ``name``."""
        self.roots[name] = pid

    def watch_postgres(self, database: str, postmaster: int | None = None) -> None:
        """Count a local PostgreSQL server's work for ``database`` as ``postgres`` (the
        server whose first process is ``postmaster``; by default the one running here, if
        any)."""
        self.postgres_database = database
        self.postmaster = postmaster or postmaster_pid()

    def watch_file(self, path: Path | None) -> None:
        """Track the largest size ``path`` reaches (the SQLite WAL)."""
        self.file = path

    def snapshot(self) -> dict[str, Usage]:
        """Read the processes once: each watched group's :class:`Usage`."""
        roots = dict(self.roots)
        tops = [*roots.values(), *([self.postmaster] if self.postmaster else [])]
        procs = self.read(tops)
        owner = assign_trees(procs, roots)
        live: dict[str, list[Proc]] = {name: [] for name in self.roots}
        database = self.postgres_database
        if database is not None:
            live["postgres"] = []
        for proc in procs:
            group = owner.get(proc.pid)
            if group is None and database is not None and postgres_ours(proc, database):
                group = "postgres"
            if group is not None:
                self.ledger.see(group, proc)
                live[group].append(proc)
        totals = self.ledger.totals()
        return {
            name: Usage(
                totals.get(name, 0.0) if members or name in totals else math.nan,
                sum(p.rss_kib for p in members),
                tuple(p.pid for p in members),
            )
            for name, members in live.items()
        }

    def sample(self) -> None:
        """Take one sample now (the thread does this every ``interval``)."""
        self.samples.append((time.time(), self.snapshot()))
        if self.file is not None:
            with contextlib.suppress(OSError):
                self.file_peak = max(self.file_peak, self.file.stat().st_size)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def window(self, names: Sequence[str], t0: float, t1: float) -> tuple[float, int]:
        """(CPU seconds, peak RSS KiB) of the groups ``names`` together between wall times
        ``t0`` and ``t1``: the CPU they spent, and the largest RSS of one sample summed over
        all their processes. NaN CPU with fewer than two samples."""
        inside = [s for t, s in self.samples if t0 <= t <= t1]
        if len(inside) < 2:
            return math.nan, 0
        cpu = 0.0
        for name in names:
            first, last = inside[0].get(name), inside[-1].get(name)
            if first is None or last is None:
                return math.nan, 0
            cpu += last.cpu_s - first.cpu_s
        peak = max(sum(s[n].rss_kib for n in names if n in s) for s in inside)
        return cpu, peak

    def pids(self, name: str) -> tuple[int, ...]:
        """The live processes of group ``name`` at the latest sample."""
        for _t, sample in reversed(self.samples):
            if name in sample:
                return sample[name].pids
        return ()


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of the single process ``pid`` (NaN if gone)."""
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return math.nan
    return float(times.user + times.system)


def memory_kib(pid: int, field_name: str) -> int:
    """A ``/proc/<pid>/status`` memory figure (VmRSS, VmHWM) in KiB; 0 if unavailable."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    return 0


def child_roles(pid: int) -> dict[str, int]:
    """The child processes of ``pid`` by the ``--role`` on their command line."""
    roles: dict[str, int] = {}
    with contextlib.suppress(psutil.Error):
        for child in psutil.Process(pid).children():
            with contextlib.suppress(psutil.Error):
                command = child.cmdline()
                if "--role" in command[:-1]:
                    roles[command[command.index("--role") + 1]] = child.pid
    return roles


def spawned_workers(pid: int) -> list[int]:
    """The child processes of ``pid`` that multiprocessing spawned (uvicorn's workers)."""
    found: list[int] = []
    with contextlib.suppress(psutil.Error):
        for child in psutil.Process(pid).children():
            with contextlib.suppress(psutil.Error):
                if "spawn_main" in " ".join(child.cmdline()):
                    found.append(child.pid)
    return sorted(found)
