"""Packing clawback batches.

Responsibilities:

- plan clawback batches per merchant once the issuances they refund are confirmed
  (fail those whose issuance failed), each item proved against its issue batch's Merkle
  tree (trees of confirmed batches are cached), the batch committing to its refunds'
  inputs (the root over their ``(ref, input_hash)`` in item order, stored with it);
- a batch that would revert goes again one clawback at a time, so only the bad one fails.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass

from hexbytes import HexBytes
from sqlalchemy import select
from sqlalchemy.orm import Session
from web3.contract.contract import ContractFunction

from chain import merkle
from chain.contracts import encode_call
from chain.errors import (
    ContractRevert,
)
from chain.merkle import IssuanceProof
from gateway.db import transaction
from gateway.faults import fault_point
from gateway.models import ChainOp, Merchant
from gateway.outbox.base import IssuedBatch
from gateway.outbox.packing import PACK_SECONDS, Packing, input_root

#: How many clawbacks share one transaction: ~48k gas each in a batch of 50 or more (see
#: docs/BENCHMARKS.md, "Gas"), so a full batch takes ~4.8M gas, far below a 30M block.
CLAWBACK_BATCH = 100
#: Confirmed issue batches kept in memory for the clawback proofs of their refunds.
BATCH_CACHE = 64


@dataclass(frozen=True)
class ClawbackPlan:
    """A clawback batch to store: ``op_ids[i]`` refunds issuance ``original_seqs[i]`` with
    sequence number ``first_seq + i``; ``input_root`` (0x-hex) is what ``call`` commits to."""

    merchant_id: int
    first_seq: int
    op_ids: list[int]
    original_seqs: list[int]
    call: ContractFunction
    input_root: str


class Clawbacks(Packing):
    """Clawback batches."""

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
            data = encode_call(plan.call)
            try:
                prepared = self._simulate(plan.call, data)
            except ContractRevert as revert:
                alone = revert.name not in ("LoyaltyNetworkSequenceUsed", "EnforcedPause")
                if len(plan.op_ids) > 1 and alone:
                    self._clawbacks_one_at_a_time(plan.merchant_id, plan.op_ids, str(revert))
                    continue
                self._revert_planned("clawback", plan.merchant_id, plan.op_ids, revert)
                continue
            if not self._fits(prepared[0]):
                return did  # the next block is full: the batch goes after it
            stored = self._sign_and_store(
                "clawback", plan.merchant_id, plan.call, data, plan.op_ids, prepared,
                first_seq=plan.first_seq, original_seqs=plan.original_seqs,
                input_root=plan.input_root,
            )  # fmt: skip
            if not stored:
                continue  # plan again
            fault_point("after_store")
        return did

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
                full = len(group) == CLAWBACK_BATCH
                if not full and alone is None and self._wait_left(session, group) > 0:
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
                root = input_root(group)
                plan = ClawbackPlan(
                    merchant_id,
                    merchant.next_seq,
                    [op.id for op in group],
                    [proved.seq for proved in proofs],
                    self.hub.clawback_batch(merchant_id, items, input_root=HexBytes(root)),
                    root,
                )
                break
        if orphans:
            with transaction(self.sessions) as session:
                self._fail_ops(session, self._claim(session, orphans), "original issuance failed")
        return plan

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
