"""The typed records every decoded log of the network becomes (see :mod:`chain.decode`).

One frozen dataclass per kind of fact the chain states: an :class:`Issuance` per
merchant event (a ``PointsIssued`` item zipped with its mint), redemptions,
clawbacks, token and badge movements, merchant and rule changes, governance.
Addresses are kept lower-case (:func:`checksum` renders them); :func:`record_dict`
turns any record into a JSON-friendly dict.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any

from eth_utils import to_checksum_address

from chain.errors import AuditUsageError

_CHECKSUMS: dict[str, str] = {}


def checksum(address: str) -> str:
    """EIP-55 form of a lower-case address (cached: records keep them lower-case)."""
    found = _CHECKSUMS.get(address)
    if found is None:
        found = _CHECKSUMS[address] = str(to_checksum_address(address))
    return found


def iso_time(timestamp: int) -> str:
    """Unix seconds -> ``2026-01-31T12:00:00Z``."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> int:
    """ISO 8601 date or date-time (naive means UTC) -> unix seconds."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise AuditUsageError(f"{text!r} is not an ISO 8601 date or date-time") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


Address = str  # 0x-prefixed, lower-case: records never pay for EIP-55 checksums

#: A zero bytes32 as records hold words: the input root of a batch that committed none.
ZERO_ROOT = "0x" + "00" * 32


@dataclass(frozen=True, slots=True)
class Record:
    """One decoded log. ``time`` is the block's unix timestamp; addresses are lower-case."""

    block: int
    log_index: int
    time: int
    tx_hash: str
    contract: str  # "hub" | "token" | "badges" | "timelock"
    kind: str


@dataclass(frozen=True, slots=True)
class Issuance(Record):
    """One merchant event's mint: the token's ``Transfer(0, member, amount)`` log (whose
    ``log_index`` this is) zipped with its item of the same transaction's ``PointsIssued``.
    ``mint_kind`` (a ``MintKind``: 0 by the rules) and ``input_root`` are its batch's."""

    merchant: int
    member: Address
    amount: int
    seq: int
    rule_version: int
    ref: str
    batch_log_index: int
    mint_kind: int = 0
    input_root: str = ZERO_ROOT


@dataclass(frozen=True, slots=True)
class IssuanceBatch(Record):
    """A ``PointsIssued`` log: ``count`` events with sequence numbers ``seq ..
    seq + count - 1``; ``minted``/``minted_total`` are the mints that were zipped with it.
    ``mint_kind`` is the batch's ``MintKind`` (0: by the rules, ``rule_version`` then names the
    version; other kinds name 0); ``input_root`` the root of its inputs (:mod:`chain.merkle`)."""

    merchant: int
    rule_version: int
    seq: int
    count: int
    amount: int  # the event's ``total``
    minted: int
    minted_total: int
    mint_kind: int = 0
    input_root: str = ZERO_ROOT


@dataclass(frozen=True, slots=True)
class TokenMovement(Record):
    """A token ``Transfer`` that is not an issuance: ``token_burn``, ``token_transfer``
    (member to member) or ``token_mint`` (a mint no ``PointsIssued`` accounts for)."""

    sender: Address
    recipient: Address
    amount: int


@dataclass(frozen=True, slots=True)
class Redemption(Record):
    """A hub ``PointsRedeemed``: a member spent points at a merchant."""

    merchant: int
    member: Address
    amount: int
    ref: str
    nonce: int


@dataclass(frozen=True, slots=True)
class Clawback(Record):
    """``amount`` is what was burned (at most ``requested``); ``ref`` is the refund
    event's reference (as an issuance's)."""

    merchant: int
    member: Address
    seq: int
    original_seq: int
    ref: str
    requested: int
    amount: int


@dataclass(frozen=True, slots=True)
class ClawbackCommitment(Record):
    """A hub ``ClawbackInputsCommitted``: the root of the inputs of the ``count``
    ``PointsClawedBack`` logs just before it in its transaction (leaves in their order)."""

    merchant: int
    count: int
    input_root: str


@dataclass(frozen=True, slots=True)
class RelayedTransfer(Record):
    """The hub's ``PointsTransferred``: a member-signed transfer someone relayed."""

    sender: Address
    recipient: Address
    amount: int
    nonce: int


@dataclass(frozen=True, slots=True)
class TierChange(Record):
    """A hub ``TierChanged``: a member's tier moved."""

    member: Address
    old_tier: int
    new_tier: int


