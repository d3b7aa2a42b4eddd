"""A JSON-RPC proxy that injects the faults real nodes and providers produce.

Put it between a client (the gateway's worker) and a node (anvil) to test that
transient failures are retried, permanent ones given up with a reason, and
that nothing is ever sent twice.  Each request draws one fault (or none) at
the configured rates; a seed makes a run repeatable.

Faults on any request:

- ``timeout``: hold the request for ``hang`` seconds, then close the connection
  without an answer (what a client sees when a provider stalls);
- ``drop``: close the connection at once, without an answer;
- ``rate_limit``: answer HTTP 429 (as rate-limited providers do).

Faults on ``eth_sendRawTransaction`` only, each either *before* the node sees
the transaction or *after* it was forwarded (the node has it, the client
hears otherwise: the dangerous case for double sends):

- ``drop_after``: forward, then close the connection without the answer;
- ``nonce_too_low``, ``already_known``, ``underpriced``: answer the JSON-RPC
  errors ``nonce too low``, ``already known`` and ``replacement transaction
  underpriced``;
- ``refuse``: a permanent refusal (``refuse_message``, by default an invalid
  transaction type), never forwarded.

Inside a JSON-RPC batch each ``eth_sendRawTransaction`` item draws a fault of its own
(counted as ``item_<name>``), the batch as a whole the faults on any request: the
send faults above, answered for that item alone (``drop_after``: forwarded, its answer
left out of the batch answer), and

- ``item_drop``: the item is neither forwarded nor answered (the batch answer lacks it);
- ``item_delay``: the item is forwarded ``hang`` seconds after the rest of its batch
  (the node sees its nonce after later ones), then answered with them.

``FaultProxy`` is a context manager running a threaded HTTP server on a free
port; ``stats`` counts what was injected.
"""

from __future__ import annotations

import contextlib
import json
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

import httpx

from chain.devnet import StartStop

#: Faults that can hit any request.
ANY_FAULTS = ("timeout", "drop", "rate_limit")
#: Faults that only hit eth_sendRawTransaction.
SEND_FAULTS = ("drop_after", "nonce_too_low", "already_known", "underpriced", "refuse")
#: Faults that only hit one eth_sendRawTransaction item of a JSON-RPC batch.
ITEM_FAULTS = ("item_drop", "item_delay")
#: JSON-RPC error messages, as geth and anvil word them.
MESSAGES = {
    "nonce_too_low": "nonce too low",
    "already_known": "already known",
    "underpriced": "replacement transaction underpriced",
}


@dataclass(frozen=True)
class FaultRates:
    """Probability of each fault per request (any request, or eth_sendRawTransaction)."""

    timeout: float = 0.0
    drop: float = 0.0
    rate_limit: float = 0.0
    drop_after: float = 0.0
    nonce_too_low: float = 0.0
    already_known: float = 0.0
    underpriced: float = 0.0
    refuse: float = 0.0
    item_drop: float = 0.0
    item_delay: float = 0.0
    #: Share of the error faults (nonce_too_low, already_known, underpriced) that
    #: are answered after the transaction was forwarded to the node.
    after_forward: float = 0.5
    hang: float = 2.0  # seconds a "timeout" holds the request (and an "item_delay" its item)
    refuse_message: str = "transaction type not supported"

    def total(self, names: tuple[str, ...]) -> float:
        return sum(float(getattr(self, name)) for name in names)


@dataclass
class FaultStats:
    """What the proxy did, by fault name (``forwarded`` for clean requests)."""

    counts: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, name: str) -> None:
        with self.lock:
            self.counts[name] += 1


