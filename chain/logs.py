"""The one paged ``eth_getLogs`` reader, over any JSON-RPC client.

:class:`LogPager` reads a block range page by page: the block span of the next
request is scaled from the log density of the last one (growing at most eightfold,
from ``initial_span`` up to ``max_span``), and halved, or cut to the range a provider
suggests, when the provider refuses a request as too large ("too many results",
block-range caps, oversized responses). Logs stay the node's raw JSON, ready for
:mod:`chain.decode`.

The client is anything with ``call(method, params)``: the audit's own
:class:`chain.jsonrpc.Rpc`, or a web3 connection through :class:`Web3Rpc`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol, cast

from chain.errors import AuditError, RpcError, RpcTransportError

if TYPE_CHECKING:  # the indexer reads logs through chain.jsonrpc and never loads web3
    from web3 import Web3
    from web3.types import RPCEndpoint

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


def is_limit_error(exc: Exception, *, transport_errors: bool = True) -> bool:
    """Whether a failed ``eth_getLogs`` should be retried over a smaller block range.

    With ``transport_errors`` a transport failure counts too: oversized responses
    show up as timeouts, 413s and dropped connections. A reader that polls a node
    it expects to answer (the indexer) passes False, so a node that is down fails
    the page at once instead of halving it to a single block first.
    """
    if isinstance(exc, RpcTransportError):
        return transport_errors
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


class JsonRpc(Protocol):
    """A JSON-RPC client: ``result`` of one call, or :class:`RpcError`."""

    def call(self, method: str, params: Sequence[Any] = ()) -> Any: ...


class Web3Rpc:
    """A web3 connection as a raw :class:`JsonRpc` (no result formatting)."""

    def __init__(self, w3: Web3) -> None:
        self.w3 = w3

    def call(self, method: str, params: Sequence[Any] = ()) -> Any:
        body = self.w3.provider.make_request(cast("RPCEndpoint", method), list(params))
        if "error" in body:
            error: Any = body["error"] or {}
            if isinstance(error, str):
                raise RpcError(method, None, error)
            raise RpcError(method, error.get("code"), str(error.get("message")), error.get("data"))
        return body.get("result")

    def block_number(self) -> int:
        return int(self.w3.eth.block_number)


class LogPager:
    """Reads ``eth_getLogs`` over block ranges of adaptive size (see the module docstring)."""

    def __init__(
        self,
        rpc: JsonRpc,
        *,
        target_logs: int = 25_000,
        initial_span: int = 32,
        max_span: int = 500_000,
        shrink_on_transport_error: bool = True,
    ) -> None:
        self.rpc = rpc
        self.shrink_on_transport_error = shrink_on_transport_error
        self.target_logs = target_logs
        self.initial_span = initial_span
        self.max_span = max_span
        self.requests = 0  # eth_getLogs requests made, for benchmarks and tests

    def pages(
        self,
        addresses: list[str],
        first: int,
        last: int,
        topics: list[Any] | None = None,
        *,
        span: int | None = None,
    ) -> Iterator[tuple[int, int, list[dict[str, Any]]]]:
        """``(from, to, logs)`` for consecutive block ranges covering ``first .. last``,
        the first one ``span`` blocks wide (default ``initial_span``)."""
        span = self.initial_span if span is None else span
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
                limit = is_limit_error(exc, transport_errors=self.shrink_on_transport_error)
                if not limit or end == block:
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
            span = self.next_span(end - block + 1, len(logs))
            block = end + 1

    def next_span(self, covered: int, n: int) -> int:
        """The block span to ask for next, after ``covered`` blocks held ``n`` logs:
        scaled towards ``target_logs``, growing at most eightfold, within ``max_span``."""
        if n > self.target_logs:
            return max(1, covered * self.target_logs // n)
        if n < self.target_logs // 2:
            grown = covered * 8 if n == 0 else covered * self.target_logs // n
            return max(1, min(self.max_span, covered * 8, grown))
        return covered

    def read(
        self, addresses: list[str], first: int, last: int, topics: list[Any] | None = None
    ) -> list[dict[str, Any]]:
        """Every log of ``addresses`` (matching ``topics``) in blocks ``first .. last``."""
        return [log for _s, _e, logs in self.pages(addresses, first, last, topics) for log in logs]


def read_logs(
    w3: Web3,
    addresses: Sequence[str],
    first: int = 0,
    last: int | None = None,
    topics: list[Any] | None = None,
) -> list[dict[str, Any]]:
    """Every raw log of ``addresses`` (matching ``topics``) from ``first`` to ``last``
    (default: the latest block), read through web3's connection."""
    rpc = Web3Rpc(w3)
    end = rpc.block_number() if last is None else last
    return LogPager(rpc).read([a.lower() for a in addresses], first, end, topics)
