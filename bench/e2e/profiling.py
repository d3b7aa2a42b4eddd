"""``--profile``: py-spy on each gateway process, and where the samples go."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from bench.e2e.config import Progress


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
    ("webhook dispatcher", ("webhooks/",)),
    (
        "worker: RPC (simulate, fees, send, receipts)",
        ("sender.py", "jsonrpc.py", "web3/", "requests/", "urllib3/"),
    ),
    ("worker: DB (pack, store, finalize)", ("outbox/",)),
    ("accept: reads (one query per table per chunk)", ("accept/reads.py",)),
    ("accept: custodial member (derived key)", ("derived_address", "custodial_key")),
    ("accept: rules engine", ("rules/",)),
    ("accept: counter buckets", ("accept/counters.py",)),
    ("accept: writes (multi-row inserts)", ("accept/writes.py",)),
    ("accept: chunk decisions and ops", ("accept/chunk.py", "accept/ops.py")),
    ("accept: commit / BEGIN IMMEDIATE wait", ("submit",)),
    ("API: group commit (authenticate, hand back answers)", ("group_commit.py",)),
    ("API: fast path (parse, validate)", ("fast_events.py",)),
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
