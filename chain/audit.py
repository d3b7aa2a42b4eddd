"""The auditor's view of the network, from an RPC endpoint and the hub address alone.

Responsibilities:

- discover the network's contracts from the hub: ``token()``, ``badges()`` and the
  timelock(s) that hold ``DEFAULT_ADMIN_ROLE`` (from the hub's ``RoleGranted`` logs),
  and the block where the history starts;
- read every log of those contracts with ``eth_getLogs`` over block ranges whose size
  adapts to the log density and to provider limits ("too many results", block-range
  caps, oversized responses), prefetching the next page while the current one is decoded;
- take block times from the logs (``blockTimestamp``) or, where a node leaves them out,
  from JSON-RPC batches of ``eth_getBlockByNumber`` for the blocks that have logs only;
- decode every log into a typed :class:`Record` without web3's event machinery (topic
  dispatch, hand-parsed words on the hot paths, eth_abi elsewhere), turning each
  ``PointsIssued`` batch and the token's ``Transfer(0, member, amount)`` logs of the same
  transaction into one :class:`Issuance` per event (i-th item, i-th mint, in log order);
- reports as pure functions of the records (and, for the supply invariant, of the
  chain's own views at the same block): supply invariant, settlement, rule timeline,
  anomalies; JSON-ready dicts and a CSV with one row per record.
"""

from __future__ import annotations

import csv
import json
import queue
import re
import threading
import time as _time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from functools import lru_cache
from typing import IO, Any, TypeVar

import requests
from eth_abi import decode as abi_decode
from eth_utils import (
    event_signature_to_log_topic,
    function_signature_to_4byte_selector,
    keccak,
    to_checksum_address,
)

from chain.artifacts import load_artifact
from chain.errors import ChainError

# ================================================================ errors


class AuditError(ChainError):
    """The audit could not be carried out (unreachable node, bad answer, no network)."""


class RpcError(AuditError):
    """A JSON-RPC call answered with an error object."""

    def __init__(self, method: str, code: int | None, message: str, data: Any = None) -> None:
        super().__init__(f"{method}: {message} (code {code})")
        self.method = method
        self.code = code
        self.rpc_message = message
        self.data = data


class RpcTransportError(AuditError):
    """A JSON-RPC call failed in transport (connection, timeout, HTTP status) after retries."""


# ================================================================ JSON-RPC

#: Fragments of provider errors meaning "ask for less at once".
_LIMIT_FRAGMENTS = (
    "too many",
    "limit",
    "exceed",
    "range",
    "response size",
    "more than",
    "max results",
    "timeout",
    "timed out",
    "too large",
)
_SUGGESTED_RANGE_RE = re.compile(r"\[\s*(0x[0-9a-fA-F]+)\s*,\s*(0x[0-9a-fA-F]+)\s*\]")


def is_limit_error(exc: Exception) -> bool:
    """Whether a failed ``eth_getLogs`` should be retried over a smaller block range."""
    if isinstance(exc, RpcTransportError):
        return True  # oversized responses show up as timeouts, 413s, dropped connections
    if isinstance(exc, RpcError):
        message = exc.rpc_message.lower()
        return exc.code == -32005 or any(f in message for f in _LIMIT_FRAGMENTS)
    return False


def suggested_range_end(message: str, start: int) -> int | None:
    """The end of the block range a provider suggests in its error (Alchemy, Infura)."""
    match = _SUGGESTED_RANGE_RE.search(message)
    if match is None:
        return None
    first, last = int(match.group(1), 16), int(match.group(2), 16)
    return last if first == start and last >= start else None


