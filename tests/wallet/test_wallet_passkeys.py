"""Passkeys protect the in-browser key instead of a password (WebAuthn PRF), in real
Chromium with a virtual authenticator (CDP ``WebAuthn``), against a real gateway.

WebAuthn needs a domain as relying party, so these pages open the gateway at
``http://localhost:<port>`` rather than its ``127.0.0.1`` URL (where no passkey is offered).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from eth_account import Account
from wallet_kit import (
    CHROMIUM,
    PASSWORD,
    LiveGateway,
    Watched,
    launch_browser,
    open_page,
    purchase,
    shot,
)

pytestmark = pytest.mark.browser

if not CHROMIUM.exists():
    pytest.skip(
        "Debian's chromium is not installed (make test installs it: scripts/setup.sh --browser)",
        allow_module_level=True,
    )

from playwright.sync_api import Browser, CDPSession, Page, expect  # noqa: E402

UNLOCK_HEADING = "Unlock your wallet"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from launch_browser()


def localhost(gw: LiveGateway) -> str:
    return gw.url.replace("://127.0.0.1:", "://localhost:")


def open_on_localhost(browser: Browser, gw: LiveGateway) -> Watched:
    return open_page(browser, gw, origin=localhost(gw))


def add_authenticator(page: Page, *, prf: bool) -> tuple[CDPSession, str]:
    """A virtual platform authenticator that verifies the user (with PRF or without)."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    added = cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "hasPrf": prf,
            }
        },
    )
    return cdp, str(added["authenticatorId"])


def stored_record(page: Page) -> dict[str, Any]:
    record = page.evaluate("() => JSON.parse(localStorage.getItem('pointsnet.keystore'))")
    assert isinstance(record, dict)
    return record


def test_a_passkey_protects_the_key_and_unlocks_it(
    live_gateway: LiveGateway, browser: Browser
) -> None:
    gw = live_gateway
    watched = open_on_localhost(browser, gw)
    page = watched.page
    cdp, authenticator = add_authenticator(page, prf=True)
    page.goto(f"{localhost(gw)}/wallet/")
    page.get_by_role("button", name="Create a wallet").click()
    page.get_by_role("button", name="Use a passkey").click()
    page.get_by_role("button", name="Show recovery phrase").click(timeout=30_000)
    words = page.locator("ol.phrase li").all_inner_texts()
    phrase = " ".join(re.sub(r"^\d+\.\s*", "", word).strip() for word in words)
    assert len(phrase.split()) == 12

    # Kept encrypted with the passkey: no password keystore, nothing readable.
    record = stored_record(page)
    assert "keystore" not in record and set(record["passkey"]) == {
        "credentialId", "prfSalt", "hkdfSalt", "iv", "ciphertext",
    }  # fmt: skip
    text = json.dumps(record)
    assert all(word not in text for word in phrase.split() if len(word) > 4)
    credentials = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})
    assert [c["rpId"] for c in credentials["credentials"]] == ["localhost"]

    page.get_by_label("I have written down my recovery phrase").check()
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name="Home")).to_be_visible(timeout=15_000)
    address = page.get_by_test_id("address").inner_text().strip()
    assert address == record["address"]

    # Settings: the key is revealed after the passkey, and no password file is offered.
    page.get_by_role("link", name="Settings").click()
    expect(page.get_by_role("link", name="Download encrypted backup file")).to_have_count(0)
    expect(page.get_by_label("Password", exact=True)).to_have_count(0)
    page.get_by_role("button", name="Reveal private key and phrase").click()
    secrets = page.locator("code.secret")
    expect(secrets.first).to_have_text(re.compile(r"^0x[0-9a-f]{64}$"), timeout=30_000)
    assert Account.from_key(secrets.first.inner_text()).address == address
    assert secrets.nth(1).inner_text() == phrase
    shot(page, "13-passkey-settings")

    # Reload: the passkey unlocks the wallet (in Chinese too); no password is asked.
    page.reload()
    expect(page.get_by_role("heading", name=UNLOCK_HEADING)).to_be_visible()
    expect(page.get_by_label("Password", exact=True)).to_have_count(0)
    shot(page, "14-passkey-unlock")
    page.get_by_label("Language").select_option("zh-CN")
    page.get_by_role("button", name="使用通行密钥解锁").click()
    expect(page.get_by_role("heading", name="设置")).to_be_visible(timeout=30_000)
    page.get_by_role("link", name="首页").click()
    assert page.get_by_test_id("address").inner_text().strip() == address

    # Without its passkey the stored key stays shut.
    cdp.send("WebAuthn.clearCredentials", {"authenticatorId": authenticator})
    page.locator("#lang").select_option("en")
    page.reload()
    page.get_by_role("button", name="Unlock with passkey").click()
    expect(page.get_by_role("alert")).to_have_text(
        "The passkey request was cancelled or timed out.", timeout=30_000
    )
    expect(page.get_by_role("heading", name=UNLOCK_HEADING)).to_be_visible()
    watched.assert_clean()
    page.context.close()


