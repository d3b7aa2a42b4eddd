"""Packing issue batches.

Responsibilities:

- read pending ops and tell when a batch has waited long enough for more ops;
- plan issue batches per (merchant, published rule version), filled by count, by gas
  (their gas computed from their composition, :mod:`gateway.outbox.gas`) or by time
  (the block's pack point on a chain with a steady interval, else ``batch_max_wait``),
  each committing to its events' inputs (``kind`` Rule and the root over its ops'
  ``(ref, input_hash)`` in sequence order, :func:`input_root`);
- simulate them outside any write transaction (one ``eth_call`` at the computed gas;
  ``eth_estimateGas`` for the other kinds), and store each, signed, with a contiguous
  range of the merchant's sequence numbers, its ops marked ``sent`` and its input root
  (``after_store`` fault point after the commit), then broadcast.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from hexbytes import HexBytes
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from web3.contract.contract import ContractFunction

from chain import merkle
from chain.abi import ZERO32
from chain.contracts import MintKind, encode_call
from chain.errors import (
    ContractRevert,
)
from gateway.db import is_postgres, transaction
from gateway.faults import fault_point
from gateway.models import ChainOp, ChainTx, Event, Merchant
from gateway.outbox.base import log
from gateway.outbox.gas import TX_GAS_CAP, fill_issue_batch
from gateway.outbox.reverts import Reverts
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


@dataclass(frozen=True)
class IssuePlan:
    """An issue batch to store: ``op_ids`` (in order) get sequence numbers from
    ``first_seq``; ``input_root`` (0x-hex) is what ``call`` commits to."""

    merchant_id: int
    first_seq: int
    op_ids: list[int]
    call: ContractFunction
    gas: int
    input_root: str


def input_root(ops: Sequence[Any]) -> str:
    """The root over the inputs of ``ops`` (rows with ``ref`` and ``input_hash``, in the
    batch's order) as 0x-hex: an op without a kept input (accepted before inputs were
    kept) commits to the zero hash."""
    return "0x" + merkle.input_root([(op.ref, op.input_hash or ZERO32) for op in ops]).hex()


class Packing(Reverts):
    """Storing signed batches, and issue batches."""

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

    def _wait_left(self, session: Session, ops: list[Any]) -> float:
        """Seconds a batch of ``ops`` not full yet still waits for more (0 or less: it is
        due), from its oldest event's age (``_fill_wait``); in id order an op is created
        with its event, so the first one's event is the oldest."""
        if self.settings.batch_max_wait <= 0:
            return 0.0
        event_id = next((op.event_id for op in ops if op.event_id), None)
        oldest = (
            session.scalar(select(Event.created_at).where(Event.id == event_id))
            if event_id is not None
            else None
        )
        if oldest is None:
            return 0.0  # no event waits on these ops
        return self._fill_wait((datetime.now(UTC) - _aware(oldest)).total_seconds())

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
        input_root: str | None = None,
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
            first_seq=first_seq, original_seqs=original_seqs, input_root=input_root,
        )  # fmt: skip
        if stored:
            self._room = self._room_left() - gas
        else:
            self.sender.release_nonce(signed.nonce)
        return stored

    def _hash_stored(self, tx_hash: str) -> bool:
        with self.sessions() as session:
            return session.scalar(select(ChainTx.id).where(ChainTx.tx_hash == tx_hash)) is not None

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
            if not self._fits(plan.gas):
                return did  # the next block is full: the batch goes after it
            if self._taken_by_recovery(plan.op_ids):
                continue  # issued before a database loss: confirmed now, plan again
            data = encode_call(plan.call)
            try:
                prepared = self._simulate(plan.call, data, plan.gas, "issue")
            except ContractRevert as revert:
                self._revert_planned("issue", plan.merchant_id, plan.op_ids, revert)
                continue
            stored = self._sign_and_store(
                "issue", plan.merchant_id, plan.call, data, plan.op_ids, prepared,
                first_seq=plan.first_seq, input_root=plan.input_root,
            )  # fmt: skip
            if not stored:
                continue  # plan again
            fault_point("after_store")
            did = True
        return did

    def _plan_issue_batch(self) -> IssuePlan | None:
        """The next issue batch that is due: its ops in order, first sequence number, call,
        gas computed from the batch's size and composition, and input root.

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
                    ChainOp.input_hash,
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
                if self._version_waits(merchant_id, version):
                    continue
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
            root = input_root(group)
            call = self.hub.issue_batch(
                merchant_id, version, first_seq,
                [HexBytes(op.ref) for op in group],
                [op.member_address for op in group],
                [op.amount for op in group],
                kind=MintKind.RULE, input_root=HexBytes(root),
            )  # fmt: skip
            return IssuePlan(merchant_id, first_seq, [op.id for op in group], call, gas, root)

    def _version_waits(self, merchant_id: int, version: int) -> bool:
        """Whether the issuances of ``merchant_id`` under ``version`` wait for it to take
        effect (the hub refused them with ``RuleVersionNotInEffect``)."""
        key = (merchant_id, version)
        if self._still_holding(self._version_holds.get(key)):
            return True
        self._version_holds.pop(key, None)
        return False

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
