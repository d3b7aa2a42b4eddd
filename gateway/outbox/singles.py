"""Packing badge awards, tier changes and one-op transactions.

Responsibilities:

- badge awards (one merchant per call) and tier changes in batches of ``SMALL_BATCH``,
  a batch not full yet waiting as an issue batch does (``_wait_left``);
- rule-set publications (the canonical text, whose keccak-256 the hub checks against
  the hash), redemptions and transfers one per transaction, a member's signed actions in
  the order the member signed them; a rule set the hub refuses while the previous
  version runs its notice waits for that version's effective time.
"""

from __future__ import annotations

import time

from hexbytes import HexBytes
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from web3.contract.contract import ContractFunction

from chain.contracts import encode_call
from chain.errors import (
    ContractRevert,
)
from gateway.models import ChainOp, RuleSetVersion
from gateway.outbox.clawbacks import Clawbacks

#: Ops of these kinds go one per transaction.
#: Each group is relayed in queue order; redemptions and transfers share one group
#: because both consume the member's hub nonce in the order the member signed them.
SINGLE_KINDS: tuple[tuple[str, ...], ...] = (("rule",), ("redeem", "transfer"))
#: How many badge awards or tier changes share one transaction.
SMALL_BATCH = 200


class Singles(Clawbacks):
    """Badge, tier and single-op transactions."""

    def _pack_small_batches(self, kind: str) -> bool:
        """Badge awards (one merchant per call) or tier changes, simulated and signed
        outside the lock."""
        if self._held_while_paused(kind) or not self._fits(self._last_gas.get(kind, 0)):
            return False
        if time.monotonic() < self._small_due_at.get(kind, 0.0):
            return False  # the last one planned was neither full nor due, and still is not
        with self.sessions() as session:
            ops = self._pending(session, kind, SMALL_BATCH, lock=False)
            if kind == "badge":
                ops = [op for op in ops if op.merchant_id == ops[0].merchant_id] if ops else []
            if not ops:
                return False
            if len(ops) < SMALL_BATCH and (left := self._wait_left(session, ops)) > 0:
                self._small_due_at[kind] = time.monotonic() + left  # let it fill up
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
        data = encode_call(call)
        try:
            prepared = self._simulate(call, data)
        except ContractRevert as revert:
            self._revert_planned(kind, merchant_id, op_ids, revert)
            return True
        self._last_gas[kind] = prepared[0]
        if not self._fits(prepared[0]):
            return False  # the next block is full: the batch goes after it
        if not self._sign_and_store(kind, merchant_id, call, data, op_ids, prepared):
            return True  # another worker took some: look again next cycle
        return True

    def _pack_singles(self, kinds: tuple[str, ...]) -> bool:
        """Rule sets, redemptions and transfers, one per transaction: each read, priced
        (``eth_estimateGas``) and signed outside the lock, stored in a short transaction."""
        did = False
        for _ in range(50):  # bounded per cycle
            with self.sessions() as session:
                ops = self._pending(session, kinds, 20, lock=False)
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
                op_id, kind, merchant_id = op.id, op.kind, op.merchant_id
                call = self._single_call(session, op)
            data = encode_call(call)
            try:
                prepared = self._simulate(call, data)
            except ContractRevert as revert:
                self._revert_planned(kind, merchant_id, [op_id], revert)
                continue
            if not self._sign_and_store(kind, merchant_id, call, data, [op_id], prepared):
                continue  # another worker took it
            did = True
        return did

    def _ready(self, session: Session, op: ChainOp) -> bool:
        """A member's signed action waits until the member's earlier ones are final (they
        use nonces in order, and several workers may be running). A merchant's rule set
        waits likewise for its earlier ones (the hub numbers versions in publication
        order, the gateway in queue order: they stay the same), and one the hub refused
        while the previous version runs its notice waits for that version's effective
        time."""
        if op.kind == "rule":
            if self._still_holding(self._rule_holds.get(op.id)):
                return False
            self._rule_holds.pop(op.id, None)
            same = ChainOp.merchant_id == op.merchant_id
        elif op.kind in ("redeem", "transfer"):
            same = ChainOp.member_address == op.member_address
        else:
            return True
        earlier = session.scalar(
            select(func.count(ChainOp.id)).where(
                same,
                ChainOp.kind.in_(("rule",) if op.kind == "rule" else ("redeem", "transfer")),
                ChainOp.id < op.id,
                ChainOp.status.in_(("pending", "sent")),
            )
        )
        return not earlier

    def _single_call(self, session: Session, op: ChainOp) -> ContractFunction:
        hub = self.hub
        if op.kind == "rule":
            assert op.merchant_id is not None
            text = session.scalar(
                select(RuleSetVersion.canonical).where(
                    RuleSetVersion.merchant_id == op.merchant_id,
                    RuleSetVersion.version == int(op.payload["version"]),
                )
            )
            assert text is not None, f"rule op {op.id} has no stored version"  # same transaction
            return hub.publish_rule_set(op.merchant_id, text)  # its keccak-256 is the hash
        if op.kind == "redeem":
            r = dict(op.payload["redemption"])
            r["ref"] = HexBytes(r["ref"])
            return hub.redeem(r, HexBytes(op.payload["signature"]))
        if op.kind == "transfer":
            return hub.transfer_with_signature(
                dict(op.payload["request"]), HexBytes(op.payload["signature"])
            )
        raise ValueError(f"unknown op kind {op.kind}")
