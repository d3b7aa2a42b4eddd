"""The outbox worker: pending chain ops become on-chain transactions, exactly once.

Responsibilities:

- the loop: follow receipts, pack and send, replace stuck transactions; transient
  failures are logged and retried, nothing a cycle did is lost (it is in the database);
- on start, catch up with the chain if the database is behind it (a restored backup,
  :mod:`gateway.outbox.recovery`), re-broadcast every stored transaction that is not
  final (same raw bytes, hence the same hash), set the next nonce, and define the badge
  catalogue on chain;
- on the devnet, keep the chain's clock moving past rule versions' effective times: an
  automining anvil without traffic mines no block, so its time, which decides the rule
  version in effect, would stand still (one ``evm_mine`` once such a time has passed by
  the wall clock with no block since).

Whatever happens between two steps, the database says what to do next, and the hub's
sequence bitmap makes a double mint impossible regardless.
"""

from __future__ import annotations

import threading
import time

from sqlalchemy import exists, select
from web3.exceptions import ContractLogicError

from chain.errors import (
    ChainError,
)
from gateway.db import transaction
from gateway.models import ChainOp, ChainTx, RuleSetVersion
from gateway.outbox.base import log
from gateway.outbox.packing import OP_KINDS
from gateway.outbox.recovery import ChainRecovery
from gateway.outbox.singles import SINGLE_KINDS, Singles
from gateway.rules.badges import BADGES

#: Seconds between two scans for stuck transactions (``tx_stuck_after`` is far longer).
STUCK_SCAN_SECONDS = 1.0
#: What :meth:`OutboxWorker._waiting` says when transactions are stored, not broadcast.
SIGNED = "tx:signed"
#: What :meth:`OutboxWorker._waiting` says when transactions are broadcast, not final.
SENT = "tx:sent"
#: Seconds between two looks at the devnet's clock while a rule version's effective time
#: it has not reached is due by the wall clock.
DEVNET_CLOCK_CHECK = 1.0


