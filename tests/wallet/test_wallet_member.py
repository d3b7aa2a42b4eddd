"""What a member meets in the wallet page, in real Chromium against a real gateway (issue 16):
texts true of the member's kind of account, a login link opened again, the recovery
phrase's layout and the status toast's lifetime."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator

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

from playwright.sync_api import Browser, Page, expect  # noqa: E402

VISIBLE = re.compile(r"\bvisible\b")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from launch_browser()


def custodial_member(gw: LiveGateway) -> tuple[str, int, str]:
    """A customer of merchant 0 with points kept for them: (address, points, login URL)."""
    merchant = httpx.Client(base_url=gw.url, timeout=30)
    customer = f"cust-{uuid.uuid4().hex[:8]}"
    event = merchant.post(
        "/v1/events",
        json=purchase(customer, "m-1", "80.00", "EUR"),
        headers=gw.merchant_headers(0, key=uuid.uuid4().hex),
    ).json()
    gw.wait_idle()
    url = merchant.post(
        f"/v1/members/{customer}/login-link", headers=gw.merchant_headers(0)
    ).json()["url"]
    return event["member_address"], event["points"], url


def open_custodial(browser: Browser, gw: LiveGateway, url: str, locale: str = "en-US") -> Watched:
    watched = open_page(browser, gw, locale=locale)
    watched.page.goto(url)
    expect(watched.page.get_by_test_id("balance")).to_be_visible(timeout=15_000)
    return watched


def test_custodial_members_are_told_what_is_true_of_them(
    live_gateway: LiveGateway, browser: Browser
) -> None:
    gw = live_gateway
    _address, _points, url = custodial_member(gw)
    watched = open_custodial(browser, gw, url)
    page = watched.page

    page.get_by_role("link", name="Send").click()
    lead = page.locator("p.lead")
    expect(lead).to_have_text(
        "Transfers are free: the partner that keeps this account signs them for you,"
        " and the network pays the fees."
    )
    page.get_by_role("link", name="Settings").click()
    session_text = page.get_by_test_id("session-text")
    expect(session_text).to_contain_text("No key of yours is kept on this device")
    expect(page.get_by_text("Your encrypted key stays on this device")).to_have_count(0)
    shot(page, "11-custodial-settings")

    page.get_by_label("Language").select_option("zh-CN")
    expect(session_text).to_contain_text("本设备上没有保存你的任何密钥")
    expect(page.get_by_text("加密的密钥仍保留在本设备上")).to_have_count(0)
    page.get_by_role("link", name="转赠").click()
    expect(lead).to_contain_text("由为你保管此账户的合作商家代你签名")
    watched.assert_clean()
    page.context.close()


def test_self_custody_members_keep_their_texts_and_the_phrase_stays_in_its_card(
    live_gateway: LiveGateway, browser: Browser
) -> None:
    gw = live_gateway
    watched = open_page(browser, gw)
    page = watched.page
    page.set_viewport_size({"width": 320, "height": 700})  # a small phone
    page.goto(f"{gw.url}/wallet/")
    page.get_by_role("button", name="Create a wallet").click()
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Repeat the password").fill(PASSWORD)
    page.get_by_role("button", name="Create wallet").click()
    page.get_by_role("button", name="Show recovery phrase").click(timeout=30_000)
    expect(page.locator("ol.phrase li")).to_have_count(12)
    assert_phrase_inside_its_card(page)
    page.set_viewport_size({"width": 390, "height": 844})
    assert_phrase_inside_its_card(page)
    shot(page, "12-backup-phrase")

    page.get_by_label("I have written down my recovery phrase").check()
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name="Home")).to_be_visible(timeout=15_000)
    page.get_by_role("link", name="Send").click()
    expect(page.locator("p.lead")).to_have_text(
        "Transfers are free: you sign, the network pays the fees."
    )
    page.get_by_role("link", name="Settings").click()
    expect(page.get_by_test_id("session-text")).to_have_text(
        "Signing out ends this session. Your encrypted key stays on this device."
    )
    watched.assert_clean()
    page.context.close()


def assert_phrase_inside_its_card(page: Page) -> None:
    """Every numbered word lies in the card's content box, and nothing of the list is
    painted in the card's left padding (list markers hang there when they stick out)."""
    boxes = json.loads(
        page.evaluate(
            """() => {
            const card = document.querySelector("ol.phrase").closest(".card");
            const style = getComputedStyle(card);
            const outer = card.getBoundingClientRect();
            const left = outer.left + parseFloat(style.borderLeftWidth);
            const content = {
                left: left + parseFloat(style.paddingLeft),
                right: outer.right - parseFloat(style.borderRightWidth)
                    - parseFloat(style.paddingRight),
            };
            const list = document.querySelector("ol.phrase").getBoundingClientRect();
            const words = [...document.querySelectorAll("ol.phrase li")].map((li) => {
                const r = li.getBoundingClientRect();
                return { left: r.left, right: r.right, scroll: li.scrollWidth - li.clientWidth };
            });
            return JSON.stringify({ left, content, top: list.top, height: list.height, words });
        }"""
        )
    )
    content = boxes["content"]
    for number, word in enumerate(boxes["words"], start=1):
        assert content["left"] - 0.5 <= word["left"], f"word {number} starts left of the card"
        assert word["right"] <= content["right"] + 0.5, f"word {number} ends right of the card"
        assert word["scroll"] <= 0, f"word {number} overflows its box"
    x, width = boxes["left"] + 1, content["left"] - boxes["left"] - 2
    y, height = boxes["top"], boxes["height"]
    painted = page.screenshot(clip={"x": x, "y": y, "width": width, "height": height})
    page.locator("ol.phrase").evaluate("el => { el.style.visibility = 'hidden'; }")
    blank = page.screenshot(clip={"x": x, "y": y, "width": width, "height": height})
    page.locator("ol.phrase").evaluate("el => { el.style.visibility = ''; }")
    assert painted == blank, "the phrase's numbers are painted in the card's padding"


