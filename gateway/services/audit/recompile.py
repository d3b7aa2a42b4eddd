"""The deployed code against the contracts: a fresh compile as a background job."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from chain.audit import (
    Rpc,
    iso_time,
)
from chain.verify import Verification, reference_artifacts, verify_contracts
from gateway.services.audit.snapshot import Snapshot

log = logging.getLogger("pointsnet.audit")


@dataclass
class RecompileJob:
    """A fresh compile of ``contracts/`` compared with the deployed code, off the request."""

    state: str = "idle"  # idle | running | done | failed
    started_at: float | None = None
    finished_at: float | None = None
    block: int | None = None
    result: Verification | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "started_at": iso_time(int(self.started_at)) if self.started_at else None,
            "finished_at": iso_time(int(self.finished_at)) if self.finished_at else None,
            "seconds": round(self.finished_at - self.started_at, 1)
            if self.finished_at and self.started_at
            else None,
            "block": self.block,
            "result": self.result.to_dict() if self.result is not None else None,
            "error": self.error,
        }


class Recompiler:
    """One fresh compile of ``contracts/`` at a time, in a background thread, compared
    with the deployed code (too slow for a page load)."""

    def __init__(self, rpc: Rpc, root: Path) -> None:
        self.rpc = rpc
        self.root = root
        self._job = RecompileJob()
        self._job_lock = threading.Lock()

    def status(self) -> RecompileJob:
        """The current (or last) job, as a copy."""
        with self._job_lock:
            return replace(self._job)

    def start(self, snap: Snapshot) -> RecompileJob:
        """Start a fresh compile + comparison in a thread, unless one is running."""
        with self._job_lock:
            if self._job.state == "running":
                return replace(self._job)
            self._job = RecompileJob("running", time.time(), None, snap.to_block)
        thread = threading.Thread(
            target=self._recompile, args=(snap,), name="audit-recompile", daemon=True
        )
        thread.start()
        return self.status()

    def _recompile(self, snap: Snapshot) -> None:
        try:
            reference = reference_artifacts(recompile=True, root=self.root)
            result = verify_contracts(self.rpc, snap.contracts, reference, block=snap.to_block)
        except Exception as exc:  # reported on the page; the thread must not die silently
            log.exception("recompile for the audit page failed")
            with self._job_lock:
                self._job = replace(
                    self._job, state="failed", finished_at=time.time(), error=str(exc)[:500]
                )
            return
        with self._job_lock:
            self._job = replace(self._job, state="done", finished_at=time.time(), result=result)
