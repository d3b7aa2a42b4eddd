"""Outbox worker: pending chain ops become on-chain transactions, exactly once.

Responsibilities:

- on start, reconcile the operator nonce with the chain and re-broadcast every
  stored transaction that is not final (same raw bytes, hence the same hash);
- take pending ops in order and pack them: issuances per (merchant, rule
  version) into ``issueBatch`` over a contiguous range of fresh per-merchant
  sequence numbers; clawbacks per merchant, once the issuance each refunds is
  confirmed, into ``clawbackBatch`` (a batch that would revert goes again one
  clawback at a time, so only the bad one fails); badges and tiers in batches;
  rule-set publications, redemptions and transfers one per transaction;
- sign locally and store the signed raw transaction and its nonce, in the same
  database transaction that marks the ops ``sent``, **before** broadcasting;
- follow receipts behind the configured confirmation depth and mark
  transactions, ops, events and redemptions confirmed, or failed with the
  decoded custom error;
- hold ops back, pending, while the hub is paused (issuances, clawbacks, badge
  awards, redemptions and transfers: what the hub refuses while paused) or a
  merchant has reached its mint cap for the current period, and try again every
  ``HOLD_RECHECK`` seconds (one issuance per batch for a merchant at its cap,
  until the period ends) rather than failing them;
- replace transactions stuck for ``tx_stuck_after`` seconds with fees raised by
  at least 10% (same nonce), unless that would exceed the fee cap (then the
  transaction is left as it is);
- queue webhooks for what it confirmed or failed.

Whatever happens between two of these steps, the database says what to do
next, and the hub's sequence bitmap makes a double mint impossible regardless.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from eth_account.typed_transactions import TypedTransaction
from eth_utils import to_checksum_address
from hexbytes import HexBytes
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker
from web3.contract.contract import ContractFunction
from web3.exceptions import ContractLogicError, TransactionNotFound

from chain import merkle
from chain.contracts import LoyaltyNetworkClient, encode_call
from chain.decode import decode_logs, receipt_logs
from chain.errors import (
    ChainError,
    ContractRevert,
    ReplacementOverCap,
    TransientTransactionError,
)
from chain.merkle import IssuanceProof
from chain.records import Clawback
from chain.sender import SignedTx, TransactionSender
from gateway.chainlink import ChainLink
from gateway.db import NO_KEY_UPDATE, is_postgres, transaction
from gateway.faults import fault_point
from gateway.models import ChainOp, ChainTx, Event, Merchant, Redemption, RuleSetVersion
from gateway.recovery import ChainRecovery
from gateway.rules.badges import BADGES
from gateway.timeutil import aware as _aware
from gateway.webhooks.dispatcher import queue_webhook

log = logging.getLogger("pointsnet.worker")
#: What a planner returns for one batch (``_next_plan``).
PlanT = TypeVar("PlanT")

#: Ops of these kinds go one per transaction.
#: Each group is relayed in queue order; redemptions and transfers share one group
#: because both consume the member's hub nonce in the order the member signed them.
SINGLE_KINDS: tuple[tuple[str, ...], ...] = (("rule",), ("redeem", "transfer"))
#: Ops that move points: if one fails, its event fails.
VALUE_KINDS = ("issue", "clawback")
#: Ops whose hub functions refuse while the network is paused: they wait for the unpause.
PAUSABLE_KINDS = ("issue", "clawback", "badge", "redeem", "transfer")
#: How many badge awards or tier changes share one transaction.
SMALL_BATCH = 200
#: How many clawbacks share one transaction: ~48k gas each in a batch of 50 or more (see
#: docs/BENCHMARKS.md, "Gas"), so a full batch takes ~4.8M gas, far below a 30M block.
CLAWBACK_BATCH = 100
#: Events read (and locked) per statement when their statuses are derived from their ops.
EVENTS_PER_READ = 500
#: Confirmed issue batches kept in memory for the clawback proofs of their refunds.
BATCH_CACHE = 64
#: Seconds one cycle may spend packing issue (or clawback) batches before it follows
#: receipts again: under a steady inflow there is always another batch to pack, and
#: events confirmed on chain would otherwise wait for the inflow to stop.
PACK_SECONDS = 0.5
#: Seconds between two attempts at ops held back (network paused, merchant at its cap).
HOLD_RECHECK = 2.0


@dataclass(frozen=True)
class IssuedBatch:
    """A confirmed issue batch as its refunds prove it: first sequence number, members,
    amounts and the Merkle tree's levels (built once for all its refunds)."""

    first_seq: int
    members: list[str]
    amounts: list[int]
    tree: list[list[bytes]]


@dataclass(frozen=True)
class ClawbackPlan:
    """A clawback batch to store: ``op_ids[i]`` refunds issuance ``original_seqs[i]`` with
    sequence number ``first_seq + i``."""

    merchant_id: int
    first_seq: int
    op_ids: list[int]
    original_seqs: list[int]
    call: ContractFunction