def test_a_login_link_opened_again_keeps_the_member_signed_in(
    live_gateway: LiveGateway, browser: Browser
) -> None:
    gw = live_gateway
    _address, points, url = custodial_member(gw)
    watched = open_custodial(browser, gw, url)
    page = watched.page

    page.goto(url)  # the same link, again, with the session still open
    expect(page.get_by_role("heading", name="Your points are kept for you")).to_be_visible()
    expect(page.get_by_test_id("balance")).to_contain_text(str(points))
    expect(page.locator("#status")).to_have_text(
        "This login link was already used. You are still signed in."
    )
    expect(
        page.get_by_role("heading", name="Your loyalty points, across every partner")
    ).to_have_count(0)
    assert "login=" not in page.url

    # A second tab of the same browser, in Chinese.
    other = page.context.new_page()
    other.goto(url)
    expect(other.get_by_test_id("balance")).to_contain_text(str(points), timeout=15_000)
    expect(other.locator("#status")).to_have_text(
        "This login link was already used. You are still signed in."
    )
    other.close()

    # Without a session the link still says it is spent (in the gateway's words of today,
    # "used or expired", or of the proposed login_link_used answer).
    stranger = open_page(browser, gw)
    stranger.page.goto(url)
    expect(stranger.page.get_by_role("alert")).to_have_text(
        re.compile(
            r"^This login link (is used or expired|was already used)\. "
            r"Ask the partner's site for a new one\.$"
        )
    )
    stranger.assert_clean()
    stranger.page.context.close()
    watched.assert_clean()
    page.context.close()


def refuse_login_link_as_used(page: Page) -> None:
    """The gateway's proposed answer for a link already traded (``login_link_used``)."""
    body = {"error": {"code": "login_link_used", "message": "already used", "details": {}}}
    page.route(
        "**/v1/wallet/login-link",
        lambda route: route.fulfill(
            status=401, content_type="application/json", body=json.dumps(body)
        ),
    )


def test_the_page_understands_a_login_link_used_answer(
    live_gateway: LiveGateway, browser: Browser
) -> None:
    gw = live_gateway
    _address, points, url = custodial_member(gw)
    # Signed in (the link traded here), then a link the gateway says was used: still in.
    watched = open_custodial(browser, gw, url, locale="zh-CN")
    page = watched.page
    _other, _points, second = custodial_member(gw)
    refuse_login_link_as_used(page)
    page.goto(second)
    expect(page.get_by_test_id("balance")).to_contain_text(str(points))
    expect(page.locator("#status")).to_have_text("该登录链接已被使用过。你仍处于登录状态。")
    watched.assert_clean()
    page.context.close()

    # No session: the welcome screen says the link was used.
    stranger = open_page(browser, gw)
    refuse_login_link_as_used(stranger.page)
    stranger.page.goto(second)
    expect(stranger.page.get_by_role("alert")).to_have_text(
        "This login link was already used. Ask the partner's site for a new one."
    )
    stranger.assert_clean()
    stranger.page.context.close()


def test_the_status_toast_goes_when_the_member_switches_view(
    live_gateway: LiveGateway, browser: Browser
) -> None:
    gw = live_gateway
    _address, _points, url = custodial_member(gw)
    watched = open_custodial(browser, gw, url)
    page = watched.page
    page.get_by_role("link", name="Send").click()
    page.get_by_label("Recipient address").fill(Account.create().address)
    page.get_by_label("Points", exact=True).fill("3")
    page.get_by_role("button", name="Send", exact=True).click()
    toast = page.locator("#status")
    expect(toast).to_have_text("3 points sent and confirmed on chain.", timeout=30_000)
    expect(toast).to_have_class(VISIBLE)
    page.get_by_role("link", name="History").click()
    # It was on screen for 6 s whatever the member did; now it leaves with its view.
    expect(toast).not_to_have_class(VISIBLE, timeout=1_000)
    watched.assert_clean()
    page.context.close()