class Rpc:
    """A minimal JSON-RPC client over HTTP: single calls and batches, raw JSON results.

    Raw results (hex strings, plain dicts) are what makes replaying a million logs
    fast: nothing is converted that the decoder does not need.
    """

    def __init__(self, url: str, *, timeout: float = 120.0, retries: int = 3) -> None:
        self.url = url
        self.timeout = timeout
        self.retries = retries
        self._session = requests.Session()
        self._ids = 0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Rpc({self.url!r})"

    def _next_id(self) -> int:
        with self._lock:
            self._ids += 1
            return self._ids

    def _post(self, payload: Any, what: str) -> Any:
        delay = 0.5
        for attempt in range(self.retries + 1):
            try:
                response = self._session.post(self.url, json=payload, timeout=self.timeout)
                if response.status_code == 429 or response.status_code >= 500:
                    raise RpcTransportError(f"{what}: HTTP {response.status_code}")
                if response.status_code >= 400:
                    raise RpcTransportError(
                        f"{what}: HTTP {response.status_code} {response.text[:200]}"
                    )
                return json.loads(response.content)
            except (requests.RequestException, ValueError, RpcTransportError) as exc:
                if attempt == self.retries:
                    raise RpcTransportError(f"{what} on {self.url} failed: {exc}") from exc
                _time.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")

    def call(self, method: str, params: Sequence[Any] = ()) -> Any:
        """One call; returns ``result`` or raises :class:`RpcError`."""
        body = self._post(
            {"jsonrpc": "2.0", "id": self._next_id(), "method": method, "params": list(params)},
            method,
        )
        if not isinstance(body, dict):
            raise AuditError(f"{method}: unexpected answer {str(body)[:200]}")
        if "error" in body:
            error = body["error"] or {}
            raise RpcError(method, error.get("code"), str(error.get("message")), error.get("data"))
        return body.get("result")

    def batch(self, calls: Sequence[tuple[str, Sequence[Any]]], size: int = 250) -> list[Any]:
        """Results of ``calls`` in order, sent as JSON-RPC batches of ``size``.

        A provider that refuses batches (or one this size) gets smaller ones, down to
        single calls.
        """
        results: list[Any] = []
        start = 0
        while start < len(calls):
            chunk = calls[start : start + size]
            first_id = self._next_id()
            payload = [
                {"jsonrpc": "2.0", "id": first_id + i, "method": m, "params": list(p)}
                for i, (m, p) in enumerate(chunk)
            ]
            with self._lock:
                self._ids = max(self._ids, first_id + len(chunk))
            body = self._post(payload, f"batch of {len(chunk)} {chunk[0][0]}")
            if not isinstance(body, list):  # batch refused (or too large)
                if size == 1:
                    raise AuditError(f"{chunk[0][0]}: unexpected answer {str(body)[:200]}")
                size = max(1, size // 4)
                continue
            by_id = {item.get("id"): item for item in body if isinstance(item, dict)}
            for i, (method, _params) in enumerate(chunk):
                item = by_id.get(first_id + i)
                if item is None:
                    raise AuditError(f"{method}: missing from the batch answer")
                if "error" in item:
                    error = item["error"] or {}
                    raise RpcError(method, error.get("code"), str(error.get("message")))
                results.append(item.get("result"))
            start += len(chunk)
        return results

    def block_number(self) -> int:
        return int(self.call("eth_blockNumber"), 16)

    def block_timestamp(self, block: int) -> int:
        found = self.call("eth_getBlockByNumber", [hex(block), False])
        if found is None:
            raise AuditError(f"block {block} not found")
        return int(found["timestamp"], 16)

    def eth_call(self, to: str, data: bytes, block: int | str = "latest") -> bytes:
        tag = hex(block) if isinstance(block, int) else block
        result = self.call("eth_call", [{"to": to, "data": "0x" + data.hex()}, tag])
        return bytes.fromhex(str(result)[2:])

    def get_code(self, address: str, block: int | str = "latest") -> bytes:
        tag = hex(block) if isinstance(block, int) else block
        return bytes.fromhex(str(self.call("eth_getCode", [address, tag]))[2:])


def block_at_time(rpc: Rpc, timestamp: int, latest: int | None = None) -> int:
    """The last block whose timestamp is at most ``timestamp`` (-1 if none is)."""
    hi = rpc.block_number() if latest is None else latest
    lo = 0
    if rpc.block_timestamp(0) > timestamp:
        return -1
    while lo < hi:  # invariant: block lo qualifies
        mid = (lo + hi + 1) // 2
        if rpc.block_timestamp(mid) <= timestamp:
            lo = mid
        else:
            hi = mid - 1
    return lo


# ================================================================ ABI tables

ZERO_ADDRESS = "0x" + "00" * 20
ZERO_WORD = "0x" + "00" * 32

#: Contracts an audit reads, by the role they play, and their artifact names.
ROLE_ARTIFACTS = {
    "hub": "LoyaltyNetwork",
    "token": "PointsToken",
    "badges": "BadgeCollection",
    "timelock": "NetworkTimelock",
}

ROLE_NAMES = {
    "0x" + "00" * 32: "DEFAULT_ADMIN_ROLE",
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

MERCHANT_STATUS = ("none", "active", "suspended")


def _type_string(param: dict[str, Any]) -> str:
    kind = str(param["type"])
    if kind.startswith("tuple"):
        inner = ",".join(_type_string(c) for c in param["components"])
        return f"({inner}){kind[len('tuple') :]}"
    return kind


def event_topic(signature: str) -> str:
    return "0x" + event_signature_to_log_topic(signature).hex()


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
    for artifact in ROLE_ARTIFACTS.values():
        for item in load_artifact(artifact)["abi"]:
            if item.get("type") != "event" or item.get("anonymous"):
                continue
            types = tuple(_type_string(i) for i in item["inputs"])
            topic = event_topic(f"{item['name']}({','.join(types)})")
            table[topic] = EventAbi(
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
    for artifact in ROLE_ARTIFACTS.values():
        for item in load_artifact(artifact)["abi"]:
            if item.get("type") != "function":
                continue
            types = tuple(_type_string(i) for i in item["inputs"])
            selector = function_signature_to_4byte_selector(f"{item['name']}({','.join(types)})")
            table.setdefault(
                selector, FunctionAbi(item["name"], tuple(i["name"] for i in item["inputs"]), types)
            )
    return table


def _plain(value: Any) -> Any:
    """An eth_abi value as JSON-friendly Python: bytes to hex, tuples to lists."""
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
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
    rendered = ", ".join(
        f"{name}={_render_value(value)}" for name, value in zip(found.names, values, strict=True)
    )
    return f"{found.name}({rendered})"


def _render_value(value: Any) -> str:
    plain = _plain(value)
    if isinstance(plain, str) and len(plain) == 42 and plain.startswith("0x"):
        return checksum(plain)
    if isinstance(plain, str) and not plain.startswith("0x"):
        return json.dumps(plain, ensure_ascii=False)
    return str(plain)


_CHECKSUMS: dict[str, str] = {}


def checksum(address: str) -> str:
    """EIP-55 form of a lower-case address (cached: records keep them lower-case)."""
    found = _CHECKSUMS.get(address)
    if found is None:
        found = _CHECKSUMS[address] = str(to_checksum_address(address))
    return found


# ================================================================ records

Address = str  # 0x-prefixed, lower-case: records never pay for EIP-55 checksums


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
    ``log_index`` this is) zipped with its item of the same transaction's ``PointsIssued``."""

    merchant: int
    member: Address
    amount: int
    seq: int
    rule_version: int
    ref: str
    batch_log_index: int


@dataclass(frozen=True, slots=True)
class IssuanceBatch(Record):
    """A ``PointsIssued`` log: ``count`` events with sequence numbers ``seq ..
    seq + count - 1``; ``minted``/``minted_total`` are the mints that were zipped with it."""

    merchant: int
    rule_version: int
    seq: int
    count: int
    amount: int  # the event's ``total``
    minted: int
    minted_total: int


@dataclass(frozen=True, slots=True)
class TokenMovement(Record):
    """A token ``Transfer`` that is not an issuance: ``token_burn``, ``token_transfer``
    (member to member) or ``token_mint`` (a mint no ``PointsIssued`` accounts for)."""

    sender: Address
    recipient: Address
    amount: int


@dataclass(frozen=True, slots=True)
class Redemption(Record):
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
class RelayedTransfer(Record):
    """The hub's ``PointsTransferred``: a member-signed transfer someone relayed."""

    sender: Address
    recipient: Address
    amount: int
    nonce: int


@dataclass(frozen=True, slots=True)
class TierChange(Record):
    member: Address
    old_tier: int
    new_tier: int


@dataclass(frozen=True, slots=True)
class BadgeAward(Record):
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
    merchant: int
    rule_version: int
    rule_set_hash: str


@dataclass(frozen=True, slots=True)
class PointValueChange(Record):
    micro_units: int
    currency: str


@dataclass(frozen=True, slots=True)
class ParameterChange(Record):
    """``transfer_policy_changed`` (value 1/0), ``cap_period_changed`` (seconds),
    ``sunset`` (timestamp), ``min_delay_changed`` (seconds, with ``old_value``),
    ``paused`` / ``unpaused`` (``account`` who did it)."""

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

#: CSV columns: the ones every reader looks for first, then every other field.
LEADING_COLUMNS = (
    "block",
    "time",
    "tx_hash",
    "log_index",
    "contract",
    "kind",
    "merchant",
    "member",
    "amount",
    "seq",
    "original_seq",
    "rule_version",
    "ref",
    "sender",
    "recipient",
)


def csv_columns() -> list[str]:
    columns = list(LEADING_COLUMNS)
    for record_type in RECORD_TYPES:
        for f in fields(record_type):
            if f.name not in columns:
                columns.append(f.name)
    return columns


_ADDRESS_FIELDS = frozenset(
    {"member", "sender", "recipient", "signer", "account", "operator", "target"}
)


def iso_time(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def record_dict(record: Record) -> dict[str, Any]:
    """A record's fields, JSON-friendly (checksummed addresses, ISO time added)."""
    out: dict[str, Any] = {}
    for f in fields(record):
        value = getattr(record, f.name)
        if f.name in _ADDRESS_FIELDS and isinstance(value, str):
            value = checksum(value)
        out[f.name] = value
    out["time"] = iso_time(record.time)
    return out


def write_csv(records: Iterable[Record], out: IO[str]) -> int:
    """Write one CSV row per record with every field; returns the number of rows."""
    columns = csv_columns()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    index = {name: i for i, name in enumerate(columns)}
    field_names: dict[type, list[tuple[int, str, bool]]] = {}
    rows = 0
    for record in records:
        layout = field_names.get(type(record))
        if layout is None:
            layout = field_names[type(record)] = [
                (index[f.name], f.name, f.name in _ADDRESS_FIELDS) for f in fields(record)
            ]
        row: list[Any] = [""] * len(columns)
        for i, name, is_address in layout:
            value = getattr(record, name)
            if value is None:
                continue
            if is_address:
                value = checksum(value)
            elif isinstance(value, bool):
                value = "true" if value else "false"
            elif isinstance(value, dict | tuple | list):
                value = json.dumps(value, default=str)
            row[i] = value
        row[index["time"]] = iso_time(record.time)
        writer.writerow(row)
        rows += 1
    return rows


# ================================================================ discovery


@dataclass(frozen=True)
class Contracts:
    """The audited network: addresses (lower-case) and where its history starts."""

    hub: Address
    token: Address
    badges: Address
    timelocks: tuple[Address, ...]  # every account ever granted the hub's DEFAULT_ADMIN_ROLE
    admins: tuple[Address, ...]  # those holding it at the block discovery looked at
    start_block: int

    def addresses(self) -> list[Address]:
        return list(dict.fromkeys([self.hub, self.token, self.badges, *self.timelocks]))

    def labels(self) -> dict[Address, str]:
        labels = {t: "timelock" for t in self.timelocks}
        labels.update({self.hub: "hub", self.token: "token", self.badges: "badges"})
        return labels

    def to_dict(self) -> dict[str, Any]:
        return {
            "hub": checksum(self.hub),
            "token": checksum(self.token),
            "badges": checksum(self.badges),
            "timelocks": [checksum(t) for t in self.timelocks],
            "admins": [checksum(a) for a in self.admins],
            "start_block": self.start_block,
        }


def _word_address(word: bytes) -> Address:
    return "0x" + word[-20:].hex()


# ================================================================ the reader

ProgressCallback = Callable[[int, int, int], None]
"""``progress(blocks_done, blocks_total, logs_read)``."""

_TRANSFER = event_topic("Transfer(address,address,uint256)")
_POINTS_ISSUED = event_topic("PointsIssued(uint32,uint64,uint64,bytes32[],uint256)")
_POINTS_REDEEMED = event_topic("PointsRedeemed(uint32,address,uint256,bytes32,uint256)")
_POINTS_CLAWED_BACK = event_topic(
    "PointsClawedBack(uint32,address,uint64,uint64,bytes32,uint256,uint256)"
)
_POINTS_TRANSFERRED = event_topic("PointsTransferred(address,address,uint256,uint256)")
_ROLE_GRANTED = event_topic("RoleGranted(bytes32,address,address)")
_ROLE_REVOKED = event_topic("RoleRevoked(bytes32,address,address)")


@dataclass
class History:
    """Every decoded record of the network from ``from_block`` to ``to_block``."""

    contracts: Contracts
    from_block: int
    to_block: int
    records: list[Record]
    log_count: int
    block_times: dict[int, int] = field(default_factory=dict)  # blocks that have logs
    to_time: int | None = None  # timestamp of ``to_block``

    def between(self, from_block: int, to_block: int) -> list[Record]:
        return [r for r in self.records if from_block <= r.block <= to_block]


@dataclass
class _Page:
    first: int
    last: int
    logs: list[dict[str, Any]]
    times: dict[int, int]


class AuditLog:
    """Reads and decodes the network's whole log history (see the module docstring).

    ``target_logs`` is the number of logs a page aims at: the block span of the next
    request is scaled from the density of the last one (growing at most eightfold, from
    ``initial_span`` up to ``max_span``), and halved, or cut to the range a provider
    suggests, when the provider refuses a request as too large.
    """

    def __init__(
        self,
        rpc: Rpc | str,
        hub: str,
        *,
        start_block: int | None = None,
        target_logs: int = 25_000,
        initial_span: int = 32,
        max_span: int = 500_000,
        log_timestamps: bool = True,
        progress: ProgressCallback | None = None,
    ) -> None:
        self.rpc = Rpc(rpc) if isinstance(rpc, str) else rpc
        self.hub = hub.lower()
        self.start_block = start_block
        self.target_logs = target_logs
        self.initial_span = initial_span
        self.max_span = max_span
        self.log_timestamps = log_timestamps
        self.progress = progress
        self.requests = 0  # eth_getLogs requests made, for benchmarks and tests

    # ---------------------------------------------------------------- paging

    def pages(
        self,
        addresses: list[str],
        first: int,
        last: int,
        topics: list[Any] | None = None,
    ) -> Iterator[tuple[int, int, list[dict[str, Any]]]]:
        """``(from, to, logs)`` for consecutive block ranges covering ``first .. last``."""
        span = self.initial_span
        block = first
        while block <= last:
            end = min(last, block + span - 1)
            query: dict[str, Any] = {
                "address": addresses,
                "fromBlock": hex(block),
                "toBlock": hex(end),
            }
            if topics is not None:
                query["topics"] = topics
            try:
                self.requests += 1
                logs = self.rpc.call("eth_getLogs", [query])
            except (RpcError, RpcTransportError) as exc:
                if not is_limit_error(exc) or end == block:
                    raise
                hint = (
                    suggested_range_end(exc.rpc_message, block)
                    if isinstance(exc, RpcError)
                    else None
                )
                span = (
                    hint - block + 1 if hint is not None and hint < end else (end - block) // 2 + 1
                )
                continue
            if not isinstance(logs, list):
                raise AuditError(f"eth_getLogs {block}..{end}: unexpected answer {str(logs)[:200]}")
            yield block, end, logs
            covered = end - block + 1
            block = end + 1
            n = len(logs)
            if n > self.target_logs:
                span = max(1, covered * self.target_logs // n)
            elif n < self.target_logs // 2:
                grown = covered * 8 if n == 0 else covered * self.target_logs // n
                span = max(1, min(self.max_span, covered * 8, grown))
            else:
                span = covered

    def _timed_pages(self, addresses: list[str], first: int, last: int) -> Iterator[_Page]:
        for start, end, logs in self.pages(addresses, first, last):
            times: dict[int, int] = {}
            if logs and not (self.log_timestamps and "blockTimestamp" in logs[0]):
                blocks = sorted({int(log["blockNumber"], 16) for log in logs})
                found = self.rpc.batch([("eth_getBlockByNumber", [hex(b), False]) for b in blocks])
                for b, block in zip(blocks, found, strict=True):
                    if block is None:
                        raise AuditError(f"block {b} with logs not found (reorg?)")
                    times[b] = int(block["timestamp"], 16)
            yield _Page(start, end, logs, times)

    def _prefetched(self, addresses: list[str], first: int, last: int) -> Iterator[_Page]:
        """The pages, fetched one ahead on a thread while the caller decodes."""
        box: queue.Queue[_Page | BaseException | None] = queue.Queue(maxsize=2)
        stop = threading.Event()

        def offer(item: _Page | BaseException | None) -> bool:
            while not stop.is_set():
                try:
                    box.put(item, timeout=0.2)
                    return True
                except queue.Full:
                    continue
            return False

        def produce() -> None:
            try:
                for page in self._timed_pages(addresses, first, last):
                    if not offer(page):
                        return
                offer(None)
            except BaseException as exc:  # handed to the consumer, which raises it
                offer(exc)

        worker = threading.Thread(target=produce, name="audit-getlogs", daemon=True)
        worker.start()
        try:
            while True:
                item = box.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            worker.join(timeout=5)

    # ---------------------------------------------------------------- discovery

    def _call_address(self, selector: str, block: int) -> Address:
        raw = self.rpc.eth_call(self.hub, function_signature_to_4byte_selector(selector), block)
        if len(raw) != 32:
            raise AuditError(f"{self.hub} answered {selector} with {raw.hex()!r}: not the hub?")
        return _word_address(raw)

    def discover(self, to_block: int) -> Contracts:
        """The network's contracts, read from the hub, and the first block of its history."""
        if not self.rpc.get_code(self.hub, to_block):
            raise AuditError(f"no contract at {self.hub} at block {to_block}")
        token = self._call_address("token()", to_block)
        badges = self._call_address("badges()", to_block)
        first = self.start_block or 0
        admins: dict[Address, bool] = {}
        hub_start: int | None = None
        topics = [[_ROLE_GRANTED, _ROLE_REVOKED], ZERO_WORD]
        for _s, _e, logs in self.pages([self.hub], first, to_block, topics):
            for log in logs:
                block = int(log["blockNumber"], 16)
                hub_start = block if hub_start is None else min(hub_start, block)
                admins[_word_address(bytes.fromhex(log["topics"][2][2:]))] = (
                    log["topics"][0] == _ROLE_GRANTED
                )
        if hub_start is None:
            raise AuditError(
                f"{self.hub} has no RoleGranted(DEFAULT_ADMIN_ROLE) log in blocks "
                f"{first}..{to_block}: not a pointsnet hub, or history starts earlier"
            )
        timelocks = tuple(admins)
        start = hub_start
        if self.start_block is None:
            # The timelock is deployed before the hub: start at its first log.
            for _s, _e, logs in self.pages(list(timelocks), first, hub_start, [_ROLE_GRANTED]):
                if logs:
                    start = min(start, int(logs[0]["blockNumber"], 16))
                    break
        else:
            start = self.start_block
        return Contracts(
            hub=self.hub,
            token=token,
            badges=badges,
            timelocks=timelocks,
            admins=tuple(a for a, held in admins.items() if held),
            start_block=start,
        )

    # ---------------------------------------------------------------- reading

    def read(self, to_block: int | None = None) -> History:
        """Discover the network and decode its history up to ``to_block`` (default: latest)."""
        last = self.rpc.block_number() if to_block is None else to_block
        contracts = self.discover(last)
        decoder = _Decoder(contracts)
        total = last - contracts.start_block + 1
        logs_read = 0
        if self.progress:
            self.progress(0, total, 0)
        for page in self._prefetched(contracts.addresses(), contracts.start_block, last):
            decoder.decode_page(page.logs, page.times)
            logs_read += len(page.logs)
            if self.progress:
                self.progress(page.last - contracts.start_block + 1, total, logs_read)
        to_time = decoder.block_times.get(last)
        if to_time is None:
            to_time = self.rpc.block_timestamp(last)
        return History(
            contracts=contracts,
            from_block=contracts.start_block,
            to_block=last,
            records=decoder.records,
            log_count=logs_read,
            block_times=decoder.block_times,
            to_time=to_time,
        )


class _Decoder:
    """Turns raw logs (in chain order) into records; zips each transaction's mints."""

    def __init__(self, contracts: Contracts) -> None:
        self.labels = contracts.labels()
        self.token = contracts.token
        self.hub = contracts.hub
        self.records: list[Record] = []
        self.block_times: dict[int, int] = {}
        self.holders: dict[str, Address] = {}
        self.events = event_table()

    def decode_page(self, logs: list[dict[str, Any]], times: dict[int, int]) -> None:
        """Decode one page (whole blocks). Nodes return logs in chain order; if one did
        not, the page is sorted and decoded again."""
        start = len(self.records)
        if not self._decode(logs, times, check_order=True):
            del self.records[start:]
            ordered = sorted(
                logs, key=lambda g: (int(g["blockNumber"], 16), int(g["logIndex"], 16))
            )
            self._decode(ordered, times, check_order=False)
        page = self.records[start:]
        if any(isinstance(r, IssuanceBatch) for r in page):
            page.sort(key=_order)  # issuance items were appended at their batch's log
            self.records[start:] = page

    def _decode(
        self, logs: list[dict[str, Any]], times: dict[int, int], *, check_order: bool
    ) -> bool:
        append = self.records.append
        labels = self.labels
        token = self.token
        hub = self.hub
        block_times = self.block_times
        zero_topic = ZERO_WORD
        last_block_hex = ""
        block = timestamp = -1
        previous_index = -1
        tx_hash = ""
        tx_block = tx_time = 0
        pending: list[tuple[int, Address, int]] = []  # this tx's mints not yet zipped
        holders = self.holders  # topic -> address: one string per holder, not per log
        taken = 0
        for log in logs:
            if log.get("removed"):
                continue
            log_index = int(log["logIndex"], 16)
            if log["blockNumber"] != last_block_hex:
                last_block_hex = log["blockNumber"]
                number = int(last_block_hex, 16)
                if check_order and number < block:
                    return False
                block = number
                stamp = log.get("blockTimestamp")
                timestamp = times[block] if times else int(str(stamp), 16)
                block_times[block] = timestamp
            elif check_order and log_index <= previous_index:
                return False
            previous_index = log_index
            if log["transactionHash"] != tx_hash:
                if taken < len(pending):
                    self._unattributed(pending[taken:], tx_block, tx_time, tx_hash)
                pending, taken = [], 0
                tx_hash, tx_block, tx_time = log["transactionHash"], block, timestamp
            topics = log["topics"]
            topic0 = topics[0] if topics else ""
            address = log["address"].lower()
            if topic0 == _TRANSFER and address == token:
                recipient = holders.get(topics[2])
                if recipient is None:
                    recipient = holders[topics[2]] = "0x" + topics[2][26:].lower()
                amount = int(log["data"], 16)
                if topics[1] == zero_topic:
                    pending.append((log_index, recipient, amount))
                    continue
                sender = holders.get(topics[1])
                if sender is None:
                    sender = holders[topics[1]] = "0x" + topics[1][26:].lower()
                kind = "token_burn" if topics[2] == zero_topic else "token_transfer"
                append(
                    TokenMovement(
                        block,
                        log_index,
                        timestamp,
                        tx_hash,
                        "token",
                        kind,
                        sender,
                        recipient,
                        amount,
                    )
                )
            elif topic0 == _POINTS_ISSUED and address == hub:
                data = log["data"][2:]
                merchant = int(topics[1], 16)
                rule_version = int(topics[2], 16)
                first_seq = int(data[0:64], 16)
                offset = int(data[64:128], 16) * 2
                total = int(data[128:192], 16)
                count = int(data[offset : offset + 64], 16)
                base = offset + 64
                matched = min(count, len(pending) - taken)
                minted_total = 0
                for i in range(matched):
                    mint_index, member, amount = pending[taken + i]
                    minted_total += amount
                    at = base + 64 * i
                    append(
                        Issuance(
                            block,
                            mint_index,
                            timestamp,
                            tx_hash,
                            "token",
                            "issuance",
                            merchant,
                            member,
                            amount,
                            first_seq + i,
                            rule_version,
                            "0x" + data[at : at + 64],
                            log_index,
                        )
                    )
                taken += matched
                append(
                    IssuanceBatch(
                        block,
                        log_index,
                        timestamp,
                        tx_hash,
                        "hub",
                        "points_issued",
                        merchant,
                        rule_version,
                        first_seq,
                        count,
                        total,
                        matched,
                        minted_total,
                    )
                )
            elif topic0 == _POINTS_REDEEMED and address == hub:
                data = log["data"][2:]
                append(
                    Redemption(
                        block,
                        log_index,
                        timestamp,
                        tx_hash,
                        "hub",
                        "redemption",
                        int(topics[1], 16),
                        "0x" + topics[2][26:].lower(),
                        int(data[0:64], 16),
                        "0x" + data[64:128],
                        int(data[128:192], 16),
                    )
                )
            elif topic0 == _POINTS_CLAWED_BACK and address == hub:
                data = log["data"][2:]
                append(
                    Clawback(
                        block,
                        log_index,
                        timestamp,
                        tx_hash,
                        "hub",
                        "clawback",
                        int(topics[1], 16),
                        "0x" + topics[2][26:].lower(),
                        int(data[0:64], 16),
                        int(data[64:128], 16),
                        "0x" + data[128:192],
                        int(data[192:256], 16),
                        int(data[256:320], 16),
                    )
                )
            elif topic0 == _POINTS_TRANSFERRED and address == hub:
                data = log["data"][2:]
                append(
                    RelayedTransfer(
                        block,
                        log_index,
                        timestamp,
                        tx_hash,
                        "hub",
                        "relayed_transfer",
                        "0x" + topics[1][26:].lower(),
                        "0x" + topics[2][26:].lower(),
                        int(data[0:64], 16),
                        int(data[64:128], 16),
                    )
                )
            else:
                contract = labels.get(address, address)
                for record in self._generic(log, block, log_index, timestamp, tx_hash, contract):
                    append(record)
        if taken < len(pending):
            self._unattributed(pending[taken:], tx_block, tx_time, tx_hash)
        return True

    def _unattributed(
        self, mints: list[tuple[int, Address, int]], block: int, timestamp: int, tx_hash: str
    ) -> None:
        """Mints of a transaction that no ``PointsIssued`` accounts for."""
        for log_index, member, amount in mints:
            self.records.append(
                TokenMovement(
                    block,
                    log_index,
                    timestamp,
                    tx_hash,
                    "token",
                    "token_mint",
                    ZERO_ADDRESS,
                    member,
                    amount,
                )
            )

    def _generic(
        self,
        log: dict[str, Any],
        block: int,
        log_index: int,
        timestamp: int,
        tx_hash: str,
        contract: str,
    ) -> list[Record]:
        topics: list[str] = log["topics"]
        event = self.events.get(topics[0]) if topics else None
        if event is None:
            return [
                UnknownLog(
                    block,
                    log_index,
                    timestamp,
                    tx_hash,
                    contract,
                    "unknown",
                    tuple(topics),
                    log["data"],
                )
            ]
        try:
            args = _decode_event(event, topics, log["data"])
        except Exception:
            return [
                UnknownLog(
                    block,
                    log_index,
                    timestamp,
                    tx_hash,
                    contract,
                    "undecodable_" + _snake(event.name),
                    tuple(topics),
                    log["data"],
                )
            ]
        return _typed(event.name, args, (block, log_index, timestamp, tx_hash, contract))


def decode_logs(
    contracts: Contracts, logs: list[dict[str, Any]], times: dict[int, int] | None = None
) -> list[Record]:
    """Decode raw ``eth_getLogs`` results of whole blocks (``times``: block -> timestamp,
    needed when the logs carry no ``blockTimestamp``)."""
    decoder = _Decoder(contracts)
    decoder.decode_page(logs, times or {})
    return decoder.records


def _order(record: Record) -> tuple[int, int]:
    return record.block, record.log_index


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _decode_event(event: EventAbi, topics: list[str], data: str) -> dict[str, Any]:
    args: dict[str, Any] = {}
    indexed_topics = iter(topics[1:])
    data_types = [t for t, ix in zip(event.types, event.indexed, strict=True) if not ix]
    data_values = iter(abi_decode(data_types, bytes.fromhex(data[2:])) if data_types else ())
    for name, kind, indexed in zip(event.names, event.types, event.indexed, strict=True):
        if indexed:
            topic = bytes.fromhex(next(indexed_topics)[2:])
            dynamic = kind in ("string", "bytes") or kind.endswith("]") or kind.startswith("(")
            args[name] = "0x" + topic.hex() if dynamic else _plain(abi_decode([kind], topic)[0])
        else:
            args[name] = _plain(next(data_values))
    return args


def _typed(name: str, a: dict[str, Any], head: tuple[int, int, int, str, str]) -> list[Record]:
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
        return [
            RuleSetPublication(
                b, i, t, tx, c, kind, a["merchantId"], a["version"], a["ruleSetHash"]
            )
        ]
    if name == "TierChanged":
        kind = "tier_changed"
        return [TierChange(b, i, t, tx, c, kind, a["member"], a["oldTier"], a["newTier"])]
    if name == "BadgeAwarded":
        kind = "badge_awarded"
        return [BadgeAward(b, i, t, tx, c, kind, a["merchantId"], a["member"], a["badgeId"])]
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
    return [OtherEvent(b, i, t, tx, c, _snake(name), name, a)]


# ================================================================ chain state


@dataclass(frozen=True)
class MerchantCounters:
    """The hub's ``merchant(id)`` view at a block."""

    merchant: int
    signer: Address
    status: str
    cap_per_period: int
    rule_version: int
    issued: int
    redeemed: int
    clawed_back: int


@dataclass(frozen=True)
class ChainState:
    """What the contracts themselves say at ``block`` (eth_call), to check the logs against."""

    block: int
    total_supply: int
    merchants: dict[int, MerchantCounters]
    paused: bool
    point_value_micros: int
    currency: str


def _selector(signature: str) -> bytes:
    return function_signature_to_4byte_selector(signature)


def chain_state_at(rpc: Rpc, contracts: Contracts, block: int) -> ChainState:
    """Read total supply, every merchant's counters and the hub's settings at ``block``."""
    tag = hex(block)

    def call(to: str, data: bytes) -> tuple[str, list[Any]]:
        return "eth_call", [{"to": to, "data": "0x" + data.hex()}, tag]

    head = rpc.batch(
        [
            call(contracts.token, _selector("totalSupply()")),
            call(contracts.hub, _selector("merchantCount()")),
            call(contracts.hub, _selector("paused()")),
            call(contracts.hub, _selector("pointValueMicros()")),
            call(contracts.hub, _selector("valueCurrency()")),
        ]
    )
    raw = [bytes.fromhex(str(h)[2:]) for h in head]
    total_supply, count, paused, value = (int.from_bytes(r[:32], "big") for r in raw[:4])
    (currency,) = abi_decode(["string"], raw[4])
    answers = rpc.batch(
        [
            call(contracts.hub, _selector("merchant(uint32)") + m.to_bytes(32, "big"))
            for m in range(1, count + 1)
        ]
    )
    merchants: dict[int, MerchantCounters] = {}
    for merchant_id, answer in enumerate(answers, start=1):
        words = bytes.fromhex(str(answer)[2:])
        signer, status, cap, _period, _minted, version, _hash, issued, redeemed, clawed = (
            abi_decode(
                ["address", "uint8", "uint64", "uint64", "uint64", "uint64", "bytes32"]
                + ["uint128"] * 3,
                words,
            )
        )
        merchants[merchant_id] = MerchantCounters(
            merchant_id,
            str(signer).lower(),
            MERCHANT_STATUS[status] if status < len(MERCHANT_STATUS) else str(status),
            cap,
            version,
            issued,
            redeemed,
            clawed,
        )
    return ChainState(block, total_supply, merchants, bool(paused), value, str(currency))


# ================================================================ supply invariant


@dataclass(frozen=True)
class Check:
    """One equality the audit expects; ``ok`` when both sides agree."""

    name: str
    left_label: str
    left: int
    right_label: str
    right: int

    @property
    def ok(self) -> bool:
        return self.left == self.right

    def describe(self) -> str:
        sign = "==" if self.ok else "!="
        return (
            f"{self.name}: {self.left_label} {self.left:,} {sign} {self.right_label} {self.right:,}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ok": self.ok,
            "left_label": self.left_label,
            "left": self.left,
            "right_label": self.right_label,
            "right": self.right,
        }


@dataclass(frozen=True)
class SupplyReport:
    """The supply invariant at ``block``, from four independent sources."""

    block: int
    total_supply: int  # token.totalSupply() at the block
    replayed_supply: int  # Σ balances replayed from Transfer logs
    issued: int  # Σ PointsIssued.total
    redeemed: int  # Σ PointsRedeemed.amount
    clawed_back: int  # Σ PointsClawedBack.burned
    counters_net: int  # Σ over merchants of the hub's issued - redeemed - clawedBack
    holders: int  # members with a positive replayed balance
    negative_balances: dict[Address, int]
    checks: list[Check]

    @property
    def hub_net(self) -> int:
        return self.issued - self.redeemed - self.clawed_back

    @property
    def ok(self) -> bool:
        return not self.negative_balances and all(c.ok for c in self.checks)

    def mismatches(self) -> list[str]:
        found = [c.describe() for c in self.checks if not c.ok]
        found += [
            f"replayed balance of {checksum(a)} is negative ({v:,}): logs are missing"
            for a, v in sorted(self.negative_balances.items())
        ]
        return found

    def to_dict(self) -> dict[str, Any]:
        return {
            "block": self.block,
            "ok": self.ok,
            "total_supply": self.total_supply,
            "replayed_supply": self.replayed_supply,
            "issued": self.issued,
            "redeemed": self.redeemed,
            "clawed_back": self.clawed_back,
            "hub_net": self.hub_net,
            "counters_net": self.counters_net,
            "holders": self.holders,
            "negative_balances": {checksum(a): v for a, v in self.negative_balances.items()},
            "checks": [c.to_dict() for c in self.checks],
            "mismatches": self.mismatches(),
        }


def replay_balances(records: Iterable[Record]) -> dict[Address, int]:
    """Every holder's balance from the token's Transfer logs (issuances included)."""
    balances: defaultdict[Address, int] = defaultdict(int)
    for r in records:
        if isinstance(r, Issuance):
            balances[r.member] += r.amount
        elif isinstance(r, TokenMovement):
            if r.sender != ZERO_ADDRESS:
                balances[r.sender] -= r.amount
            if r.recipient != ZERO_ADDRESS:
                balances[r.recipient] += r.amount
    return dict(balances)


@dataclass
class _Totals:
    issued: int = 0
    redeemed: int = 0
    clawed_back: int = 0

    @property
    def net(self) -> int:
        return self.issued - self.redeemed - self.clawed_back


def _hub_totals(records: Iterable[Record]) -> dict[int, _Totals]:
    totals: defaultdict[int, _Totals] = defaultdict(_Totals)
    for r in records:
        if isinstance(r, IssuanceBatch):
            totals[r.merchant].issued += r.amount
        elif isinstance(r, Redemption):
            totals[r.merchant].redeemed += r.amount
        elif isinstance(r, Clawback):
            totals[r.merchant].clawed_back += r.amount
    return dict(totals)


def supply_report(records: Sequence[Record], state: ChainState) -> SupplyReport:
    """Check ``totalSupply == Σ balances == Σissued - Σredeemed - Σclawed back == Σ counters``
    (and each merchant's counters against its events) at ``state.block``."""
    records = [r for r in records if r.block <= state.block]
    balances = replay_balances(records)
    replayed = sum(balances.values())
    per_merchant = _hub_totals(records)
    issued = sum(t.issued for t in per_merchant.values())
    redeemed = sum(t.redeemed for t in per_merchant.values())
    clawed = sum(t.clawed_back for t in per_merchant.values())
    counters_net = sum(m.issued - m.redeemed - m.clawed_back for m in state.merchants.values())
    minted = burned = 0
    for r in records:
        if isinstance(r, Issuance) or (isinstance(r, TokenMovement) and r.kind == "token_mint"):
            minted += r.amount
        elif isinstance(r, TokenMovement) and r.kind == "token_burn":
            burned += r.amount
    checks = [
        Check("supply vs Transfer logs", "totalSupply", state.total_supply, "Σbalances", replayed),
        Check(
            "Transfer logs vs hub events",
            "Σbalances",
            replayed,
            "Σissued-Σredeemed-Σclawed",
            issued - redeemed - clawed,
        ),
        Check(
            "hub events vs hub counters",
            "Σissued-Σredeemed-Σclawed",
            issued - redeemed - clawed,
            "Σcounters",
            counters_net,
        ),
        Check("mints vs PointsIssued", "Σminted", minted, "ΣPointsIssued.total", issued),
        Check(
            "burns vs redemptions+clawbacks",
            "Σburned",
            burned,
            "Σredeemed+Σclawed",
            redeemed + clawed,
        ),
    ]
    for merchant_id in sorted(set(per_merchant) | set(state.merchants)):
        events = per_merchant.get(merchant_id, _Totals())
        counters = state.merchants.get(merchant_id)
        if counters is None:
            checks.append(Check(f"merchant {merchant_id} exists", "on chain", 0, "in events", 1))
            continue
        for label, logged, counted in (
            ("issued", events.issued, counters.issued),
            ("redeemed", events.redeemed, counters.redeemed),
            ("clawed back", events.clawed_back, counters.clawed_back),
        ):
            checks.append(
                Check(f"merchant {merchant_id} {label}", "events", logged, "counter", counted)
            )
    return SupplyReport(
        block=state.block,
        total_supply=state.total_supply,
        replayed_supply=replayed,
        issued=issued,
        redeemed=redeemed,
        clawed_back=clawed,
        counters_net=counters_net,
        holders=sum(1 for v in balances.values() if v > 0),
        negative_balances={a: v for a, v in balances.items() if v < 0},
        checks=checks,
    )


# ================================================================ settlement


@dataclass(frozen=True)
class MerchantSettlement:
    """A merchant's points and their value (micro-units of ``currency``) over a range."""

    merchant: int
    name: str
    issued: int
    redeemed: int
    clawed_back: int
    issued_value: int
    redeemed_value: int
    clawed_back_value: int

    @property
    def net(self) -> int:
        """Points it put into circulation in the range and that are still out."""
        return self.issued - self.redeemed - self.clawed_back

    @property
    def net_value(self) -> int:
        return self.issued_value - self.redeemed_value - self.clawed_back_value

    @property
    def position(self) -> str:
        """Issued more than was redeemed at it: it owes the network; the reverse: it is owed."""
        if self.net_value > 0:
            return "owes the network"
        if self.net_value < 0:
            return "owed by the network"
        return "even"

    def to_dict(self, currency: str) -> dict[str, Any]:
        return {
            "merchant": self.merchant,
            "name": self.name,
            "issued": self.issued,
            "redeemed": self.redeemed,
            "clawed_back": self.clawed_back,
            "net": self.net,
            "issued_value_micros": self.issued_value,
            "redeemed_value_micros": self.redeemed_value,
            "clawed_back_value_micros": self.clawed_back_value,
            "net_value_micros": self.net_value,
            "position": self.position,
            "amount": format_money(abs(self.net_value), currency),
        }


@dataclass(frozen=True)
class SettlementReport:
    from_block: int
    to_block: int
    from_time: int | None
    to_time: int | None
    currency: str
    point_value_micros: int  # in force at the end of the range
    merchants: list[MerchantSettlement]

    @property
    def outstanding(self) -> int:
        """Points issued in the range and neither redeemed nor clawed back (Σ net)."""
        return sum(m.net for m in self.merchants)

    def to_dict(self) -> dict[str, Any]:
        return {
            "from_block": self.from_block,
            "to_block": self.to_block,
            "from_time": iso_time(self.from_time) if self.from_time is not None else None,
            "to_time": iso_time(self.to_time) if self.to_time is not None else None,
            "currency": self.currency,
            "point_value_micros": self.point_value_micros,
            "outstanding": self.outstanding,
            "merchants": [m.to_dict(self.currency) for m in self.merchants],
        }


def format_money(micros: int, currency: str) -> str:
    """``12345678`` micro-units -> ``"USD 12.345678"`` trimmed to at least cents."""
    sign = "-" if micros < 0 else ""
    whole, frac = divmod(abs(micros), 1_000_000)
    digits = f"{frac:06d}".rstrip("0").ljust(2, "0")
    return f"{currency} {sign}{whole:,}.{digits}"


def settlement_report(
    records: Sequence[Record], from_block: int, to_block: int
) -> SettlementReport:
    """Per merchant issued / redeemed / clawed back / net in ``from_block .. to_block``,
    each event valued at the point value published when it happened."""
    value, currency = 0, ""
    names: dict[int, str] = {}
    rows: dict[int, list[int]] = {}
    first_time: int | None = None
    last_time: int | None = None
    for r in records:
        if r.block > to_block:
            break
        if isinstance(r, PointValueChange):
            value, currency = r.micro_units, r.currency
            continue
        if isinstance(r, MerchantChange) and r.kind == "merchant_added":
            names[r.merchant] = r.name or ""
        if r.block < from_block:
            continue
        if first_time is None:
            first_time = r.time
        last_time = r.time
        if isinstance(r, IssuanceBatch):
            row = rows.setdefault(r.merchant, [0] * 6)
            row[0] += r.amount
            row[3] += r.amount * value
        elif isinstance(r, Redemption):
            row = rows.setdefault(r.merchant, [0] * 6)
            row[1] += r.amount
            row[4] += r.amount * value
        elif isinstance(r, Clawback):
            row = rows.setdefault(r.merchant, [0] * 6)
            row[2] += r.amount
            row[5] += r.amount * value
    for merchant in names:
        rows.setdefault(merchant, [0] * 6)
    merchants = [MerchantSettlement(m, names.get(m, ""), *rows[m]) for m in sorted(rows)]
    return SettlementReport(from_block, to_block, first_time, last_time, currency, value, merchants)


# ================================================================ rule timeline


@dataclass(frozen=True)
class TimelineEntry:
    """A rule or governance change, in chain order."""

    block: int
    log_index: int
    time: int
    tx_hash: str
    kind: str
    subject: str
    description: str
    operation_id: str | None = None
    ready_at: int | None = None  # scheduled calls: earliest execution (schedule time + delay)
    status: str | None = None  # scheduled calls: executed / cancelled / pending / ready

    def to_dict(self) -> dict[str, Any]:
        return {
            "block": self.block,
            "log_index": self.log_index,
            "time": iso_time(self.time),
            "tx_hash": self.tx_hash,
            "kind": self.kind,
            "subject": self.subject,
            "description": self.description,
            "operation_id": self.operation_id,
            "ready_at": iso_time(self.ready_at) if self.ready_at is not None else None,
            "status": self.status,
        }


_TIMELINE_KINDS = frozenset(
    {
        "merchant_added",
        "merchant_status_changed",
        "merchant_cap_changed",
        "merchant_signer_changed",
        "rule_set_published",
        "point_value_changed",
        "transfer_policy_changed",
        "cap_period_changed",
        "sunset",
        "paused",
        "unpaused",
        "min_delay_changed",
        "role_granted",
        "role_revoked",
        "call_scheduled",
        "call_executed",
        "call_cancelled",
        "badge_defined",
    }
)


def rule_timeline(
    records: Sequence[Record],
    from_block: int,
    to_block: int,
    now: int | None = None,
    contracts: Contracts | None = None,
) -> list[TimelineEntry]:
    """Every rule change, timelock operation, pause and merchant change in the range.

    A scheduled call's status looks at the whole history up to ``to_block`` (executed or
    cancelled later than it was scheduled); ``now`` (the time of ``to_block``) tells
    pending operations that are ready from those still waiting.
    """
    labels = contracts.labels() if contracts else {}
    outcome: dict[str, str] = {}
    for r in records:
        if r.block > to_block:
            break
        if isinstance(r, TimelockCall) and r.kind == "call_executed":
            outcome[f"{r.operation_id}:{r.index}"] = f"executed at block {r.block}"
        elif isinstance(r, TimelockCancel):
            outcome[r.operation_id] = f"cancelled at block {r.block}"
    entries: list[TimelineEntry] = []
    for r in records:
        if r.block > to_block:
            break
        if r.block < from_block or r.kind not in _TIMELINE_KINDS:
            continue
        head = (r.block, r.log_index, r.time, r.tx_hash, r.kind)
        if isinstance(r, TimelockCall):
            target = labels.get(r.target, checksum(r.target))
            if r.kind == "call_scheduled":
                ready = r.time + (r.delay or 0)
                status = outcome.get(f"{r.operation_id}:{r.index}") or outcome.get(r.operation_id)
                if status is None:
                    status = "pending" if now is None or now < ready else "ready, not executed"
                entries.append(
                    TimelineEntry(
                        *head,
                        target,
                        f"scheduled {r.function} with a {r.delay}s delay",
                        r.operation_id,
                        ready,
                        status,
                    )
                )
            else:
                entries.append(
                    TimelineEntry(*head, target, f"executed {r.function}", r.operation_id)
                )
        elif isinstance(r, TimelockCancel):
            entries.append(
                TimelineEntry(
                    *head, "timelock", f"cancelled operation {r.operation_id}", r.operation_id
                )
            )
        else:
            subject, description = _describe_change(r)
            entries.append(TimelineEntry(*head, subject, description))
    return entries


def _describe_change(r: Record) -> tuple[str, str]:
    if isinstance(r, MerchantChange):
        subject = f"merchant {r.merchant}"
        if r.kind == "merchant_added":
            signer = checksum(r.signer) if r.signer else ""
            return subject, f"admitted {r.name!r}, signer {signer}, cap {r.cap:,} per period"
        if r.kind == "merchant_status_changed":
            return subject, f"status -> {r.status}"
        if r.kind == "merchant_cap_changed":
            return subject, f"cap -> {r.cap:,} per period"
        return subject, f"signer -> {checksum(r.signer) if r.signer else ''}"
    if isinstance(r, RuleSetPublication):
        return f"merchant {r.merchant}", f"published rule set v{r.rule_version} {r.rule_set_hash}"
    if isinstance(r, PointValueChange):
        return "hub", f"point value -> {format_money(r.micro_units, r.currency)}"
    if isinstance(r, RoleChange):
        return r.contract, f"{r.kind.replace('_', ' ')} {r.role_name} to {checksum(r.account)}"
    if isinstance(r, BadgeDefinition):
        soulbound = ", soulbound" if r.soulbound else ""
        return "badges", f"defined badge {r.badge_id} {r.name!r} (max {r.max_supply:,}{soulbound})"
    if isinstance(r, ParameterChange):
        if r.kind == "transfer_policy_changed":
            return "hub", "member transfers " + ("allowed" if r.value else "forbidden")
        if r.kind == "cap_period_changed":
            return "hub", f"cap period -> {r.value:,}s"
        if r.kind == "sunset":
            return "hub", "sunset: minting stopped for good"
        if r.kind == "min_delay_changed":
            return "timelock", f"minimum delay {r.old_value}s -> {r.value}s"
        return "hub", f"{r.kind} by {checksum(r.account) if r.account else '?'}"
    return r.contract, r.kind


# ================================================================ anomalies


@dataclass(frozen=True)
class Anomaly:
    """Something the history shows that the rules do not allow (or that needs explaining)."""

    kind: str
    message: str
    block: int | None = None
    tx_hash: str | None = None
    log_index: int | None = None
    merchant: int | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "message": self.message,
            "block": self.block,
            "tx_hash": self.tx_hash,
            "log_index": self.log_index,
            "merchant": self.merchant,
            "details": self.details,
        }


def _at(r: Record, kind: str, message: str, merchant: int | None, **details: Any) -> Anomaly:
    return Anomaly(kind, message, r.block, r.tx_hash, r.log_index, merchant, details)


def cap_anomalies(records: Iterable[Record]) -> list[Anomaly]:
    """Issuance over a merchant's cap within a cap period, recomputed as the hub does
    (period index ``time // capPeriodSeconds`` with the cap and period then in force)."""
    found: list[Anomaly] = []
    period_seconds = 0
    caps: dict[int, int] = {}
    windows: dict[int, tuple[int, int]] = {}  # merchant -> (period index, minted)
    for r in records:
        if isinstance(r, IssuanceBatch):
            cap = caps.get(r.merchant)
            if cap is None or period_seconds == 0:
                continue  # unknown merchant: reported by status_anomalies
            period = r.time // period_seconds
            current, minted = windows.get(r.merchant, (-1, 0))
            minted = (minted if current == period else 0) + r.amount
            windows[r.merchant] = (period, minted)
            if minted > cap:
                found.append(
                    _at(
                        r,
                        "cap_exceeded",
                        f"merchant {r.merchant} minted {minted:,} in cap period {period} "
                        f"({period_seconds}s), cap {cap:,}",
                        r.merchant,
                        period=period,
                        minted=minted,
                        cap=cap,
                    )
                )
        elif isinstance(r, MerchantChange) and r.cap is not None:
            caps[r.merchant] = r.cap
        elif isinstance(r, ParameterChange) and r.kind == "cap_period_changed":
            period_seconds = r.value or 0
    return found


_ACTS = {IssuanceBatch: "issuance", Redemption: "redemption", BadgeAward: "badge award"}


def status_anomalies(records: Iterable[Record]) -> list[Anomaly]:
    """Issuance, redemption and badge awards by unknown or non-active merchants, issuance
    citing a rule-set version not yet published, and minting after sunset."""
    found: list[Anomaly] = []
    status: dict[int, str] = {}
    versions: dict[int, int] = {}
    sunset = False
    for r in records:
        if isinstance(r, MerchantChange):
            if r.status is not None:
                status[r.merchant] = r.status
        elif isinstance(r, RuleSetPublication):
            versions[r.merchant] = max(versions.get(r.merchant, 0), r.rule_version)
        elif isinstance(r, ParameterChange) and r.kind == "sunset":
            sunset = True
        elif isinstance(r, IssuanceBatch | Redemption | BadgeAward):
            what = _ACTS[type(r)]
            state = status.get(r.merchant)
            if state is None:
                message = f"{what} by unknown merchant {r.merchant}"
                found.append(_at(r, "unknown_merchant", message, r.merchant))
            elif state != "active":
                message = f"{what} by merchant {r.merchant} while {state}"
                found.append(_at(r, "merchant_not_active", message, r.merchant, status=state))
            if isinstance(r, IssuanceBatch):
                published = versions.get(r.merchant, 0)
                if r.rule_version == 0 or r.rule_version > published:
                    message = (
                        f"merchant {r.merchant} issued under rule set v{r.rule_version} "
                        f"(latest published: v{published})"
                    )
                    found.append(_at(r, "unknown_rule_version", message, r.merchant))
            if sunset and not isinstance(r, Redemption):
                found.append(_at(r, "minted_after_sunset", f"{what} after sunset", r.merchant))
    return found


def sequence_anomalies(records: Iterable[Record]) -> list[Anomaly]:
    """Per merchant, issuances and clawbacks share one sequence space from 0: report
    missing ranges (gaps below the highest number used) and numbers used twice."""
    used: defaultdict[int, list[tuple[int, int, Record]]] = defaultdict(list)
    for r in records:
        if isinstance(r, IssuanceBatch) and r.count > 0:
            used[r.merchant].append((r.seq, r.seq + r.count - 1, r))
        elif isinstance(r, Clawback):
            used[r.merchant].append((r.seq, r.seq, r))
    found: list[Anomaly] = []
    for merchant in sorted(used):
        spans = sorted(used[merchant], key=lambda s: (s[0], s[1]))
        expected = 0
        for first, last, r in spans:
            if first > expected:
                found.append(
                    Anomaly(
                        "sequence_gap",
                        f"merchant {merchant} never used sequence numbers "
                        + (f"{expected}..{first - 1}" if first - 1 > expected else f"{expected}"),
                        merchant=merchant,
                        details={"first_missing": expected, "last_missing": first - 1},
                    )
                )
            elif first < expected:
                found.append(
                    _at(
                        r,
                        "sequence_reused",
                        f"merchant {merchant} used sequence numbers "
                        f"{first}..{min(last, expected - 1)} again",
                        merchant,
                        first=first,
                        last=min(last, expected - 1),
                    )
                )
            expected = max(expected, last + 1)
    return found


def clawback_anomalies(records: Iterable[Record]) -> list[Anomaly]:
    """Clawbacks whose original sequence number was never issued (before them), that burn
    from another member than the one the original event credited, or that burn, in all,
    more than the original event issued."""
    records = list(records)
    issued: defaultdict[int, list[tuple[int, int]]] = defaultdict(list)  # merchant -> ranges
    clawbacks: list[Clawback] = []
    for r in records:
        if isinstance(r, IssuanceBatch) and r.count > 0:
            issued[r.merchant].append((r.seq, r.seq + r.count - 1))
        elif isinstance(r, Clawback):
            ranges = issued.get(r.merchant, [])
            if not any(a <= r.original_seq <= b for a, b in ranges):
                clawbacks.append(r)
    found = [
        _at(
            r,
            "clawback_unknown_seq",
            f"merchant {r.merchant} clawed back {r.amount:,} from {checksum(r.member)} for event "
            f"{r.original_seq}, which it never issued",
            r.merchant,
            original_seq=r.original_seq,
        )
        for r in clawbacks
    ]
    wanted: defaultdict[tuple[int, int], list[Clawback]] = defaultdict(list)
    for r in records:
        if isinstance(r, Clawback):
            wanted[(r.merchant, r.original_seq)].append(r)
    originals = {
        (r.merchant, r.seq): r
        for r in (records if wanted else ())
        if isinstance(r, Issuance) and (r.merchant, r.seq) in wanted
    }
    for key, claws in wanted.items():
        original = originals.get(key)
        if original is None:
            continue
        burned = 0
        for claw in claws:
            if claw.member != original.member:
                found.append(
                    _at(
                        claw,
                        "clawback_wrong_member",
                        f"merchant {key[0]} clawed back {claw.amount:,} from "
                        f"{checksum(claw.member)} for event {key[1]}, which credited "
                        f"{checksum(original.member)}",
                        key[0],
                        original_seq=key[1],
                        credited=checksum(original.member),
                    )
                )
            before, burned = burned, burned + claw.amount
            if burned > original.amount >= before:
                found.append(
                    _at(
                        claw,
                        "clawback_exceeds_issuance",
                        f"merchant {key[0]} clawed back {burned:,} in all for event {key[1]}, "
                        f"which issued {original.amount:,}",
                        key[0],
                        original_seq=key[1],
                        issued=original.amount,
                        clawed_back=burned,
                    )
                )
    return sorted(found, key=lambda a: (a.block or 0, a.log_index or 0))


def pause_anomalies(records: Iterable[Record]) -> list[Anomaly]:
    """Value that moved while the hub was paused: member transfers, issuance, redemption,
    clawback (the contracts forbid all of them)."""
    found: list[Anomaly] = []
    paused = False
    for r in records:
        if isinstance(r, ParameterChange) and r.kind in ("paused", "unpaused"):
            paused = r.kind == "paused"
        elif not paused:
            continue
        elif isinstance(r, TokenMovement) and r.kind == "token_transfer":
            message = (
                f"{r.amount:,} points moved from {checksum(r.sender)} to "
                f"{checksum(r.recipient)} while paused"
            )
            found.append(_at(r, "transfer_while_paused", message, None, amount=r.amount))
        elif isinstance(r, IssuanceBatch | Redemption | Clawback):
            message = f"{r.kind} while paused"
            found.append(_at(r, f"{r.kind}_while_paused", message, r.merchant, amount=r.amount))
    return found


def attribution_anomalies(records: Iterable[Record]) -> list[Anomaly]:
    """Token mints and burns the hub's events do not account for: mints outside any
    ``PointsIssued``, batches whose mints do not match their count or total, and
    transactions whose burns differ from their redemptions plus clawbacks."""
    found: list[Anomaly] = []
    burns: defaultdict[str, int] = defaultdict(int)
    accounted: defaultdict[str, int] = defaultdict(int)
    where: dict[str, Record] = {}
    for r in records:
        if isinstance(r, TokenMovement):
            if r.kind == "token_mint":
                message = (
                    f"{r.amount:,} points minted to {checksum(r.recipient)} without a PointsIssued"
                )
                found.append(_at(r, "unattributed_mint", message, None, amount=r.amount))
            elif r.kind == "token_burn":
                burns[r.tx_hash] += r.amount
                where.setdefault(r.tx_hash, r)
        elif isinstance(r, IssuanceBatch) and (r.minted != r.count or r.minted_total != r.amount):
            message = (
                f"PointsIssued of merchant {r.merchant} says {r.count} events / "
                f"{r.amount:,} points; the token minted {r.minted} / {r.minted_total:,}"
            )
            found.append(
                _at(
                    r,
                    "batch_mismatch",
                    message,
                    r.merchant,
                    count=r.count,
                    total=r.amount,
                    minted=r.minted,
                    minted_total=r.minted_total,
                )
            )
        elif isinstance(r, Redemption | Clawback):
            accounted[r.tx_hash] += r.amount
            where.setdefault(r.tx_hash, r)
    for tx_hash in sorted(set(burns) | set(accounted), key=lambda h: _order(where[h])):
        burned, explained = burns.get(tx_hash, 0), accounted.get(tx_hash, 0)
        if burned != explained:
            message = (
                f"tx burned {burned:,} points; its redemptions and clawbacks account for "
                f"{explained:,}"
            )
            found.append(
                _at(
                    where[tx_hash],
                    "unattributed_burn",
                    message,
                    None,
                    burned=burned,
                    accounted=explained,
                )
            )
    return found


ANOMALY_CHECKS: tuple[Callable[[Sequence[Record]], list[Anomaly]], ...] = (
    cap_anomalies,
    status_anomalies,
    sequence_anomalies,
    clawback_anomalies,
    pause_anomalies,
    attribution_anomalies,
)


def find_anomalies(records: Sequence[Record]) -> list[Anomaly]:
    """Every anomaly of the history (records in chain order), in chain order."""
    found = [a for check in ANOMALY_CHECKS for a in check(records)]
    return sorted(found, key=lambda a: (a.block if a.block is not None else -1, a.log_index or 0))


# ================================================================ the report


@dataclass(frozen=True)
class AuditReport:
    contracts: Contracts
    from_block: int
    to_block: int
    supply: SupplyReport
    settlement: SettlementReport
    timeline: list[TimelineEntry]
    anomalies: list[Anomaly]
    record_counts: dict[str, int]
    log_count: int

    @property
    def ok(self) -> bool:
        return self.supply.ok and not self.anomalies

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "network": self.contracts.to_dict(),
            "range": {"from_block": self.from_block, "to_block": self.to_block},
            "supply": self.supply.to_dict(),
            "settlement": self.settlement.to_dict(),
            "timeline": [e.to_dict() for e in self.timeline],
            "anomalies": [a.to_dict() for a in self.anomalies],
            "records": {"logs": self.log_count, "by_kind": self.record_counts},
        }


def build_report(
    history: History,
    state: ChainState,
    from_block: int | None = None,
    to_block: int | None = None,
) -> AuditReport:
    """All reports: the supply invariant and anomalies over the whole history up to the
    state's block; settlement and timeline over ``from_block .. to_block``."""
    start = history.from_block if from_block is None else from_block
    end = history.to_block if to_block is None else to_block
    records = history.records
    counts: defaultdict[str, int] = defaultdict(int)
    for r in records:
        if start <= r.block <= end:
            counts[r.kind] += 1
    return AuditReport(
        contracts=history.contracts,
        from_block=start,
        to_block=end,
        supply=supply_report(records, state),
        settlement=settlement_report(records, start, end),
        timeline=rule_timeline(records, start, end, history.to_time, history.contracts),
        anomalies=find_anomalies(records),
        record_counts=dict(sorted(counts.items())),
        log_count=history.log_count,
    )


T = TypeVar("T", bound=Record)


def of_kind(records: Iterable[Record], record_type: type[T]) -> list[T]:
    """The records of one type, e.g. ``of_kind(history.records, Issuance)``."""
    return [r for r in records if type(r) is record_type]
