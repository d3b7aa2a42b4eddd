"""A member verifies a history entry's proof against the chain, in the browser.

``GET /v1/wallet/config`` names the public RPC the page may ask (the gateway's own on the
devnet, none elsewhere unless configured) and the wallet page's policy lets it connect
there. In real Chromium, against a real gateway, worker and anvil: a member earns points
and has part of them clawed back by a refund, opens each entry's proof and presses
Verify; the page checks the input's hash, its path to the batch's root, the batch's log
in the transaction's receipt and the rule version's publication through the RPC alone
and says "Verified on chain at block N", in English and in Chinese. A proof changed on
its way (the input, the amount, its version's hash) is refused with the check that failed
named; after a rule change entries under either version verify; with no public RPC the
button says so and stays disabled.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, Route, expect
from wallet_kit import CHROMIUM, LiveGateway, launch_browser, open_page, purchase, shot

from chain import merkle
from gateway.api.routes.wallet_page import rpc_origin
from gateway.settings import Settings
from tests.gateway.gateway_kit import Gateway

WALLET = Path(__file__).resolve().parents[2] / "wallet"
LANGUAGES = ("en", "zh-CN")


# ---------------------------------------------------------------------- the API


def test_config_names_the_gateway_s_rpc_as_the_public_one_on_the_devnet(
    gateway: Gateway,
) -> None:
    config = gateway.client.get("/v1/wallet/config").json()
    assert config["public_rpc_url"] == gateway.context.settings.rpc_url
    policy = gateway.client.get("/wallet/").headers["Content-Security-Policy"]
    assert f"connect-src 'self' {rpc_origin(gateway.context.settings.rpc_url)};" in policy


def test_config_names_the_configured_public_rpc_or_none(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    def configure(**changes: Any) -> None:
        settings = gateway.context.settings.model_copy(update=changes)
        monkeypatch.setattr(gateway.context, "settings", settings)

    configure(public_rpc_url="https://rpc.example.org/v1/abc")
    assert gateway.client.get("/v1/wallet/config").json()["public_rpc_url"] == (
        "https://rpc.example.org/v1/abc"
    )
    policy = gateway.client.get("/wallet/").headers["Content-Security-Policy"]
    assert "connect-src 'self' https://rpc.example.org;" in policy

    configure(public_rpc_url=None, profile="testnet")
    assert gateway.client.get("/v1/wallet/config").json()["public_rpc_url"] is None
    policy = gateway.client.get("/wallet/").headers["Content-Security-Policy"]
    assert "connect-src 'self';" in policy


def test_the_public_rpc_defaults_to_the_devnet_s_own_and_to_none_elsewhere() -> None:
    devnet = Settings(_env_file=None, rpc_url="http://127.0.0.1:9545")  # type: ignore[call-arg]
    assert devnet.effective_public_rpc_url == "http://127.0.0.1:9545"
    testnet = Settings(_env_file=None, profile="testnet", chain_id=11155111)  # type: ignore[call-arg]
    assert testnet.effective_public_rpc_url is None
    chosen = Settings(  # type: ignore[call-arg]
        _env_file=None, profile="testnet", chain_id=11155111, public_rpc_url="https://rpc.x.org"
    )
    assert chosen.effective_public_rpc_url == "https://rpc.x.org"


@pytest.mark.parametrize(
    "url,origin",
    [
        ("https://rpc.example.org/v2/key", "https://rpc.example.org"),
        ("http://127.0.0.1:8545", "http://127.0.0.1:8545"),
        (None, None),
        ("wss://rpc.example.org", None),
        ("https://user:secret@rpc.example.org", None),
        ("https://rpc.example.org;script-src", None),
    ],
)
def test_the_page_may_connect_to_the_rpc_s_origin_only(url: str | None, origin: str | None) -> None:
    assert rpc_origin(url) == origin


def verify_js_codes() -> tuple[set[str], set[str]]:
    """The check names and reason codes verify.js can report."""
    source = (WALLET / "js" / "verify.js").read_text()
    (names,) = re.findall(r"export const CHECKS = \[([^\]]*)\]", source)
    reasons = set(re.findall(r'fail\("([a-z_]+)"', source))
    reasons |= set(re.findall(r'reason: "([a-z_]+)"', source))
    reasons |= set(re.findall(r'\? "([a-z_]+)" : "([a-z_]+)"', source)[0])
    return set(re.findall(r'"([a-z_]+)"', names)), reasons


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_check_and_reason_verify_reports_has_words(lang: str) -> None:
    messages = json.loads((WALLET / "i18n" / f"{lang}.json").read_text(encoding="utf-8"))
    names, reasons = verify_js_codes()
    assert len(names) == 4 and {"erased", "no_input", "amount_mismatch"} <= reasons
    missing = {f"verify.check.{n}" for n in names} | {f"verify.reason.{r}" for r in reasons}
    assert sorted(missing - set(messages)) == []


def test_the_page_s_leaf_and_fold_are_chain_merkle_s(tmp_path: Path) -> None:
    """verify.js rebuilds the input leaf and folds a path as chain/merkle.py does: every
    leaf of trees of 1 to 9 leaves (odd nodes carried up) leads to the Python root."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    cases: list[dict[str, Any]] = []
    for size in range(1, 10):
        pairs = [("0x" + os.urandom(32).hex(), "0x" + os.urandom(32).hex()) for _ in range(size)]
        tree = merkle.input_levels(pairs)
        for index, (ref, digest) in enumerate(pairs):
            path = ["0x" + n.hex() for n in merkle.input_proof(pairs, index, tree)]
            cases.append({"ref": ref, "hash": digest, "path": path, "root": tree[-1][0].hex()})
    cases.append(dict(cases[-1], ref=cases[0]["ref"]))
    (tmp_path / "verify.mjs").write_text((WALLET / "js" / "verify.js").read_text())
    ethers = (WALLET.parent / "node_modules" / "ethers" / "dist" / "ethers.js").as_uri()
    main = tmp_path / "main.mjs"
    main.write_text(
        f'import * as ethers from "{ethers}";\n'
        'import { foldPath, inputLeaf } from "./verify.mjs";\n'
        f"const cases = {json.dumps(cases)};\n"
        "console.log(JSON.stringify(cases.map((c) =>"
        " foldPath(ethers, inputLeaf(ethers, c.ref, c.hash), c.path))));\n"
    )
    out = subprocess.run([node, str(main)], capture_output=True, text=True, check=True)
    *roots, swapped = json.loads(out.stdout)
    assert roots == ["0x" + c["root"] for c in cases[:-1]]
    assert swapped != "0x" + cases[-1]["root"]  # another leaf's ref: not the root


