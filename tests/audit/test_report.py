"""``pointsnet audit report`` against a recorded history: every figure the CLI prints is
compared with what the test booked while making the history (see conftest.Ledger) and
with the contracts' own views."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from audit_kit import (
    NAMES,
    NEW_VALUE,
    PENDING_DELAY,
    START_VALUE,
    VALUE_DELAY,
    Scenario,
    rule_text,
)
from eth_utils import keccak
from rich.console import Console
from rich.text import Text
from typer.testing import CliRunner

from chain.audit import (
    VALUE_CHANGE_PARTS,
    AuditLog,
    Issuance,
    Rpc,
    build_report,
    of_kind,
    replay_balances,
)
from chain.audit.cli import render_report
from chain.audit.supply import chain_state_at
from chain.cli import app

runner = CliRunner()


def audit(scenario: Scenario, *args: str) -> tuple[int, str, str]:
    """Run ``pointsnet audit <args>`` against the scenario's network: (exit, stdout, all)."""
    net = scenario.net
    result = runner.invoke(
        app, ["audit", *args, "--rpc-url", net.url, "--hub", net.hub], env={"COLUMNS": "200"}
    )
    return result.exit_code, result.stdout, result.output


def report_json(scenario: Scenario, *args: str) -> tuple[int, dict[str, Any]]:
    code, stdout, output = audit(scenario, "report", "--json", *args)
    assert code in (0, 1), output
    return code, json.loads(stdout)


