"""The wallet page in real Chromium against a real gateway, worker and anvil.

One member's journey: create a wallet, sign in with SIWE, link a partner account,
earn points from a purchase the partner posts, see the badges, show the address
as a QR code, send points to another member, redeem a reward at another partner,
read the history, switch to Chinese, reload and unlock with the password.
Screenshots of every screen land in ``test-output/wallet/``.
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
from eth_account.messages import encode_defunct, encode_typed_data
from wallet_kit import CHROMIUM, PASSWORD, LiveGateway, launch_browser, open_page, purchase, shot

pytestmark = pytest.mark.browser

if not CHROMIUM.exists():
    pytest.skip(
        "Debian's chromium is not installed (make test installs it: scripts/setup.sh --browser)",
        allow_module_level=True,
    )

from playwright.sync_api import Browser, expect  # noqa: E402


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from launch_browser()


def test_member_journey_in_chromium(live_gateway: LiveGateway, browser: Browser) -> None:
    gw = live_gateway
    merchant = httpx.Client(base_url=gw.url, timeout=30)
    watched = open_page(browser, gw)
    page = watched.page

    # -- create a wallet; the recovery phrase is shown behind a warning; SIWE sign-in
    page.goto(f"{gw.url}/wallet")
    expect(
        page.get_by_role("heading", name="Your loyalty points, across every partner")
    ).to_be_visible()
    shot(page, "01-welcome")
    page.get_by_role("button", name="Create a wallet").click()
    page.get_by_label("Password", exact=True).fill("short")
    page.get_by_label("Repeat the password").fill("short")
    page.get_by_role("button", name="Create wallet").click()
    expect(page.get_by_role("alert")).to_have_text("The password needs at least 8 characters.")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Repeat the password").fill(PASSWORD)
    page.get_by_role("button", name="Create wallet").click()
    expect(page.get_by_role("heading", name="Back up your recovery phrase")).to_be_visible(
        timeout=30_000
    )
    page.get_by_role("button", name="Show recovery phrase").click()
    expect(page.locator("ol.phrase li")).to_have_count(12)
    shot(page, "02-backup")
    page.get_by_label("I have written down my recovery phrase").check()
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name="Home")).to_be_visible(timeout=15_000)
    address = page.get_by_test_id("address").inner_text().strip()
    assert re.fullmatch(r"0x[0-9a-fA-F]{40}", address)
    stored = page.evaluate("() => JSON.parse(localStorage.getItem('pointsnet.keystore'))")
    keystore = json.loads(stored["keystore"])
    assert stored["address"] == address and "crypto" in {k.lower() for k in keystore}
    assert "privatekey" not in stored["keystore"].lower()

    # -- link the partner account with the partner's one-time code
    customer = f"web-{uuid.uuid4().hex[:8]}"
    code = merchant.post(
        f"/v1/members/{customer}/link-code", headers=gw.merchant_headers(0)
    ).json()["code"]
    page.get_by_role("link", name="Accounts").click()
    page.get_by_label("Link code").fill(code.lower().replace("-", " "))
    page.get_by_role("button", name="Link account").click()
    expect(page.get_by_text("Linked to Lumière Paris.", exact=True)).to_be_visible()
    expect(page.locator("#linked-list")).to_contain_text("Lumière Paris")
    shot(page, "03-accounts")

    # -- the partner posts a purchase: points and badges arrive on the home screen
    event = merchant.post(
        "/v1/events",
        json=purchase(customer, f"o-{uuid.uuid4().hex[:6]}", "120.00", "EUR"),
        headers=gw.merchant_headers(0, key=uuid.uuid4().hex),
    ).json()
    assert event["member_address"] == address
    earned = event["points"]
    page.get_by_role("link", name="Home").click()
    expect(page.get_by_test_id("balance")).to_contain_text(f"{earned:,}", timeout=30_000)
    badges = page.locator("li.badge")
    # Badges go on chain in their own transaction, after the points.
    expect(badges.filter(has_text="First Order")).to_be_visible(timeout=30_000)
    expect(badges.filter(has_text="Eco Guardian")).to_be_visible(timeout=30_000)
    expect(badges.first.get_by_text("Soulbound")).to_be_visible()
    expect(page.get_by_test_id("pending")).to_have_count(0, timeout=15_000)
    # The badge picture loaded (not a broken image); it may still be on its way here.
    page.wait_for_function(
        "() => { const img = document.querySelector('li.badge img');"
        " return img !== null && img.complete && img.naturalWidth > 0; }",
        timeout=15_000,
    )
    shot(page, "04-home")

    # -- send points to a second member (a customer of the other partner)
    other = merchant.post(
        "/v1/events",
        json=purchase(f"bob-{uuid.uuid4().hex[:6]}", "b-1", "1000", "JPY"),
        headers=gw.merchant_headers(1, key=uuid.uuid4().hex),
    ).json()["member_address"]
    page.get_by_role("link", name="Send").click()
    page.get_by_label("Recipient address").fill(other)
    page.get_by_label("Points", exact=True).fill(str(earned + 1))
    page.get_by_role("button", name="Send", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("Not enough points")
    page.get_by_label("Points", exact=True).fill("25")
    page.get_by_role("button", name="Send", exact=True).click()
    status = page.get_by_test_id("transfer-status")
    expect(status).to_contain_text("Submitted")
    expect(status).to_contain_text("sent and confirmed on chain", timeout=30_000)
    page.get_by_role("button", name="Show QR code").click()
    expect(page.locator(".qr svg path")).to_have_count(1)
    shot(page, "05-send")

    # -- redeem a reward of the other partner; the voucher code is shown when confirmed
    reward = merchant.post(
        "/v1/rewards",
        json={"name": "Matcha tea set", "description": "Ceremonial grade", "cost_points": 50},
        headers=gw.merchant_headers(1),
    ).json()
    page.get_by_role("link", name="Rewards").click()
    item = page.locator(f'li.reward[data-reward="{reward["id"]}"]')
    item.get_by_role("button", name="Redeem").click()
    expect(item).to_contain_text("Spend 50 points on “Matcha tea set”?")
    item.get_by_role("button", name="Yes, redeem").click()
    expect(item.get_by_test_id("voucher")).to_have_text(
        re.compile(r"^[0-9A-F]{12}$"), timeout=30_000
    )
    shot(page, "06-rewards")

    # -- history: every kind, with merchant, rule version and a link to the audit view
    page.get_by_role("link", name="History").click()
    rows = page.locator("li.history-item")
    expect(rows).to_have_count(5)  # issue, 2 badges, transfer, redemption
    expect(rows.filter(has_text="Sent to")).to_have_count(1)
    expect(rows.filter(has_text="Redeemed: Matcha tea set")).to_contain_text("Sakura Goods")
    expect(rows.filter(has_text="Points earned")).to_contain_text("rules v1")
    audit_link = rows.first.locator("a.tx").get_attribute("href", timeout=5_000)
    assert audit_link is not None and audit_link.startswith("/audit?tx=0x")
    page.get_by_label("Show", exact=True).select_option("transfer")
    expect(rows).to_have_count(1)
    shot(page, "07-history")

    # -- back up: the encrypted file, and the key itself behind the password and a warning
    page.get_by_role("link", name="Settings").click()
    download = page.get_by_role("link", name="Download encrypted backup file")
    assert (download.get_attribute("href") or "").startswith("blob:")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Reveal private key and phrase").click()
    secret = page.locator("code.secret").first
    expect(secret).to_have_text(re.compile(r"^0x[0-9a-f]{64}$"), timeout=30_000)
    assert Account.from_key(secret.inner_text()).address == address
    page.get_by_role("button", name="Hide", exact=True).click()
    expect(page.locator("code.secret")).to_have_count(0)

    # -- Chinese, then reload: the wallet asks for the password and opens in Chinese
    page.get_by_label("Language").select_option("zh-CN")
    expect(page.get_by_role("heading", name="设置")).to_be_visible()
    expect(page.get_by_role("link", name="首页")).to_be_visible()
    page.get_by_role("link", name="首页").click()
    expect(page.get_by_test_id("tier")).to_have_text("青铜")
    shot(page, "08-home-zh")
    page.reload()
    expect(page.get_by_role("heading", name="解锁钱包")).to_be_visible()
    page.get_by_label("密码").fill("wrong password")
    page.get_by_role("button", name="解锁").click()
    expect(page.get_by_role("alert")).to_have_text("密码错误。", timeout=30_000)
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="解锁").click()
    expect(page.get_by_role("heading", name="首页")).to_be_visible(timeout=30_000)
    expected = earned - 25 - 50
    expect(page.get_by_test_id("balance")).to_contain_text(f"{expected:,}")
    shot(page, "09-unlocked-zh")

    token = gw.context.link.network.token
    assert token.balance_of(address) == expected
    watched.assert_clean()
    page.context.close()


def test_custodial_member_opens_a_login_link_and_claims_into_a_new_wallet(
    live_gateway: LiveGateway, browser: Browser
) -> None:
    gw = live_gateway
    merchant = httpx.Client(base_url=gw.url, timeout=30)
    customer = f"cust-{uuid.uuid4().hex[:8]}"
    event = merchant.post(
        "/v1/events",
        json=purchase(customer, "c-1", "80.00", "EUR"),
        headers=gw.merchant_headers(0, key=uuid.uuid4().hex),
    ).json()
    gw.wait_idle()
    custodial, points = event["member_address"], event["points"]
    url = merchant.post(
        f"/v1/members/{customer}/login-link", headers=gw.merchant_headers(0)
    ).json()["url"]

    watched = open_page(browser, gw)
    page = watched.page
    page.goto(url)
    expect(page.get_by_role("heading", name="Your points are kept for you")).to_be_visible()
    expect(page.get_by_test_id("balance")).to_contain_text(str(points))
    assert "login=" not in page.url  # the one-time token leaves the address bar
    shot(page, "10-custodial")
    page.get_by_role("link", name="Take control").click()
    page.get_by_role("button", name="Create a new wallet").click()
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Repeat the password").fill(PASSWORD)
    page.get_by_role("button", name="Create wallet").click()
    page.get_by_label("I have written down my recovery phrase").check(timeout=30_000)
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name="Home")).to_be_visible(timeout=15_000)
    expect(page.get_by_role("heading", name="Your points are kept for you")).to_have_count(0)
    # The claim is announced on the home view it opens (a view change dismisses the toast).
    toast = page.locator("#status")
    expect(toast).to_contain_text(f"{points} points are moving to your wallet")
    expect(toast).to_have_class(re.compile(r"\bvisible\b"))
    expect(page.get_by_test_id("balance")).to_contain_text(str(points), timeout=30_000)
    owner = page.get_by_test_id("address").inner_text().strip()
    assert owner != custodial
    token = gw.context.link.network.token
    assert token.balance_of(owner) == points and token.balance_of(custodial) == 0
    member = merchant.get(f"/v1/members/{customer}", headers=gw.merchant_headers(0)).json()
    assert member["address"] == owner and member["custodial"] is False
    reused = page.evaluate(
        """token => fetch('/v1/wallet/login-link', {
            method: 'POST', headers: {'Content-Type': 'application/json'},
            body: JSON.stringify({token}),
        }).then(r => r.status)""",
        url.split("#login=")[1],
    )
    assert reused == 401
    watched.assert_clean()
    page.context.close()


FAKE_WALLET = """
(() => {
  const provider = {
    request: ({ method, params }) => window.__fakeWallet(method, params || []),
  };
  const info = {
    uuid: "0f0c5c1e-7e57-4a11-9e7e-000000000001",
    name: "Test Wallet",
    icon: "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg'/%3E",
    rdns: "org.pointsnet.test",
  };
  const announce = () => window.dispatchEvent(
    new CustomEvent("eip6963:announceProvider", { detail: Object.freeze({ info, provider }) })
  );
  window.addEventListener("eip6963:requestProvider", announce);
})();
"""


def test_an_eip6963_browser_wallet_signs_in_and_signs_a_transfer(
    live_gateway: LiveGateway, browser: Browser
) -> None:
    gw = live_gateway
    account = Account.create()
    calls: list[str] = []

    def fake_wallet(method: str, params: list[Any]) -> Any:
        calls.append(method)
        if method == "eth_requestAccounts":
            return [account.address]
        if method == "personal_sign":
            message = encode_defunct(hexstr=params[0])
            return "0x" + bytes(account.sign_message(message).signature).hex()
        if method == "eth_signTypedData_v4":
            typed = encode_typed_data(full_message=json.loads(params[1]))
            return "0x" + bytes(account.sign_message(typed).signature).hex()
        raise ValueError(method)

    watched = open_page(browser, gw)
    page = watched.page
    page.expose_function("__fakeWallet", fake_wallet)
    page.add_init_script(FAKE_WALLET)
    page.goto(f"{gw.url}/wallet/")
    page.get_by_role("button", name="Use Test Wallet").click()
    expect(page.get_by_role("heading", name="Home")).to_be_visible(timeout=15_000)
    assert page.get_by_test_id("address").inner_text().strip() == account.address

    merchant = httpx.Client(base_url=gw.url, timeout=30)
    customer = f"inj-{uuid.uuid4().hex[:8]}"
    code = merchant.post(
        f"/v1/members/{customer}/link-code", headers=gw.merchant_headers(1)
    ).json()["code"]
    page.get_by_role("link", name="Accounts").click()
    page.get_by_label("Link code").fill(code)
    page.get_by_role("button", name="Link account").click()
    expect(page.locator("#linked-list")).to_contain_text("Sakura Goods")
    merchant.post(
        "/v1/events",
        json=purchase(customer, "j-1", "5000", "JPY"),
        headers=gw.merchant_headers(1, key=uuid.uuid4().hex),
    )
    gw.wait_idle()
    page.get_by_role("link", name="Send").click()
    expect(page.get_by_test_id("spendable")).not_to_have_text("Available: 0 points")
    page.get_by_label("Recipient address").fill(Account.create().address.lower())
    page.get_by_label("Points", exact=True).fill("3")
    page.get_by_role("button", name="Send", exact=True).click()
    expect(page.get_by_test_id("transfer-status")).to_contain_text(
        "confirmed on chain", timeout=30_000
    )
    assert calls.count("personal_sign") == 2  # sign-in and the link code
    assert calls.count("eth_signTypedData_v4") == 1
    watched.assert_clean()
    page.context.close()
