"""The audit view's pure parts (no chain): daily series, query parsing, time ranges; and
how the gateway serves the page's files."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from audit_page_kit import Book

from chain.audit import Clawback, IssuanceBatch, Redemption
from gateway.errors import InvalidRequest
from gateway.services.audit.queries import HistoryQuery, parse_time
from gateway.services.audit.reports import daily_series

DAY = 86_400
T0 = int(datetime(2026, 11, 20, 12, tzinfo=UTC).timestamp())


def batch(time: int, amount: int) -> IssuanceBatch:
    return IssuanceBatch(1, 0, time, "0x01", "hub", "points_issued", 1, 1, 0, 1, amount, 1, amount)


def test_daily_series_sums_per_utc_day_and_fills_days_without_activity() -> None:
    records = [
        batch(T0, 100),
        batch(T0 + 3_600, 50),
        Redemption(2, 0, T0 + 2 * DAY, "0x02", "hub", "redemption", 1, "0xaa", 30, "0x", 0),
        Clawback(
            3,
            0,
            T0 + 2 * DAY + 60,
            "0x03",
            "hub",
            "clawback",
            1,
            "0xaa",
            2,
            0,
            "0x" + "03" * 32,
            10,
            10,
        ),
    ]

    series = daily_series(records)

    assert [d["date"] for d in series] == ["2026-11-20", "2026-11-21", "2026-11-22"]
    assert [d["issued"] for d in series] == [150, 0, 0]
    assert [d["redeemed"] for d in series] == [0, 0, 30]
    assert [d["clawed_back"] for d in series] == [0, 0, 10]
    assert daily_series([]) == []


def test_history_query_normalises_hashes_and_addresses_and_refuses_malformed_ones() -> None:
    query = HistoryQuery.parse(address=" 0xABCDEF0123456789ABCDEF0123456789ABCDEF01 ", kind="a, b")

    assert query.address == "0xabcdef0123456789abcdef0123456789abcdef01"
    assert query.kinds == ("a", "b") and query.newest_first
    for bad in (
        {"address": "0x12"},
        {"tx": "0x" + "g" * 64},
        {"order": "sideways"},
        {"from_block": 5, "to_block": 4},
    ):
        with pytest.raises(InvalidRequest):
            HistoryQuery.parse(**bad)


def test_a_bare_until_date_means_the_end_of_that_day() -> None:
    start = parse_time("2026-11-20")
    end = parse_time("2026-11-20", end_of_day=True)

    assert start == int(datetime(2026, 11, 20, tzinfo=UTC).timestamp())
    assert end == start + DAY - 1
    assert parse_time("2026-11-20T10:00:00Z") == start + 36_000
    with pytest.raises(InvalidRequest):
        parse_time("last tuesday")


def test_audit_without_a_slash_redirects_with_its_query_and_the_page_has_a_strict_csp(
    book: Book,
) -> None:
    client = book.gateway.client
    tx = "0x" + "ab" * 32

    redirect = client.get(f"/audit?tx={tx}", follow_redirects=False)
    page = client.get("/audit/")
    script = client.get("/audit/js/main.js")

    assert redirect.status_code == 308
    assert redirect.headers["location"] == f"/audit/?tx={tx}"
    assert page.status_code == 200 and "pointsnet audit" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]
    assert client.get("/audit/__init__.py").status_code == 404