def iso(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def money(micros: int) -> str:
    whole, frac = divmod(abs(micros), 1_000_000)
    return f"USD {whole:,}.{f'{frac:06d}'.rstrip('0').ljust(2, '0')}"


# ---------------------------------------------------------------- supply and settlement


def test_report_supply_invariant_holds_and_equals_the_booked_figures(scenario: Scenario) -> None:
    code, report = report_json(scenario)
    book = scenario.ledger
    supply = report["supply"]

    assert code == 0, report["anomalies"]
    assert report["ok"] is True
    assert supply["ok"] is True and supply["mismatches"] == []
    chain_supply = scenario.net.network.token.total_supply()
    assert supply["total_supply"] == chain_supply == book.supply
    assert supply["replayed_supply"] == book.supply
    assert (
        supply["issued"] == sum(book.issued.values()) == 100 + 50 + 25 + 10 + 20 + 300 + 5 + 7 + 8
    )
    assert supply["redeemed"] == sum(book.redeemed.values()) == 60 + 12
    assert supply["clawed_back"] == sum(book.clawed.values()) == 30
    assert supply["counters_net"] == book.supply
    assert supply["holders"] == 3
    by_name = {c["name"]: c for c in supply["checks"]}
    for merchant in (1, 2):
        counters = scenario.net.network.hub.merchant(merchant)
        assert by_name[f"merchant {merchant} issued"]["left"] == book.issued[merchant]
        assert by_name[f"merchant {merchant} issued"]["right"] == counters.issued
        assert by_name[f"merchant {merchant} redeemed"]["right"] == counters.redeemed
        assert by_name[f"merchant {merchant} clawed back"]["right"] == counters.clawed_back


def test_report_settles_each_merchant_at_the_point_value_of_each_event(
    scenario: Scenario,
) -> None:
    _code, report = report_json(scenario)
    book = scenario.ledger
    settlement = report["settlement"]

    assert settlement["currency"] == "USD"
    assert settlement["point_value_micros"] == NEW_VALUE
    assert settlement["outstanding"] == book.supply
    rows = {m["merchant"]: m for m in settlement["merchants"]}
    assert set(rows) == {1, 2}
    for merchant in (1, 2):
        row = rows[merchant]
        assert row["name"] == NAMES[merchant]
        assert row["issued"] == book.issued[merchant]
        assert row["redeemed"] == book.redeemed[merchant]
        assert row["clawed_back"] == book.clawed[merchant]
        assert row["net"] == book.net(merchant)
        assert row["issued_value_micros"] == book.issued_value[merchant]
        assert row["redeemed_value_micros"] == book.redeemed_value[merchant]
        assert row["net_value_micros"] == book.net_value(merchant)
        assert row["amount"] == money(book.net_value(merchant))
    # Merchant 1 issued 213 (205 at USD 0.01, 8 at USD 0.02), 12 were redeemed at it
    # (at USD 0.02) and 30 clawed back (at USD 0.01): it owes the network USD 1.67.
    assert rows[1]["net_value_micros"] == (205 - 30) * START_VALUE + (8 - 12) * NEW_VALUE
    assert rows[1]["position"] == "owes the network"
    assert rows[1]["amount"] == "USD 1.67"
    assert rows[2]["position"] == "owes the network"


def test_report_at_an_earlier_block_shows_the_history_up_to_that_block(
    scenario: Scenario,
) -> None:
    code, report = report_json(scenario, "--to-block", str(scenario.checkpoint_block))
    then = scenario.checkpoint

    assert code == 0, report["anomalies"]
    assert report["range"]["to_block"] == scenario.checkpoint_block
    supply = report["supply"]
    token = scenario.net.network.token
    assert supply["block"] == scenario.checkpoint_block
    assert supply["total_supply"] == token.total_supply(scenario.checkpoint_block) == then.supply
    assert supply["issued"] == sum(then.issued.values())
    assert supply["redeemed"] == 0 and supply["clawed_back"] == 0
    rows = {m["merchant"]: m for m in report["settlement"]["merchants"]}
    assert {m: rows[m]["issued"] for m in rows} == then.issued
    assert report["settlement"]["point_value_micros"] == START_VALUE


def test_report_for_a_time_range_counts_only_events_in_it(scenario: Scenario) -> None:
    since = iso(scenario.value_changed_time)
    code, report = report_json(scenario, "--since", since)
    after = scenario.after_value_change

    assert code == 0
    assert scenario.checkpoint_block < report["range"]["from_block"] <= scenario.value_changed_block
    rows = {m["merchant"]: m for m in report["settlement"]["merchants"]}
    for merchant in (1, 2):
        assert rows[merchant]["issued"] == after.issued[merchant]
        assert rows[merchant]["redeemed"] == after.redeemed[merchant]
        assert rows[merchant]["net_value_micros"] == after.net(merchant) * NEW_VALUE
    assert rows[1]["position"] == "owed by the network"  # 8 issued, 12 redeemed at it
    assert rows[1]["amount"] == money(4 * NEW_VALUE)
    # The supply invariant is still checked over the whole history.
    assert report["supply"]["total_supply"] == scenario.ledger.supply


def test_report_refuses_a_block_range_together_with_a_time_range(scenario: Scenario) -> None:
    code, _stdout, output = audit(scenario, "report", "--since", "2020-01-01", "--to-block", "5")
    assert code == 2
    assert "not both" in output


# ---------------------------------------------------------------- records and CSV


def test_csv_has_one_row_per_record_and_zips_every_issuance_with_its_mint(
    scenario: Scenario, tmp_path: Path
) -> None:
    out = tmp_path / "audit.csv"
    code, _stdout, output = audit(scenario, "report", "--csv", str(out), "--quiet")
    assert code == 0, output
    with out.open(newline="") as f:
        rows = list(csv.DictReader(f))
    history = AuditLog(Rpc(scenario.net.url), scenario.net.hub).read(scenario.end_block)

    assert len(rows) == len(history.records)
    for column in ("block", "tx_hash", "log_index", "time", "kind", "merchant", "member"):
        assert column in rows[0]
    issuances = [r for r in rows if r["kind"] == "issuance"]
    expected = scenario.ledger.items
    assert len(issuances) == len(expected) == 9
    for row, item in zip(issuances, expected, strict=True):
        assert int(row["merchant"]) == item.merchant
        assert int(row["seq"]) == item.seq
        assert row["member"].lower() == item.member
        assert int(row["amount"]) == item.amount
        assert row["ref"] == item.ref
        assert int(row["rule_version"]) == item.rule_version
        assert row["tx_hash"] == item.tx_hash
        assert row["time"].endswith("Z")
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["kind"]] = counts.get(row["kind"], 0) + 1
    for kind, n in scenario.ledger.counts.items():
        assert counts.get(kind) == n, kind
    assert counts.get("token_mint") is None  # every mint belongs to a PointsIssued


def test_csv_marks_one_value_change_per_change_and_every_part_has_its_own(
    scenario: Scenario, tmp_path: Path
) -> None:
    """Summing ``amount`` over the ``value_change`` rows counts every point once."""
    out = tmp_path / "audit.csv"
    code, _stdout, output = audit(scenario, "report", "--csv", str(out), "--quiet")
    assert code == 0, output
    with out.open(newline="") as f:
        rows = list(csv.DictReader(f))
    book = scenario.ledger

    changes = [r for r in rows if r["value_change"] == "true"]
    assert {r["value_change"] for r in rows} == {"true", "false"}
    assert {r["kind"] for r in changes} == {"issuance", "redemption", "clawback", "token_transfer"}

    def total(kind: str) -> int:
        return sum(int(r["amount"]) for r in changes if r["kind"] == kind)

    assert total("issuance") == sum(book.issued.values())
    assert total("redemption") == sum(book.redeemed.values())
    assert total("clawback") == sum(book.clawed.values())
    assert total("token_transfer") == 40  # the one relayed transfer, once
    by_tx: dict[str, list[dict[str, str]]] = {}
    for r in rows:
        by_tx.setdefault(r["tx_hash"], []).append(r)
    parts = [r for r in rows if r["kind"] in VALUE_CHANGE_PARTS]
    assert {r["kind"] for r in parts} == set(VALUE_CHANGE_PARTS)
    for part in parts:
        assert part["value_change"] == "false"
        owners = [
            r
            for r in by_tx[part["tx_hash"]]
            if r["value_change"] == "true" and r["kind"] in VALUE_CHANGE_PARTS[part["kind"]]
        ]
        if part["kind"] == "points_issued":  # the batch holds its issuances
            held = [r for r in owners if r["batch_log_index"] == part["log_index"]]
            assert sum(int(r["amount"]) for r in held) == int(part["amount"])
        elif part["kind"] == "clawback_inputs":  # commits the clawbacks just before it
            before = [r for r in owners if int(r["log_index"]) < int(part["log_index"])]
            assert len(before) >= int(part["count"]) > 0, part
        else:  # a relay notice or a burn states the same change as one owner
            assert any(r["amount"] == part["amount"] for r in owners), part


