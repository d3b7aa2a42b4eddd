"""Typed clients for the network's contracts, and custom-error decoding.

Clients wrap web3 contract objects: views return plain Python values and
dataclasses; state-changing methods return a ``ContractFunction`` ready for
:class:`chain.sender.TransactionSender`, so sending stays in one place.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, cast

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_typing import ChecksumAddress
from eth_utils import keccak, to_checksum_address
from eth_utils.abi import function_abi_to_4byte_selector, get_abi_input_types
from hexbytes import HexBytes
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.types import BlockIdentifier

from chain.abi import (
    POINTS_CLAWED_BACK,
    POINTS_ISSUED,
    ROLE_GRANTED,
    TRANSFER,
    ZERO32,
    ZERO_WORD,
    error_table,
)
from chain.artifacts import load_artifact
from chain.decode import HubAndToken, decode_logs
from chain.errors import ContractRevert
from chain.logs import read_logs
from chain.records import Clawback, Issuance, Record, RoleChange

TIER_NAMES = ("Bronze", "Silver", "Gold", "Platinum", "Black")

#: Bits of an issuance item that hold the amount (the member is in the high 160).
ITEM_AMOUNT_BITS = 96
#: Largest rule set the hub publishes, in bytes (``LoyaltyNetwork.MAX_RULE_SET_BYTES``).
MAX_RULE_SET_BYTES = 16_384
_HEX_ADDRESS = re.compile(r"0[xX][0-9a-fA-F]{40}")


def pack_item(member: str, amount: int) -> int:
    """An ``issueBatch`` item: ``uint256(uint160(member)) << 96 | amount``."""
    if not 0 <= amount < 1 << ITEM_AMOUNT_BITS:
        raise ValueError(f"an issuance amount fits in 96 bits, got {amount}")
    if not _HEX_ADDRESS.fullmatch(member):  # no checksum computed for every leaf of every proof
        raise ValueError(f"not an address: {member!r}")
    return (int(member[2:], 16) << ITEM_AMOUNT_BITS) | amount


def encode_call(call: ContractFunction) -> HexBytes:
    """``call``'s calldata, encoded by eth_abi directly.

    Same bytes as web3's ``call._encode_transaction_data()`` for arguments already in
    ABI form (ints, bytes, addresses, tuples), ~20x faster on the big arrays of
    ``issueBatch``: web3 walks every element through its formatters first.
    """
    arguments = abi_encode(get_abi_input_types(call.abi), call.args)
    return HexBytes(function_abi_to_4byte_selector(call.abi) + arguments)


def unpack_item(item: int) -> tuple[ChecksumAddress, int]:
    """``(member, amount)`` of an ``issueBatch`` item."""
    member = to_checksum_address((item >> ITEM_AMOUNT_BITS).to_bytes(20, "big"))
    return member, item & ((1 << ITEM_AMOUNT_BITS) - 1)


#: A ``clawbackBatch`` item as the ABI takes it: ``(seq, originalSeq, eventRef,
#: (batchFirstSeq, firstSeq, packed items), proof, amount)``.
ClawbackItem = tuple[int, int, bytes, tuple[int, int, list[int]], list[bytes], int]


class MerchantStatus(IntEnum):
    NONE = 0
    ACTIVE = 1
    SUSPENDED = 2


class MintKind(IntEnum):
    """What an issuance batch mints for (the hub's ``MintKind``): ``RULE`` names the rule-set
    version that computed it; the others name version 0."""

    RULE = 0
    ADJUSTMENT = 1
    PAYOUT = 2
    PRIZE = 3


@dataclass(frozen=True)
class Merchant:
    """A merchant as the hub stores it."""

    id: int
    signer: ChecksumAddress
    status: MerchantStatus
    cap_per_period: int
    period: int
    minted_in_period: int
    rule_version: int
    rule_effective_at: int  # unix time ``rule_version`` takes effect
    rule_set_hash: bytes
    issued: int
    redeemed: int
    clawed_back: int

    @property
    def net(self) -> int:
        """Points this merchant put into circulation and that are still out."""
        return self.issued - self.redeemed - self.clawed_back

    def version_in_effect(self, timestamp: int) -> int:
        """The rule-set version in effect at chain time ``timestamp`` (at or after the
        latest publication): the latest once it took effect, else the one before it
        (0: none yet)."""
        if self.rule_version == 0 or timestamp >= self.rule_effective_at:
            return self.rule_version
        return self.rule_version - 1


@dataclass(frozen=True)
class BadgeType:
    id: int
    name: str
    uri: str
    max_supply: int
    minted: int
    soulbound: bool


# ---------------------------------------------------------------- error decoding


def decode_revert(data: str | bytes | None, tx_hash: str = "") -> ContractRevert:
    """Turn revert data into a :class:`ContractRevert` named after the Solidity error."""
    raw = (
        bytes.fromhex(data[2:] if data.startswith("0x") else data)
        if isinstance(data, str)
        else (data or b"")
    )
    hex_data = "0x" + raw.hex()
    if len(raw) < 4:
        return ContractRevert("UnknownRevert", {}, hex_data, tx_hash)
    entry = error_table().get(raw[:4])
    if entry is None:
        return ContractRevert(
            "UnknownRevert", {"selector": "0x" + raw[:4].hex()}, hex_data, tx_hash
        )
    try:
        values = abi_decode(entry.types, raw[4:])
    except Exception:  # malformed payload: keep the name, say so
        return ContractRevert(entry.name, {"undecodable": hex_data}, hex_data, tx_hash)
    args = dict(zip(entry.names, values, strict=True))
    return ContractRevert(entry.name, args, hex_data, tx_hash)


# ---------------------------------------------------------------- clients


def contract_at(w3: Web3, name: str, address: str) -> Contract:
    """A web3 contract object for artifact ``name`` at ``address``."""
    return w3.eth.contract(address=to_checksum_address(address), abi=load_artifact(name)["abi"])


class LoyaltyNetworkClient:
    """The hub: merchants, issuance, redemption, clawback, tiers, badges, rule sets."""

    def __init__(self, w3: Web3, address: str) -> None:
        self.w3 = w3
        self.contract = contract_at(w3, "LoyaltyNetwork", address)
        self.address: ChecksumAddress = self.contract.address
        self.functions = self.contract.functions

    # -- views
    def token_address(self) -> ChecksumAddress:
        return cast(ChecksumAddress, self.functions.token().call())

    def badges_address(self) -> ChecksumAddress:
        return cast(ChecksumAddress, self.functions.badges().call())

    def merchant(self, merchant_id: int) -> Merchant:
        raw = self.functions.merchant(merchant_id).call()
        return Merchant(merchant_id, raw[0], MerchantStatus(raw[1]), *raw[2:])

    def merchant_count(self) -> int:
        return int(self.functions.merchantCount().call())

    def is_sequence_used(self, merchant_id: int, seq: int) -> bool:
        return bool(self.functions.isSequenceUsed(merchant_id, seq).call())

    def clawback_state(self, merchant_id: int, seq: int) -> tuple[bool, int]:
        """``(fully refunded, points clawed back so far when not)`` for issuance ``seq``."""
        full, burned = self.functions.clawbackState(merchant_id, seq).call()
        return bool(full), int(burned)

    def tier_of(self, member: str) -> int:
        return int(self.functions.tierOf(to_checksum_address(member)).call())

    def nonce_of(self, member: str) -> int:
        return int(self.functions.nonces(to_checksum_address(member)).call())

    def paused(self, block: BlockIdentifier = "latest") -> bool:
        return bool(self.functions.paused().call(block_identifier=block))

    def role(self, name: str) -> bytes:
        """``ISSUER_ROLE`` / ``GUARDIAN_ROLE`` / ``DEFAULT_ADMIN_ROLE`` as bytes32."""
        return bytes(getattr(self.functions, name)().call())

    def rule_notice_seconds(self, block: BlockIdentifier = "latest") -> int:
        """Seconds a merchant's new rule-set version (its first excepted) waits to take effect."""
        return int(self.functions.ruleNoticeSeconds().call(block_identifier=block))

    # -- transactions (return functions; send them with TransactionSender)
    def issue_batch(
        self,
        merchant_id: int,
        rule_version: int,
        first_seq: int,
        event_refs: list[bytes],
        members: list[str],
        amounts: list[int],
        *,
        kind: int = MintKind.RULE,
        input_root: bytes = ZERO32,
    ) -> ContractFunction:
        """Event ``i`` of the batch gets sequence number ``first_seq + i``. ``kind`` is a
        :class:`MintKind` (``RULE``: computed by rule-set ``rule_version``, which must be in
        effect; other kinds name version 0); ``input_root`` commits to the events' inputs
        (:func:`chain.merkle.input_root`, zero for none)."""
        return self.functions.issueBatch(
            (merchant_id, rule_version, int(kind), input_root, first_seq),
            event_refs,
            [pack_item(m, a) for m, a in zip(members, amounts, strict=True)],
        )

    def clawback_batch(
        self, merchant_id: int, items: list[ClawbackItem], *, input_root: bytes = ZERO32
    ) -> ContractFunction:
        """Refunds of merchant ``merchant_id`` in one transaction, applied in order: each item
        ``(seq, originalSeq, eventRef, chunk, proof, amount)`` has refund event ``seq``
        (reference ``eventRef``) claw back up to ``amount`` of issuance ``originalSeq``,
        proved by the chunk of its batch that holds it
        (batchFirstSeq, firstSeq, packed items) and the chunk's Merkle proof (see
        :mod:`chain.merkle`: ``IssuanceProof.clawback_item``). ``input_root`` commits to the
        refunds' inputs, leaves in item order (zero for none)."""
        return self.functions.clawbackBatch(merchant_id, input_root, items)

    def redeem(self, redemption: dict[str, Any], signature: bytes) -> ContractFunction:
        r = redemption
        return self.functions.redeem(
            (
                to_checksum_address(r["member"]),
                r["merchantId"],
                r["amount"],
                r["ref"],
                r["nonce"],
                r["deadline"],
            ),
            signature,
        )

    def transfer_with_signature(
        self, request: dict[str, Any], signature: bytes
    ) -> ContractFunction:
        t = request
        return self.functions.transferWithSignature(
            (
                to_checksum_address(t["from"]),
                to_checksum_address(t["to"]),
                t["amount"],
                t["nonce"],
                t["deadline"],
            ),
            signature,
        )

    def set_tiers(self, members: list[str], tiers: list[int]) -> ContractFunction:
        return self.functions.setTiers([to_checksum_address(m) for m in members], tiers)

    def define_badge(
        self, badge_id: int, name: str, uri: str, max_supply: int, soulbound: bool
    ) -> ContractFunction:
        return self.functions.defineBadge(badge_id, name, uri, max_supply, soulbound)

    def award_badges(
        self, merchant_id: int, members: list[str], badge_ids: list[int]
    ) -> ContractFunction:
        return self.functions.awardBadges(
            merchant_id, [to_checksum_address(m) for m in members], badge_ids
        )

    def publish_rule_set(self, merchant_id: int, canonical: str | bytes) -> ContractFunction:
        """Publish the next rule-set version of ``merchant_id``: ``canonical`` is the exact
        text (a ``str`` is sent UTF-8 encoded), sent with its keccak-256 as the hash."""
        text = canonical.encode() if isinstance(canonical, str) else bytes(canonical)
        return self.functions.publishRuleSet(merchant_id, keccak(text), text)

    def set_rule_notice(self, seconds: int) -> ContractFunction:
        """``setRuleNotice(seconds)``: the timelock's to call (schedule it, see
        :mod:`chain.governance`)."""
        return self.functions.setRuleNotice(seconds)


class PointsTokenClient:
    """The ERC-20 point (0 decimals)."""

    def __init__(self, w3: Web3, address: str) -> None:
        self.contract = contract_at(w3, "PointsToken", address)
        self.address: ChecksumAddress = self.contract.address
        self.functions = self.contract.functions

    def balance_of(self, member: str, block: BlockIdentifier = "latest") -> int:
        return int(
            self.functions.balanceOf(to_checksum_address(member)).call(block_identifier=block)
        )

    def total_supply(self, block: BlockIdentifier = "latest") -> int:
        return int(self.functions.totalSupply().call(block_identifier=block))

    def transfer(self, to: str, amount: int) -> ContractFunction:
        return self.functions.transfer(to_checksum_address(to), amount)


class BadgeCollectionClient:
    """The ERC-1155 badges."""

    def __init__(self, w3: Web3, address: str) -> None:
        self.contract = contract_at(w3, "BadgeCollection", address)
        self.address: ChecksumAddress = self.contract.address
        self.functions = self.contract.functions

    def badge_type(self, badge_id: int) -> BadgeType:
        max_supply, minted, soulbound, _exists, name, uri = self.functions.badgeType(
            badge_id
        ).call()
        return BadgeType(badge_id, name, uri, max_supply, minted, soulbound)

    def holds(self, member: str, badge_id: int) -> bool:
        return int(self.functions.balanceOf(to_checksum_address(member), badge_id).call()) > 0

    def locked(self, badge_id: int) -> bool:
        return bool(self.functions.locked(badge_id).call())


@dataclass
class Network:
    """The three deployed contracts and the timelock that governs them."""

    hub: LoyaltyNetworkClient
    token: PointsTokenClient
    badges: BadgeCollectionClient
    timelock: Contract

    @classmethod
    def at(cls, w3: Web3, hub_address: str, timelock_address: str | None = None) -> Network:
        """Clients for the deployment whose hub is at ``hub_address``."""
        hub = LoyaltyNetworkClient(w3, hub_address)
        if timelock_address is None:
            timelock_address = _timelock_of(w3, hub)
        return cls(
            hub=hub,
            token=PointsTokenClient(w3, hub.token_address()),
            badges=BadgeCollectionClient(w3, hub.badges_address()),
            timelock=contract_at(w3, "NetworkTimelock", timelock_address),
        )

    def emitters(self) -> HubAndToken:
        """The hub's, the token's and the badges' addresses, as :mod:`chain.decode` takes them."""
        return HubAndToken(
            self.hub.address.lower(), self.token.address.lower(), self.badges.address.lower()
        )

    def records(self, topics: list[str], first: int = 0) -> list[Record]:
        """The hub's and the token's logs with one of ``topics`` from block ``first`` to the
        latest, read by :func:`chain.logs.read_logs` and decoded by :mod:`chain.decode`."""
        addresses = [self.hub.address, self.token.address]
        return decode_logs(
            self.emitters(), read_logs(self.hub.w3, addresses, first, topics=[topics])
        )

    def issuances(self, first: int = 0) -> list[Issuance]:
        """Every event issued on chain from block ``first``: one per ``PointsIssued`` item,
        zipped with its mint."""
        records = self.records([POINTS_ISSUED, TRANSFER], first)
        return [r for r in records if isinstance(r, Issuance)]

    def clawbacks(self, first: int = 0) -> list[Clawback]:
        """Every ``PointsClawedBack`` on chain from block ``first``."""
        return [r for r in self.records([POINTS_CLAWED_BACK], first) if isinstance(r, Clawback)]


def _timelock_of(w3: Web3, hub: LoyaltyNetworkClient) -> str:
    """The hub's admin, read from its RoleGranted log for DEFAULT_ADMIN_ROLE."""
    logs = read_logs(w3, [hub.address], topics=[ROLE_GRANTED, ZERO_WORD])
    grants = [
        r
        for r in decode_logs(HubAndToken(hub.address.lower(), ""), logs)
        if isinstance(r, RoleChange)
    ]
    if not grants:
        raise ContractRevert("NoAdmin", {"hub": hub.address})
    return to_checksum_address(grants[-1].account)