@dataclass
class CapHold:
    """A merchant that reached its mint cap in cap period ``period``.

    Until that period ends its issuances go one per batch, each minted if it fits
    under the cap and otherwise waiting; none is tried before ``retry_at``
    (``time.monotonic()``).
    """

    period: int
    retry_at: float


class OutboxWorker:
    """Consumes ``chain_ops``; one instance owns the operator key's nonces."""

    def __init__(
        self,
        link: ChainLink,
        sessions: sessionmaker[Session],
        *,
        sender: TransactionSender | None = None,
        defines_badges: bool = True,
    ) -> None:
        """``defines_badges``: whether this worker defines the badge catalogue on chain on
        recovery. With several signer lanes only one does (see :mod:`gateway.runtime.lanes`); the
        others award no badge until the catalogue is on chain."""
        self.link = link
        self.defines_badges = defines_badges
        self._badges_defined = False
        self.sessions = sessions
        self.sender = sender or link.new_sender()
        self.hub: LoyaltyNetworkClient = link.network.hub
        self.settings = link.settings
        self._recovered = False
        self._issued_batches: dict[int, IssuedBatch] = {}
        self._paused_until = 0.0  # time.monotonic() before which pausable ops wait for an unpause
        self._cap_holds: dict[int, CapHold] = {}
        #: merchant -> id of the last clawback op that goes alone (after a batch would revert)
        self._clawbacks_alone: dict[int, int] = {}
        self.chain_recovery: ChainRecovery | None = None

    # ------------------------------------------------------------------ loop

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
        did = self.follow_receipts()
        did |= self.pack_and_send()
        did |= self.replace_stuck()
        return did

    # ------------------------------------------------------------------ recovery

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
        self._recovered = True
        if pending:
            log.info("recovered %d stored transaction(s)", len(pending))

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

    # ------------------------------------------------------------------ packing

    def pack_and_send(self) -> bool:
        """Pack pending ops into transactions (stored, then broadcast)."""
        did = False
        for kinds in SINGLE_KINDS:
            did |= self._pack_singles(kinds)
        did |= self._pack_clawbacks()
        did |= self._pack_issues()
        if self.badges_defined():
            did |= self._pack_small_batches("badge")
        did |= self._pack_small_batches("tier")
        return did

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
            merchant_id, first_seq, op_ids, call = plan
            if self._taken_by_recovery(op_ids):
                continue  # issued before a database loss: confirmed now, plan again
            try:
                prepared = self._simulate(call)
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

    def _plan_issue_batch(self) -> tuple[int, int, list[int], ContractFunction] | None:
        """The next issue batch that is due: (merchant, first seq, op ids in order, call)."""
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
                    chosen = (merchant_id, version, group[:limit], limit)
                    break
            if chosen is None:
                return None  # every merchant with work is held back
            merchant_id, version, group, limit = chosen
            if len(group) < limit and not self._due(session, group):
                return None  # let the batch fill up a little
            merchant = session.get(Merchant, merchant_id)
            assert merchant is not None
            first_seq = merchant.next_seq
            call = self.hub.issue_batch(
                merchant_id, version, first_seq,
                [HexBytes(op.ref) for op in group],
                [op.member_address for op in group],
                [op.amount for op in group],
            )  # fmt: skip
            return merchant_id, first_seq, [op.id for op in group], call

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

    def _cap_period(self) -> int:
        """The hub's current cap period index (as ``_countAgainstCap`` computes it)."""
        now = int(self.link.w3.eth.get_block("latest")["timestamp"])
        return now // int(self.hub.functions.capPeriodSeconds().call())

    def _pack_clawbacks(self) -> bool:
        """Clawback batches, planned and simulated outside any write transaction (as issue
        batches are); sequence numbers are given in the write transaction that stores them.

        A batch of several clawbacks that would revert is not sent: that merchant's
        clawbacks up to the batch's last one then go one per batch, so whichever reverts
        is handled alone (its op fails with the decoded error, as it would have on its
        own) and the others go through.
        """
        did = False
        deadline = time.monotonic() + PACK_SECONDS
        for _ in range(50):  # bounded per cycle; contention with other workers re-plans
            plan = self._next_plan("clawback", did, deadline, self._plan_clawback_batch)
            if plan is None:
                return did
            did = True
            if self._taken_by_recovery(plan.op_ids):
                # Clawed back before a database loss: confirmed now, before a simulation
                # that would revert (the hub counts what was burned) and fail the refund.
                continue
            try:
                prepared = self._simulate(plan.call)
            except ContractRevert as revert:
                alone = revert.name not in ("LoyaltyNetworkSequenceUsed", "EnforcedPause")
                if len(plan.op_ids) > 1 and alone:
                    self._clawbacks_one_at_a_time(plan.merchant_id, plan.op_ids, str(revert))
                    continue
                with transaction(self.sessions) as session:
                    ops = self._claim(session, plan.op_ids)
                    if len(ops) == len(plan.op_ids):
                        self._handle_revert(session, "clawback", plan.merchant_id, ops, revert)
                continue
            stored = self._store_in_sequence(
                "clawback", plan.merchant_id, plan.first_seq, plan.op_ids, plan.call, prepared,
                plan.original_seqs,
            )  # fmt: skip
            if not stored:
                continue  # plan again
            fault_point("after_store")
            self._broadcast_new()
        return did

    def _clawbacks_one_at_a_time(self, merchant_id: int, op_ids: list[int], reason: str) -> None:
        """A batch of the pending clawbacks ``op_ids`` would revert (or did, on chain):
        the merchant's clawbacks up to the last of them go one per batch."""
        self._clawbacks_alone[merchant_id] = max(op_ids)
        log.warning(
            "a clawback batch of merchant %s reverts (%s): its %d clawbacks go one at a time",
            merchant_id, reason, len(op_ids),
        )  # fmt: skip

    def _plan_clawback_batch(self) -> ClawbackPlan | None:
        """The next clawback batch that is due: the oldest ready clawbacks of one merchant.

        A clawback is ready once the issuance it refunds is confirmed; one whose issuance
        failed (or is gone) fails too. A batch waits, like an issue batch, up to
        ``batch_max_wait`` for more clawbacks to fill it.
        """
        with self.sessions() as session:
            ops = self._pending(session, "clawback", CLAWBACK_BATCH * 4, lock=False)
            if not ops:
                return None
            original_ids = {int(op.payload["original_op_id"]) for op in ops}
            original_status = {
                op_id: status
                for op_id, status in session.execute(
                    select(ChainOp.id, ChainOp.status).where(ChainOp.id.in_(original_ids))
                )
            }
            orphans: list[int] = []
            groups: dict[int, list[ChainOp]] = defaultdict(list)
            for op in ops:
                status = original_status.get(int(op.payload["original_op_id"]))
                if status is None or status == "failed":
                    orphans.append(op.id)
                elif status == "confirmed":
                    assert op.merchant_id is not None
                    groups[op.merchant_id].append(op)
            plan = None
            for merchant_id, group in groups.items():
                alone = self._clawbacks_alone.get(merchant_id)
                if alone is not None and group[0].id > alone:
                    del self._clawbacks_alone[merchant_id]
                    alone = None
                group = group[:1] if alone is not None else group[:CLAWBACK_BATCH]
                if len(group) < CLAWBACK_BATCH and alone is None and not self._due(session, group):
                    continue  # let the batch fill up a little
                merchant = session.get(Merchant, merchant_id)
                assert merchant is not None
                proofs = [
                    self._issuance_proof(session, int(op.payload["original_op_id"])) for op in group
                ]
                items = [
                    proved.clawback_item(merchant.next_seq + i, HexBytes(op.ref), op.amount)
                    for i, (op, proved) in enumerate(zip(group, proofs, strict=True))
                ]
                plan = ClawbackPlan(
                    merchant_id,
                    merchant.next_seq,
                    [op.id for op in group],
                    [proved.seq for proved in proofs],
                    self.hub.clawback_batch(merchant_id, items),
                )
                break
        if orphans:
            with transaction(self.sessions) as session:
                self._fail_ops(session, self._claim(session, orphans), "original issuance failed")
        return plan

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

    def _claim(self, session: Session, op_ids: list[int]) -> list[ChainOp]:
        """The ops of ``op_ids`` that are still pending, locked, in the order given."""
        query = select(ChainOp).where(ChainOp.id.in_(op_ids), ChainOp.status == "pending")
        if is_postgres(session):
            query = query.with_for_update(skip_locked=True)
        found = {op.id: op for op in session.scalars(query)}
        return [found[i] for i in op_ids if i in found]

    def _simulate(self, call: ContractFunction) -> tuple[int, tuple[int, int]]:
        """Gas (from a simulation: a revert raises ContractRevert) and fees for ``call``."""
        return self.sender.estimate_gas(call.address, encode_call(call)), self.sender.current_fees()

    def _pack_small_batches(self, kind: str) -> bool:
        """Badge awards (one merchant per call) or tier changes, simulated outside the lock."""
        if self._held_while_paused(kind):
            return False
        with self.sessions() as session:
            ops = self._pending(session, kind, SMALL_BATCH, lock=False)
            if kind == "badge":
                ops = [op for op in ops if op.merchant_id == ops[0].merchant_id] if ops else []
            if not ops:
                return False
            merchant_id, op_ids = ops[0].merchant_id, [op.id for op in ops]
            members = [op.member_address for op in ops]
            if kind == "badge":
                assert merchant_id is not None
                call = self.hub.award_badges(
                    merchant_id, members, [int(op.badge_id or 0) for op in ops]
                )
            else:
                call = self.hub.set_tiers(members, [int(op.tier or 0) for op in ops])
        try:
            prepared: tuple[int, tuple[int, int]] | None = self._simulate(call)
        except ContractRevert:
            prepared = None  # _store simulates again and handles the revert
        with transaction(self.sessions) as session:
            claimed = self._claim(session, op_ids)
            if len(claimed) != len(op_ids):
                return True  # another worker took some: look again next cycle
            if not self._store(session, kind, merchant_id, call, claimed, prepared):
                return False
        self._broadcast_new()
        return True

    def _pack_singles(self, kinds: tuple[str, ...]) -> bool:
        did = False
        for _ in range(50):  # bounded per cycle
            with transaction(self.sessions) as session:
                ops = self._pending(session, kinds, 20)
                op = next(
                    (
                        o
                        for o in ops
                        if not self._held_while_paused(o.kind) and self._ready(session, o)
                    ),
                    None,
                )
                if op is None:
                    return did
                call = self._single_call(op)
                if not self._store(session, op.kind, op.merchant_id, call, [op]):
                    continue
            did = True
            self._broadcast_new()
        return did

    def _ready(self, session: Session, op: ChainOp) -> bool:
        """A member's signed action waits until the member's earlier ones are final (they
        use nonces in order, and several workers may be running)."""
        if op.kind in ("redeem", "transfer"):
            earlier = session.scalar(
                select(func.count(ChainOp.id)).where(
                    ChainOp.member_address == op.member_address,
                    ChainOp.kind.in_(("redeem", "transfer")),
                    ChainOp.id < op.id,
                    ChainOp.status.in_(("pending", "sent")),
                )
            )
            return not earlier
        return True

    def _single_call(self, op: ChainOp) -> ContractFunction:
        hub = self.hub
        if op.kind == "rule":
            assert op.merchant_id is not None
            return hub.publish_rule_set(op.merchant_id, HexBytes(op.payload["hash"]))
        if op.kind == "redeem":
            r = dict(op.payload["redemption"])
            r["ref"] = HexBytes(r["ref"])
            return hub.redeem(r, HexBytes(op.payload["signature"]))
        if op.kind == "transfer":
            return hub.transfer_with_signature(
                dict(op.payload["request"]), HexBytes(op.payload["signature"])
            )
        raise ValueError(f"unknown op kind {op.kind}")

    def _issuance_proof(self, session: Session, op_id: int) -> IssuanceProof:
        """Issuance op ``op_id``'s chunk and Merkle proof, from the batch it was sent in."""
        original = session.get(ChainOp, op_id)
        assert original is not None and original.seq is not None and original.tx_id is not None
        batch = self._issued_batches.get(original.tx_id)
        if batch is None:
            # Plain rows, not ORM objects: a batch holds hundreds of issuances, and a
            # confirmed batch never changes, so it and its tree are kept for the refunds
            # that follow (a clawback batch often proves many items of one issue batch).
            rows = session.execute(
                select(ChainOp.seq, ChainOp.member_address, ChainOp.amount)
                .where(ChainOp.tx_id == original.tx_id, ChainOp.kind == "issue")
                .order_by(ChainOp.seq)
            ).all()
            first, members = int(rows[0].seq), [r.member_address for r in rows]
            amounts = [r.amount for r in rows]
            batch = IssuedBatch(first, members, amounts, merkle.levels(first, members, amounts))
            if len(self._issued_batches) >= BATCH_CACHE:
                self._issued_batches.pop(next(iter(self._issued_batches)))
            self._issued_batches[original.tx_id] = batch
        return merkle.prove(
            batch.first_seq, batch.members, batch.amounts, int(original.seq), batch.tree
        )

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
            if prepared is None:
                signed = self.sender.sign_call(call)
            else:
                gas, fees = prepared
                signed = self.sender.sign(call.address, encode_call(call), gas=gas, fees=fees)
        except ContractRevert as revert:
            self._handle_revert(session, kind, merchant_id, ops, revert)
            return False
        tx = _chain_tx(kind, merchant_id, signed)
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

    def _taken_by_recovery(self, op_ids: list[int]) -> bool:
        """Whether some of ``op_ids`` were on chain before a database loss and are now
        confirmed as such (see :meth:`ChainRecovery.claim`; free when nothing was adopted).
        Asked before a batch is simulated: a refund clawed back already would revert."""
        recovery = self.chain_recovery
        if recovery is None or not recovery.adopted:
            return False
        with transaction(self.sessions) as session:
            return recovery.claim(session, self._claim(session, op_ids)) > 0

    def _hold_while_paused(self, kind: str) -> None:
        if time.monotonic() >= self._paused_until:
            log.warning("%s ops held back while the network is paused", kind)
        self._paused_until = time.monotonic() + HOLD_RECHECK

    def _held_while_paused(self, kind: str) -> bool:
        """Whether ops of ``kind`` wait now: the hub was paused when last tried."""
        return kind in PAUSABLE_KINDS and time.monotonic() < self._paused_until

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

    # ------------------------------------------------------------------ sending

    def _broadcast_new(self) -> None:
        """Broadcast stored transactions not sent yet; the RPCs run outside the write lock.

        A crash between broadcast and the status update only means the same raw
        transaction is broadcast again on recovery, which the node accepts or
        recognises.
        """
        with self.sessions() as session:
            stored = [
                (tx.id, _signed(tx))
                for tx in session.scalars(
                    select(ChainTx)
                    .where(ChainTx.sender == self.sender.address, ChainTx.status == "signed")
                    .order_by(ChainTx.nonce)
                )
            ]
        if not stored:
            return
        outcomes = [(tx_id, self._send(signed)) for tx_id, signed in stored]
        with transaction(self.sessions) as session:
            for tx_id, error in outcomes:
                tx = session.get(ChainTx, tx_id)
                assert tx is not None
                self._record_broadcast(session, tx, error)

    def _broadcast(self, session: Session, tx: ChainTx) -> None:
        self._record_broadcast(session, tx, self._send(_signed(tx)))

    def _send(self, signed: SignedTx) -> ChainError | None:
        """Broadcast; the error, if any, is returned for ``_record_broadcast`` to act on."""
        try:
            self.sender.broadcast(signed)
        except ChainError as exc:
            return exc
        fault_point("after_broadcast")
        return None

    def _record_broadcast(self, session: Session, tx: ChainTx, error: ChainError | None) -> None:
        tx.attempts += 1
        if isinstance(error, TransientTransactionError):
            message = str(error).lower()
            if "nonce too low" in message:
                # The sender checked the chain (NonceConsumed): another transaction took
                # this nonce, ours will never be mined.
                if not self._nonce_taken_by_sibling(session, tx):
                    self._requeue(session, tx, "nonce consumed elsewhere")
                self._resync_nonce(session)
                return
            tx.error = str(error)[:500]
            log.warning("broadcast of %s deferred: %s", tx.tx_hash, error)
            return
        if error is not None:
            self._refused(session, tx, str(error))
            return
        if tx.status == "signed":
            tx.status = "sent"
            tx.sent_at = datetime.now(UTC)

    def _refused(self, session: Session, tx: ChainTx, reason: str) -> None:
        """The node refused ``tx`` for good (not a nonce or fee race): resending its ops would
        be refused too, so they fail with the node's reason; its nonce, never used, is handed
        out again, or filled with a no-op when later transactions wait behind it."""
        if self._node_has(tx) or self._sequences_used(session, tx):
            # A refusal that is not one: the node has the transaction (or the chain shows
            # its effect), so it is sent, and its receipt will settle it.
            log.warning("%s kept: the node refused it (%s) but has it", tx.tx_hash, reason)
            if tx.status == "signed":
                tx.status, tx.sent_at = "sent", datetime.now(UTC)
            return
        tx.status, tx.error = "failed", reason[:500]
        sibling = session.scalars(
            select(ChainTx)
            .where(
                ChainTx.sender == tx.sender,
                ChainTx.nonce == tx.nonce,
                ChainTx.id != tx.id,
                ChainTx.status.in_(("signed", "sent")),
            )
            .order_by(ChainTx.id.desc())
        ).first()
        ops = list(session.scalars(select(ChainOp).where(ChainOp.tx_id == tx.id)))
        if sibling is not None:  # a replacement was refused: the original may still be mined
            for op in ops:
                op.tx_id = sibling.id
            return
        sent = [op for op in ops if op.status == "sent"]
        self._fail_ops(session, sent, f"node refused the tx: {reason}")
        log.warning("transaction %s refused (%s); its ops failed", tx.tx_hash, reason)
        later = session.scalar(
            select(func.count(ChainTx.id)).where(
                ChainTx.sender == tx.sender,
                ChainTx.nonce > tx.nonce,
                ChainTx.status.in_(("signed", "sent")),
            )
        )
        if not later:
            self.sender.set_next_nonce(tx.nonce)
        elif tx.kind != "noop":
            filler = self.sender.sign(self.sender.address, b"", gas=21_000, nonce=tx.nonce)
            noop = _chain_tx("noop", None, filler)
            session.add(noop)
            session.flush()  # stored now, broadcast once committed (by _broadcast_new)

    def _resync_nonce(self, session: Session) -> None:
        """Continue after both the chain's pending count and every stored transaction not
        final yet: a node that lost transactions reports a count below them, and handing
        their nonces out again would give two different calls one nonce."""
        highest = session.scalar(
            select(func.max(ChainTx.nonce)).where(
                ChainTx.sender == self.sender.address, ChainTx.status.in_(("signed", "sent"))
            )
        )
        chain_next = self.sender.reconcile_nonce()
        self.sender.set_next_nonce(max(chain_next, -1 if highest is None else int(highest) + 1))

    def _nonce_taken_by_sibling(self, session: Session, tx: ChainTx) -> bool:
        siblings = session.scalars(
            select(ChainTx).where(
                ChainTx.sender == tx.sender, ChainTx.nonce == tx.nonce, ChainTx.id != tx.id
            )
        ).all()
        return any(self.sender.receipt(s.tx_hash) is not None for s in siblings)

    def _requeue(self, session: Session, tx: ChainTx, reason: str) -> None:
        """A transaction that can never be mined: its ops go back to pending.

        Unless the chain says otherwise: an issuance or clawback whose sequence
        numbers are already used on chain was executed (a node that misreported
        it, a receipt not visible yet), and queuing it again would issue twice.
        The transaction stays sent; its receipt will settle it.
        """
        if self._sequences_used(session, tx):
            log.warning("%s kept (%s): its sequences are used on chain", tx.tx_hash, reason)
            if tx.status == "signed":
                tx.status, tx.sent_at = "sent", datetime.now(UTC)
            return
        tx.status = "failed"
        tx.error = reason[:500]
        for op in session.scalars(select(ChainOp).where(ChainOp.tx_id == tx.id)):
            if op.status == "sent":
                op.status, op.tx_id, op.seq = "pending", None, None
        log.warning("transaction %s dropped (%s); its ops are queued again", tx.tx_hash, reason)

    def _node_has(self, tx: ChainTx) -> bool:
        """Whether the node knows ``tx`` (in its pool or mined)."""
        try:
            self.link.w3.eth.get_transaction(HexBytes(tx.tx_hash))
        except TransactionNotFound:
            return False
        return True

    def _sequences_used(self, session: Session, tx: ChainTx) -> bool:
        ops = session.scalars(
            select(ChainOp).where(
                ChainOp.tx_id == tx.id,
                ChainOp.kind.in_(VALUE_KINDS),
                ChainOp.seq.is_not(None),
                ChainOp.merchant_id.is_not(None),
            )
        ).all()
        hub = self.hub
        return any(hub.is_sequence_used(int(op.merchant_id or 0), int(op.seq or 0)) for op in ops)

    # ------------------------------------------------------------------ receipts

    def follow_receipts(self) -> bool:
        """Finalize sent transactions that have a receipt deep enough.

        Receipts are fetched outside the write transaction; only the finalizing
        of the transactions that have one takes the lock.
        """
        with self.sessions() as session:
            sent = session.execute(
                select(ChainTx.id, ChainTx.tx_hash)
                .where(ChainTx.sender == self.sender.address, ChainTx.status == "sent")
                .order_by(ChainTx.nonce)
            ).all()
        if not sent:
            return False
        head = self.link.w3.eth.block_number
        final: list[tuple[int, Any]] = []
        for tx_id, tx_hash in sent:
            receipt = self.sender.receipt(tx_hash)
            if receipt is not None and receipt["blockNumber"] + self.settings.confirmations <= head:
                final.append((tx_id, receipt))
        if not final:
            return False
        with transaction(self.sessions) as session:
            for tx_id, receipt in final:
                tx = session.get(ChainTx, tx_id)
                if tx is None or tx.status != "sent":
                    continue  # finalized meanwhile (a replacement's sibling)
                fault_point("before_receipt")
                self._finalize(session, tx, receipt)
        return True

    def _finalize(self, session: Session, tx: ChainTx, receipt: Any) -> None:
        ops = list(session.scalars(select(ChainOp).where(ChainOp.tx_id == tx.id)))
        # Siblings with the same nonce can never be mined now. A replacement (same call,
        # higher fees) carries the ops that ``tx`` executed; any other transaction that
        # was given this nonce executed nothing, so its ops go back to the queue.
        call: bytes | None = None
        for sibling in session.scalars(
            select(ChainTx).where(
                ChainTx.sender == tx.sender, ChainTx.nonce == tx.nonce, ChainTx.id != tx.id
            )
        ):
            call = call if call is not None else _signed(tx).data  # decoded only if needed
            if _signed(sibling).data != call:
                if sibling.status in ("signed", "sent"):
                    self._requeue(session, sibling, f"nonce {tx.nonce} taken by {tx.tx_hash}")
                continue
            sibling.status = "replaced"
            for op in session.scalars(select(ChainOp).where(ChainOp.tx_id == sibling.id)):
                op.tx_id = tx.id
                ops.append(op)
        tx.block_number = int(receipt["blockNumber"])
        tx.gas_used = int(receipt["gasUsed"])
        if receipt["status"] == 1:
            tx.status = "confirmed"
            self._confirm_ops(session, tx, ops, receipt)
        else:
            tx.status = "failed"
            revert = self.sender.revert_reason(tx.tx_hash, receipt)
            tx.error = str(revert)[:500]
            paused = revert.name == "EnforcedPause" or self.hub.paused(tx.block_number)
            if tx.kind in PAUSABLE_KINDS and paused:
                # Paused after it was simulated (the replay, at the block before, does not
                # see a pause earlier in its own block): it used no sequence number and
                # moved nothing, so
                # its ops wait for the unpause; one that reverts for another reason
                # fails when it is simulated again then.
                for op in ops:
                    op.status, op.tx_id, op.seq = "pending", None, None
                self._hold_while_paused(tx.kind)
            elif tx.kind == "clawback" and len(ops) > 1 and tx.merchant_id is not None:
                # Reverted, so it used no sequence number and burned nothing: its clawbacks
                # go again, each alone, and only one that reverts by itself fails.
                for op in ops:
                    op.status, op.tx_id, op.seq = "pending", None, None
                self._clawbacks_one_at_a_time(tx.merchant_id, [op.id for op in ops], str(revert))
            else:
                self._fail_ops(session, ops, str(revert))

    def _confirm_ops(self, session: Session, tx: ChainTx, ops: list[ChainOp], receipt: Any) -> None:
        for op in ops:
            op.status = "confirmed"
        if tx.kind == "rule":
            for op in ops:
                assert op.merchant_id is not None
                merchant = session.get(Merchant, op.merchant_id)
                assert merchant is not None
                merchant.rule_version = max(merchant.rule_version, int(op.payload["version"]))
                session.execute(
                    update(RuleSetVersion)
                    .where(
                        RuleSetVersion.merchant_id == op.merchant_id,
                        RuleSetVersion.version == int(op.payload["version"]),
                    )
                    .values(tx_hash=tx.tx_hash)
                )
        if tx.kind == "clawback":
            # One PointsClawedBack per clawback of the batch, named by its sequence number.
            burned = {
                record.seq: record.amount
                for record in decode_logs(self.link.network.emitters(), receipt_logs(receipt))
                if isinstance(record, Clawback) and record.merchant == tx.merchant_id
            }
            for op in ops:
                op.burned = burned.get(op.seq) if op.seq is not None else None
                if op.burned is None:
                    log.warning("no PointsClawedBack for seq %s in %s", op.seq, tx.tx_hash)
        if tx.kind == "redeem":
            for op in ops:
                self._settle_redemption(session, op, tx, confirmed=True)
        self._update_events(session, ops)

    def _fail_ops(self, session: Session, ops: Iterable[ChainOp], reason: str) -> None:
        ops = list(ops)
        for op in ops:
            op.status = "failed"
            op.error = reason[:500]
            if op.kind == "redeem":
                self._settle_redemption(session, op, None, confirmed=False)
        self._update_events(session, ops)

    def _settle_redemption(
        self, session: Session, op: ChainOp, tx: ChainTx | None, *, confirmed: bool
    ) -> None:
        redemption = session.scalars(select(Redemption).where(Redemption.op_id == op.id)).first()
        if redemption is None:
            return
        if confirmed and tx is not None:
            redemption.status = "confirmed"
            redemption.tx_hash = tx.tx_hash
            redemption.voucher_code = redemption.voucher_code or secrets.token_hex(6).upper()
            queue_webhook(session, redemption.merchant_id, "redemption.confirmed", {
                "redemption_id": redemption.id, "reward_id": redemption.reward_id,
                "member": redemption.member_address, "amount": redemption.amount,
                "voucher_code": redemption.voucher_code, "tx_hash": tx.tx_hash,
            })  # fmt: skip
        else:
            redemption.status = "failed"
            redemption.error = op.error

    def _update_events(self, session: Session, ops: list[ChainOp]) -> None:
        """Derive each touched event's status from its ops; webhook the final ones."""
        event_ids = sorted({op.event_id for op in ops if op.event_id})
        for start in range(0, len(event_ids), EVENTS_PER_READ):
            # Lock the events and re-read their ops: another signer lane may be finalizing
            # another op of the same event concurrently (read committed would let both
            # miss the other's op and leave the event "submitted" for good). Rows are
            # locked in id order, as every lane does, so two lanes cannot deadlock.
            events = session.scalars(
                select(Event)
                .where(Event.id.in_(event_ids[start : start + EVENTS_PER_READ]))
                .order_by(Event.id)
                .with_for_update(**NO_KEY_UPDATE)
                .execution_options(populate_existing=True)
            ).all()
            # Held here so that queue_webhook's look-ups find them in the session.
            merchants = session.scalars(
                select(Merchant).where(Merchant.id.in_({e.merchant_id for e in events}))
            ).all()
            for event in events:
                self._update_event(session, event)
            del merchants

    def _update_event(self, session: Session, event: Event) -> None:
        if event.status in ("confirmed", "failed"):
            return
        statuses = {op.status for op in event.ops}
        value_failed = [op for op in event.ops if op.status == "failed" and op.kind in VALUE_KINDS]
        if value_failed:
            event.status = "failed"
            event.reason = value_failed[0].error
            queue_webhook(session, event.merchant_id, "event.failed", _event_payload(event))
        elif statuses <= {"confirmed", "failed"}:
            # Points are on chain; a badge or tier that failed is reported, not fatal.
            side_failed = [op for op in event.ops if op.status == "failed"]
            if side_failed:
                event.reason = f"{side_failed[0].kind} not applied: {side_failed[0].error}"
            main = next((op for op in event.ops if op.kind in ("issue", "clawback")), None)
            main = main or event.ops[0]
            tx = session.get(ChainTx, main.tx_id) if main.tx_id else None
            event.status = "confirmed"
            if tx is not None:
                event.tx_hash, event.block_number = tx.tx_hash, tx.block_number
            queue_webhook(session, event.merchant_id, "event.confirmed", _event_payload(event))

    # ------------------------------------------------------------------ stuck

    def replace_stuck(self) -> bool:
        """Re-sign transactions pending too long with ≥10% higher fees (same nonce), store
        the replacements, then broadcast them."""
        # Stored transactions a transient error kept from the node: send them again now,
        # not only when a new transaction happens to be stored after them.
        self._broadcast_new()
        cutoff = datetime.now(UTC) - timedelta(seconds=self.settings.tx_stuck_after)
        did = False
        with transaction(self.sessions) as session:
            stuck = session.scalars(
                select(ChainTx).where(
                    ChainTx.sender == self.sender.address,
                    ChainTx.status == "sent",
                    ChainTx.sent_at < cutoff,
                )
            ).all()
            replaced = set(
                session.scalars(
                    select(ChainTx.replaces).where(
                        ChainTx.sender == self.sender.address,
                        ChainTx.replaces.is_not(None),
                        ChainTx.status.in_(("signed", "sent")),
                    )
                )
            )
            waiting = set(
                session.scalars(
                    select(ChainOp.tx_id).where(ChainOp.tx_id.in_([tx.id for tx in stuck]))
                )
            )
            for tx in stuck:
                if tx.id in replaced:
                    continue  # its replacement is the one to bump (same fees: same hash)
                if tx.id not in waiting and tx.kind != "noop":
                    # Its ops went back to the queue with a replacement the node dropped:
                    # nothing waits on it, and a higher fee would only help it be mined.
                    # It stays sent; a receipt still settles it.
                    continue
                if self.sender.receipt(tx.tx_hash) is not None:
                    continue  # mined; follow_receipts will finalize it
                tx.sent_at = datetime.now(UTC)  # do not bump it again right away
                try:
                    newer = self._untried_replacement(session, tx)
                except ReplacementOverCap as exc:
                    log.warning("stuck %s not replaced: %s", tx.tx_hash, exc)
                    continue
                replacement = _chain_tx(tx.kind, tx.merchant_id, newer)
                replacement.replaces = tx.id
                session.add(replacement)
                session.flush()
                for op in session.scalars(select(ChainOp).where(ChainOp.tx_id == tx.id)):
                    op.tx_id = replacement.id
                tx.status = "sent"
                log.info("replacing stuck %s with %s", tx.tx_hash, replacement.tx_hash)
                did = True
        if did:
            # Stored first, broadcast after the commit: a crash in between leaves a stored
            # transaction to send again, never a sent one the outbox does not know.
            self._broadcast_new()
        return did

    def _untried_replacement(self, session: Session, tx: ChainTx) -> SignedTx:
        """``tx`` re-signed with higher fees, and higher again past any replacement stored
        before: one that failed (refused, or dropped) is the same signed transaction, and
        storing it twice breaks the unique hash."""
        newer = self.sender.replacement(_signed(tx))
        while session.scalar(select(ChainTx.id).where(ChainTx.tx_hash == newer.hash)) is not None:
            newer = self.sender.replacement(newer)
        return newer

    def _published_versions(self, session: Session) -> dict[int, int]:
        rows = session.execute(select(Merchant.id, Merchant.rule_version)).all()
        return {int(merchant_id): int(version) for merchant_id, version in rows}