# ---------------------------------------------------------------------- the browser

#: The browser tests run in Debian's Chromium, or skip.
chromium_only = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is missing")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from launch_browser()


@pytest.fixture(scope="module")
def member(live_gateway: LiveGateway) -> dict[str, Any]:
    """A customer of the first partner who earned points and had them clawed back by a
    refund: an issuance and a clawback in their history."""
    gw = live_gateway
    merchant = httpx.Client(base_url=gw.url, timeout=30)
    customer = f"verify-{uuid.uuid4().hex[:8]}"
    order = f"V-{customer}"
    bought = purchase(customer, order, "80.00", "USD")
    refund = {
        "type": "refund",
        "customer_id": customer,
        "occurred_at": bought["occurred_at"],
        "refund": {"order_id": order},
    }
    for body in (bought, refund):
        response = merchant.post(
            "/v1/events", json=body, headers=gw.merchant_headers(0, key=uuid.uuid4().hex)
        )
        assert response.status_code == 202, response.text
        gw.wait_idle()
    return {"customer": customer}


def login_link(gw: LiveGateway, customer: str) -> str:
    """A fresh (single-use) login link of ``customer``, from the partner."""
    response = httpx.post(
        f"{gw.url}/v1/members/{customer}/login-link", headers=gw.merchant_headers(0), timeout=30
    )
    response.raise_for_status()
    return str(response.json()["url"])


def open_history(browser: Browser, gw: LiveGateway, customer: str, locale: str = "en-US") -> Any:
    watched = open_page(browser, gw, locale=locale)
    page = watched.page
    page.goto(login_link(gw, customer))
    expect(page.get_by_test_id("balance")).to_be_visible(timeout=15_000)
    page.goto(f"{gw.url}/wallet/#/history")
    expect(page.locator("li.history-item").first).to_be_visible(timeout=15_000)
    return watched


