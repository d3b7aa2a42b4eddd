"""The audit page's data: the network's history read from the chain, kept in memory.

:class:`AuditView` is the one object the audit API holds per app: the history
reader (:mod:`.reader`) with a cache of what is derived from a snapshot (the
chain state, the overview, the code verification, each computed once per block),
and the recompile job (:mod:`.recompile`). The history search (:mod:`.queries`)
and the reports (:mod:`.reports`) are functions of a snapshot.

Nothing here reads the gateway's database: the audit page is the auditor's view.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chain.audit import ChainState, Rpc, chain_state_at
from chain.config import PROJECT_ROOT
from chain.verify import Verification, reference_artifacts, verify_contracts
from gateway.services.audit import reports
from gateway.services.audit.reader import HistoryReader
from gateway.services.audit.recompile import RecompileJob, Recompiler
from gateway.services.audit.snapshot import Snapshot


class AuditView(HistoryReader):
    """The cached, incrementally extended history of one network and the reports on it."""

    def __init__(
        self, rpc: Rpc | str, hub: str, *, root: Path = PROJECT_ROOT, **reading: Any
    ) -> None:
        """``reading``: the :class:`HistoryReader`'s options (``confirmations``,
        ``start_block``); ``root``: the project whose contracts a recompile builds."""
        super().__init__(rpc, hub, **reading)
        self.root = root
        self._derived: dict[str, Any] = {}
        self._derived_for: tuple[int, str] | None = None
        self._derived_lock = threading.Lock()
        self._recompiler = Recompiler(self.rpc, root)

    # ---------------------------------------------------------------- derived, cached

    def _cached(self, snap: Snapshot, key: str, compute: Callable[[], Any]) -> Any:
        with self._derived_lock:
            if self._derived_for != (snap.to_block, snap.block_hash):
                self._derived = {}
                self._derived_for = (snap.to_block, snap.block_hash)
            if key in self._derived:
                return self._derived[key]
        value = compute()
        with self._derived_lock:
            if self._derived_for == (snap.to_block, snap.block_hash):
                self._derived[key] = value
        return value

    def state(self, snap: Snapshot) -> ChainState:
        """The contracts' own views at the snapshot's block."""
        result: ChainState = self._cached(
            snap, "state", lambda: chain_state_at(self.rpc, snap.contracts, snap.to_block)
        )
        return result

    def overview(self, snap: Snapshot) -> dict[str, Any]:
        """The overview page (:func:`.reports.overview`), once per block."""
        result: dict[str, Any] = self._cached(
            snap,
            "overview",
            lambda: reports.overview(snap, self.state(snap), self.confirmations),
        )
        return result

    def verification(self, snap: Snapshot) -> Verification:
        """Deployed code against the committed artifacts (cached per block)."""
        result: Verification = self._cached(
            snap,
            "verification",
            lambda: verify_contracts(
                self.rpc,
                snap.contracts,
                reference_artifacts(recompile=False, root=self.root),
                block=snap.to_block,
            ),
        )
        return result

    # ---------------------------------------------------------------- recompile

    def recompile_status(self) -> RecompileJob:
        """The current (or last) recompile job."""
        return self._recompiler.status()

    def start_recompile(self, snap: Snapshot) -> RecompileJob:
        """Start a fresh compile + comparison in a thread, unless one is running."""
        return self._recompiler.start(snap)
