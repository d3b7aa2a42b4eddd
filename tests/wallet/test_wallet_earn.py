"""The wallet's "How you earn" view in real Chromium, in English and Chinese.

A network with a one-hour rule-change notice: a member of the first partner (signed in
through a login link) sees its rules in plain words, the tier ladder and, once the partner
publishes a change, the change with the date it takes effect, on the view and in a
banner on the home page. After the chain's clock passes that date the change is the
rules in effect and the version it replaced is folded under "Earlier versions".
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest
from wallet_kit import (
    CHROMIUM,
    LiveGateway,
    launch_browser,
    open_page,
    purchase,
    shot,
    start_live_gateway,
)

from chain.devnet import rpc_call

pytestmark = pytest.mark.browser

if not CHROMIUM.exists():
    pytest.skip(
        "Debian's chromium is not installed (make test installs it: scripts/setup.sh --browser)",
        allow_module_level=True,
    )

from playwright.sync_api import Browser, Page, expect  # noqa: E402

NOTICE = 3_600
CAMPAIGN = {
    "key": "spring",
    "name": "Spring Days",
    "starts_at": "2027-03-01T00:00:00+00:00",
    "ends_at": "2027-03-08T00:00:00+00:00",
    "multiplier": "2",
}


@pytest.fixture(scope="module")
def noticed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveGateway]:
    yield from start_live_gateway(
        tmp_path_factory.mktemp("wallet-earn"),
        rule_notice_seconds=NOTICE,
        chain_clock_interval=0.0,
    )


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from launch_browser()


def local_date(page: Page, iso: str) -> str:
    """The instant as the wallet shows it in the page's language."""
    return str(
        page.evaluate(
            """iso => new Intl.DateTimeFormat(document.documentElement.lang,
                 { dateStyle: "medium", timeStyle: "short" }).format(new Date(iso))""",
            iso,
        )
    )


def test_how_you_earn_in_english_and_chinese_with_an_upcoming_change(
    noticed: LiveGateway, browser: Browser
) -> None:
    gw = noticed
    merchant = httpx.Client(base_url=gw.url, timeout=30)
    customer = f"cust-{uuid.uuid4().hex[:8]}"
    merchant.post(
        "/v1/events",
        json=purchase(customer, "e-1", "40.00", "EUR"),
        headers=gw.merchant_headers(0, key=uuid.uuid4().hex),
    ).raise_for_status()
    gw.wait_idle()
    name = gw.merchants[0].name

    watched = open_page(browser, gw)
    page = watched.page
    link = merchant.post(f"/v1/members/{customer}/login-link", headers=gw.merchant_headers(0))
    page.goto(link.json()["url"])
    expect(page.get_by_test_id("balance")).to_be_visible(timeout=15_000)
    expect(page.get_by_test_id("rules-banner")).to_have_count(0)

    # -- the rules in effect: plain words, the tier ladder, the hash checked against the chain
    page.get_by_role("link", name="How you earn").click()
    expect(page.get_by_role("heading", name="How you earn")).to_be_visible()
    card = page.locator(".earn-partner")
    expect(card.get_by_role("heading", name=name)).to_be_visible()
    expect(card.get_by_test_id("earn-rules")).to_contain_text("Earn 1 points per USD you spend")
    ladder = card.get_by_test_id("earn-tiers")
    expect(ladder.locator("tbody tr")).to_have_count(5)
    expect(ladder.locator("tbody tr").first).to_contain_text("Bronze")
    expect(card.get_by_test_id("earn-upcoming")).to_have_count(0)
    card.get_by_role("button", name="Check against the chain").click()
    expect(card.locator(".hash-check")).to_contain_text("the hash on chain")
    expect(card.locator(".hash-check")).to_have_attribute("data-ok", "true")

    # -- the partner changes its rules: announced with the date they take effect
    rules = merchant.get("/v1/rules", headers=gw.merchant_headers(0)).json()["rules"]
    rules["earn_rate"] = "2"
    rules["campaigns"] = [CAMPAIGN]
    put = merchant.put("/v1/rules", json=rules, headers=gw.merchant_headers(0))
    assert put.status_code == 202, put.text
    gw.wait_idle()
    public = merchant.get(f"/v1/public/merchants/{gw.merchants[0].id}/rules").json()
    (upcoming,) = public["upcoming"]
    assert upcoming["version"] == 2
    effective_at = upcoming["effective_at"]

    page.get_by_role("link", name="Home").click()
    banner = page.get_by_test_id("rules-banner")
    expect(banner).to_contain_text(
        f"{name} changes its rules on {local_date(page, effective_at)}.", timeout=15_000
    )
    shot(page, "20-rules-banner")
    banner.get_by_role("link", name="See what changes").click()
    announced = page.get_by_test_id("earn-upcoming")
    expect(announced).to_contain_text(f"Changes on {local_date(page, effective_at)} (version 2)")
    expect(announced.get_by_test_id("earn-changes")).to_contain_text("Points per USD: 1 → 2.")
    expect(announced.get_by_test_id("earn-changes")).to_contain_text("Spring Days")
    expect(page.get_by_test_id("earn-rules")).to_contain_text("Earn 1 points per USD")
    shot(page, "21-how-you-earn")

    # -- in Chinese: the same view in the member's language
    page.select_option("#lang", "zh-CN")
    expect(page.get_by_role("heading", name="如何赚取积分")).to_be_visible()
    announced = page.get_by_test_id("earn-upcoming")
    expect(announced).to_contain_text(f"将于 {local_date(page, effective_at)} 变更（第 2 版）")  # noqa: RUF001
    expect(announced.get_by_test_id("earn-changes")).to_contain_text("每 USD 积分：1 → 2。")  # noqa: RUF001
    expect(page.get_by_test_id("earn-rules")).to_contain_text("每消费 1 USD 得 1 积分")
    expect(page.get_by_role("columnheader", name="积分倍数")).to_be_visible()
    shot(page, "22-how-you-earn-zh")
    page.get_by_role("link", name="首页").click()
    expect(page.get_by_test_id("rules-banner")).to_contain_text("将于")

    # -- the notice passes on chain: version 2 is in effect, version 1 folded away
    rpc_call(gw.context.settings.rpc_url, "evm_increaseTime", [NOTICE + 1])
    rpc_call(gw.context.settings.rpc_url, "evm_mine")
    page.select_option("#lang", "en")
    page.goto(f"{gw.url}/wallet/#/earn")
    page.reload()
    expect(page.get_by_test_id("earn-rules")).to_contain_text(
        "Earn 2 points per USD", timeout=15_000
    )
    expect(page.get_by_test_id("earn-upcoming")).to_have_count(0)
    past = page.get_by_test_id("earn-past")
    expect(past.locator("summary")).to_have_text("Earlier versions (1)")
    expect(past.locator("li[data-version='1']")).to_be_hidden()
    past.locator("summary").click()
    expect(past.locator("li[data-version='1']")).to_contain_text("Version 1:")
    watched.assert_clean()
    page.context.close()