class FaultProxy(StartStop):
    """A fault-injecting HTTP JSON-RPC proxy in front of ``upstream``."""

    def __init__(
        self,
        upstream: str,
        rates: FaultRates,
        *,
        seed: int = 0,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.upstream = upstream
        self.rates = rates
        self.stats = FaultStats()
        self.enabled = True
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()
        self._client = httpx.Client(timeout=60, trust_env=False)
        self._server = ThreadingHTTPServer((host, port), _handler(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    # ------------------------------------------------------------ lifecycle

    def start(self) -> Self:
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="faultproxy", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._client.close()
        if self._thread is not None:
            self._thread.join(5)

    # ------------------------------------------------------------ faults

    def draw(self, method: str | None) -> str | None:
        """The fault for one request to ``method`` (None: forward it untouched)."""
        if not self.enabled:
            return None
        names = ANY_FAULTS + (SEND_FAULTS if method == "eth_sendRawTransaction" else ())
        with self._rng_lock:
            roll = self._rng.random()
        acc = 0.0
        for name in names:
            acc += float(getattr(self.rates, name))
            if roll < acc:
                return name
        return None

    def draw_item(self, method: object) -> str | None:
        """The fault for one item of a JSON-RPC batch (None: forward it untouched); only
        ``eth_sendRawTransaction`` items draw one."""
        if not self.enabled or method != "eth_sendRawTransaction":
            return None
        with self._rng_lock:
            roll = self._rng.random()
        acc = 0.0
        for name in SEND_FAULTS + ITEM_FAULTS:
            acc += float(getattr(self.rates, name))
            if roll < acc:
                return name
        return None

    def answer_batch(self, items: list[Any]) -> list[Any]:
        """Forward the batch ``items`` with each item's fault applied; the batch answer
        (in the items' order, without the answers a fault leaves out)."""
        forward: list[Any] = []
        delayed: list[Any] = []
        ours: dict[Any, Any] = {}  # id -> the answer the proxy gives instead of the node's
        left_out: set[Any] = set()
        for item in items:
            request_id = item.get("id") if isinstance(item, dict) else None
            method = item.get("method") if isinstance(item, dict) else None
            fault = self.draw_item(method)
            named = fault if fault is None or fault in ITEM_FAULTS else f"item_{fault}"
            self.stats.add(named or "item_forwarded")
            if fault is None:
                forward.append(item)
            elif fault == "item_drop":
                left_out.add(request_id)
            elif fault == "item_delay":
                delayed.append(item)
            elif fault == "drop_after":
                forward.append(item)
                left_out.add(request_id)
            elif fault == "refuse":
                ours[request_id] = _error(request_id, -32003, self.rates.refuse_message)
            else:  # nonce_too_low, already_known, underpriced
                if self.after_forward():
                    self.stats.add(f"item_{fault}_after_forward")
                    forward.append(item)
                ours[request_id] = _error(request_id, -32000, MESSAGES[fault])
        answers: dict[Any, Any] = {}
        for part, wait in ((forward, 0.0), (delayed, self.rates.hang)):
            if not part:
                continue
            time.sleep(wait)
            status, content = self.forward(json.dumps(part).encode())
            if status == 200:
                for answer in json.loads(content):
                    answers[answer.get("id")] = answer
        answers.update(ours)
        ordered = [item.get("id") for item in items if isinstance(item, dict)]
        return [answers[i] for i in ordered if i in answers and i not in left_out]

    def after_forward(self) -> bool:
        with self._rng_lock:
            return self._rng.random() < self.rates.after_forward

    def forward(self, body: bytes) -> tuple[int, bytes]:
        response = self._client.post(
            self.upstream, content=body, headers={"Content-Type": "application/json"}
        )
        return response.status_code, response.content


def _error(request_id: Any, code: int, message: str) -> dict[str, Any]:
    """A JSON-RPC error answer."""
    return {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}}


def _method_of(payload: Any) -> str | None:
    if isinstance(payload, dict):
        method = payload.get("method")
        return method if isinstance(method, str) else None
    return None  # a batch: whole-request faults here, its items' own in answer_batch


def _handler(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return  # quiet

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                payload = json.loads(body)
            except ValueError:
                payload = None
            method = _method_of(payload)
            fault = proxy.draw(method)
            proxy.stats.add(fault or "forwarded")
            if fault == "timeout":
                time.sleep(proxy.rates.hang)
                self._abort()
                return
            if fault == "drop":
                self._abort()
                return
            if fault == "rate_limit":
                self._answer(429, b'{"error": "Too Many Requests"}')
                return
            if isinstance(payload, list):
                try:
                    answer = proxy.answer_batch(payload)
                except httpx.HTTPError:
                    self._answer(502, b'{"error": "upstream unreachable"}')
                    return
                self._answer(200, json.dumps(answer).encode())
                return
            if fault == "refuse":
                self._rpc_error(payload, -32003, proxy.rates.refuse_message)
                return
            if fault in MESSAGES:
                if proxy.after_forward():
                    proxy.stats.add(f"{fault}_after_forward")
                    with contextlib.suppress(httpx.HTTPError):
                        proxy.forward(body)
                self._rpc_error(payload, -32000, MESSAGES[fault])
                return
            try:
                status, content = proxy.forward(body)
            except httpx.HTTPError:
                self._answer(502, b'{"error": "upstream unreachable"}')
                return
            if fault == "drop_after":
                self._abort()
                return
            self._answer(status, content)

        def _answer(self, status: int, content: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        def _rpc_error(self, payload: Any, code: int, message: str) -> None:
            request_id = payload.get("id") if isinstance(payload, dict) else None
            self._answer(200, json.dumps(_error(request_id, code, message)).encode())

        def _abort(self) -> None:
            """Close the connection without a byte of answer."""
            self.close_connection = True

    return Handler
