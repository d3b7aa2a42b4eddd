"""Any audited event's log, decoded with its ABI (eth_abi) into its typed record.

The generic path of :mod:`chain.decode`: events the hot paths do not hand-parse
(merchant and rule changes, badge definitions and moves, governance, ...) are looked up by topic0 in
:func:`chain.abi.event_table`, their arguments decoded (:func:`decode_event`) and
turned into the record of their kind (:func:`typed_records`); a known event without
a record of its own becomes an :class:`~chain.records.OtherEvent`, an unknown topic
an :class:`~chain.records.UnknownLog`.
"""

from __future__ import annotations

import re
from typing import Any

from eth_abi import decode as abi_decode

from chain.abi import (
    MERCHANT_STATUS,
    ROLE_NAMES,
    EventAbi,
    describe_call,
    event_table,
    plain,
)
from chain.records import (
    BadgeDefinition,
    BadgeMovement,
    ClawbackCommitment,
    MerchantChange,
    OtherEvent,
    ParameterChange,
    PointValueChange,
    Record,
    RoleChange,
    RuleSetPublication,
    TierChange,
    TimelockCall,
    TimelockCancel,
    UnknownLog,
)


def generic_records(
    log: dict[str, Any],
    block: int,
    log_index: int,
    timestamp: int,
    tx_hash: str,
    contract: str,
) -> list[Record]:
    """The record(s) of one log of any audited event (one per id of a ``TransferBatch``)."""
    topics: list[str] = log["topics"]
    event = event_table().get(topics[0]) if topics else None
    kind = "unknown"
    if event is not None:
        try:
            args = decode_event(event, topics, log["data"])
        except Exception:
            kind = "undecodable_" + snake(event.name)
        else:
            return typed_records(event.name, args, (block, log_index, timestamp, tx_hash, contract))
    return [
        UnknownLog(block, log_index, timestamp, tx_hash, contract, kind, tuple(topics), log["data"])
    ]


