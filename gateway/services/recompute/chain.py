"""What the chain says about disclosed ops: read with the auditor's reader alone.

:func:`read_facts` replays the network's history (:class:`chain.audit.AuditLog`, the
same paged reader ``audit report`` uses) and keeps, per transaction and ref, each rule
issuance with its batch's input root and each clawback with the root of the
``ClawbackInputsCommitted`` after it; every published rule text with its effective time;
each merchant's admission time; and the timestamps of the blocks the inputs name.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from chain.audit import AuditLog, Clawback, History, Issuance, MerchantChange, Rpc
from chain.audit.rules import Published, published
from chain.errors import AuditError
from chain.records import ClawbackCommitment, RuleSetPublication


@dataclass(frozen=True)
class Minted:
    """One op as the chain states it."""

    merchant: int
    seq: int
    amount: int  # issue: minted; clawback: requested
    root: str | None  # the input root its batch committed (None: no commitment found)
    block: int
    time: int
    rule_version: int  # issue: the version its batch named; clawback: 0
    mint_kind: int  # issue: the batch's kind; clawback: 0


@dataclass
class ChainFacts:
    hub: str
    to_block: int
    ops: dict[tuple[str, str], Minted] = field(default_factory=dict)  # (tx, ref) -> op
    rule_refs: dict[int, set[str]] = field(default_factory=dict)  # merchant -> rule issuance refs
    rules: dict[tuple[int, int], Published] = field(default_factory=dict)
    admitted: dict[int, int] = field(default_factory=dict)  # merchant -> admission time
    block_times: dict[int, int] = field(default_factory=dict)

    def effective_window(self, merchant: int, version: int) -> tuple[int, int | None] | None:
        """``[from, until)`` of a version (v1 from the merchant's admission)."""
        this = self.rules.get((merchant, version))
        if this is None:
            return None
        start = this.effective_at
        if version == 1:
            start = self.admitted.get(merchant, start)
        following = self.rules.get((merchant, version + 1))
        return start, following.effective_at if following is not None else None


def facts_from_history(history: History) -> ChainFacts:
    """Pure: the facts of a decoded history (block times of accepted blocks not included)."""
    facts = ChainFacts(history.contracts.hub, history.to_block)
    pending: dict[str, list[Clawback]] = {}
    for r in history.records:
        if isinstance(r, Issuance):
            facts.ops[(r.tx_hash, r.ref)] = Minted(
                r.merchant, r.seq, r.amount, r.input_root, r.block, r.time, r.rule_version,
                r.mint_kind,
            )  # fmt: skip
            if r.mint_kind == 0:
                facts.rule_refs.setdefault(r.merchant, set()).add(r.ref)
        elif isinstance(r, Clawback):
            pending.setdefault(r.tx_hash, []).append(r)
            facts.ops[(r.tx_hash, r.ref)] = _clawback(r, None)
        elif isinstance(r, ClawbackCommitment):
            waiting = pending.get(r.tx_hash, [])
            mine = [c for c in waiting if c.merchant == r.merchant][-r.count :] if r.count else []
            for claw in mine:
                facts.ops[(claw.tx_hash, claw.ref)] = _clawback(claw, r.input_root)
                waiting.remove(claw)
        elif isinstance(r, RuleSetPublication):
            facts.rules[(r.merchant, r.rule_version)] = published(r)
        elif isinstance(r, MerchantChange) and r.kind == "merchant_added":
            facts.admitted[r.merchant] = r.time
    return facts


def _clawback(r: Clawback, root: str | None) -> Minted:
    return Minted(r.merchant, r.seq, r.requested, root, r.block, r.time, 0, 0)


def read_facts(rpc: Rpc | str, hub: str, blocks: Iterable[int]) -> ChainFacts:
    """The facts of the network at its latest block, with the times of ``blocks``."""
    client = Rpc(rpc) if isinstance(rpc, str) else rpc
    history = AuditLog(client, hub).read()
    facts = facts_from_history(history)
    wanted = sorted({b for b in blocks if 0 <= b <= history.to_block})
    if wanted:
        found = client.batch([("eth_getBlockByNumber", [hex(b), False]) for b in wanted])
        for number, block in zip(wanted, found, strict=True):
            if block is None:
                raise AuditError(f"block {number} not found")
            facts.block_times[number] = int(block["timestamp"], 16)
    return facts
