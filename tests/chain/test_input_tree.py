"""The input tree (``chain.merkle``): the root a batch logs over its events' inputs.

Leaves bind each event's reference to its input's hash, ``keccak(0x00 ‖ ref ‖ hash)``,
folded as the hub folds its issuance trees (sorted pairs, an odd node carried up).
Every proof verifies; a changed input, reference, order or proof does not; no inner
node can pass for an input leaf (65 bytes hashed against an inner node's 64; an
issuance chunk leaf hashes 8 + 32·k).
"""

from __future__ import annotations

import pytest
from eth_utils import keccak

from chain import merkle
from chain.abi import ZERO32


def pairs(n: int) -> list[tuple[bytes, bytes]]:
    return [(keccak(text=f"ref {i}"), keccak(text=f'{{"input":{i}}}')) for i in range(n)]


@pytest.mark.parametrize("n", [1, 2, 3, 7, 100])
def test_every_leaf_proves_against_the_root(n: int) -> None:
    batch = pairs(n)
    root = merkle.input_root(batch)
    tree = merkle.input_levels(batch)

    for i, (ref, digest) in enumerate(batch):
        proof = merkle.input_proof(batch, i, tree)
        assert merkle.verify(merkle.input_leaf(ref, digest), proof, root)
        assert proof == merkle.input_proof(batch, i)


def test_a_single_event_is_its_own_root() -> None:
    [(ref, digest)] = batch = pairs(1)

    assert merkle.input_root(batch) == merkle.input_leaf(ref, digest)
    assert merkle.input_proof(batch, 0) == []


def test_two_events_hash_their_leaves_in_sorted_order() -> None:
    a, b = (merkle.input_leaf(r, d) for r, d in pairs(2))

    assert merkle.input_root(pairs(2)) == keccak(min(a, b) + max(a, b))


def test_an_odd_last_leaf_is_carried_up_unhashed() -> None:
    batch = pairs(3)
    leaves = [merkle.input_leaf(r, d) for r, d in batch]

    assert merkle.input_proof(batch, 2) == [merkle.fold(leaves[:2])[-1][0]]


def test_the_leaf_is_the_domain_separated_hash_of_ref_and_input_hash() -> None:
    ref, digest = pairs(1)[0]

    assert merkle.input_leaf(ref, digest) == keccak(b"\x00" + ref + digest)
    assert merkle.input_leaf("0x" + ref.hex(), "0x" + digest.hex()) == keccak(
        b"\x00" + ref + digest
    )


def test_an_inner_node_does_not_pass_for_a_leaf() -> None:
    batch = pairs(4)
    tree = merkle.input_levels(batch)
    left, right = tree[0][0], tree[0][1]
    inner = tree[1][0]

    # The inner node hashes 64 bytes; read as (ref, hash) it makes a different leaf.
    lo, hi = min(left, right), max(left, right)
    assert merkle.input_leaf(lo, hi) != inner
    assert not merkle.verify(merkle.input_leaf(lo, hi), [tree[1][1]], tree[-1][0])


@pytest.mark.parametrize("n", [1, 2, 5, 100])
def test_a_changed_input_does_not_verify(n: int) -> None:
    batch = pairs(n)
    root = merkle.input_root(batch)
    i = n // 2
    ref, _ = batch[i]
    proof = merkle.input_proof(batch, i)

    tampered = keccak(text='{"input":"changed"}')
    assert not merkle.verify(merkle.input_leaf(ref, tampered), proof, root)
    assert not merkle.verify(merkle.input_leaf(keccak(b"other ref"), batch[i][1]), proof, root)


def test_a_proof_from_another_batch_does_not_verify() -> None:
    batch, other = pairs(8), pairs(9)[1:]
    ref, digest = batch[3]

    assert not merkle.verify(
        merkle.input_leaf(ref, digest), merkle.input_proof(other, 3), merkle.input_root(batch)
    )
    assert not merkle.verify(
        merkle.input_leaf(ref, digest), merkle.input_proof(batch, 3), merkle.input_root(other)
    )


def test_each_input_is_bound_to_its_own_event() -> None:
    batch = pairs(4)
    (ref0, hash0), (ref1, hash1) = batch[:2]
    swapped = [(ref0, hash1), (ref1, hash0), *batch[2:]]

    assert merkle.input_root(swapped) != merkle.input_root(batch)
    assert not merkle.verify(
        merkle.input_leaf(ref0, hash1), merkle.input_proof(batch, 0), merkle.input_root(batch)
    )


def test_an_event_without_input_commits_the_zero_hash() -> None:
    batch = [*pairs(2), (keccak(b"ref x"), ZERO32)]
    root = merkle.input_root(batch)

    assert merkle.verify(
        merkle.input_leaf(keccak(b"ref x"), ZERO32), merkle.input_proof(batch, 2), root
    )


def test_bad_shapes_are_refused() -> None:
    with pytest.raises(ValueError, match="at least one leaf"):
        merkle.input_root([])
    with pytest.raises(ValueError, match="32 bytes"):
        merkle.input_leaf(b"\x01" * 31, ZERO32)
    with pytest.raises(ValueError, match="not in a tree"):
        merkle.input_proof(pairs(3), 3)


def test_the_issuance_tree_folds_the_same_way() -> None:
    members = ["0x" + f"{i:02x}" * 20 for i in range(1, 20)]
    amounts = list(range(1, 20))
    tree = merkle.levels(0, members, amounts)

    assert tree == merkle.fold(tree[0])
    proved = merkle.prove(0, members, amounts, 11)
    leaf = merkle.chunk_leaf(proved.chunk.first_seq, proved.chunk.members, proved.chunk.amounts)
    assert merkle.verify(leaf, proved.proof, merkle.root(0, members, amounts))
