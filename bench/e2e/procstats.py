"""CPU and memory of the processes under measurement (from /proc, or psutil)."""

from __future__ import annotations

import contextlib
import math
import os
import threading
import time
from pathlib import Path


def cpu_seconds(pid: int) -> float:
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


def memory_kib(pid: int, field_name: str) -> int:
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
            name: (cpu_seconds(pid), memory_kib(pid, "VmRSS"))
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


def child_roles(pid: int) -> dict[str, int]:
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