class OutboxWorker(Singles):
    """Consumes ``chain_ops``; one instance owns the operator key's nonces."""

    def run(self, stop: threading.Event, idle_sleep: float = 0.05) -> None:
        """Work until ``stop`` is set; transient failures are logged and retried."""
        while not stop.is_set():
            try:
                busy = self.run_once()
            except (ChainError, OSError) as exc:
                log.warning("worker cycle failed (will retry): %s", exc)
                busy = False
                stop.wait(1.0)
            except Exception:
                # A database timeout or a bug in one cycle must not end the thread:
                # everything it did is in the database, so the next cycle resumes.
                log.exception("worker cycle crashed (will retry)")
                busy = False
                stop.wait(1.0)
            if not busy:
                stop.wait(idle_sleep)

    def run_once(self) -> bool:
        """One pass over everything; True when something was done."""
        if not self._recovered:
            self.recover()
        self._head = None  # read again, once, when the cycle first needs it
        waiting = self._waiting()
        did = self.follow_receipts() if SENT in waiting else False
        if did:
            self._in_flight = None  # some were mined: read again when packing
        did |= self.pack_and_send(waiting)
        now = time.monotonic()
        if now >= self._stuck_scan_at:
            self._stuck_scan_at = now + STUCK_SCAN_SECONDS
            did |= self.replace_stuck()
        elif SIGNED in waiting:
            self._broadcast_new()  # stored transactions a transient error kept from the node
        if self._effective_due:
            self._advance_devnet_clock()
        return did

    def _advance_devnet_clock(self) -> None:
        """Mine a block on the devnet once a rule version's effective time has passed by
        the wall clock and the chain's clock is still before it (an automining anvil mines
        only for transactions): the gateway chooses versions by the latest block's time.

        A real chain's blocks keep coming, so elsewhere the times are only forgotten once
        a block reaches them; this asks the node nothing more than a look at the head
        every ``DEVNET_CLOCK_CHECK`` seconds while one is due."""
        now = time.monotonic()
        if now < self._devnet_clock_at or min(self._effective_due) > time.time():
            return
        self._devnet_clock_at = now + DEVNET_CLOCK_CHECK
        head = self._head or self._read_head()
        due = max(t for t in self._effective_due if t <= time.time())
        if head.timestamp < due and self.settings.is_devnet:
            self.sender.rpc.call("evm_mine", [])
            log.info("devnet: mined a block to move chain time past %d", due)
            head = self._read_head()
        self._effective_due = {t for t in self._effective_due if t > head.timestamp}

    def _waiting(self) -> set[str]:
        """What this cycle has to do, in one statement of index probes: the op kinds with
        pending ops, and :data:`SIGNED` / :data:`SENT` when this sender has transactions
        stored but not broadcast / broadcast but not final; it also reads the gas of this
        sender's transactions in flight (for ``_room_left``). An idle cycle costs that one
        read, and reads or locks nothing else."""
        probes = {
            **{
                kind: exists().where(ChainOp.status == "pending", ChainOp.kind == kind)
                for kind in OP_KINDS
            },
            **{
                marker: exists().where(
                    ChainTx.sender == self.sender.address, ChainTx.status == status
                )
                for marker, status in ((SIGNED, "signed"), (SENT, "sent"))
            },
        }
        with self.sessions() as session:
            row = session.execute(
                select(*(p.label(n) for n, p in probes.items()), self._in_flight_gas())
            ).one()
        self._room, self._in_flight = None, int(row[-1] or 0)
        return {name for name, found in zip(probes, row[:-1], strict=True) if found}

    def recover(self) -> None:
        """Re-broadcast stored, unfinished transactions and set the next nonce."""
        # First catch up with the chain if the database is behind it (a restored backup).
        self.chain_recovery = ChainRecovery(self.link.network, self.sessions, self._update_events)
        self.chain_recovery.recover_if_behind()
        with transaction(self.sessions) as session:
            pending = session.scalars(
                select(ChainTx)
                .where(
                    ChainTx.sender == self.sender.address, ChainTx.status.in_(("signed", "sent"))
                )
                .order_by(ChainTx.nonce, ChainTx.id)
            ).all()
            highest = max((tx.nonce for tx in pending), default=-1)
            for tx in pending:
                self._broadcast(session, tx)
        chain_next = self.sender.reconcile_nonce()
        self.sender.set_next_nonce(max(chain_next, highest + 1))
        if self.defines_badges:
            self.define_badges()
        if self.settings.is_devnet:
            self._effective_due.update(self._future_effective_times())
        self._recovered = True
        if pending:
            log.info("recovered %d stored transaction(s)", len(pending))

    def _future_effective_times(self) -> set[int]:
        """Effective times of published rule versions after the latest block's."""
        head = self._head or self._read_head()
        with self.sessions() as session:
            times = session.scalars(
                select(RuleSetVersion.effective_at)
                .where(RuleSetVersion.effective_at > head.timestamp)
                .distinct()
            )
            return {int(t) for t in times if t is not None}

    def define_badges(self) -> None:
        """Define on chain every badge of the catalogue that is not defined yet."""
        for badge in BADGES:
            if self._badge_defined(badge.id):
                continue
            uri = f"{self.settings.base_url}/v1/badges/{badge.id}.json"
            self.sender.transact(
                self.hub.define_badge(badge.id, badge.name, uri, badge.max_supply, badge.soulbound)
            )
            log.info("defined badge %s (%s)", badge.id, badge.name)
        self._badges_defined = True

    def badges_defined(self) -> bool:
        """Whether the whole badge catalogue is on chain (checked until it is)."""
        if not self._badges_defined:
            self._badges_defined = all(self._badge_defined(badge.id) for badge in BADGES)
        return self._badges_defined

    def _badge_defined(self, badge_id: int) -> bool:
        try:
            self.link.network.badges.badge_type(badge_id)
        except ContractLogicError:
            return False
        return True

    def pack_and_send(self, waiting: set[str] | None = None) -> bool:
        """Pack pending ops into transactions (stored, then broadcast), as many as the
        next block has gas for (see ``_fits``); ``waiting``: what :meth:`_waiting` found
        (read here when not given)."""
        did = False
        waiting = self._waiting() if waiting is None else waiting
        if not waiting.intersection(OP_KINDS):
            return False
        for kinds in SINGLE_KINDS:
            if waiting.intersection(kinds):
                did |= self._pack_singles(kinds)
        if "clawback" in waiting:
            did |= self._pack_clawbacks()
        # Badges and tiers before issuances: they take what the next block has left first,
        # so a steady inflow of issue batches cannot keep them waiting for good.
        if "badge" in waiting and self.badges_defined():
            did |= self._pack_small_batches("badge")
        if "tier" in waiting:
            did |= self._pack_small_batches("tier")
        if "issue" in waiting:
            did |= self._pack_issues()
        if did:
            self._broadcast_new()  # the cycle's transactions, in one JSON-RPC batch
        self._room = self._in_flight = None
        return did
