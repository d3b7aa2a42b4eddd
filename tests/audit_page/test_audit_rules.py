"""The audit's rule history: ``GET /v1/audit/rules`` and the page's "Rule sets" panel,
read from the texts the hub published, against what the merchant API was given.

A gateway of its own (the folder's shared one keeps one rule version per merchant):
merchant 1 changes its earn rate and adds a campaign through ``PUT /v1/rules``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from audit_page_kit import chromium, serve
from eth_utils import keccak

from tests.gateway.gateway_kit import Gateway, start_gateway

CAMPAIGN = {
    "key": "singles-day",
    "name": "Singles Day",
    "starts_at": "2026-11-11T00:00:00+08:00",
    "ends_at": "2026-11-12T00:00:00+08:00",
    "multiplier": "2",
}


@pytest.fixture(scope="module")
def ruled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """Two merchants; merchant 1's rules changed once (version 2), published."""
    for gateway in start_gateway(tmp_path_factory.mktemp("audit-rules")):
        rules = gateway.client.get("/v1/rules", headers=gateway.headers()).json()["rules"]
        rules["earn_rate"] = "2"
        rules["campaigns"] = [CAMPAIGN]
        response = gateway.client.put("/v1/rules", json=rules, headers=gateway.headers())
        assert response.status_code == 202, response.text
        gateway.settle()
        yield gateway


def rule_history(gateway: Gateway, **params: Any) -> Any:
    response = gateway.client.get("/v1/audit/rules", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_rule_history_is_read_from_the_published_texts_with_diffs(ruled: Gateway) -> None:
    first, second = (m.id for m in ruled.merchants)
    data = rule_history(ruled)
    assert data["ok"] is True and data["problems"] == []
    assert data["notice_seconds"] == 0  # the kit deploys without notice
    merchants = {m["merchant"]: m for m in data["merchants"]}
    assert set(merchants) == {first, second}
    assert [v["version"] for v in merchants[second]["versions"]] == [1]

    v1, v2 = merchants[first]["versions"]
    assert merchants[first]["current_version"] == 2
    assert [v1["status"], v2["status"]] == ["superseded", "in_effect"]
    assert v1["superseded_at"] == v2["effective_at"]
    own = ruled.client.get("/v1/rules", headers=ruled.headers()).json()
    assert v2["hash"] == own["hash"] == "0x" + keccak(v2["text"].encode()).hex()
    assert json.loads(v2["text"]) == own["rules"]
    assert v2["computed_hash"] == v2["hash"] and v2["hash_ok"] is True
    assert v1["diff"] is None
    lines = [line["text"] for line in v2["diff"]]
    assert "earn_rate: 1 → 2" in lines
    assert any(line.startswith('+ campaigns[singles-day] "Singles Day" x2') for line in lines)
    assert len(lines) == 2, lines


def test_rule_history_of_one_merchant_and_of_an_unknown_one(ruled: Gateway) -> None:
    second = ruled.merchants[1].id
    data = rule_history(ruled, merchant=second)
    assert [m["merchant"] for m in data["merchants"]] == [second]
    missing = ruled.client.get("/v1/audit/rules", params={"merchant": 999})
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    assert ruled.client.get("/v1/audit/rules", params={"merchant": -1}).status_code == 422


@pytest.mark.browser
def test_the_page_shows_versions_diffs_and_checks_the_hash_in_the_browser(
    ruled: Gateway,
) -> None:
    first = ruled.merchants[0].id
    with serve(ruled) as url, chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{url}/audit/#rules")
        page.wait_for_selector("body[data-ready=true]", timeout=20_000)
        page.select_option("#rules-merchant", str(first))

        rows = page.locator("#rules-table tbody tr")
        assert rows.count() == 2
        newest = rows.nth(0).locator("td").all_inner_texts()
        assert newest[0] == "v2" and newest[5] == "in effect"
        assert "hash ok" in newest[8]
        assert page.locator("#rules-summary").get_attribute("class") == "summary good"
        step = page.locator(".rule-step[data-version='2']")
        assert "earn_rate: 1 → 2" in step.locator("ul.diff li.changed").all_inner_texts()
        assert step.locator("ul.diff li.added").count() == 1

        step.get_by_role("button", name="View JSON").click()
        check = step.locator(".hash-check")
        check.wait_for(timeout=10_000)
        assert "= the published hash" in check.inner_text()
        assert json.loads(step.locator("pre.rule-text").inner_text())["earn_rate"] == "2"
        assert errors == []
        page.close()
