"""Raw JSON-RPC for the bench's relayer baseline: batch requests built by hand, sent over
one keep-alive HTTP/1.1 connection with ``http.client`` — no web3, no middleware, no
retries: the shortest path from a Python process to a node."""

from __future__ import annotations

import http.client
import json
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit


def batch_body(method: str, params: Sequence[Sequence[Any]], first_id: int) -> bytes:
    """One JSON-RPC batch request: ``method`` once per ``params`` entry, ids from ``first_id``."""
    return json.dumps(
        [
            {"jsonrpc": "2.0", "id": first_id + i, "method": method, "params": list(p)}
            for i, p in enumerate(params)
        ],
        separators=(",", ":"),
    ).encode()


def batch_results(body: Any, first_id: int, count: int) -> list[Any]:
    """The results of a batch answer in request order; raises on any error object."""
    if not isinstance(body, list):
        raise RuntimeError(f"not a batch answer: {str(body)[:200]}")
    by_id = {item.get("id"): item for item in body if isinstance(item, dict)}
    results = []
    for i in range(count):
        item = by_id.get(first_id + i)
        if item is None:
            raise RuntimeError(f"id {first_id + i} missing from the batch answer")
        if "error" in item:
            raise RuntimeError(f"JSON-RPC error: {item['error']}")
        results.append(item.get("result"))
    return results


class Connection:
    """Raw JSON-RPC over one keep-alive HTTP/1.1 connection (not thread-safe)."""

    def __init__(self, url: str, timeout: float = 120.0) -> None:
        parts = urlsplit(url)
        self.path = parts.path or "/"
        self.http = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80,
                                               timeout=timeout)  # fmt: skip
        self.ids = 0

    def _post(self, body: bytes) -> Any:
        self.http.request("POST", self.path, body, {"Content-Type": "application/json"})
        response = self.http.getresponse()
        data = response.read()
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}: {data[:200]!r}")
        return json.loads(data)

    def call(self, method: str, params: Sequence[Any] = ()) -> Any:
        self.ids += 1
        body = self._post(json.dumps({"jsonrpc": "2.0", "id": self.ids, "method": method,
                                      "params": list(params)}).encode())  # fmt: skip
        if "error" in body:
            raise RuntimeError(f"{method}: {body['error']}")
        return body.get("result")

    def batch(self, method: str, params: Sequence[Sequence[Any]]) -> list[Any]:
        first = self.ids + 1
        self.ids += len(params)
        return batch_results(self._post(batch_body(method, params, first)), first, len(params))

    def close(self) -> None:
        self.http.close()