# ---------------------------------------------------------------------- helpers


def _chain_tx(kind: str, merchant_id: int | None, signed: SignedTx) -> ChainTx:
    return ChainTx(
        kind=kind,
        merchant_id=merchant_id,
        sender=signed.sender,
        nonce=signed.nonce,
        tx_hash=signed.hash,
        raw=signed.raw,
        max_fee_per_gas=signed.max_fee_per_gas,
        max_priority_fee_per_gas=signed.max_priority_fee_per_gas,
        gas=signed.gas,
        status="signed",
    )


def _signed(tx: ChainTx) -> SignedTx:
    """The stored transaction as the sender's SignedTx (to resend or replace it)."""
    decoded = TypedTransaction.from_bytes(HexBytes(tx.raw)).as_dict()
    return SignedTx(
        raw=bytes(tx.raw),
        hash=tx.tx_hash,
        sender=to_checksum_address(tx.sender),
        nonce=int(tx.nonce),
        to=to_checksum_address(decoded["to"]) if decoded.get("to") else None,
        data=bytes(HexBytes(decoded.get("data", b""))),
        gas=int(tx.gas),
        max_fee_per_gas=int(tx.max_fee_per_gas),
        max_priority_fee_per_gas=int(tx.max_priority_fee_per_gas),
        value=int(decoded.get("value", 0)),
    )


def _event_payload(event: Event) -> dict[str, Any]:
    return {
        "event_id": event.id,
        "idempotency_key": event.idempotency_key,
        "type": event.type,
        "customer_id": event.customer_id,
        "status": event.status,
        "reason": event.reason,
        "points": event.points,
        "clawback": event.clawback,
        "badges": event.badges,
        "rule_version": event.rule_version,
        "tx_hash": event.tx_hash,
        "block_number": event.block_number,
    }
