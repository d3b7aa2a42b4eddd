"""Role ``all`` as processes: the API in this process, the outbox workers and the indexer
as its children.

Responsibilities:

- start ``pointsnet serve --role worker`` (with the ``--signer-index`` options given to
  role all) and ``pointsnet serve --role indexer`` as child processes, with this
  process's environment and working directory so that they read the same settings;
  each in a session of its own, so a Ctrl-C at the terminal reaches only this process,
  which then stops them in order;
- restart a child that exits while the gateway runs, after a backoff that doubles from
  1 s up to 30 s (back to 1 s once a child has run for a minute), saying so in the log;
- on exit (SIGINT, SIGTERM, or the API stopping) send each child SIGTERM, wait for it,
  and SIGKILL whatever still runs after the grace period;
- in a child: stop when the supervisor is gone (``--supervised-by``), so that even a
  SIGKILLed supervisor leaves nothing running for more than a second or so.

Why processes: as threads of one process the API's request threads, the outbox workers
and the indexer share one GIL, and under load the worker stalls for seconds behind
request handling. ``pointsnet serve --in-process`` keeps the single-process mode
(:func:`gateway.app.create_app` with ``run_background=True``, which tests use too).

On SQLite each process has its own engine: the in-process write lock
(:class:`gateway.db.FairLock`) orders the writers of one process, and SQLite's busy
timeout (30 s, WAL journal) those of different processes.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType

log = logging.getLogger("pointsnet.supervisor")

#: The roles role all runs as child processes, in start order.
CHILD_ROLES = ("worker", "indexer")


def role_command(
    role: str, signer_indexes: Sequence[int] | None = None, supervisor_pid: int | None = None
) -> list[str]:
    """The command line of a child running ``role`` (this interpreter, ``gateway.cli``)."""
    command = [sys.executable, "-m", "gateway.cli", "serve", "--role", role]
    if role == "worker":
        command += [f"--signer-index={index}" for index in signer_indexes or ()]
    command += ["--supervised-by", str(supervisor_pid or os.getpid())]
    return command


@dataclass
class Child:
    """One supervised role: its command and the process running it, if any."""

    role: str
    command: list[str]
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0  # monotonic time of the last start
    backoff: float = 0.0  # seconds before the next restart
    restart_at: float | None = None  # when a dead child is started again
    restarts: int = 0


@dataclass
class Supervisor:
    """Runs child processes until :meth:`stop`, restarting any that exits meanwhile."""

    commands: dict[str, list[str]]
    grace: float = 10.0  # seconds between SIGTERM and SIGKILL on stop
    poll: float = 0.25  # seconds between checks of the children
    min_backoff: float = 1.0
    max_backoff: float = 30.0
    stable_after: float = 60.0  # a child that ran this long restarts after min_backoff again
    children: dict[str, Child] = field(default_factory=dict, init=False)
    _stopping: threading.Event = field(default_factory=threading.Event, init=False)
    _thread: threading.Thread | None = field(default=None, init=False)

    @classmethod
    def for_role_all(cls, signer_indexes: Sequence[int] | None = None) -> Supervisor:
        """The worker role (on ``signer_indexes``, default every key) and the indexer role."""
        return cls({role: role_command(role, signer_indexes) for role in CHILD_ROLES})

    def pids(self) -> dict[str, int]:
        """The running children's process ids, by role."""
        return {
            role: child.process.pid
            for role, child in self.children.items()
            if child.process is not None and child.process.poll() is None
        }

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start every child, then the thread that restarts the ones that exit."""
        for role, command in self.commands.items():
            child = Child(role, command, backoff=self.min_backoff)
            self.children[role] = child
            self._spawn(child)
        self._thread = threading.Thread(target=self._watch, name="supervisor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """SIGTERM every child, wait up to ``grace`` seconds, SIGKILL the rest (idempotent)."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
        running = [c for c in self.children.values() if c.process and c.process.poll() is None]
        for child in running:
            assert child.process is not None
            log.info("stopping %s (pid %d)", child.role, child.process.pid)
            child.process.terminate()
        deadline = time.monotonic() + self.grace
        for child in running:
            assert child.process is not None
            try:
                child.process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning(
                    "%s (pid %d) still running %.0f s after SIGTERM; killing it",
                    child.role, child.process.pid, self.grace,
                )  # fmt: skip
                child.process.kill()
                child.process.wait()

    @contextmanager
    def running(self) -> Iterator[Supervisor]:
        """Children running for the ``with`` block; SIGINT and SIGTERM end the block (as a
        clean exit) and the children are stopped whatever ends it. Main thread only."""

        def exit_cleanly(signum: int, _frame: FrameType | None) -> None:
            log.info("%s received; stopping", signal.Signals(signum).name)
            raise SystemExit(0)

        previous = {
            sig: signal.signal(sig, exit_cleanly) for sig in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            self.start()
            yield self
        finally:
            for sig in previous:  # a second Ctrl-C must not cut the children's shutdown short
                signal.signal(sig, signal.SIG_IGN)
            try:
                self.stop()
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

    # ------------------------------------------------------------ children

    def _spawn(self, child: Child) -> None:
        child.process = subprocess.Popen(
            child.command, stdin=subprocess.DEVNULL, start_new_session=True
        )
        child.started = time.monotonic()
        child.restart_at = None
        log.info("%s running as pid %d (supervisor pid %d)", child.role, child.process.pid,
                 os.getpid())  # fmt: skip

    def _watch(self) -> None:
        while not self._stopping.wait(self.poll):
            now = time.monotonic()
            for child in self.children.values():
                if self._stopping.is_set():
                    return
                if child.restart_at is not None:
                    if now >= child.restart_at:
                        child.restarts += 1
                        self._spawn(child)
                    continue
                if child.process is None or child.process.poll() is None:
                    continue
                if now - child.started >= self.stable_after:
                    child.backoff = self.min_backoff
                log.warning(
                    "%s (pid %d) exited with code %s; restarting it in %.0f s",
                    child.role, child.process.pid, child.process.returncode, child.backoff,
                )  # fmt: skip
                child.restart_at = now + child.backoff
                child.backoff = min(self.max_backoff, child.backoff * 2)


def stop_when_orphaned(supervisor_pid: int, stop: threading.Event, poll: float = 1.0) -> None:
    """In a child: set ``stop`` once the supervisor is gone (this process re-parented)."""

    def watch() -> None:
        while not stop.wait(poll):
            if os.getppid() != supervisor_pid:
                log.warning("supervisor (pid %d) is gone; stopping", supervisor_pid)
                stop.set()

    threading.Thread(target=watch, name="supervisor-watch", daemon=True).start()
