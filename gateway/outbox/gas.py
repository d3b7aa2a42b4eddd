"""Gas of an ``issueBatch`` computed from its size and composition, and the batch bound.

Responsibilities:

- the gas limit of an issue batch from how many of its members are new (their balance
  slot goes from zero: ~26k gas) and how many already hold points (~9k), with a safety
  margin, instead of an ``eth_estimateGas`` per batch;
- fill an issue batch by gas: as many issuances as fit, at their computed gas, in both
  the block's gas limit and EIP-7825's cap of 2^24 gas per transaction.

Figures measured with ``pointsnet bench gas`` (docs/BENCHMARKS.md, "Gas": issueBatch x1
and x500, new and existing members) and fitted as ``fixed + per item``: new members
160,652 (x1) and 25,997 per event (x500): 134.9k + 25.7k each; existing members 92,336
and 8,897: 83.6k + 8.7k each. The constants below round those up. The per-batch header
of issue 15 (mint ``kind`` and ``inputRoot`` in calldata and in the log, the in-effect
check on a warm slot) is a fixed ~1.9k gas per batch (x100: 26,578 -> 26,597 and 9,478
-> 9,497 per issuance), inside ``ISSUE_FIXED``'s ~5k above the fitted 134.9k, before
the 15% margin; measured through the outbox, x100 batches use 84% (new members) and 74%
(existing) of their computed limit, x1 73% and 46%. The one
``eth_call`` simulation per batch runs with this limit, so a shortfall shows there (the
batch is then priced by ``eth_estimateGas``), and a transaction that still runs out of
gas on chain changed nothing: its ops are queued again (see ``receipts``).
"""

from __future__ import annotations

#: EIP-7825: no transaction may ask for more gas than this.
TX_GAS_CAP = 2**24
#: Gas of an issue batch before its items (a new member's first item costs more).
ISSUE_FIXED = 140_000
#: Gas per issuance to a member without points (a fresh balance slot).
ISSUE_NEW = 26_500
#: Gas per issuance to a member who already holds points.
ISSUE_EXISTING = 9_500
#: Safety margin on the computed gas: 15% more, plus a fixed reserve.
MARGIN = 1.15
RESERVE = 30_000


def issue_batch_gas(new: int, existing: int) -> int:
    """The gas limit of an issue batch of ``new`` + ``existing`` issuances."""
    return int((ISSUE_FIXED + ISSUE_NEW * new + ISSUE_EXISTING * existing) * MARGIN) + RESERVE


def fill_issue_batch(
    members: list[str], holding: set[str], block_gas_limit: int
) -> tuple[int, int]:
    """How many of ``members`` (in order) one issue batch carries, and its gas: as many as
    fit in the block's gas limit and EIP-7825's cap. ``holding``: members who already hold
    points (the others' first item takes a fresh balance slot)."""
    cap = min(block_gas_limit, TX_GAS_CAP)
    taken = new = 0
    seen: set[str] = set()
    for member in members:
        fresh = int(member not in holding and member not in seen)
        if taken and issue_batch_gas(new + fresh, taken + 1 - new - fresh) > cap:
            break
        taken, new = taken + 1, new + fresh
        seen.add(member)
    return taken, issue_batch_gas(new, taken - new)