def test_replayed_balances_equal_each_members_balance_on_chain(scenario: Scenario) -> None:
    history = AuditLog(Rpc(scenario.net.url), scenario.net.hub).read()
    balances = replay_balances(history.records)
    token = scenario.net.network.token

    for who in scenario.members.values():
        assert balances[who.lower] == scenario.ledger.balances[who.lower]
        assert balances[who.lower] == token.balance_of(who.address)


def test_block_times_fetched_in_batches_equal_the_times_in_the_logs(scenario: Scenario) -> None:
    rpc = Rpc(scenario.net.url)
    from_logs = AuditLog(rpc, scenario.net.hub).read(scenario.end_block)
    from_blocks = AuditLog(rpc, scenario.net.hub, log_timestamps=False).read(scenario.end_block)

    assert from_blocks.records == from_logs.records
    assert from_logs.block_times[scenario.value_changed_block] == scenario.value_changed_time


def test_small_pages_read_the_same_records_as_large_ones(scenario: Scenario) -> None:
    rpc = Rpc(scenario.net.url)
    large = AuditLog(rpc, scenario.net.hub)
    small = AuditLog(rpc, scenario.net.hub, target_logs=3, initial_span=1)

    assert small.read(scenario.end_block).records == large.read(scenario.end_block).records
    assert small.requests > large.requests + 10


def test_issuance_records_carry_seq_rule_version_and_ref(scenario: Scenario) -> None:
    history = AuditLog(Rpc(scenario.net.url), scenario.net.hub).read()
    issued = of_kind(history.records, Issuance)

    assert [(i.merchant, i.seq, i.member, i.amount, i.ref, i.rule_version) for i in issued] == [
        (x.merchant, x.seq, x.member, x.amount, x.ref, x.rule_version)
        for x in scenario.ledger.items
    ]


# ---------------------------------------------------------------- rule timeline


def test_timeline_shows_timelock_operations_with_their_delay_and_outcome(
    scenario: Scenario,
) -> None:
    _code, report = report_json(scenario)
    timeline = report["timeline"]
    scheduled = [e for e in timeline if e["kind"] == "call_scheduled"]
    by_function = {e["description"]: e for e in scheduled}

    value = by_function[
        f"scheduled setPointValue(microUnits={NEW_VALUE}) with a {VALUE_DELAY}s delay"
    ]
    assert value["subject"] == "hub"
    assert value["ready_at"] == iso(scenario.value_schedule_time + VALUE_DELAY)
    assert value["status"] == f"executed at block {scenario.value_changed_block}"
    cancelled = by_function["scheduled setPointValue(microUnits=1) with a 0s delay"]
    assert cancelled["operation_id"] == scenario.cancelled_operation
    assert cancelled["status"].startswith("cancelled at block")
    pending = by_function[
        f"scheduled setMerchantCap(merchantId=2, capPerPeriod=1) with a {PENDING_DELAY}s delay"
    ]
    assert pending["operation_id"] == scenario.pending_operation
    assert pending["status"] == "pending"
    executed = [e["description"] for e in timeline if e["kind"] == "call_executed"]
    assert f"executed setPointValue(microUnits={NEW_VALUE})" in executed
    assert "executed reinstateMerchant(merchantId=2)" in executed


