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
    #: Share of the error faults (nonce_too_low, already_known, underpriced) that
    #: are answered after the transaction was forwarded to the node.
    after_forward: float = 0.5
    hang: float = 2.0  # seconds a "timeout" holds the request
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

    def after_forward(self) -> bool:
        with self._rng_lock:
            return self._rng.random() < self.rates.after_forward

    def forward(self, body: bytes) -> tuple[int, bytes]:
        response = self._client.post(
            self.upstream, content=body, headers={"Content-Type": "application/json"}
        )
        return response.status_code, response.content


def _method_of(payload: Any) -> str | None:
    if isinstance(payload, dict):
        method = payload.get("method")
        return method if isinstance(method, str) else None
    return None  # a batch: only whole-request faults apply


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
            error = {
                "jsonrpc": "2.0",
                "id": request_id,
                "error": {"code": code, "message": message},
            }
            self._answer(200, json.dumps(error).encode())

        def _abort(self) -> None:
            """Close the connection without a byte of answer."""
            self.close_connection = True

    return Handler
