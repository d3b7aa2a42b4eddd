"""Claiming pending ops and packing issue batches.

Responsibilities:

- tell which op kinds are pending (one statement), read and claim pending ops (``SKIP
  LOCKED`` on PostgreSQL) and tell when a batch has waited long enough for more ops;
- plan issue batches per (merchant, published rule version), filled by count, by gas
  (their gas computed from their composition, :mod:`gateway.outbox.gas`) or by time
  (``batch_max_wait``), simulate them outside any write transaction (one ``eth_call`` at
  the computed gas; ``eth_estimateGas`` for the other kinds), and store each, signed,
  with a contiguous range of the merchant's sequence numbers and its ops marked
  ``sent`` (``after_store`` fault point after the commit), then broadcast;
- handle a simulated revert: resync a merchant's sequence counter, hold ops while the
  hub is paused or a merchant is at its mint cap, fail the rest.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from hexbytes import HexBytes
from sqlalchemy import exists, func, select, update
from sqlalchemy.orm import Session
from web3.contract.contract import ContractFunction

from chain.contracts import encode_call
from chain.errors import (
    ContractRevert,
)
from gateway.db import NO_KEY_UPDATE, is_postgres, transaction
from gateway.faults import fault_point
from gateway.models import ChainOp, Event, Merchant
from gateway.outbox.base import HOLD_RECHECK, PAUSABLE_KINDS, CapHold, chain_tx_row, log
from gateway.outbox.gas import fill_issue_batch
from gateway.outbox.replacement import Replacement
from gateway.timeutil import aware as _aware

#: Every kind of op the outbox packs.
OP_KINDS = ("issue", "clawback", "badge", "tier", "rule", "redeem", "transfer")
#: What a planner returns for one batch (``_next_plan``).
PlanT = TypeVar("PlanT")
#: Seconds one cycle may spend packing issue (or clawback) batches before it follows
#: receipts again: under a steady inflow there is always another batch to pack, and
#: events confirmed on chain would otherwise wait for the inflow to stop.
PACK_SECONDS = 0.5


class Packing(Replacement):
    """Claiming, storing and issue batches."""

    def _pending(
        self, session: Session, kind: str | tuple[str, ...], limit: int, *, lock: bool = True
    ) -> list[ChainOp]:
        kinds = (kind,) if isinstance(kind, str) else kind
        query = (
            select(ChainOp)
            .where(ChainOp.status == "pending", ChainOp.kind.in_(kinds))
            .order_by(ChainOp.id)
            .limit(limit)
        )
        if lock and is_postgres(session):
            query = query.with_for_update(skip_locked=True)
        return list(session.scalars(query).all())

    def _kinds_waiting(self) -> set[str]:
        """The op kinds with pending ops: one statement of index probes, so a cycle with
        nothing of a kind to do neither reads nor locks anything for it."""
        with self.sessions() as session:
            row = session.execute(
                select(
                    *(
                        exists()
                        .where(ChainOp.status == "pending", ChainOp.kind == kind)
                        .label(kind)
                        for kind in OP_KINDS
                    )
                )
            ).one()
        return {kind for kind, waiting in zip(OP_KINDS, row, strict=True) if waiting}

    def _claim(self, session: Session, op_ids: list[int]) -> list[ChainOp]:
        """The ops of ``op_ids`` that are still pending, locked, in the order given."""
        query = select(ChainOp).where(ChainOp.id.in_(op_ids), ChainOp.status == "pending")
        if is_postgres(session):
            query = query.with_for_update(skip_locked=True)
        found = {op.id: op for op in session.scalars(query)}
        return [found[i] for i in op_ids if i in found]

    def _due(self, session: Session, ops: list[ChainOp]) -> bool:
        """Whether the oldest event of ``ops`` has waited ``batch_max_wait`` for a fuller batch."""
        oldest = session.scalar(
            select(func.min(Event.created_at)).where(
                Event.id.in_({op.event_id for op in ops if op.event_id})
            )
        )
        if oldest is None:
            return True  # no event waits on these ops
        return (datetime.now(UTC) - _aware(oldest)).total_seconds() >= self.settings.batch_max_wait

    def _published_versions(self, session: Session) -> dict[int, int]:
        rows = session.execute(select(Merchant.id, Merchant.rule_version)).all()
        return {int(merchant_id): int(version) for merchant_id, version in rows}

    def _next_plan(
        self, kind: str, did: bool, deadline: float, plan: Callable[[], PlanT | None]
    ) -> PlanT | None:
        """The next batch of ``kind`` to pack, planned by ``plan``; None when there is none,
        ops of ``kind`` are held while paused, or some batch went out (``did``) and the
        cycle's ``deadline`` passed (the receipts of what went out come before packing more)."""
        if self._held_while_paused(kind):
            return None
        if did and time.monotonic() > deadline:
            return None
        return plan()

    def _simulate(
        self, call: ContractFunction, gas: int | None = None, kind: str = ""
    ) -> tuple[int, tuple[int, int]]:
        """Gas and fees for ``call``; a revert raises ContractRevert.

        With a computed ``gas`` one ``eth_call`` at that limit is the simulation that
        detects reverts; without one, when it falls short, or for the next batch of a
        ``kind`` that ran out of gas on chain, ``eth_estimateGas`` prices the call."""
        data = encode_call(call)
        if gas is not None and kind not in self._estimate_next:
            try:
                self.sender.simulate(call.address, data, gas)
                return gas, self._fees()
            except ContractRevert as revert:
                if revert.name != "OutOfGas":
                    raise
                log.warning("a %s batch needs more than its computed %d gas: estimating", kind, gas)
        self._estimate_next.discard(kind)
        return self.sender.estimate_gas(call.address, data), self._fees()

    def _store(
        self,
        session: Session,
        kind: str,
        merchant_id: int | None,
        call: ContractFunction,
        ops: list[ChainOp],
        prepared: tuple[int, tuple[int, int]] | None = None,
    ) -> bool:
        """Sign ``call`` and store it with its ops marked sent; False if it would revert.

        ``prepared`` is (gas, fees) from a simulation made before the transaction
        began; without it the call is simulated here.
        """
        try:
            gas, fees = prepared if prepared is not None else (None, self._fees())
            signed = self.sender.sign(call.address, encode_call(call), gas=gas, fees=fees)
        except ContractRevert as revert:
            self._handle_revert(session, kind, merchant_id, ops, revert)
            return False
        tx = chain_tx_row(kind, merchant_id, signed)
        session.add(tx)
        session.flush()
        for op in ops:
            op.status = "sent"
            op.tx_id = tx.id
        event_ids = {op.event_id for op in ops if op.event_id}
        if event_ids:
            session.execute(
                update(Event)
                .where(Event.id.in_(event_ids), Event.status == "accepted")
                .values(status="submitted")
            )
        return True

    def _handle_revert(
        self,
        session: Session,
        kind: str,
        merchant_id: int | None,
        ops: list[ChainOp],
        revert: ContractRevert,
    ) -> None:
        """A transaction that would revert is not sent: fix what can be fixed, fail the rest."""
        if revert.name == "LoyaltyNetworkSequenceUsed" and merchant_id is not None:
            # Our counter is behind the chain (a restored database): skip past used numbers.
            merchant = session.get(Merchant, merchant_id, with_for_update=NO_KEY_UPDATE)
            assert merchant is not None
            merchant.next_seq = self._next_free_seq(merchant_id, merchant.next_seq)
            for op in ops:
                op.seq = None
            log.warning("merchant %s sequence resynced to %s", merchant_id, merchant.next_seq)
            return
        if kind in PAUSABLE_KINDS and revert.name == "EnforcedPause":
            # Nothing is wrong with the ops: they wait, pending, for the unpause.
            for op in ops:
                op.seq = None
            self._hold_while_paused(kind)
            return
        if kind == "issue" and revert.name == "LoyaltyNetworkMintCapExceeded":
            assert merchant_id is not None
            cap = int(revert.args_by_name["cap"])
            if len(ops) > 1 or ops[0].amount <= cap:
                # It fits in a later period (alone, if need be): it waits, pending.
                for op in ops:
                    op.seq = None
                self._cap_holds[merchant_id] = CapHold(
                    self._cap_period(), time.monotonic() + HOLD_RECHECK
                )
                log.warning(
                    "issuance for merchant %s held back at its cap: %s", merchant_id, revert
                )
                return
            # A single issuance above the whole cap can never be minted: it fails.
        self._fail_ops(session, ops, str(revert))

    def _cap_period(self) -> int:
        """The hub's current cap period index (as ``_countAgainstCap`` computes it)."""
        now = (self._head or self._read_head()).timestamp
        return now // int(self.hub.functions.capPeriodSeconds().call())

    def _next_free_seq(self, merchant_id: int, start: int) -> int:
        """The first sequence number at or after ``start`` above every used one nearby."""
        word = start >> 8
        seq = start
        while True:
            bits = int(self.hub.functions.sequenceWord(merchant_id, word).call())
            if bits == 0:
                return max(seq, word * 256)
            seq = word * 256 + bits.bit_length()
            word += 1

    def _taken_by_recovery(self, op_ids: list[int]) -> bool:
        """Whether some of ``op_ids`` were on chain before a database loss and are now
        confirmed as such (see :meth:`ChainRecovery.claim`; free when nothing was adopted).
        Asked before a batch is simulated: a refund clawed back already would revert."""
        recovery = self.chain_recovery
        if recovery is None or not recovery.adopted:
            return False
        with transaction(self.sessions) as session:
            return recovery.claim(session, self._claim(session, op_ids)) > 0

    def _store_in_sequence(
        self,
        kind: str,
        merchant_id: int,
        first_seq: int,
        op_ids: list[int],
        call: ContractFunction,
        prepared: tuple[int, tuple[int, int]],
        original_seqs: list[int] | None = None,
    ) -> bool:
        """Store the planned batch ``call`` of ``op_ids`` (issue or clawback) with the
        merchant's sequence numbers from ``first_seq``, in one short write transaction.

        False when the world moved on since the plan (another worker took some ops, the
        merchant's next sequence number changed, or the call now reverts): the caller
        plans again.
        """
        with transaction(self.sessions) as session:
            merchant = session.get(Merchant, merchant_id, with_for_update=NO_KEY_UPDATE)
            assert merchant is not None
            ops = self._claim(session, op_ids)
            if merchant.next_seq != first_seq or len(ops) != len(op_ids):
                return False
            for i, op in enumerate(ops):
                op.seq = first_seq + i
                if original_seqs is not None:
                    op.original_seq = original_seqs[i]
            if not self._store(session, kind, merchant_id, call, ops, prepared):
                return False
            merchant.next_seq = first_seq + len(ops)
        return True

    def _pack_issues(self) -> bool:
        """Issue batches, planned and simulated outside any write transaction.

        The plan (ops, first sequence number, the call and its gas) is made from
        a read snapshot; the write transaction only checks that nothing changed
        meanwhile (another worker, a new sequence number) and stores the signed
        transaction, so SQLite's write lock is never held across an RPC.
        """
        did = False
        deadline = time.monotonic() + PACK_SECONDS
        for _ in range(200):  # bounded per cycle; contention with other workers re-plans
            plan = self._next_plan("issue", did, deadline, self._plan_issue_batch)
            if plan is None:
                return did
            merchant_id, first_seq, op_ids, call, gas = plan
            if self._taken_by_recovery(op_ids):
                continue  # issued before a database loss: confirmed now, plan again
            try:
                prepared = self._simulate(call, gas, "issue")
            except ContractRevert as revert:
                with transaction(self.sessions) as session:
                    ops = self._claim(session, op_ids)
                    if len(ops) == len(op_ids):
                        self._handle_revert(session, "issue", merchant_id, ops, revert)
                continue
            if not self._store_in_sequence("issue", merchant_id, first_seq, op_ids, call, prepared):
                continue  # plan again
            fault_point("after_store")
            did = True
            self._broadcast_new()
        return did

    def _plan_issue_batch(self) -> tuple[int, int, list[int], ContractFunction, int] | None:
        """The next issue batch that is due: (merchant, first seq, op ids in order, call,
        its gas computed from the batch's size and composition)."""
        with self.sessions() as session:
            # Plain rows, not ORM objects: with a backlog this reads thousands per plan.
            ops = session.execute(
                select(
                    ChainOp.id, ChainOp.merchant_id, ChainOp.rule_version, ChainOp.ref,
                    ChainOp.member_address, ChainOp.amount, ChainOp.event_id,
                )
                .where(ChainOp.status == "pending", ChainOp.kind == "issue")
                .order_by(ChainOp.id)
                .limit(self.settings.batch_max_events * 4)
            ).all()  # fmt: skip
            if not ops:
                return None
            published = self._published_versions(session)
            groups: dict[tuple[int, int], list[Any]] = defaultdict(list)
            for op in ops:
                assert op.merchant_id is not None
                if op.rule_version <= published.get(op.merchant_id, 0):
                    groups[(op.merchant_id, op.rule_version)].append(op)
            chosen = None
            for (merchant_id, version), group in groups.items():
                limit = self._issue_batch_limit(merchant_id)
                if limit > 0:
                    chosen = (merchant_id, version, group, limit)
                    break
            if chosen is None:
                return None  # every merchant with work is held back
            merchant_id, version, group, limit = chosen
            members = [op.member_address for op in group[:limit]]
            taken, gas = fill_issue_batch(
                members, self._holding(session, members), self._block_gas()
            )
            if taken == len(group) < limit and not self._due(session, group):
                return None  # neither full (by count or by gas) nor due: let it fill up
            group = group[:taken]
            merchant = session.get(Merchant, merchant_id)
            assert merchant is not None
            first_seq = merchant.next_seq
            call = self.hub.issue_batch(
                merchant_id, version, first_seq,
                [HexBytes(op.ref) for op in group],
                [op.member_address for op in group],
                [op.amount for op in group],
            )  # fmt: skip
            return merchant_id, first_seq, [op.id for op in group], call, gas

    def _block_gas(self) -> int:
        """The block gas limit, read once from the latest block."""
        if self._block_gas_limit is None:
            self._block_gas_limit = (self._head or self._read_head()).gas_limit
        return self._block_gas_limit

    def _holding(self, session: Session, members: list[str]) -> set[str]:
        """Which of ``members`` hold points, as far as the outbox knows: it issued to them
        (sent or confirmed). A member who spent everything since takes a fresh slot again:
        the batch's simulation at its computed gas catches that (see ``_simulate``)."""
        return set(
            session.scalars(
                select(ChainOp.member_address)
                .where(
                    ChainOp.kind == "issue",
                    ChainOp.status.in_(("sent", "confirmed")),
                    ChainOp.member_address.in_(set(members)),
                )
                .distinct()
            )
        )

    def _issue_batch_limit(self, merchant_id: int) -> int:
        """How many issuances of ``merchant_id`` the next batch may carry (0: none now)."""
        hold = self._cap_holds.get(merchant_id)
        if hold is None:
            return self.settings.batch_max_events
        if time.monotonic() < hold.retry_at:
            return 0
        if self._cap_period() > hold.period:
            del self._cap_holds[merchant_id]  # a new period: the cap is fresh again
            return self.settings.batch_max_events
        return 1
