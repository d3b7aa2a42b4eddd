"""Wallet test kit: a gateway served for real (uvicorn on a free port, worker running),
the member-side signing helpers the API tests use, and the pieces the browser tests share
(Debian's Chromium launched through playwright with fixed flags, a watched phone-sized page).

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
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page


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


def start_live_gateway(tmp: Path, **settings: Any) -> Iterator[LiveGateway]:
    """A network from the one launcher (:class:`bench.stack.Stack`), served by uvicorn;
    ``settings`` override ``TEST_SETTINGS``."""
    http_port = free_port()
    url = f"http://127.0.0.1:{http_port}"
    with Stack(tmp, settings={**TEST_SETTINGS, "public_url": url, **settings}) as stack:
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


# ---------------------------------------------------------------------- browser side

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SHOTS = Path(__file__).resolve().parents[2] / "test-output" / "wallet"
PASSWORD = "violet-harbour-42"
PHONE_WIDTH, PHONE_HEIGHT = 390, 844


def launch_browser() -> Iterator[Browser]:
    """Debian's Chromium through playwright (never a downloaded browser), for a fixture."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def shot(page: Page, name: str) -> None:
    """A full-page screenshot, without the transient status toast."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.locator("#status").evaluate(
        "el => { el.style.transition = 'none'; el.classList.remove('visible'); }"
    )
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


@dataclass
class Watched:
    """A phone-sized page whose script errors and off-site requests are recorded."""

    page: Page
    errors: list[str]
    foreign: list[str]

    def assert_clean(self) -> None:
        assert self.errors == []
        assert self.foreign == [], "the page must load nothing from other hosts"


def open_page(
    browser: Browser, gw: LiveGateway, locale: str = "en-US", origin: str | None = None
) -> Watched:
    """A new phone-sized page; ``origin`` is where the gateway is reached (its URL unless
    told, e.g. ``http://localhost:<port>`` where WebAuthn needs a domain, not an IP)."""
    context = browser.new_context(
        viewport={"width": PHONE_WIDTH, "height": PHONE_HEIGHT}, locale=locale
    )
    page = context.new_page()
    watched = Watched(page, [], [])
    local = (origin or gw.url, "data:", "blob:")
    page.on("pageerror", lambda error: watched.errors.append(str(error)))
    page.on(
        "request",
        lambda request: (
            None if request.url.startswith(local) else watched.foreign.append(request.url)
        ),
    )
    return watched


def purchase(customer: str, order: str, amount: str, currency: str) -> dict[str, object]:
    return {
        "type": "purchase",
        "customer_id": customer,
        "occurred_at": datetime.now(UTC).isoformat(),
        "order": {
            "id": order,
            "amount": amount,
            "currency": currency,
            "items": [{"sku": "scarf", "category": "apparel", "amount": amount, "eco": True}],
        },
    }
