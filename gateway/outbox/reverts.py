"""What a transaction that would revert tells the outbox.

Responsibilities:

- claim the ops of a planned batch that are still pending (``SKIP LOCKED`` on
  PostgreSQL), in the order given;
- act on a simulated revert: resync a merchant's sequence counter; hold the ops, pending,
  while the hub is paused, while a merchant is at its mint cap, while a rule version they
  name is not in effect yet (``RuleVersionNotInEffect``) or while the merchant's previous
  rule version still runs its notice (``RuleChangePending``: a rule set never fails for
  it); fail the rest.
"""

from __future__ import annotations

import time

from sqlalchemy import select
from sqlalchemy.orm import Session

from chain.errors import ContractRevert
from gateway.db import NO_KEY_UPDATE, is_postgres, transaction
from gateway.models import ChainOp, Merchant
from gateway.outbox.base import (
    HOLD_RECHECK,
    PAUSABLE_KINDS,
    RULE_CHANGE_PENDING,
    VERSION_NOT_IN_EFFECT,
    CapHold,
    log,
)
from gateway.outbox.replacement import Replacement


class Reverts(Replacement):
    """Claiming a planned batch's ops, and the reverts that hold or fail them."""

    def _claim(self, session: Session, op_ids: list[int]) -> list[ChainOp]:
        """The ops of ``op_ids`` that are still pending, locked, in the order given."""
        query = select(ChainOp).where(ChainOp.id.in_(op_ids), ChainOp.status == "pending")
        if is_postgres(session):
            query = query.with_for_update(skip_locked=True)
        found = {op.id: op for op in session.scalars(query)}
        return [found[i] for i in op_ids if i in found]

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
        if self._held_for_rule_time(kind, merchant_id, ops, revert):
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

    def _held_for_rule_time(
        self, kind: str, merchant_id: int | None, ops: list[ChainOp], revert: ContractRevert
    ) -> bool:
        """Hold ``ops`` (pending) until the chain's clock reaches the effective time the
        revert names, if it is one of the two that only time cures; whether it was."""
        if kind == "rule" and revert.name == RULE_CHANGE_PENDING:
            # Published over a version still in its notice: it goes once that one is in
            # effect (the gateway refuses such a change, so this is a race, not an error).
            until = int(revert.args_by_name["effectiveAt"])
            for op in ops:
                self._rule_holds[op.id] = self._hold_until(until)
            log.warning("rule set of merchant %s waits for chain time %d", merchant_id, until)
            return True
        if kind == "issue" and revert.name == VERSION_NOT_IN_EFFECT and merchant_id is not None:
            until = int(revert.args_by_name["effectiveAt"])
            version = int(revert.args_by_name["ruleVersion"])
            for op in ops:
                op.seq = None
            self._version_holds[(merchant_id, version)] = self._hold_until(until)
            log.warning(
                "issuance for merchant %s under rule version %d waits for chain time %d",
                merchant_id, version, until,
            )  # fmt: skip
            return True
        return False

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
