"""The project's one ABI table: event topics, function and custom-error selectors.

Everything is computed once from the committed artifacts (:mod:`chain.artifacts`):

- :data:`TRANSFER`, :data:`POINTS_ISSUED`, ... : the topic0 of the events the hot
  paths dispatch on, as the ``0x``-prefixed lower-case hex strings that JSON-RPC
  logs carry;
- :func:`event_table` (topic0 -> :class:`EventAbi`) and :func:`function_table`
  (selector -> :class:`FunctionAbi`) for every contract an audit reads;
- :func:`error_table` (selector -> :class:`ErrorAbi`) for every custom error of the
  project's contracts, Solidity's ``Error(string)`` and ``Panic(uint256)`` included;
- :func:`type_string`: the canonical ABI type of a parameter, tuples expanded;
- :func:`describe_call`: calldata rendered as ``name(arg=value, ...)``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from eth_abi import decode as abi_decode
from eth_utils import event_signature_to_log_topic, function_signature_to_4byte_selector, keccak

from chain.artifacts import load_artifact
from chain.records import checksum

ZERO_ADDRESS = "0x" + "00" * 20
ZERO_WORD = "0x" + "00" * 32
#: A zero ``bytes32`` argument (no predecessor, no input root).
ZERO32 = b"\x00" * 32

#: Contracts an audit reads, by the role they play, and their artifact names.
ROLE_ARTIFACTS = {
    "hub": "LoyaltyNetwork",
    "token": "PointsToken",
    "badges": "BadgeCollection",
    "timelock": "NetworkTimelock",
}

ROLE_NAMES = {
    ZERO_WORD: "DEFAULT_ADMIN_ROLE",
    **{
        "0x" + keccak(text=name).hex(): name
        for name in (
            "ISSUER_ROLE",
            "GUARDIAN_ROLE",
            "PROPOSER_ROLE",
            "EXECUTOR_ROLE",
            "CANCELLER_ROLE",
        )
    },
}

#: The hub's ``MerchantStatus`` values, by number.
MERCHANT_STATUS = ("none", "active", "suspended")

#: The hub's ``MintKind`` values, by number (``chain.contracts.MintKind``).
MINT_KIND_NAMES = ("rule", "adjustment", "payout", "prize")

#: The project's contracts whose custom errors :func:`error_table` knows.
ERROR_ARTIFACTS = (
    "LoyaltyNetwork",
    "PointsToken",
    "BadgeCollection",
    "NetworkTimelock",
    "NaiveERC20",
)


def type_string(param: dict[str, Any]) -> str:
    """ABI type of a parameter, tuples expanded (``(address,uint256)[]``)."""
    kind = str(param["type"])
    if kind.startswith("tuple"):
        inner = ",".join(type_string(c) for c in param["components"])
        return f"({inner}){kind[len('tuple') :]}"
    return kind


def event_topic(signature: str) -> str:
    """topic0 of event ``signature`` (``"Transfer(address,address,uint256)"``), 0x-hex."""
    return "0x" + event_signature_to_log_topic(signature).hex()


def selector(signature: str) -> bytes:
    """The 4-byte selector of function (or custom error) ``signature``."""
    return function_signature_to_4byte_selector(signature)


TRANSFER = event_topic("Transfer(address,address,uint256)")
POINTS_ISSUED = event_topic("PointsIssued(uint32,uint64,uint64,bytes32[],uint256,uint8,bytes32)")
POINTS_REDEEMED = event_topic("PointsRedeemed(uint32,address,uint256,bytes32,uint256)")
POINTS_CLAWED_BACK = event_topic(
    "PointsClawedBack(uint32,address,uint64,uint64,bytes32,uint256,uint256)"
)
POINTS_TRANSFERRED = event_topic("PointsTransferred(address,address,uint256,uint256)")
TRANSFER_SINGLE = event_topic("TransferSingle(address,address,address,uint256,uint256)")
BADGES_AWARDED = event_topic("BadgesAwarded(uint32,uint256)")
ROLE_GRANTED = event_topic("RoleGranted(bytes32,address,address)")
ROLE_REVOKED = event_topic("RoleRevoked(bytes32,address,address)")
CALL_EXECUTED = event_topic("CallExecuted(bytes32,uint256,address,uint256,bytes)")
RULE_SET_PUBLISHED = event_topic("RuleSetPublished(uint32,uint64,bytes32,uint64,bytes)")
RULE_NOTICE_CHANGED = event_topic("RuleNoticeChanged(uint64)")
CLAWBACK_INPUTS_COMMITTED = event_topic("ClawbackInputsCommitted(uint32,uint256,bytes32)")


def _declared(
    kind: str, artifacts: Iterable[str]
) -> Iterator[tuple[dict[str, Any], str, tuple[str, ...]]]:
    """``(item, signature, types)`` of every non-anonymous ``kind`` item of the artifacts."""
    for artifact in artifacts:
        for item in load_artifact(artifact)["abi"]:
            if item.get("type") == kind and not item.get("anonymous"):
                types = tuple(type_string(i) for i in item["inputs"])
                yield item, f"{item['name']}({','.join(types)})", types


@dataclass(frozen=True)
class EventAbi:
    name: str
    names: tuple[str, ...]
    types: tuple[str, ...]
    indexed: tuple[bool, ...]


@lru_cache(maxsize=1)
def event_table() -> dict[str, EventAbi]:
    """topic0 -> event ABI, for every event of the audited contracts."""
    table: dict[str, EventAbi] = {}
    for item, signature, types in _declared("event", ROLE_ARTIFACTS.values()):
        table[event_topic(signature)] = EventAbi(
            item["name"],
            tuple(i["name"] for i in item["inputs"]),
            types,
            tuple(bool(i["indexed"]) for i in item["inputs"]),
        )
    return table


@dataclass(frozen=True)
class FunctionAbi:
    name: str
    names: tuple[str, ...]
    types: tuple[str, ...]


@lru_cache(maxsize=1)
def function_table() -> dict[bytes, FunctionAbi]:
    """selector -> function ABI, for every function of the audited contracts."""
    table: dict[bytes, FunctionAbi] = {}
    for item, signature, types in _declared("function", ROLE_ARTIFACTS.values()):
        names = tuple(i["name"] for i in item["inputs"])
        table.setdefault(selector(signature), FunctionAbi(item["name"], names, types))
    return table


@dataclass(frozen=True)
class ErrorAbi:
    name: str
    names: list[str]
    types: list[str]


@lru_cache(maxsize=1)
def error_table() -> dict[bytes, ErrorAbi]:
    """selector -> custom error, for every error in the project's ABIs and Solidity's two."""
    table: dict[bytes, ErrorAbi] = {
        # Solidity's built-ins: require strings and panics.
        selector("Error(string)"): ErrorAbi("Error", ["message"], ["string"]),
        selector("Panic(uint256)"): ErrorAbi("Panic", ["code"], ["uint256"]),
    }
    for item, signature, types in _declared("error", ERROR_ARTIFACTS):
        names = [i["name"] for i in item["inputs"]]
        table[selector(signature)] = ErrorAbi(item["name"], names, list(types))
    return table


def plain(value: Any) -> Any:
    """An eth_abi value as JSON-friendly Python: bytes to hex, tuples to lists."""
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, str) and len(value) == 42 and value.startswith("0x"):
        return value.lower()
    return value


def describe_call(data: bytes) -> str:
    """``setPointValue(microUnits=20000)`` for calldata of an audited contract's function."""
    if len(data) < 4:
        return "(no call data)" if not data else f"(short call data 0x{data.hex()})"
    found = function_table().get(data[:4])
    if found is None:
        return f"unknown function 0x{data[:4].hex()}"
    try:
        values = abi_decode(list(found.types), data[4:])
    except Exception:
        return f"{found.name}(<undecodable arguments>)"
    rendered = []
    for name, value in zip(found.names, values, strict=True):
        shown = plain(value)
        if isinstance(shown, str) and len(shown) == 42 and shown.startswith("0x"):
            shown = checksum(shown)
        elif isinstance(shown, str) and not shown.startswith("0x"):
            shown = json.dumps(shown, ensure_ascii=False)
        rendered.append(f"{name}={shown}")
    return f"{found.name}({', '.join(rendered)})"