def snake(name: str) -> str:
    """``PointsIssued`` -> ``points_issued``."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def decode_event(event: EventAbi, topics: list[str], data: str) -> dict[str, Any]:
    """The arguments of one log of ``event``, by name (dynamic indexed ones as their hash)."""
    args: dict[str, Any] = {}
    indexed_topics = iter(topics[1:])
    data_types = [t for t, ix in zip(event.types, event.indexed, strict=True) if not ix]
    data_values = iter(abi_decode(data_types, bytes.fromhex(data[2:])) if data_types else ())
    for name, kind, indexed in zip(event.names, event.types, event.indexed, strict=True):
        if indexed:
            topic = bytes.fromhex(next(indexed_topics)[2:])
            dynamic = kind in ("string", "bytes") or kind.endswith("]") or kind.startswith("(")
            args[name] = "0x" + topic.hex() if dynamic else plain(abi_decode([kind], topic)[0])
        else:
            args[name] = plain(next(data_values))
    return args


def typed_records(
    name: str, a: dict[str, Any], head: tuple[int, int, int, str, str]
) -> list[Record]:
    """A typed record for event ``name`` with decoded arguments ``a``."""
    b, i, t, tx, c = head
    if name == "MerchantAdded":
        return [
            MerchantChange(
                b,
                i,
                t,
                tx,
                c,
                "merchant_added",
                a["merchantId"],
                a["name"],
                a["signer"],
                "active",
                a["capPerPeriod"],
            )
        ]
    if name == "MerchantStatusChanged":
        status = a["status"]
        label = MERCHANT_STATUS[status] if status < len(MERCHANT_STATUS) else str(status)
        kind = "merchant_status_changed"
        return [MerchantChange(b, i, t, tx, c, kind, a["merchantId"], None, None, label, None)]
    if name == "MerchantCapChanged":
        kind = "merchant_cap_changed"
        cap = a["capPerPeriod"]
        return [MerchantChange(b, i, t, tx, c, kind, a["merchantId"], None, None, None, cap)]
    if name == "MerchantSignerChanged":
        kind = "merchant_signer_changed"
        signer = a["signer"]
        return [MerchantChange(b, i, t, tx, c, kind, a["merchantId"], None, signer, None, None)]
    if name == "RuleSetPublished":
        kind = "rule_set_published"
        raw = a["ruleSet"]
        text = bytes.fromhex(raw[2:]).decode("utf-8", errors="replace")
        head_kind = (b, i, t, tx, c, kind)
        version, digest, effective_at = a["version"], a["ruleSetHash"], a["effectiveAt"]
        return [
            RuleSetPublication(
                *head_kind, a["merchantId"], version, digest, effective_at, text, raw
            )
        ]
    if name == "RuleNoticeChanged":
        kind = "rule_notice_changed"
        return [ParameterChange(b, i, t, tx, c, kind, a["noticeSeconds"], None, None)]
    if name == "ClawbackInputsCommitted":
        kind = "clawback_inputs"
        root = a["inputRoot"]
        return [ClawbackCommitment(b, i, t, tx, c, kind, a["merchantId"], a["count"], root)]
    if name == "TierChanged":
        kind = "tier_changed"
        return [TierChange(b, i, t, tx, c, kind, a["member"], a["oldTier"], a["newTier"])]
    if name == "TransferSingle":
        return [
            BadgeMovement(
                b,
                i,
                t,
                tx,
                c,
                "badge_transfer",
                a["operator"],
                a["from"],
                a["to"],
                a["id"],
                a["value"],
            )
        ]
    if name == "TransferBatch":
        return [
            BadgeMovement(b, i, t, tx, c, "badge_transfer", a["operator"], a["from"], a["to"], x, v)
            for x, v in zip(a["ids"], a["values"], strict=True)
        ]
    if name == "BadgeDefined":
        return [
            BadgeDefinition(
                b,
                i,
                t,
                tx,
                c,
                "badge_defined",
                a["id"],
                a["name"],
                a["uri"],
                a["maxSupply"],
                a["soulbound"],
            )
        ]
    if name == "PointValueChanged":
        kind = "point_value_changed"
        return [PointValueChange(b, i, t, tx, c, kind, a["microUnits"], a["currency"])]
    if name == "TransferPolicyChanged":
        kind = "transfer_policy_changed"
        return [ParameterChange(b, i, t, tx, c, kind, int(a["allowed"]), None, None)]
    if name == "CapPeriodChanged":
        kind = "cap_period_changed"
        return [ParameterChange(b, i, t, tx, c, kind, a["secondsPerPeriod"], None, None)]
    if name == "Sunset":
        return [ParameterChange(b, i, t, tx, c, "sunset", a["timestamp"], None, None)]
    if name in ("Paused", "Unpaused"):
        return [ParameterChange(b, i, t, tx, c, name.lower(), None, None, a["account"])]
    if name == "MinDelayChange":
        kind = "min_delay_changed"
        return [ParameterChange(b, i, t, tx, c, kind, a["newDuration"], a["oldDuration"], None)]
    if name in ("RoleGranted", "RoleRevoked"):
        role = a["role"]
        kind = "role_granted" if name == "RoleGranted" else "role_revoked"
        role_name = ROLE_NAMES.get(role, role)
        return [RoleChange(b, i, t, tx, c, kind, role, role_name, a["account"], a["sender"])]
    if name in ("CallScheduled", "CallExecuted"):
        data = a["data"]
        function = describe_call(bytes.fromhex(data[2:]))
        scheduled = name == "CallScheduled"
        return [
            TimelockCall(
                b,
                i,
                t,
                tx,
                c,
                "call_scheduled" if scheduled else "call_executed",
                a["id"],
                a["index"],
                a["target"],
                a["value"],
                data,
                function,
                a["predecessor"] if scheduled else None,
                a["delay"] if scheduled else None,
            )
        ]
    if name == "Cancelled":
        return [TimelockCancel(b, i, t, tx, c, "call_cancelled", a["id"])]
    return [OtherEvent(b, i, t, tx, c, snake(name), name, a)]
