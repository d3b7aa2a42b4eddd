"""The hot path's gas targets, from receipts (21,000 base and calldata included).

The issue-14 targets per event, which the rule-version check and the input root must
not break: ``issueBatch`` x100 at most 26,600 gas per issuance to new members and
9,500 to existing ones; ``clawbackBatch`` x100 full refunds at most 35,000 per
refund. Batches carry a random-looking (all non-zero bytes cost more) input root,
as the gateway's do. Measured as ``pointsnet bench gas`` does: the merchant has
issued and clawed back before (its counters and bitmap words are not fresh), the
refunds come from an issue batch of 500 (a chunk of 8 and a proof of 6 hashes each).
"""

from __future__ import annotations

from contract_kit import member
from eth_utils import keccak
from factories import refund_ref

from chain import merkle

ISSUE_NEW_MAX = 26_600
ISSUE_EXISTING_MAX = 9_500
FULL_REFUND_MAX = 35_000
SIZE = 100


def root(label: str) -> bytes:
    """A deterministic input root with no zero byte (the dearest calldata)."""
    digest = keccak(text=label)
    return bytes(b or 1 for b in digest)


def gas_per_event(receipt, events: int) -> int:
    return int(receipt["gasUsed"]) // events


def issue(net, first_seq, members, amount=100):
    refs = [
        keccak(first_seq.to_bytes(8, "big") + bytes([i % 256, i // 256]))
        for i in range(len(members))
    ]
    fn = net.hub.issue_batch(
        1,
        1,
        first_seq,
        refs,
        members,
        [amount] * len(members),
        input_root=root(f"issue {first_seq}"),
    )
    return net.operator.transact(fn)


def test_issue_batch_of_100_stays_within_its_targets(net):
    issue(net, 0, [member().address])  # warm: the merchant has issued before
    members = [member().address for _ in range(SIZE)]

    new = gas_per_event(issue(net, 1, members), SIZE)
    existing = gas_per_event(issue(net, 1 + SIZE, members), SIZE)

    assert new <= ISSUE_NEW_MAX, f"issueBatch x{SIZE}, new members: {new:,} gas per issuance"
    assert existing <= ISSUE_EXISTING_MAX, (
        f"issueBatch x{SIZE}, existing members: {existing:,} gas per issuance"
    )


def test_clawback_batch_of_100_full_refunds_stays_within_its_target(net):
    first = 0
    members = [member().address for _ in range(500)]
    issue(net, first, members)
    seq = first + len(members)

    def refund(index):
        nonlocal seq
        proved = merkle.prove(first, members, [100] * len(members), first + index)
        item = proved.clawback_item(seq, refund_ref(seq), 100)
        seq += 1
        return item

    warm = net.hub.clawback_batch(1, [refund(499)], input_root=root("warm"))
    net.operator.transact(warm)  # the merchant has clawed back before
    items = [refund(index) for index in range(0, 3 * SIZE, 3)]

    receipt = net.operator.transact(net.hub.clawback_batch(1, items, input_root=root("refunds")))

    per_refund = gas_per_event(receipt, SIZE)
    assert per_refund <= FULL_REFUND_MAX, (
        f"clawbackBatch x{SIZE}, full refunds: {per_refund:,} gas per refund"
    )
    assert all(net.hub.clawback_state(1, first + i) == (True, 0) for i in range(0, 9, 3))