def entry(page: Page, kind: str) -> Any:
    """The entry of ``kind`` with its proof opened."""
    item = page.locator(f"li.history-item[data-kind='{kind}']").first
    item.get_by_test_id("entry-proof").locator("summary").click()
    expect(item.get_by_test_id("verify")).to_be_visible()
    return item


def proof_of(page: Page, item: Any) -> dict[str, Any]:
    entry_id = item.get_by_test_id("entry-proof").get_attribute("data-entry")
    return dict(page.evaluate(f"fetch('/v1/wallet/entries/{entry_id}/proof').then(r => r.json())"))


def rpc_only(watched: Any, gw: LiveGateway) -> None:
    """No script error, and nothing asked of other hosts than the public RPC."""
    assert watched.errors == []
    rpc = gw.context.settings.rpc_url.rstrip("/")
    assert [url for url in watched.foreign if not url.startswith(rpc)] == []


@pytest.mark.browser
@chromium_only
def test_a_member_verifies_an_issuance_and_a_clawback_on_chain_in_english_and_chinese(
    live_gateway: LiveGateway, browser: Browser, member: dict[str, Any]
) -> None:
    gw = live_gateway
    watched = open_history(browser, gw, member["customer"])
    page = watched.page
    for kind in ("issue", "clawback"):
        item = entry(page, kind)
        proof = proof_of(page, item)
        assert proof["line"]["kind"] == kind and proof["line"]["input"]
        item.get_by_test_id("verify").click()
        result = item.get_by_test_id("verify-result")
        expect(result).to_have_attribute("data-ok", "true", timeout=20_000)
        expect(result).to_contain_text(f"Verified on chain at block {proof['line']['block']}.")
        checks = result.locator("li[data-check]")
        expect(checks).to_have_count(4)
        for name in ("input_hash", "merkle_path", "batch_log", "rule_version"):
            expect(result.locator(f"li[data-check='{name}']")).to_have_attribute(
                "data-status", "ok"
            )
    shot(page, "30-verified")
    assert len(watched.foreign) > 0, "the page asked the public RPC, not the gateway"
    rpc_only(watched, gw)

    page.select_option("#lang", "zh-CN")
    page.goto(f"{gw.url}/wallet/#/history")
    item = entry(page, "issue")
    block = proof_of(page, item)["line"]["block"]
    item.get_by_test_id("verify").click()
    expect(item.get_by_test_id("verify-result")).to_contain_text(
        f"已在链上区块 {block} 验证。", timeout=20_000
    )
    shot(page, "31-verified-zh")
    page.select_option("#lang", "en")
    page.context.close()


def tampered(change: Callable[[dict[str, Any]], None]) -> Callable[[Route], None]:
    """A route handler passing the gateway's proof on with ``change`` applied to its line."""

    def handle(route: Route) -> None:
        response = route.fetch()
        body = response.json()
        change(body["line"])
        route.fulfill(response=response, json=body)

    return handle


def _more_points(line: dict[str, Any]) -> None:
    line["amount"] += 1


def _another_input(line: dict[str, Any]) -> None:
    line["input"] = line["input"].replace('"amount":"80.00"', '"amount":"800.00"', 1)
    assert '"800.00"' in line["input"]


@pytest.mark.browser
@chromium_only
@pytest.mark.parametrize(
    "change,failed,words",
    [
        (_more_points, "batch_log", "The batch is on chain: the chain moved"),
        (_another_input, "input_hash", "The input matches its hash: the input hashes to"),
    ],
    ids=["amount", "input"],
)
def test_a_proof_changed_on_its_way_is_refused_naming_the_failed_check(
    live_gateway: LiveGateway,
    browser: Browser,
    member: dict[str, Any],
    change: Callable[[dict[str, Any]], None],
    failed: str,
    words: str,
) -> None:
    gw = live_gateway
    watched = open_history(browser, gw, member["customer"])
    page = watched.page
    page.route(re.compile(r".*/v1/wallet/entries/\d+/proof$"), tampered(change))
    item = entry(page, "issue")
    item.get_by_test_id("verify").click()
    result = item.get_by_test_id("verify-result")
    expect(result).to_have_attribute("data-ok", "false", timeout=20_000)
    expect(result).to_have_attribute("data-failed", failed)
    expect(result.get_by_role("alert")).to_contain_text(f"Not verified. {words}")
    expect(result.locator(f"li[data-check='{failed}']")).to_have_attribute("data-status", "failed")
    shot(page, f"32-tampered-{failed}")
    rpc_only(watched, gw)
    page.context.close()


