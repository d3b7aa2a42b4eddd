"""``/audit`` in a real browser (Debian's chromium driven by playwright) against a real
uvicorn server: the page shows the chain's figures, and needs nothing off the origin."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from audit_page_kit import Book, chromium, serve

from chain.audit import VALUE_CHANGE_KINDS, VALUE_CHANGE_PARTS
from chain.config import PROJECT_ROOT

pytestmark = pytest.mark.browser

OUTPUT = PROJECT_ROOT / "test-output"
DOCS_SCREENSHOT = PROJECT_ROOT / "docs" / "screenshots" / "audit.png"
MAX_DOCS_PNG = 150_000


@pytest.fixture(scope="module")
def server(book: Book) -> Iterator[str]:
    with serve(book.gateway) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


def test_audit_page_shows_supply_settlement_and_the_linked_transaction(
    book: Book, server: str, browser: Any
) -> None:
    refund = next(e for e in book.events if e.clawback > 0)
    names = {m.id: m.name for m in book.gateway.merchants}
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    off_origin: list[str] = []
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)

    def only_this_origin(route: Any) -> None:
        if route.request.url.startswith(server):
            route.continue_()
        else:
            off_origin.append(route.request.url)
            route.abort()

    page.route("**/*", only_this_origin)

    page.goto(f"{server}/audit?tx={refund.tx_hash}")
    page.wait_for_selector("body[data-ready=true]", timeout=20_000)

    assert page.url.startswith(f"{server}/audit/?tx=")
    assert page.inner_text("#total-supply") == f"{book.supply:,}"
    assert page.inner_text("#members") == str(len(book.members))
    assert page.inner_text("#merchant-count") == "2"
    assert page.inner_text("#invariant") == "holds"
    settlement = page.locator("#settlement-table tbody tr")
    assert settlement.count() == 2
    for i, merchant_id in enumerate(book.merchant_ids()):
        cells = settlement.nth(i).locator("td").all_inner_texts()
        assert cells[0] == str(merchant_id) and cells[1] == names[merchant_id]
        assert cells[2] == f"{book.issued(merchant_id):,}"
        assert cells[3] == f"{book.redeemed(merchant_id):,}"
        assert cells[4] == f"{book.clawed_back(merchant_id):,}"
    # ?tx= (the wallet's link) searched the refund's transaction
    assert page.input_value("#history-q") == refund.tx_hash
    kinds = page.locator("#history-table tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.kind)"
    )
    assert "clawback" in kinds
    assert page.locator("#daily-chart svg rect").count() >= 3  # bars drawn inline
    assert page.locator("#verification-table .pill.ok").count() == 4
    timeline = book.gateway.client.get("/v1/audit/timeline").json()["data"]
    assert page.locator("#timeline-table tbody tr").count() == len(timeline)
    pending = [e for e in timeline if e["status"] == "pending"]
    assert page.locator("#timeline-table tr.upcoming").count() == len(pending)
    assert off_origin == [] and errors == []

    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / "audit-page.png"), full_page=True)
    page.evaluate("window.scrollTo(0, 0)")
    # The README's picture is refreshed only on request, so a test run leaves the tree clean.
    update = os.environ.get("POINTSNET_UPDATE_SCREENSHOTS")
    shot = DOCS_SCREENSHOT if update else OUTPUT / "audit.png"
    page.screenshot(path=str(shot), clip={"x": 0, "y": 0, "width": 1280, "height": 900})
    assert shot.stat().st_size < MAX_DOCS_PNG
    page.close()


def test_searching_a_member_address_in_the_page_lists_their_records(
    book: Book, server: str, browser: Any
) -> None:
    alice = next(e for e in book.events if e.points > 0)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{server}/audit/")
    page.wait_for_selector("body[data-ready=true]", timeout=20_000)

    page.fill("#history-q", alice.member)
    page.click("#history-form button[type=submit]")
    page.wait_for_function(
        "addr => document.getElementById('history-summary').textContent.includes(addr)",
        arg=alice.member,
        timeout=10_000,
    )

    assert f"address={alice.member}" in page.url
    assert f"address {alice.member}" in page.inner_text("#history-summary")
    redemptions = sum(1 for r in book.redemptions if r.member == alice.member)
    assert page.locator("#history-table tbody tr[data-kind=redemption]").count() == redemptions
    issuance = page.locator("#history-table tbody tr[data-kind=issuance] td").all_inner_texts()
    assert issuance[5] == f"{alice.points:,}"
    assert page.get_attribute("#history-csv", "href") == (
        f"/v1/audit/history.csv?address={alice.member}"
    )
    page.close()


def _records(book: Book, **params: Any) -> list[dict[str, Any]]:
    response = book.gateway.client.get("/v1/audit/history", params={"limit": 500, **params})
    assert response.status_code == 200, response.text
    return list(response.json()["data"])


def _amounts(page: Any) -> list[int]:
    cells = page.locator("#history-table tbody tr td:nth-child(6)").all_inner_texts()
    return [int(text.replace(",", "")) for text in cells if text.strip()]


def test_history_shows_one_row_per_value_change_with_its_parts_as_details(
    book: Book, server: str, browser: Any
) -> None:
    """Summing the Amount column counts every point once: an issuance batch, the hub's
    relay notice and a burn are details of the change they belong to, not rows."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    expected_parts = {
        "relayed_transfer": ("token_transfer", "relayed_transfer"),
        "redemption": ("redemption", "token_burn"),
        "clawback": ("clawback", "token_burn"),
        "points_issued": ("issuance", "points_issued"),
    }
    for kind, (change_kind, part_kind) in expected_parts.items():
        tx = _records(book, kind=kind)[0]["tx_hash"]
        logs = _records(book, tx=tx)
        changes = [r for r in logs if r["kind"] in VALUE_CHANGE_KINDS]
        page.goto(f"{server}/audit/?tx={tx}")
        page.wait_for_selector("body[data-ready=true]", timeout=20_000)

        rows = page.locator("#history-table tbody tr")
        kinds = rows.evaluate_all("rows => rows.map(r => r.dataset.kind)")
        assert sorted(kinds) == sorted(r["kind"] for r in changes), (kind, kinds)
        assert not set(kinds) & set(VALUE_CHANGE_PARTS)
        assert sum(_amounts(page)) == sum(r["amount"] for r in changes)
        row = page.locator(f"#history-table tbody tr[data-kind={change_kind}]").first
        assert part_kind in (row.get_attribute("data-parts") or "").split()
        row.locator("details.parts summary").click()
        assert row.locator(f"details.parts li[data-kind={part_kind}]").is_visible()
        if change_kind == "token_transfer":
            assert row.locator(".kind").inner_text() == "transfer (relayed)"

    # the newest page of everything: the rows are the page's records less the parts
    page.goto(f"{server}/audit/")
    page.wait_for_selector("body[data-ready=true]", timeout=20_000)
    newest = _records(book, limit=25)
    changes = [r for r in newest if r["kind"] in VALUE_CHANGE_KINDS]
    assert page.locator("#history-table tbody tr").count() == sum(
        1 for r in newest if r["kind"] not in VALUE_CHANGE_PARTS
    )
    assert sum(_amounts(page)) == sum(r["amount"] for r in changes)
    page.close()


def test_the_page_fits_a_390_px_phone(book: Book, server: str, browser: Any) -> None:
    page = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=1)
    page.goto(f"{server}/audit/")
    page.wait_for_selector("body[data-ready=true]", timeout=20_000)

    width = page.evaluate("document.documentElement.scrollWidth")
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / "audit-page-390.png"), full_page=True)
    # what sticks out, outside the tables' own scrolling boxes (for the failure message)
    sticking_out = page.evaluate(
        """() => [...document.querySelectorAll("body *")]
          .filter((e) => e.getBoundingClientRect().right > 390.5 && !e.closest(".scroll"))
          .map((e) => `${e.tagName}#${e.id}.${e.className} ${e.getBoundingClientRect().right}`)"""
    )
    assert width <= 390, "\n".join(sticking_out)
    for selector in ("#net-status", "header nav a[href='#verification']", "#history-csv"):
        box = page.locator(selector).bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390, selector
    page.close()
