"""Issuance batch commitments: the Merkle tree the hub stores a root of per batch.

Leaves are ``keccak256(keccak256(seq << 160 | member, amount), 0)``; pairs are hashed
commutatively (sorted, as OpenZeppelin's ``Hashes.commutativeKeccak256``); an
odd last node is carried up unchanged.  A clawback proves the issuance it
refunds with :func:`proof`.  :func:`find_issuance` rebuilds any batch from the
chain's logs alone, so neither the gateway's database nor trust in it is needed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from eth_utils import keccak, to_checksum_address
from hexbytes import HexBytes

from chain.contracts import Network
from chain.errors import ChainError

ZERO_ADDRESS = "0x" + "0" * 40
TRANSFER_TOPIC = keccak(text="Transfer(address,address,uint256)")


@dataclass(frozen=True)
class IssuedItem:
    """One item of an issuance batch (the contract's ``IssuedItem``)."""

    batch_first_seq: int
    seq: int
    member: str
    amount: int

    def as_tuple(self) -> tuple[int, int, str, int]:
        return (self.batch_first_seq, self.seq, to_checksum_address(self.member), self.amount)


def leaf(seq: int, member: str, amount: int) -> bytes:
    """``keccak256(keccak256(seq << 160 | member, amount), 0)``: hashed twice so that no inner
    node can pass for a leaf."""
    word = ((seq << 160) | int(member, 16)).to_bytes(32, "big")
    item = keccak(word + amount.to_bytes(32, "big"))
    return keccak(item + b"\x00" * 32)


def _pair(a: bytes, b: bytes) -> bytes:
    return keccak(a + b) if a < b else keccak(b + a)


def levels(first_seq: int, members: Sequence[str], amounts: Sequence[int]) -> list[list[bytes]]:
    """Every level of the tree, leaves first."""
    level = [
        leaf(first_seq + i, m, a) for i, (m, a) in enumerate(zip(members, amounts, strict=True))
    ]
    tree = [level]
    while len(level) > 1:
        nxt = [_pair(level[2 * i], level[2 * i + 1]) for i in range(len(level) // 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
        tree.append(level)
    return tree


def root(first_seq: int, members: Sequence[str], amounts: Sequence[int]) -> bytes:
    return levels(first_seq, members, amounts)[-1][0]


def proof(
    first_seq: int, members: Sequence[str], amounts: Sequence[int], index: int
) -> list[bytes]:
    """Sibling hashes from the leaf at ``index`` up to the root."""
    path: list[bytes] = []
    for level in levels(first_seq, members, amounts)[:-1]:
        sibling = index ^ 1
        if sibling < len(level):
            path.append(level[sibling])
        index //= 2
    return path


def find_issuance(network: Network, merchant_id: int, seq: int) -> tuple[IssuedItem, list[bytes]]:
    """The issuance item with sequence number ``seq`` and its proof, read from the chain."""
    hub = network.hub
    logs = hub.contract.events.PointsIssued().get_logs(
        from_block=0, argument_filters={"merchantId": merchant_id}
    )
    for entry in logs:
        first = int(entry["args"]["firstSeq"])
        count = len(entry["args"]["eventRefs"])
        if not first <= seq < first + count:
            continue
        receipt = hub.w3.eth.get_transaction_receipt(entry["transactionHash"])
        members, amounts = [], []
        for log in receipt["logs"]:
            topics = log["topics"]
            if (
                log["address"] == network.token.address
                and bytes(topics[0]) == TRANSFER_TOPIC
                and HexBytes(topics[1])[-20:] == b"\x00" * 20
            ):
                members.append(to_checksum_address(HexBytes(topics[2])[-20:]))
                amounts.append(int.from_bytes(HexBytes(log["data"]), "big"))
        index = seq - first
        item = IssuedItem(first, seq, members[index], amounts[index])
        return item, proof(first, members, amounts, index)
    raise ChainError(f"merchant {merchant_id} never issued sequence number {seq}")