@pytest.mark.browser
@chromium_only
def test_without_a_public_rpc_the_verify_button_says_so_and_is_disabled(
    live_gateway: LiveGateway, browser: Browser, member: dict[str, Any]
) -> None:
    gw = live_gateway

    def no_rpc(route: Route) -> None:
        response = route.fetch()
        route.fulfill(response=response, json={**response.json(), "public_rpc_url": None})

    watched = open_page(browser, gw)
    page = watched.page
    page.route(re.compile(r".*/v1/wallet/config$"), no_rpc)
    page.goto(login_link(gw, member["customer"]))
    expect(page.get_by_test_id("balance")).to_be_visible(timeout=15_000)
    page.goto(f"{gw.url}/wallet/#/history")
    item = entry(page, "issue")
    button = item.get_by_test_id("verify")
    expect(button).to_be_disabled()
    expect(button).to_have_text("Verifying needs a public RPC (not configured)")
    watched.assert_clean()
    page.context.close()


@pytest.mark.browser
@chromium_only
def test_after_a_rule_change_entries_under_either_version_verify_and_a_wrong_hash_is_named(
    live_gateway: LiveGateway, browser: Browser, member: dict[str, Any]
) -> None:
    """Version 2 is published (no notice on this network): the member's earlier entry was
    accepted before it took effect (the window of version 1 now ends), the next one after
    it; both verify. A proof naming another hash for its version is refused by the rule
    check. (Runs last in this module: it changes the first partner's rules.)"""
    gw = live_gateway
    merchant = httpx.Client(base_url=gw.url, timeout=30)
    rules = merchant.get("/v1/rules", headers=gw.merchant_headers(0)).json()["rules"]
    rules["earn_rate"] = str(int(rules["earn_rate"]) + 1)
    assert merchant.put("/v1/rules", json=rules, headers=gw.merchant_headers(0)).status_code == 202
    gw.wait_idle()
    customer = member["customer"]
    response = merchant.post(
        "/v1/events",
        json=purchase(customer, f"V2-{customer}", "20.00", "USD"),
        headers=gw.merchant_headers(0, key=uuid.uuid4().hex),
    )
    assert response.status_code == 202, response.text
    gw.wait_idle()

    watched = open_history(browser, gw, customer)
    page = watched.page
    issued = page.locator("li.history-item[data-kind='issue']")
    expect(issued).to_have_count(2)
    versions = []
    for i in range(2):
        item = issued.nth(i)
        item.get_by_test_id("entry-proof").locator("summary").click()
        proof = proof_of(page, item)
        versions.append(proof["rules"]["version"])
        item.get_by_test_id("verify").click()
        result = item.get_by_test_id("verify-result")
        expect(result).to_have_attribute("data-ok", "true", timeout=20_000)
        expect(result).to_contain_text(f"Verified on chain at block {proof['line']['block']}.")
    assert sorted(versions) == [1, 2]
    page.context.close()

    def handle(route: Route) -> None:
        response = route.fetch()
        body = response.json()
        body["rules"]["hash"] = "0x" + "ab" * 32
        route.fulfill(response=response, json=body)

    watched = open_history(browser, gw, customer)
    page = watched.page
    page.route(re.compile(r".*/v1/wallet/entries/\d+/proof$"), handle)
    item = entry(page, "issue")
    item.get_by_test_id("verify").click()
    result = item.get_by_test_id("verify-result")
    expect(result).to_have_attribute("data-failed", "rule_version", timeout=20_000)
    expect(result.locator("li[data-check='rule_version']")).to_have_attribute(
        "data-reason", "rule_hash_mismatch"
    )
    expect(result.get_by_role("alert")).to_contain_text(
        "The rules were published and in effect: version"
    )
    rpc_only(watched, gw)
    page.context.close()