def test_timeline_shows_rule_sets_pauses_and_merchant_changes(scenario: Scenario) -> None:
    _code, report = report_json(scenario)
    changes = [(e["kind"], e["subject"], e["description"], e["block"]) for e in report["timeline"]]
    described = {(kind, subject, text) for kind, subject, text, _block in changes}

    rule_hash = "0x" + keccak(text=rule_text(1, 2)).hex()
    published = f"published rule set v2 {rule_hash} (in effect at once)"
    assert ("rule_set_published", "merchant 1", published) in described
    assert ("merchant_status_changed", "merchant 2", "status -> suspended") in described
    assert ("merchant_status_changed", "merchant 2", "status -> active") in described
    assert ("point_value_changed", "hub", "point value -> USD 0.02") in described
    assert (
        "merchant_added",
        "merchant 1",
        "admitted 'Shop One', signer "
        f"{scenario.net.merchant_signers[1].address}, cap 10,000 per period",
    ) in described
    pauses = {kind: block for kind, _s, _t, block in changes if kind in ("paused", "unpaused")}
    assert pauses == {"paused": scenario.paused_block, "unpaused": scenario.unpaused_block}


# ---------------------------------------------------------------- anomalies, terminal, defaults


def test_a_sequence_gap_fails_the_audit_and_names_the_missing_range(
    after_scenario: Scenario,
) -> None:
    net = after_scenario.net
    gap_start = after_scenario.next_seq[1]
    who = after_scenario.members["alice"]
    net.operator.transact(
        net.network.hub.issue_batch(1, 2, gap_start + 4, [b"\x01" * 32], [who.address], [1])
    )

    code, report = report_json(after_scenario)

    assert code == 1
    assert report["ok"] is False and report["supply"]["ok"] is True
    gaps = [a for a in report["anomalies"] if a["kind"] == "sequence_gap"]
    assert gaps == [
        {
            "kind": "sequence_gap",
            "message": f"merchant 1 never used sequence numbers {gap_start}..{gap_start + 3}",
            "block": None,
            "tx_hash": None,
            "log_index": None,
            "merchant": 1,
            "details": {"first_missing": gap_start, "last_missing": gap_start + 3},
        }
    ]


def test_terminal_report_prints_every_section(scenario: Scenario) -> None:
    code, stdout, output = audit(scenario, "report", "--quiet")

    assert code == 0, output
    for heading in ("Supply invariant", "Settlement", "Rule timeline", "no anomalies", "audit ok"):
        assert heading in stdout
    assert "owes the network USD 1.67" in stdout
    print(stdout)  # the report as an auditor sees it (pytest -s)


def test_a_piped_report_cuts_nothing(scenario: Scenario) -> None:
    """Saved or piped (stdout not a terminal, no COLUMNS), every cell and line is whole."""
    net = scenario.net
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    target = ["--rpc-url", net.url, "--hub", net.hub]
    piped = subprocess.run(
        [str(Path(sys.executable).parent / "pointsnet"), "audit", "report", "--quiet", *target],
        capture_output=True,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    _code, report = report_json(scenario)

    assert piped.returncode == 0, piped.stderr
    assert "…" not in piped.stdout
    c = report["network"]
    # the header line is one line, with every address whole
    assert f"hub {c['hub']} token {c['token']} badges {c['badges']}" in piped.stdout
    for check in report["supply"]["checks"]:
        line = next(row for row in piped.stdout.splitlines() if f" {check['name']} " in row)
        assert f"{check['left_label']} {check['left']:,}" in line, line
        assert f"{check['right_label']} {check['right']:,}" in line, line
    for merchant in report["settlement"]["merchants"]:
        assert merchant["name"] in piped.stdout


def test_a_narrow_terminal_folds_long_cells_instead_of_cutting_them(scenario: Scenario) -> None:
    rpc = Rpc(scenario.net.url)
    end = rpc.block_number()
    history = AuditLog(rpc, scenario.net.hub).read(end)
    report = build_report(history, chain_state_at(rpc, history.contracts, end), 0, end)
    screen = io.StringIO()

    render_report(report, history, Console(file=screen, width=80, force_terminal=True))

    text = Text.from_ansi(screen.getvalue()).plain
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= 80


def test_report_defaults_to_the_configured_node_and_recorded_deployment(
    scenario: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    net = scenario.net
    monkeypatch.setenv("POINTSNET_DATA_DIR", str(net.settings.data_path))
    monkeypatch.setenv("POINTSNET_RPC_URL", net.url)
    monkeypatch.setenv("POINTSNET_CHAIN_ID", str(net.anvil.chain_id))

    result = runner.invoke(app, ["audit", "report", "--json"])

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["network"]["hub"] == net.hub
    assert report["supply"]["total_supply"] == scenario.ledger.supply


def test_report_exits_2_when_the_node_is_unreachable() -> None:
    result = runner.invoke(
        app,
        [
            "audit",
            "report",
            "--rpc-url",
            "http://127.0.0.1:9",
            "--hub",
            "0x" + "11" * 20,
            "--quiet",
        ],
    )
    assert result.exit_code == 2
    assert "audit could not run" in result.output
