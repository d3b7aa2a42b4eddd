"""Batch commitments: the issuance tree the hub stores a root of per batch, and the
input tree whose root each issue or clawback batch logs.

**Issuance tree.**

``issueBatch`` takes each item as one word, ``member << 96 | amount`` (see
:func:`chain.contracts.pack_item`).  A batch's items are cut into chunks of
:data:`CHUNK_SIZE` (the contract's ``ISSUE_CHUNK_SIZE``; the last chunk may be
shorter) and each chunk is one leaf: ``keccak256(abi.encodePacked(uint64 firstSeq,
uint256[] items))`` over its packed items, 8 + 32·k bytes hashed, never the 64 of an
inner node.  Pairs are hashed commutatively (sorted, as OpenZeppelin's
``Hashes.commutativeKeccak256``); an odd last node is carried up unchanged.  A
clawback proves the issuance it refunds by handing the hub the whole chunk that
holds it plus the chunk's proof (:func:`prove`).  :func:`find_issuance` rebuilds any
batch from the chain's logs alone, so neither the gateway's database nor trust in it
is needed.

**Input tree.**  ``issueBatch`` and ``clawbackBatch`` log an ``inputRoot`` the hub never
reads: one leaf per event of the batch, in batch order (``eventRefs`` / items), that
binds the event's reference to the hash of its disclosed input,
``keccak256(0x00 ‖ ref ‖ input_hash)`` (:func:`input_leaf`: 65 bytes hashed, neither an
inner node's 64 nor a chunk leaf's 8 + 32·k), folded exactly as the issuance tree
(:func:`fold`).  Anyone holding one input, its batch's leaves' path (:func:`input_proof`)
and the logged root checks that this very input was committed (:func:`verify`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from eth_utils import keccak, to_checksum_address

from chain.abi import POINTS_ISSUED
from chain.contracts import ClawbackItem, Network, pack_item
from chain.decode import decode_logs
from chain.errors import ChainError
from chain.logs import read_logs
from chain.records import Issuance, IssuanceBatch

#: Items per leaf (``LoyaltyNetwork.ISSUE_CHUNK_SIZE``).
CHUNK_SIZE = 8


@dataclass(frozen=True)
class IssuedChunk:
    """One chunk of an issuance batch (the contract's ``IssuedChunk``): items with sequence
    numbers ``first_seq .. first_seq + len(members) - 1`` of the batch from ``batch_first_seq``."""

    batch_first_seq: int
    first_seq: int
    members: tuple[str, ...]
    amounts: tuple[int, ...]

    def items(self) -> list[int]:
        """The chunk's packed items, as ``issueBatch`` took them."""
        return [pack_item(m, a) for m, a in zip(self.members, self.amounts, strict=True)]

    def as_tuple(self) -> tuple[int, int, list[int]]:
        return (self.batch_first_seq, self.first_seq, self.items())


@dataclass(frozen=True)
class IssuanceProof:
    """Issuance ``seq``: the chunk of its batch that holds it and the chunk's Merkle proof,
    what each item of the hub's ``clawbackBatch`` carries as ``(originalSeq, chunk, proof)``."""

    seq: int
    chunk: IssuedChunk
    proof: list[bytes]

    @property
    def member(self) -> str:
        """The member the issuance credited."""
        return to_checksum_address(self.chunk.members[self.seq - self.chunk.first_seq])

    @property
    def amount(self) -> int:
        """The points the issuance credited."""
        return self.chunk.amounts[self.seq - self.chunk.first_seq]

    def clawback_item(self, seq: int, ref: bytes, amount: int) -> ClawbackItem:
        """The ``clawbackBatch`` item of refund event ``seq`` (reference ``ref``) clawing
        back up to ``amount`` of this issuance."""
        return seq, self.seq, ref, self.chunk.as_tuple(), list(self.proof), amount


def chunk_leaf(first_seq: int, members: Sequence[str], amounts: Sequence[int]) -> bytes:
    """``keccak256(abi.encodePacked(uint64 first_seq, uint256[] items))`` over the chunk's
    packed items: 8 + 32·k bytes hashed, so no inner node (64 bytes hashed) can pass for a leaf."""
    if len(members) != len(amounts) or not members:
        raise ValueError("a chunk has as many members as amounts, and at least one")
    packed = [pack_item(m, a).to_bytes(32, "big") for m, a in zip(members, amounts, strict=True)]
    return keccak(first_seq.to_bytes(8, "big") + b"".join(packed))


def _pair(a: bytes, b: bytes) -> bytes:
    return keccak(a + b) if a < b else keccak(b + a)


def fold(leaves: Sequence[bytes]) -> list[list[bytes]]:
    """Every level of the tree over ``leaves`` (leaves first, the root last): pairs hashed
    commutatively (sorted, as OpenZeppelin's ``Hashes.commutativeKeccak256``), an odd last
    node carried up unchanged, as the hub's ``_batchRoot`` folds."""
    if not leaves:
        raise ValueError("a tree has at least one leaf")
    level = list(leaves)
    tree = [level]
    while len(level) > 1:
        nxt = [_pair(level[2 * i], level[2 * i + 1]) for i in range(len(level) // 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
        tree.append(level)
    return tree


def path(tree: Sequence[Sequence[bytes]], index: int) -> list[bytes]:
    """The sibling hashes from leaf ``index`` of ``tree`` (:func:`fold`) up to the root; a
    node carried up has no sibling at that level, so the path skips it."""
    if not 0 <= index < len(tree[0]):
        raise ValueError(f"leaf {index} is not in a tree of {len(tree[0])} leaves")
    siblings: list[bytes] = []
    node = index
    for level in tree[:-1]:
        sibling = node ^ 1
        if sibling < len(level):
            siblings.append(level[sibling])
        node //= 2
    return siblings


def verify(leaf: bytes, proof: Sequence[bytes], root: bytes) -> bool:
    """Whether ``proof`` (:func:`path`) leads from ``leaf`` to ``root`` (as OpenZeppelin's
    ``MerkleProof.verify``: commutative pairs need no left/right flags)."""
    node = bytes(leaf)
    for sibling in proof:
        node = _pair(node, bytes(sibling))
    return node == bytes(root)


def _chunk_bounds(count: int) -> list[tuple[int, int]]:
    return [(s, min(s + CHUNK_SIZE, count)) for s in range(0, count, CHUNK_SIZE)]


def levels(first_seq: int, members: Sequence[str], amounts: Sequence[int]) -> list[list[bytes]]:
    """Every level of the tree, chunk leaves first."""
    if len(members) != len(amounts):
        raise ValueError(f"{len(members)} members but {len(amounts)} amounts")
    return fold(
        [
            chunk_leaf(first_seq + s, members[s:e], amounts[s:e])
            for s, e in _chunk_bounds(len(members))
        ]
    )


def root(first_seq: int, members: Sequence[str], amounts: Sequence[int]) -> bytes:
    return levels(first_seq, members, amounts)[-1][0]


def prove(
    first_seq: int,
    members: Sequence[str],
    amounts: Sequence[int],
    seq: int,
    tree: list[list[bytes]] | None = None,
) -> IssuanceProof:
    """The chunk holding issuance ``seq`` of the batch ``(first_seq, members, amounts)`` and
    the sibling hashes from its leaf up to the root. ``tree``: the batch's :func:`levels`,
    when the caller keeps them to prove several issuances of one batch."""
    index = seq - first_seq
    if not 0 <= index < len(members):
        raise ValueError(f"sequence number {seq} is not in the batch from {first_seq}")
    tree = tree or levels(first_seq, members, amounts)
    siblings = path(tree, index // CHUNK_SIZE)
    start = index - index % CHUNK_SIZE
    end = min(start + CHUNK_SIZE, len(members))
    chunk = IssuedChunk(
        first_seq,
        first_seq + start,
        tuple(to_checksum_address(m) for m in members[start:end]),
        tuple(amounts[start:end]),
    )
    return IssuanceProof(seq, chunk, siblings)


# ---------------------------------------------------------------- input tree

#: Prefix of an input leaf: 65 bytes hashed, so it can pass neither for an inner node
#: (64 bytes) nor for an issuance chunk leaf (8 + 32·k bytes).
INPUT_LEAF_PREFIX = b"\x00"

#: An input pair: an event's reference and its input's hash (bytes32 each, or 0x-hex).
InputPair = tuple[bytes | str, bytes | str]


def _word(value: bytes | str, what: str) -> bytes:
    raw = (
        bytes.fromhex(value[2:] if value[:2] in ("0x", "0X") else value)
        if isinstance(value, str)
        else bytes(value)
    )
    if len(raw) != 32:
        raise ValueError(f"{what} is 32 bytes, got {len(raw)}")
    return raw


def input_leaf(ref: bytes | str, input_hash: bytes | str) -> bytes:
    """``keccak256(0x00 ‖ ref ‖ input_hash)``: the leaf binding event ``ref`` to its
    input's hash (``ZERO32`` for an event whose input was not kept)."""
    return keccak(INPUT_LEAF_PREFIX + _word(ref, "a reference") + _word(input_hash, "a hash"))


def input_levels(pairs: Sequence[InputPair]) -> list[list[bytes]]:
    """Every level of the input tree of ``(ref, input_hash)`` pairs in batch order."""
    return fold([input_leaf(ref, digest) for ref, digest in pairs])


def input_root(pairs: Sequence[InputPair]) -> bytes:
    """The ``inputRoot`` a batch of events ``(ref, input_hash)`` (in batch order) logs."""
    return input_levels(pairs)[-1][0]


def input_proof(
    pairs: Sequence[InputPair], index: int, tree: list[list[bytes]] | None = None
) -> list[bytes]:
    """The path of the ``index``-th pair's leaf to the batch's input root; ``tree``: the
    batch's :func:`input_levels`, when the caller keeps them to prove several events."""
    return path(tree or input_levels(pairs), index)


def find_issuance(network: Network, merchant_id: int, seq: int) -> IssuanceProof:
    """The proof of the issuance with sequence number ``seq``, read from the chain."""
    w3, hub = network.hub.w3, network.hub.address
    merchant_topic = "0x" + merchant_id.to_bytes(32, "big").hex()
    batches = decode_logs(
        network.emitters(), read_logs(w3, [hub], topics=[POINTS_ISSUED, merchant_topic])
    )
    for batch in batches:
        if not isinstance(batch, IssuanceBatch) or not batch.seq <= seq < batch.seq + batch.count:
            continue
        logs = read_logs(w3, [hub, network.token.address], batch.block, batch.block)
        items = [
            r
            for r in decode_logs(network.emitters(), logs)
            if isinstance(r, Issuance)
            and r.tx_hash == batch.tx_hash
            and r.batch_log_index == batch.log_index
        ]
        members = [item.member for item in items]
        return prove(batch.seq, members, [item.amount for item in items], seq)
    raise ChainError(f"merchant {merchant_id} never issued sequence number {seq}")