@dataclass(frozen=True, slots=True)
class BadgeAward(Record):
    """A merchant gave a member a badge: one per badge of a hub ``BadgesAwarded``, zipped
    with its mint (``TransferSingle`` from the zero address), whose log index it takes."""

    merchant: int
    member: Address
    badge_id: int


@dataclass(frozen=True, slots=True)
class BadgeMovement(Record):
    """An ERC-1155 ``TransferSingle`` (or one id of a ``TransferBatch``)."""

    operator: Address
    sender: Address
    recipient: Address
    badge_id: int
    amount: int


@dataclass(frozen=True, slots=True)
class BadgeDefinition(Record):
    """A badges ``BadgeDefined``: a new badge type and its limits."""

    badge_id: int
    name: str
    uri: str
    max_supply: int
    soulbound: bool


@dataclass(frozen=True, slots=True)
class MerchantChange(Record):
    """``merchant_added`` / ``merchant_status_changed`` / ``merchant_cap_changed`` /
    ``merchant_signer_changed``; fields a kind does not carry are None."""

    merchant: int
    name: str | None
    signer: Address | None
    status: str | None
    cap: int | None


@dataclass(frozen=True, slots=True)
class RuleSetPublication(Record):
    """A hub ``RuleSetPublished``: a merchant's rule set version, its hash, when it takes
    effect (unix time) and its published text: ``text`` is the logged bytes decoded as
    UTF-8 with any invalid sequence replaced (U+FFFD), ``rule_set`` the exact bytes as
    ``0x`` hex (what the hash is over)."""

    merchant: int
    rule_version: int
    rule_set_hash: str
    effective_at: int = 0
    text: str = ""
    rule_set: str = "0x"


@dataclass(frozen=True, slots=True)
class PointValueChange(Record):
    """A hub ``PointValueChanged``: the point's value in micro-units of ``currency``."""

    micro_units: int
    currency: str


@dataclass(frozen=True, slots=True)
class ParameterChange(Record):
    """``transfer_policy_changed`` (value 1/0), ``cap_period_changed`` (seconds),
    ``rule_notice_changed`` (seconds), ``sunset`` (timestamp), ``min_delay_changed``
    (seconds, with ``old_value``), ``paused`` / ``unpaused`` (``account`` who did it)."""

    value: int | None
    old_value: int | None
    account: Address | None


@dataclass(frozen=True, slots=True)
class RoleChange(Record):
    """``role_granted`` / ``role_revoked`` on the hub or the timelock."""

    role: str
    role_name: str
    account: Address
    sender: Address


@dataclass(frozen=True, slots=True)
class TimelockCall(Record):
    """``call_scheduled`` (with ``delay``) or ``call_executed`` of one timelock call."""

    operation_id: str
    index: int
    target: Address
    value: int
    data: str
    function: str
    predecessor: str | None
    delay: int | None


@dataclass(frozen=True, slots=True)
class TimelockCancel(Record):
    """A timelock ``Cancelled``: a scheduled operation will not run."""

    operation_id: str


@dataclass(frozen=True, slots=True)
class OtherEvent(Record):
    """A known event without a typed record (Approval, CallSalt, URI, ...)."""

    event: str
    args: dict[str, Any]


@dataclass(frozen=True, slots=True)
class UnknownLog(Record):
    """A log whose topic0 none of the audited contracts declares."""

    topics: tuple[str, ...]
    data: str


RECORD_TYPES: tuple[type[Record], ...] = (
    Issuance,
    IssuanceBatch,
    TokenMovement,
    Redemption,
    Clawback,
    ClawbackCommitment,
    RelayedTransfer,
    TierChange,
    BadgeAward,
    BadgeMovement,
    BadgeDefinition,
    MerchantChange,
    RuleSetPublication,
    PointValueChange,
    ParameterChange,
    RoleChange,
    TimelockCall,
    TimelockCancel,
    OtherEvent,
    UnknownLog,
)


#: Record fields that hold an address (rendered checksummed).
ADDRESS_FIELDS = frozenset(
    {"member", "sender", "recipient", "signer", "account", "operator", "target"}
)


def record_dict(record: Record) -> dict[str, Any]:
    """A record's fields, JSON-friendly (checksummed addresses, ISO time added)."""
    out: dict[str, Any] = {}
    for f in fields(record):
        value = getattr(record, f.name)
        if f.name in ADDRESS_FIELDS and isinstance(value, str):
            value = checksum(value)
        out[f.name] = value
    out["time"] = iso_time(record.time)
    return out