def test_without_prf_the_password_stays_the_fallback_and_a_passkey_can_replace_it(
    live_gateway: LiveGateway, browser: Browser
) -> None:
    gw = live_gateway
    watched = open_on_localhost(browser, gw)
    page = watched.page
    cdp, authenticator = add_authenticator(page, prf=False)
    page.goto(f"{localhost(gw)}/wallet/")
    page.get_by_role("button", name="Create a wallet").click()
    page.get_by_role("button", name="Use a passkey").click()
    expect(page.get_by_role("alert")).to_have_text(
        "This passkey cannot protect a key in this browser. Choose a password instead."
    )
    expect(page.get_by_label("Password", exact=True)).to_be_focused()
    shot(page, "15-passkey-without-prf")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Repeat the password").fill(PASSWORD)
    page.get_by_role("button", name="Create wallet").click()
    page.get_by_label("I have written down my recovery phrase").check(timeout=30_000)
    record = stored_record(page)
    assert "keystore" in record and "passkey" not in record
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name="Home")).to_be_visible(timeout=15_000)
    address = page.get_by_test_id("address").inner_text().strip()

    # Later, with an authenticator that has PRF: Settings swaps the password for a passkey.
    cdp.send("WebAuthn.removeVirtualAuthenticator", {"authenticatorId": authenticator})
    add_authenticator(page, prf=True)
    page.get_by_role("link", name="Settings").click()
    switch = page.locator("form.passkey-switch")
    switch.get_by_label("Current password").fill(PASSWORD)
    switch.get_by_role("button", name="Use a passkey instead").click()
    expect(page.locator("#status")).to_have_text(
        "Your key is now protected by your passkey.", timeout=30_000
    )
    record = stored_record(page)
    assert "keystore" not in record and record["address"] == address
    page.reload()
    page.get_by_role("button", name="Unlock with passkey").click()
    expect(page.get_by_role("heading", name="Settings")).to_be_visible(timeout=30_000)
    page.get_by_role("link", name="Home").click()
    assert page.get_by_test_id("address").inner_text().strip() == address
    watched.assert_clean()
    page.context.close()


@pytest.mark.parametrize("where", ["no authenticator", "an IP address"])
def test_no_passkey_is_offered_where_none_can_work(
    live_gateway: LiveGateway, browser: Browser, where: str
) -> None:
    gw = live_gateway
    if where == "no authenticator":
        watched, url = open_on_localhost(browser, gw), localhost(gw)
    else:
        watched, url = open_page(browser, gw), gw.url
        add_authenticator(watched.page, prf=True)
    page = watched.page
    page.goto(f"{url}/wallet/")
    page.get_by_role("button", name="Create a wallet").click()
    expect(page.locator('[data-passkeys="unavailable"]')).to_have_count(1)
    expect(page.get_by_role("button", name="Use a passkey")).to_have_count(0)
    expect(page.get_by_label("Password", exact=True)).to_be_visible()
    watched.assert_clean()
    page.context.close()


def test_a_custodial_member_claims_into_a_passkey_wallet(
    live_gateway: LiveGateway, browser: Browser
) -> None:
    gw = live_gateway
    merchant = httpx.Client(base_url=gw.url, timeout=30)
    customer = f"pk-{uuid.uuid4().hex[:8]}"
    points = merchant.post(
        "/v1/events",
        json=purchase(customer, "pk-1", "80.00", "EUR"),
        headers=gw.merchant_headers(0, key=uuid.uuid4().hex),
    ).json()["points"]
    gw.wait_idle()
    url = merchant.post(
        f"/v1/members/{customer}/login-link", headers=gw.merchant_headers(0)
    ).json()["url"]

    watched = open_on_localhost(browser, gw)
    page = watched.page
    add_authenticator(page, prf=True)
    page.goto(url.replace(gw.url, localhost(gw)))
    page.get_by_role("link", name="Take control").click()
    page.get_by_role("button", name="Create a new wallet").click()
    page.get_by_role("button", name="Use a passkey").click()
    page.get_by_label("I have written down my recovery phrase").check(timeout=30_000)
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name="Home")).to_be_visible(timeout=15_000)
    expect(page.get_by_test_id("balance")).to_contain_text(str(points), timeout=30_000)
    owner = page.get_by_test_id("address").inner_text().strip()
    assert stored_record(page)["address"] == owner and "passkey" in stored_record(page)
    assert gw.context.link.network.token.balance_of(owner) == points
    watched.assert_clean()
    page.context.close()
