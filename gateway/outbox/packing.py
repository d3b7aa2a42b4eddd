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
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from web3.contract.contract import ContractFunction

from chain.contracts import encode_call
from chain.errors import (
    ContractRevert,
)
from gateway.db import NO_KEY_UPDATE, is_postgres, transaction
from gateway.faults import fault_point
from gateway.models import ChainOp, ChainTx, Event, Merchant
from gateway.outbox.base import HOLD_RECHECK, PAUSABLE_KINDS, CapHold, log
from gateway.outbox.gas import TX_GAS_CAP, fill_issue_batch
from gateway.outbox.replacement import Replacement
from gateway.outbox.store import store_signed
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

    def _claim(self, session: Session, op_ids: list[int]) -> list[ChainOp]:
        """The ops of ``op_ids`` that are still pending, locked, in the order given."""
        query = select(ChainOp).where(ChainOp.id.in_(op_ids), ChainOp.status == "pending")
        if is_postgres(session):
            query = query.with_for_update(skip_locked=True)
        found = {op.id: op for op in session.scalars(query)}
        return [found[i] for i in op_ids if i in found]

    def _wait_left(self, session: Session, ops: list[Any]) -> float:
        """Seconds until the oldest event of ``ops`` (in id order: an op is created with its
        event, so the first one's is the oldest) has waited ``batch_max_wait`` for a fuller
        batch (0 or less: the batch is due)."""
        event_id = next((op.event_id for op in ops if op.event_id), None)
        oldest = (
            session.scalar(select(Event.created_at).where(Event.id == event_id))
            if event_id is not None
            else None
        )
        if oldest is None:
            return 0.0  # no event waits on these ops
        return self.settings.batch_max_wait - (datetime.now(UTC) - _aware(oldest)).total_seconds()

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
        self, call: ContractFunction, data: bytes, gas: int | None = None, kind: str = ""
    ) -> tuple[int, tuple[int, int]]:
        """Gas and fees for ``call``; a revert raises ContractRevert.

        With a computed ``gas`` one ``eth_call`` at that limit is the simulation that
        detects reverts; without one, when it falls short, or for the next batch of a
        ``kind`` that ran out of gas on chain, ``eth_estimateGas`` prices the call.

        A revert without data at the computed gas is taken for running out of it too:
        the token's call runs out inside the hub, which reverts with nothing to say (a
        member counted as holding points, from a batch sent but not mined yet, is new to
        the chain the simulation runs on). ``eth_estimateGas`` then tells a real revert."""
        if gas is not None and kind not in self._estimate_next:
            try:
                self.sender.simulate(call.address, data, gas)
                return gas, self._fees()
            except ContractRevert as revert:
                if revert.name not in ("OutOfGas", "UnknownRevert"):
                    raise
                log.warning("a %s batch needs more than its computed %d gas: estimating", kind, gas)
        self._estimate_next.discard(kind)
        return self.sender.estimate_gas(call.address, data), self._fees()

    def _in_flight_gas(self) -> Any:
        """The gas limits of this sender's transactions signed or sent, not mined yet
        (a scalar subquery: the worker's one probe per cycle carries it)."""
        return (
            select(func.coalesce(func.sum(ChainTx.gas), 0))
            .where(ChainTx.sender == self.sender.address, ChainTx.status.in_(("signed", "sent")))
            .scalar_subquery()
        )

    def _room_left(self) -> int:
        """How much gas the next block has left for this sender (``_room``): the block gas
        limit less the limits of its transactions in flight (read if not known yet)."""
        if self._room is None:
            if self._in_flight is None:
                with self.sessions() as session:
                    self._in_flight = int(session.scalar(select(self._in_flight_gas())) or 0)
            self._room = self._block_gas() - self._in_flight
        return self._room

    def _fits(self, gas: int) -> bool:
        """Whether a transaction of ``gas`` may go now: it fits in what the next block has
        left beside this sender's transactions in flight (or none is in flight).

        Transactions beyond one block's gas only wait in the node's pool, and a node may
        drop them there (anvil drops the later nonces of a transaction a full block left
        out): they go once the block before them is mined, so every block carries as
        many events as its gas allows, and nothing waits beyond it."""
        room = self._room_left()
        return gas <= room or room >= self._block_gas()

    def _issue_room(self) -> int | None:
        """The gas the next issue batch may fill: the block's, or with transactions of this
        sender in flight what the next block has left beside them; None when that is under
        a quarter of a full batch (it waits for the next block rather than go small)."""
        block, room = self._block_gas(), self._room_left()
        if room >= block:
            return block
        return room if room * 4 >= min(block, TX_GAS_CAP) else None

    def _sign_and_store(
        self,
        kind: str,
        merchant_id: int | None,
        call: ContractFunction,
        data: bytes,
        op_ids: list[int],
        prepared: tuple[int, tuple[int, int]],
        *,
        first_seq: int | None = None,
        original_seqs: list[int] | None = None,
    ) -> bool:
        """Sign ``call`` (encoded as ``data``) at the ``prepared`` gas and fees, then store
        it with its ops marked sent in one short write transaction (:func:`store_signed`:
        signing stays outside the lock). False when the world moved on since the plan; the
        nonce is then given back."""
        gas, fees = prepared
        signed = self.sender.sign(call.address, data, gas=gas, fees=fees)
        while self._hash_stored(signed.hash):
            # The same call at the same nonce and fees was refused before and its nonce
            # handed out again (a badge or tier award names no event, so it can repeat
            # exactly): a wei more of fees gives this transaction a hash of its own.
            fees = (fees[0] + 1, fees[1] + 1)
            signed = self.sender.sign(call.address, data, gas=gas, fees=fees, nonce=signed.nonce)
        stored = store_signed(
            self.sessions, kind, merchant_id, signed, op_ids,
            first_seq=first_seq, original_seqs=original_seqs,
        )  # fmt: skip
        if stored:
            self._room = self._room_left() - gas
        else:
            self.sender.release_nonce(signed.nonce)
        return stored

    def _hash_stored(self, tx_hash: str) -> bool:
        with self.sessions() as session:
            return session.scalar(select(ChainTx.id).where(ChainTx.tx_hash == tx_hash)) is not None

    def _revert_planned(
        self, kind: str, merchant_id: int | None, op_ids: list[int], revert: ContractRevert
    ) -> None:
        """The planned batch of ``op_ids`` would revert: act on it (:meth:`_handle_revert`)
        if its ops are all still pending."""
        with transaction(self.sessions) as session:
            ops = self._claim(session, op_ids)
            if len(ops) == len(op_ids):
                self._handle_revert(session, kind, merchant_id, ops, revert)

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

    def _pack_issues(self) -> bool:
        """Issue batches, planned and simulated outside any write transaction.

        The plan (ops, first sequence number, the call and its gas) is made from
        a read snapshot and signed; the write transaction only checks that nothing
        changed meanwhile (another worker, a new sequence number) and stores the signed
        transaction, so SQLite's write lock is never held across an RPC or a signature.
        """
        did = False
        deadline = time.monotonic() + PACK_SECONDS
        for _ in range(200):  # bounded per cycle; contention with other workers re-plans
            plan = self._next_plan("issue", did, deadline, self._plan_issue_batch)
            if plan is None:
                return did
            merchant_id, first_seq, op_ids, call, gas = plan
            if not self._fits(gas):
                return did  # the next block is full: the batch goes after it
            if self._taken_by_recovery(op_ids):
                continue  # issued before a database loss: confirmed now, plan again
            data = encode_call(call)
            try:
                prepared = self._simulate(call, data, gas, "issue")
            except ContractRevert as revert:
                self._revert_planned("issue", merchant_id, op_ids, revert)
                continue
            stored = self._sign_and_store(
                "issue", merchant_id, call, data, op_ids, prepared, first_seq=first_seq
            )
            if not stored:
                continue  # plan again
            fault_point("after_store")
            did = True
        return did

    def _plan_issue_batch(self) -> tuple[int, int, list[int], ContractFunction, int] | None:
        """The next issue batch that is due: (merchant, first seq, op ids in order, call,
        its gas computed from the batch's size and composition).

        Filled by gas (:func:`fill_issue_batch`: the block's gas limit and EIP-7825's cap),
        ``batch_max_events`` being only a safety bound above what gas allows."""
        if time.monotonic() < self._issues_due_at:
            return None  # the last batch planned was not due yet, and still is not
        room = self._issue_room()
        if room is None:
            return None  # the next block is (nearly) full: plan after it
        with self.sessions() as session:
            # Plain rows, not ORM objects: with a backlog this reads thousands per plan.
            ops = session.execute(
                select(
                    ChainOp.id, ChainOp.merchant_id, ChainOp.rule_version, ChainOp.ref,
                    ChainOp.member_address, ChainOp.amount, ChainOp.event_id,
                )
                .where(ChainOp.status == "pending", ChainOp.kind == "issue")
                .order_by(ChainOp.id)
                .limit(self.settings.batch_max_events * 2)
            ).all()  # fmt: skip
            if not ops:
                return None
            merchants = {
                int(row.id): (int(row.rule_version), int(row.next_seq))
                for row in session.execute(
                    select(Merchant.id, Merchant.rule_version, Merchant.next_seq)
                )
            }
            groups: dict[tuple[int, int], list[Any]] = defaultdict(list)
            for op in ops:
                assert op.merchant_id is not None
                if op.rule_version <= merchants.get(op.merchant_id, (0, 0))[0]:
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
            taken, gas = fill_issue_batch(members, self._holding(session, members), room)
            if taken == len(group) < limit:
                left = self._wait_left(session, group)
                if left > 0:  # neither full (by count or by gas) nor due: let it fill up
                    self._issues_due_at = time.monotonic() + left
                    return None
            group = group[:taken]
            first_seq = merchants[merchant_id][1]
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
        """Which of ``members`` hold points on chain, as far as the outbox knows: an issuance
        to them is confirmed. One in a batch sent but not mined yet still counts as new:
        the batch is simulated on the latest block, where that member has no points yet
        (counting it as holding ran batches out of gas in their simulation, which failed
        their events). A member who spent everything since takes a fresh slot again: the
        simulation at the computed gas catches that (see ``_simulate``)."""
        return set(
            session.scalars(
                select(ChainOp.member_address)
                .where(
                    ChainOp.kind == "issue",
                    ChainOp.status == "confirmed",
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
