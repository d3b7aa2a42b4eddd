"""``pointsnet audit rules`` against the recorded history: every merchant's rule-set
versions read from the chain alone (the texts the hub logged), with their checks, times,
statuses and diffs; a version published under a notice period, pending and then in
effect; and the mints of each kind in ``audit report``."""

from __future__ import annotations

import json
import os
from typing import Any

from audit_kit import NAMES, Scenario, rule_text
from eth_utils import keccak
from typer.testing import CliRunner

from chain.cli import app
from chain.contracts import MintKind
from chain.records import iso_time

runner = CliRunner()
NOTICE = 3_600


def audit(scenario: Scenario, *args: str) -> tuple[int, str, str]:
    """Run ``pointsnet audit <args>`` against the scenario's network: (exit, stdout, all)."""
    net = scenario.net
    result = runner.invoke(
        app, ["audit", *args, "--rpc-url", net.url, "--hub", net.hub], env={"COLUMNS": "200"}
    )
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.output


def rules_json(scenario: Scenario, *args: str) -> dict[str, Any]:
    code, stdout, output = audit(scenario, "rules", "--json", *args)
    assert code == 0, output
    data: dict[str, Any] = json.loads(stdout)
    return data


def test_each_merchants_versions_come_from_the_published_texts(scenario: Scenario) -> None:
    data = rules_json(scenario)
    assert data["ok"] is True and data["problems"] == []
    assert data["notice_seconds"] == 0
    merchants = {m["merchant"]: m for m in data["merchants"]}
    assert {m: merchants[m]["name"] for m in merchants} == NAMES

    v1, v2 = merchants[1]["versions"]
    assert [v1["text"], v2["text"]] == [rule_text(1, 1), rule_text(1, 2)]
    assert v2["hash"] == "0x" + keccak(text=rule_text(1, 2)).hex() == v2["computed_hash"]
    assert [v1["status"], v2["status"]] == ["superseded", "in_effect"]
    assert v2["effective_at"] == v2["time"] == v1["superseded_at"]  # no notice: at once
    assert v1["diff"] is None
    assert [line["text"] for line in v2["diff"]] == ["version: 1 → 2"]
    items = scenario.ledger.items
    for version in (v1, v2):
        under = [i for i in items if i.merchant == 1 and i.rule_version == version["version"]]
        assert version["issued"]["events"] == len(under)
        assert version["issued"]["points"] == sum(i.amount for i in under)
    (only,) = merchants[2]["versions"]
    assert only["status"] == "in_effect" and only["text"] == rule_text(2, 1)


def test_one_merchant_and_the_readable_output(scenario: Scenario) -> None:
    data = rules_json(scenario, "--merchant", "2")
    assert [m["merchant"] for m in data["merchants"]] == [2]

    code, stdout, output = audit(scenario, "rules", "--quiet", "--text")
    assert code == 0, output
    assert "v1 → v2" in stdout and "version: 1 → 2" in stdout
    assert rule_text(1, 2) in stdout
    assert "rules ok" in stdout

    code, _, output = audit(scenario, "rules", "--merchant", "9")
    assert code == 2 and "merchant 9 is not on this network" in output


def test_a_version_published_under_notice_is_pending_until_its_time(
    after_scenario: Scenario,
) -> None:
    net = after_scenario.net
    hub = net.network.hub
    net.admin(hub.set_rule_notice(NOTICE))
    receipt = net.operator.transact(hub.publish_rule_set(2, rule_text(2, 2)))
    published_at = int(net.w3.eth.get_block(receipt["blockNumber"])["timestamp"])

    data = rules_json(after_scenario, "--merchant", "2")
    assert data["notice_seconds"] == NOTICE
    v1, v2 = data["merchants"][0]["versions"]
    assert [v1["status"], v2["status"]] == ["in_effect", "pending"]
    assert data["merchants"][0]["pending_version"] == 2
    later = rules_json(after_scenario, "--merchant", "2", "--at", v2["effective_at"])
    assert [v["status"] for v in later["merchants"][0]["versions"]] == ["superseded", "in_effect"]
    assert v2["effective_at"] == later["merchants"][0]["versions"][0]["superseded_at"]
    assert v2["effective_at"] == iso_time(published_at + NOTICE)

    # the audit report's timeline says when it takes effect
    code, stdout, output = audit(after_scenario, "report", "--json")
    assert code == 0, output
    entries = [e for e in json.loads(stdout)["timeline"] if e["kind"] == "rule_set_published"]
    assert entries[-1]["ready_at"] == v2["effective_at"] and entries[-1]["status"] == "pending"

    net.travel(NOTICE)
    data = rules_json(after_scenario, "--merchant", "2")
    assert [v["status"] for v in data["merchants"][0]["versions"]] == ["superseded", "in_effect"]


def test_the_report_counts_mints_per_kind(after_scenario: Scenario) -> None:
    net = after_scenario.net
    alice = after_scenario.members["alice"]
    net.operator.transact(
        net.network.hub.issue_batch(
            1,
            0,
            after_scenario.next_seq[1],
            [os.urandom(32)],
            [alice.address],
            [3],
            kind=MintKind.ADJUSTMENT,
        )
    )
    code, stdout, output = audit(after_scenario, "report", "--json")
    assert code == 0, output
    kinds = json.loads(stdout)["mints_by_kind"]
    issued = after_scenario.ledger.items
    assert kinds["rule"] == {
        "batches": len({i.tx_hash for i in issued}),
        "events": len(issued),
        "points": sum(i.amount for i in issued),
    }
    assert kinds["adjustment"] == {"batches": 1, "events": 1, "points": 3}
