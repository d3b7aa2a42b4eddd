"""One JSON-RPC client for the whole project: single calls and batches over HTTP, raw JSON.

Raw results (hex strings, plain dicts) are what makes replaying a million logs (the
audit) and following thousands of receipts (the outbox) fast: nothing is converted
that the caller does not need, and no web3 middleware runs on the way. Transport
failures (connection, timeout, 429 and 5xx) are retried with backoff, then raised as
:class:`~chain.errors.RpcTransportError`; error objects as :class:`~chain.errors.RpcError`
with the node's ``code``, so callers classify errors by code, not by message text
(:func:`classify`; by message only where nodes give no code of their own).

The raw results the outbox's hot path reads are parsed here too: :class:`Receipt` and
:class:`Head` (the latest block).
"""

from __future__ import annotations

import json
import threading
import time as _time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import requests

from chain.errors import (
    RpcError,
    RpcTransportError,
    TransactionError,
    TransientTransactionError,
)

#: What nodes say when they already have a transaction (geth, anvil, others).
ALREADY_KNOWN = ("already known", "known transaction", "already imported")
#: RPC error fragments that mean "try again" rather than "this will never work".
_TRANSIENT_FRAGMENTS = (
    "nonce too low",
    "nonce too high",
    "replacement transaction underpriced",
    "transaction underpriced",
    "already known",
    "known transaction",
    "timeout",
    "timed out",
    "too many requests",
    "429",
    "rate limit",
    "connection",
    "temporarily unavailable",
    "max fee per gas less than block base fee",
    # The operator's key ran dry: nothing is wrong with the transaction, events wait
    # for the top-up rather than fail.
    "insufficient funds",
)


#: JSON-RPC error codes (EIP-1474) that say a request can never succeed as sent: parse
#: error, invalid request, no such method, invalid params (e.g. undecodable raw bytes).
PERMANENT_CODES = frozenset({-32700, -32600, -32601, -32602})
#: EIP-1474's "limit exceeded" (rate limits): worth retrying.
TRANSIENT_CODES = frozenset({-32005})


def is_transient_message(message: str) -> bool:
    """Whether an RPC error message describes a failure worth retrying."""
    lowered = message.lower()
    return any(fragment in lowered for fragment in _TRANSIENT_FRAGMENTS)


@dataclass(frozen=True)
class Receipt:
    """A mined transaction's receipt as the node sends it, the fields the outbox reads
    converted; ``logs`` stay raw (hex strings) for :func:`chain.decode.decode_logs`."""

    tx_hash: str
    block: int
    gas_used: int
    ok: bool
    logs: list[dict[str, Any]]

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Receipt:
        return cls(
            tx_hash=str(raw["transactionHash"]),
            block=int(raw["blockNumber"], 16),
            gas_used=int(raw["gasUsed"], 16),
            ok=int(raw["status"], 16) == 1,
            logs=list(raw.get("logs") or []),
        )


@dataclass(frozen=True)
class Head:
    """The latest block as the fees and batch sizes need it."""

    number: int
    base_fee: int
    gas_limit: int
    timestamp: int


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
            raise RpcError(method, None, f"unexpected answer {str(body)[:200]}")
        if "error" in body:
            error = body["error"] or {}
            raise RpcError(method, error.get("code"), str(error.get("message")), error.get("data"))
        return body.get("result")

    def batch(self, calls: Sequence[tuple[str, Sequence[Any]]], size: int = 250) -> list[Any]:
        """Results of ``calls`` in order, sent as JSON-RPC batches of ``size``; the first
        error answered raises :class:`RpcError`.

        A provider that refuses batches (or one this size) gets smaller ones, down to
        single calls.
        """
        results = self.batch_outcomes(calls, size)
        for outcome in results:
            if isinstance(outcome, RpcError):
                raise outcome
        return results

    def batch_outcomes(
        self, calls: Sequence[tuple[str, Sequence[Any]]], size: int = 250
    ) -> list[Any | RpcError]:
        """Each call's result, or its :class:`RpcError`, in order (sent as :meth:`batch`
        sends them): one refused call does not hide what the others did, which is what
        a batch of ``eth_sendRawTransaction`` needs."""
        results: list[Any | RpcError] = []
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
                    raise RpcError(chunk[0][0], None, f"unexpected answer {str(body)[:200]}")
                size = max(1, size // 4)
                continue
            by_id = {item.get("id"): item for item in body if isinstance(item, dict)}
            for i, (method, _params) in enumerate(chunk):
                item = by_id.get(first_id + i)
                if item is None:
                    results.append(RpcError(method, None, "missing from the batch answer"))
                elif "error" in item:
                    error = item["error"] or {}
                    results.append(
                        RpcError(
                            method, error.get("code"), str(error.get("message")), error.get("data")
                        )
                    )
                else:
                    results.append(item.get("result"))
            start += len(chunk)
        return results

    def block_number(self) -> int:
        return int(self.call("eth_blockNumber"), 16)

    def block_timestamp(self, block: int) -> int:
        found = self.call("eth_getBlockByNumber", [hex(block), False])
        if found is None:
            raise RpcError("eth_getBlockByNumber", None, f"block {block} not found")
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


def classify(exc: BaseException) -> TransactionError:
    """Wrap an RPC or transport failure as a transient or permanent TransactionError.

    By type first (transport failures are transient), then by the node's JSON-RPC error
    code where it says enough (:data:`PERMANENT_CODES`, :data:`TRANSIENT_CODES`); geth's
    and anvil's catch-all codes (-32000, -32003) cover transient and permanent refusals
    alike, so for those only the message tells (:func:`is_transient_message`).
    """
    if isinstance(exc, TransactionError):
        return exc
    message = str(exc)
    if isinstance(exc, RpcTransportError | requests.RequestException | OSError | TimeoutError):
        return TransientTransactionError(message)
    if isinstance(exc, RpcError):
        if exc.code in PERMANENT_CODES:
            return TransactionError(message)
        if exc.code in TRANSIENT_CODES:
            return TransientTransactionError(message)
        message = exc.rpc_message
    if is_transient_message(message):
        return TransientTransactionError(str(exc))
    return TransactionError(str(exc))
