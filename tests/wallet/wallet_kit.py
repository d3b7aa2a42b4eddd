"""Wallet test kit: a gateway served for real (uvicorn on a free port, worker running),
and the member-side signing helpers the API tests use.

``start_live_gateway`` runs what ``pointsnet serve`` runs, against a real anvil:
the browser test talks to it over HTTP like a member's phone would.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from eth_account import Account
from eth_account.messages import encode_defunct
from factories import TEST_SETTINGS, outbox_busy

from bench.stack import Stack
from chain import signing
from chain.devnet import free_port
from gateway.app import create_app
from gateway.context import GatewayContext
from gateway.services.merchants import NewMerchant


@dataclass
class LiveGateway:
    """A gateway answering on ``url`` with its outbox worker running, and two merchants."""

    url: str
    context: GatewayContext
    merchants: list[NewMerchant]

    def merchant_headers(self, merchant: int = 0, key: str | None = None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.merchants[merchant].api_key}"}
        if key is not None:
            headers["Idempotency-Key"] = key
        return headers

    def wait_idle(self, timeout: float = 30.0) -> None:
        """Wait until the worker has no op pending or in flight."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not outbox_busy(self.context):
                return
            time.sleep(0.1)
        raise AssertionError("the outbox worker did not finish in time")


def start_live_gateway(tmp: Path) -> Iterator[LiveGateway]:
    """A network from the one launcher (:class:`bench.stack.Stack`), served by uvicorn."""
    http_port = free_port()
    url = f"http://127.0.0.1:{http_port}"
    with Stack(tmp, settings={**TEST_SETTINGS, "public_url": url}) as stack:
        assert stack.context is not None
        app = create_app(stack.context, run_background=True)
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=http_port, log_level="warning", ws="none")
        )
        thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
        thread.start()
        try:
            _wait_until_serving(url)
            live = LiveGateway(url, stack.context, stack.merchants)
            live.wait_idle()  # rule sets published, badges defined
            yield live
        finally:
            server.should_exit = True
            thread.join(15)


def _wait_until_serving(url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"the gateway did not start serving at {url}")


# ---------------------------------------------------------------------- member side


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def siwe_message(
    address: str,
    nonce: str,
    *,
    domain: str = "testserver",
    chain_id: int = 31337,
    issued_at: datetime | None = None,
    expires_in: timedelta | None = timedelta(minutes=5),
    statement: str | None = "Sign in to the pointsnet wallet.",
) -> str:
    """An EIP-4361 message as the wallet page builds it."""
    issued = issued_at or datetime.now(UTC)
    lines = [f"{domain} wants you to sign in with your Ethereum account:", address, ""]
    lines += [statement, ""] if statement else [""]
    lines += [
        f"URI: http://{domain}/wallet/",
        "Version: 1",
        f"Chain ID: {chain_id}",
        f"Nonce: {nonce}",
        f"Issued At: {iso(issued)}",
    ]
    if expires_in is not None:
        lines.append(f"Expiration Time: {iso(issued + expires_in)}")
    return "\n".join(lines)


def personal_sign(key: str, text: str) -> str:
    return "0x" + bytes(Account.sign_message(encode_defunct(text=text), key).signature).hex()


def typed_sign(key: str, kind: str, chain_id: int, hub: str, message: dict[str, Any]) -> str:
    return "0x" + signing.sign(key, kind, chain_id, hub, message).hex()
