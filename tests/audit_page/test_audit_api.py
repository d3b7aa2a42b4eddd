"""``/v1/audit/...``: the audit page's JSON, read from the chain, against what the merchant
API answered while the history was made (``book``) and the contracts' own views."""

from __future__ import annotations

import csv
import io
import os
import threading
import time
from datetime import UTC, datetime
from typing import Any

from audit_page_kit import Book

from chain.artifacts import load_artifact
from chain.audit import ROLE_ARTIFACTS, VALUE_CHANGE_KINDS
from chain.deploy import operator_sender
from chain.devnet import rpc_call
from gateway.services.audit.view import AuditView
from tests.gateway.gateway_kit import Gateway, purchase

NAMES = ["Lumière Paris", "Sakura Goods"]
POINT_VALUE = 10_000  # USD 0.01 in micro-units: the deployment default, never changed here


def get(book: Book, path: str, **params: Any) -> Any:
    response = book.gateway.client.get(f"/v1/audit/{path}", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def view_of(gateway: Gateway) -> AuditView:
    view = gateway.client.app.state.audit_view
    assert isinstance(view, AuditView)
    return view


# ---------------------------------------------------------------- overview


def test_overview_totals_equal_the_confirmed_event_points_the_merchant_api_reported(
    book: Book,
) -> None:
    overview = get(book, "overview")
    token = book.gateway.context.link.network.token

    assert overview["total_supply"] == book.supply == token.total_supply()
    assert book.supply > 0 and book.clawed_back() > 0 and book.redeemed() >= 40
    supply = overview["supply"]
    assert supply["issued"] == book.issued()
    assert supply["redeemed"] == book.redeemed()
    assert supply["clawed_back"] == book.clawed_back()
    assert supply["ok"] is True and supply["mismatches"] == []
    assert overview["members"] == len(book.members) >= 4
    assert overview["holders"] == book.holders == len(book.members) - 1  # bob's were clawed back
    assert overview["ok"] is True and overview["anomalies"] == []
    assert overview["network"]["hub"] == book.gateway.context.link.deployment.hub


def test_overview_lists_each_merchant_with_the_hub_counters_of_its_booked_activity(
    book: Book,
) -> None:
    overview = get(book, "overview")

    assert overview["merchant_count"] == 2
    rows = {m["id"]: m for m in overview["merchants"]}
    assert [rows[m]["name"] for m in book.merchant_ids()] == NAMES
    for merchant_id in book.merchant_ids():
        assert rows[merchant_id]["status"] == "active"
        assert rows[merchant_id]["issued"] == book.issued(merchant_id)
        assert rows[merchant_id]["redeemed"] == book.redeemed(merchant_id)
        assert rows[merchant_id]["clawed_back"] == book.clawed_back(merchant_id)
        assert rows[merchant_id]["rule_version"] == 1


def test_overview_daily_series_add_up_to_the_booked_totals(book: Book) -> None:
    daily = get(book, "overview")["daily"]

    today = datetime.now(UTC).date().isoformat()
    assert daily[-1]["date"] == today  # anvil stamps blocks with the wall clock
    assert sum(d["issued"] for d in daily) == book.issued()
    assert sum(d["redeemed"] for d in daily) == book.redeemed()
    assert sum(d["clawed_back"] for d in daily) == book.clawed_back()


def test_report_is_the_cli_audit_report_at_the_audited_block(book: Book) -> None:
    report = get(book, "report")

    assert report["ok"] is True
    assert report["supply"]["total_supply"] == book.supply
    assert report["range"]["to_block"] == get(book, "overview")["block"]
    assert {m["merchant"] for m in report["settlement"]["merchants"]} == set(book.merchant_ids())


# ---------------------------------------------------------------- settlement


def test_settlement_rows_equal_each_merchants_booked_totals_valued_at_the_point_value(
    book: Book,
) -> None:
    settlement = get(book, "settlement")

    assert settlement["currency"] == "USD"
    assert settlement["point_value_micros"] == POINT_VALUE
    assert settlement["outstanding"] == book.supply
    rows = {m["merchant"]: m for m in settlement["merchants"]}
    assert set(rows) == set(book.merchant_ids())
    for index, merchant_id in enumerate(book.merchant_ids()):
        row = rows[merchant_id]
        net = book.issued(merchant_id) - book.redeemed(merchant_id) - book.clawed_back(merchant_id)
        assert row["name"] == NAMES[index]
        assert (row["issued"], row["redeemed"], row["clawed_back"]) == (
            book.issued(merchant_id),
            book.redeemed(merchant_id),
            book.clawed_back(merchant_id),
        )
        assert row["net"] == net
        assert row["net_value_micros"] == net * POINT_VALUE
        assert row["position"] == "owes the network"


def test_settlement_for_a_block_range_counts_only_what_was_confirmed_in_it(book: Book) -> None:
    purchases = [e for e in book.events if e.points > 0]
    cut = max(e.block_number or 0 for e in purchases[:4])  # the first settle: purchases only
    before = get(book, "settlement", to_block=cut)
    after = get(book, "settlement", from_block=cut + 1)

    early = {m["merchant"]: m for m in before["merchants"]}
    late = {m["merchant"]: m for m in after["merchants"]}
    assert before["to_block"] == cut and after["from_block"] == cut + 1
    for merchant_id in book.merchant_ids():
        issued_early = sum(
            e.points
            for e in book.events
            if e.merchant_id == merchant_id and (e.block_number or 0) <= cut
        )
        assert early[merchant_id]["issued"] == issued_early
        assert early[merchant_id]["redeemed"] == early[merchant_id]["clawed_back"] == 0
        assert early[merchant_id]["issued"] + late[merchant_id]["issued"] == book.issued(
            merchant_id
        )
        assert late[merchant_id]["redeemed"] == book.redeemed(merchant_id)
        assert late[merchant_id]["clawed_back"] == book.clawed_back(merchant_id)


def test_settlement_for_todays_date_range_covers_the_whole_history(book: Book) -> None:
    today = datetime.now(UTC).date().isoformat()
    by_date = get(book, "settlement", since=today, until=today)

    rows = {m["merchant"]: m for m in by_date["merchants"]}
    for merchant_id in book.merchant_ids():
        assert rows[merchant_id]["issued"] == book.issued(merchant_id)
        assert rows[merchant_id]["redeemed"] == book.redeemed(merchant_id)


def test_settlement_refuses_a_range_beyond_the_audited_block_or_mixing_blocks_and_dates(
    book: Book,
) -> None:
    client = book.gateway.client
    beyond = client.get("/v1/audit/settlement", params={"to_block": 10**9})
    mixed = client.get("/v1/audit/settlement", params={"from_block": 1, "since": "2026-01-01"})
    bad_date = client.get("/v1/audit/settlement", params={"since": "yesterday"})

    assert beyond.status_code == 422
    assert beyond.json()["error"]["code"] == "invalid_request"
    assert "beyond the audited block" in beyond.json()["error"]["message"]
    assert mixed.status_code == 422 and bad_date.status_code == 422


# ---------------------------------------------------------------- history


def test_history_by_member_address_lists_that_members_issuance_and_redemption(
    book: Book,
) -> None:
    alice = next(e for e in book.events if e.points > 0)
    history = get(book, "history", address=alice.member, limit=500)

    rows = history["data"]
    assert history["count"] == len(rows) > 0
    assert all(
        alice.member in {str(r.get(f) or "").lower() for f in ("member", "sender", "recipient")}
        for r in rows
    )
    issued = [r for r in rows if r["kind"] == "issuance"]
    redeemed = [r for r in rows if r["kind"] == "redemption"]
    assert sum(r["amount"] for r in issued) == alice.points
    booked = [r for r in book.redemptions if r.member == alice.member]
    assert sorted((r["amount"], r["tx_hash"]) for r in redeemed) == sorted(
        (r.amount, r.tx_hash) for r in booked
    )
    assert (40, book.redemptions[0].tx_hash) in {(r["amount"], r["tx_hash"]) for r in redeemed}
    blocks = [r["block"] for r in rows]
    assert blocks == sorted(blocks, reverse=True)  # newest first


def test_history_by_tx_hash_shows_what_the_refund_event_did_on_chain(book: Book) -> None:
    refund = next(e for e in book.events if e.clawback > 0)
    assert refund.tx_hash is not None
    rows = get(book, "history", tx=refund.tx_hash.upper().replace("0X", "0x"))["data"]

    assert {r["tx_hash"] for r in rows} == {refund.tx_hash}
    clawbacks = [r for r in rows if r["kind"] == "clawback"]
    assert len(clawbacks) == 1
    assert clawbacks[0]["amount"] == refund.clawback
    assert clawbacks[0]["member"].lower() == refund.member
    assert all(r["block"] == refund.block_number for r in rows)


def test_history_by_merchant_and_sequence_number_finds_that_events_issuance(book: Book) -> None:
    merchant_id = book.merchant_ids()[1]
    rows = get(book, "history", merchant=merchant_id, seq=0, kind="issuance")["data"]

    assert len(rows) == 1
    issuance = rows[0]
    assert issuance["merchant"] == merchant_id and issuance["seq"] == 0
    event = next(
        e for e in book.events if e.merchant_id == merchant_id and e.tx_hash == issuance["tx_hash"]
        and e.member == issuance["member"].lower()
    )  # fmt: skip
    assert issuance["amount"] == event.points


def test_history_lists_the_member_to_member_transfer_the_gateway_relayed(book: Book) -> None:
    rows = get(book, "history", kind="relayed_transfer")["data"]

    assert [(r["sender"].lower(), r["recipient"].lower(), r["amount"]) for r in rows] == (
        book.transfers
    )
    daily = get(book, "overview")["daily"]
    assert sum(d["transferred"] for d in daily) == sum(t[2] for t in book.transfers)


def test_history_pages_count_every_match_and_do_not_overlap(book: Book) -> None:
    first = get(book, "history", limit=3, offset=0)
    second = get(book, "history", limit=3, offset=3)
    everything = get(book, "history", limit=500)

    assert first["count"] == second["count"] == everything["count"] == len(everything["data"])
    keys = [(r["tx_hash"], r["log_index"], r["kind"]) for r in everything["data"]]
    page_keys = [(r["tx_hash"], r["log_index"], r["kind"]) for r in first["data"] + second["data"]]
    assert page_keys == keys[:6]


def test_history_refuses_a_malformed_address_with_a_machine_readable_error(book: Book) -> None:
    response = book.gateway.client.get("/v1/audit/history", params={"address": "0x1234"})

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_request"


def test_history_csv_has_one_row_per_matching_record(book: Book) -> None:
    alice = next(e for e in book.events if e.points > 0)
    response = book.gateway.client.get("/v1/audit/history.csv", params={"address": alice.member})

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == get(book, "history", address=alice.member)["count"]
    assert sum(int(r["amount"]) for r in rows if r["kind"] == "issuance") == alice.points
    assert list(rows[0])[:6] == ["block", "time", "tx_hash", "log_index", "contract", "kind"]


def test_history_csv_says_which_rows_are_value_changes(book: Book) -> None:
    """Summing the amounts of the value_change rows counts every point once."""
    response = book.gateway.client.get("/v1/audit/history.csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    changes = [r for r in rows if r["value_change"] == "true"]

    def total(kind: str) -> int:
        return sum(int(r["amount"]) for r in changes if r["kind"] == kind)

    assert total("issuance") == book.issued()
    assert total("redemption") == book.redeemed()
    assert total("clawback") == book.clawed_back()
    assert total("token_transfer") == sum(amount for _s, _t, amount in book.transfers)
    for row in rows:
        assert (row["value_change"] == "true") == (row["kind"] in VALUE_CHANGE_KINDS), row
    parts = {r["kind"] for r in rows if r["value_change"] == "false"}
    assert {"points_issued", "relayed_transfer", "token_burn"} <= parts


# ---------------------------------------------------------------- timeline


def test_timeline_shows_admissions_and_rule_sets_and_when_a_pending_change_takes_effect(
    book: Book,
) -> None:
    gw = book.gateway
    settings, network = gw.context.settings, gw.context.link.network
    admin = operator_sender(settings, gw.context.link.w3, "admin")
    call = network.hub.functions.setPointValue(12_500)
    data = call._encode_transaction_data()
    receipt = admin.transact(
        network.timelock.functions.schedule(
            network.hub.address, 0, data, b"\0" * 32, os.urandom(32), 86_400
        )
    )
    scheduled_at = int(gw.context.link.w3.eth.get_block(receipt["blockNumber"])["timestamp"])

    entries = get(book, "timeline")["data"]

    kinds = [(e["kind"], e["subject"]) for e in entries]
    for merchant_id in book.merchant_ids():
        assert ("merchant_added", f"merchant {merchant_id}") in kinds
        assert ("rule_set_published", f"merchant {merchant_id}") in kinds
    assert all(e["takes_effect"] for e in entries if e["kind"] != "call_scheduled")
    executed = [e for e in entries if e["kind"] == "call_scheduled" and e["status"] != "pending"]
    assert executed and all(e["effect"] == "in effect (executed)" for e in executed)
    pending = entries[-1]
    assert pending["kind"] == "call_scheduled" and pending["status"] == "pending"
    assert "setPointValue(microUnits=12500)" in pending["description"]
    expected = datetime.fromtimestamp(scheduled_at + 86_400, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert pending["takes_effect"] == expected
    assert pending["effect"].startswith("pending")


# ---------------------------------------------------------------- verification


def test_verification_finds_every_deployed_contract_built_from_the_committed_artifacts(
    book: Book,
) -> None:
    result = get(book, "verification")

    committed = result["committed"]
    assert committed["ok"] is True
    assert committed["reference"] == "committed artifacts"
    assert {c["role"]: c["ok"] for c in committed["contracts"]} == {
        "hub": True,
        "token": True,
        "badges": True,
        "timelock": True,
    }
    assert result["recompile"]["state"] == "idle"


def test_recompile_runs_in_the_background_and_reports_when_done(
    book: Book, monkeypatch: Any
) -> None:
    # A real solc run takes ~25 s (tests/audit covers it): here the compile step answers
    # with the committed artifacts after a pause, to test the job around it.
    def slow_compile(_root: Any) -> dict[str, Any]:
        time.sleep(0.5)
        return {name: load_artifact(name) for name in set(ROLE_ARTIFACTS.values())}

    monkeypatch.setattr("chain.verify.compile_contracts", slow_compile)
    client = book.gateway.client

    started = client.post("/v1/audit/verification/recompile")
    again = client.post("/v1/audit/verification/recompile")
    deadline = time.monotonic() + 20
    job = started.json()["recompile"]
    while job["state"] == "running" and time.monotonic() < deadline:
        time.sleep(0.1)
        job = client.get("/v1/audit/verification").json()["recompile"]

    assert started.status_code == 202 and started.json()["recompile"]["state"] == "running"
    assert again.json()["recompile"]["started_at"] == started.json()["recompile"]["started_at"]
    assert job["state"] == "done", job
    assert job["result"]["ok"] is True
    assert job["result"]["reference"].startswith("fresh compile of")
    assert len(job["result"]["contracts"]) == 4


# ---------------------------------------------------------------- incremental reading


def test_each_request_extends_the_cached_history_from_the_block_after_the_last_read(
    book: Book,
) -> None:
    gw = book.gateway
    before = get(book, "overview")
    view = view_of(gw)
    full_reads = view.full_reads
    event_id = book.post(0, purchase("erin", "E-1", "20.00"))
    book.settle()
    new_event = next(e for e in book.events if e.id == event_id)

    after = get(book, "overview")

    assert view.full_reads == full_reads  # never re-read from the start
    assert view.last_range is not None
    assert view.last_range[0] == before["block"] + 1
    assert view.last_range[1] == after["block"] >= (new_event.block_number or 0)
    assert after["total_supply"] == before["total_supply"] + new_event.points == book.supply
    erin = get(book, "history", address=new_event.member)
    assert [r["amount"] for r in erin["data"] if r["kind"] == "issuance"] == [new_event.points]


def test_concurrent_first_requests_read_the_history_once(book: Book) -> None:
    gw = book.gateway
    view = AuditView(gw.context.settings.rpc_url, gw.context.link.deployment.hub)
    results: list[int] = []
    barrier = threading.Barrier(8)

    def read() -> None:
        barrier.wait()
        results.append(view.snapshot().to_block)

    threads = [threading.Thread(target=read) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert len(results) == 8 and len(set(results)) == 1
    assert view.full_reads == 1


def test_a_changed_block_hash_makes_the_view_read_the_history_again(book: Book) -> None:
    gw = book.gateway
    url = gw.context.settings.rpc_url
    view = AuditView(url, gw.context.link.deployment.hub)
    view.snapshot()
    snapshot_id = rpc_call(url, "evm_snapshot")
    rpc_call(url, "evm_mine")
    extended = view.snapshot()
    assert (view.full_reads, view.extensions) == (1, 1)
    # Replace the block just read by another one (a one-block reorg), then go past it.
    assert rpc_call(url, "evm_revert", [snapshot_id]) is True
    rpc_call(url, "evm_mine", [extended.to_time + 7])
    rpc_call(url, "evm_mine")

    again = view.snapshot()

    assert view.full_reads == 2
    assert again.to_block == extended.to_block + 1
    assert again.records == extended.records  # empty blocks: the same history
