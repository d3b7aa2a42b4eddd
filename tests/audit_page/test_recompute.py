"""``pointsnet audit recompute`` on a merchant's export (``GET /v1/events/export``): an
honest disclosure checks out from the chain alone; a changed input, a proof of another
batch, a changed amount minted directly on chain and a line of another network are each
named, with exit code 1.

A gateway of its own (the history's mints are added to here)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from eth_utils import keccak
from typer.testing import CliRunner

from chain import merkle
from chain.deploy import operator_sender
from chain.devnet import rpc_call
from gateway.cli import app
from gateway.services.recompute import check_lines, parse_disclosures
from gateway.services.recompute.chain import read_facts
from tests.gateway.gateway_kit import Gateway, purchase, start_gateway

runner = CliRunner()


@pytest.fixture(scope="module")
def issued(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """Purchases of three customers at the first merchant, one refunded; settled."""
    for gateway in start_gateway(tmp_path_factory.mktemp("recompute")):
        for customer, order, amount in (("ann", "A-1", "120.00"), ("ben", "B-1", "45.50"),
                                        ("cat", "C-1", "300.00")):  # fmt: skip
            body = purchase(customer, order, amount)
            response = gateway.client.post("/v1/events", json=body, headers=gateway.headers())
            assert response.status_code == 202, response.text
        gateway.settle()
        refund = {
            "type": "refund",
            "customer_id": "ben",
            "occurred_at": "2026-11-21T10:00:00Z",
            "refund": {"order_id": "B-1"},
        }
        response = gateway.client.post("/v1/events", json=refund, headers=gateway.headers())
        assert response.status_code == 202, response.text
        gateway.settle()
        yield gateway


def export(gateway: Gateway) -> list[dict[str, Any]]:
    response = gateway.client.get("/v1/events/export", headers=gateway.headers())
    assert response.status_code == 200, response.text
    return [json.loads(line) for line in response.text.splitlines() if line.strip()]


def recompute(gateway: Gateway, lines: list[dict[str, Any]], path: Path, *args: str) -> Any:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    result = runner.invoke(
        app,
        ["audit", "recompute", "--rpc-url", gateway.context.settings.rpc_url, "--hub",
         gateway.context.link.network.hub.address, "--disclosure", str(path), "--json", *args],
    )  # fmt: skip
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code in (0, 1), result.output
    return result.exit_code, json.loads(result.stdout)


def errors(report: dict[str, Any]) -> list[tuple[str, str | None]]:
    return [(f["code"], f["ref"]) for f in report["findings"] if f["error"]]


def test_an_honest_export_checks_out(issued: Gateway, tmp_path: Path) -> None:
    lines = export(issued)
    assert {line["kind"] for line in lines} == {"issue", "clawback"}
    code, report = recompute(issued, lines, tmp_path / "honest.ndjson", "--require-all")
    assert (code, errors(report)) == (0, []), report
    merchant = issued.merchants[0].id
    assert report["merchants"] == [
        {"merchant": merchant, "checked": len(lines), "passed": len(lines)}
    ]


def test_a_changed_input_and_a_proof_of_another_batch_are_not_committed(
    issued: Gateway, tmp_path: Path
) -> None:
    lines = export(issued)
    first, other = lines[0], next(x for x in lines if x["tx_hash"] != lines[0]["tx_hash"])
    changed = dict(first)
    changed["input"] = first["input"].replace('"netted":0', '"netted":1')
    assert changed["input"] != first["input"]
    stale = dict(changed)  # the disclosed hash no longer matches
    changed["input_hash"] = "0x" + keccak(text=changed["input"]).hex()
    moved = dict(lines[1] if lines[1]["ref"] != first["ref"] else lines[2])
    moved["proof"], moved["root"] = other["proof"], other["root"]
    code, report = recompute(issued, [changed, moved], tmp_path / "changed.ndjson")
    assert code == 1
    assert sorted(errors(report)) == sorted(
        [("not_committed", first["ref"]), ("not_committed", moved["ref"])]
    )
    code, report = recompute(issued, [stale], tmp_path / "stale.ndjson")
    assert (code, errors(report)) == (1, [("input_hash_mismatch", first["ref"])])


def test_an_amount_the_rules_do_not_give_is_named(issued: Gateway, tmp_path: Path) -> None:
    honest = next(x for x in export(issued) if x["kind"] == "issue")
    ref = "0x" + os.urandom(32).hex()
    text = honest["input"].replace(honest["ref"], ref)
    input_hash = "0x" + keccak(text=text).hex()
    root = merkle.input_root([(ref, input_hash)])
    network = issued.context.link.network
    operator = operator_sender(issued.context.settings, issued.context.link.w3)
    event = issued.client.get(f"/v1/events/{honest['event_id']}", headers=issued.headers())
    member = event.json()["member_address"]
    version = json.loads(text)["rule_version"]
    url = issued.context.settings.rpc_url
    snapshot = rpc_call(url, "evm_snapshot")  # the forged mint goes after the test
    try:
        receipt = operator.transact(
            network.hub.issue_batch(
                honest["merchant_id"], version, 10**6, [bytes.fromhex(ref[2:])], [member],
                [honest["amount"] + 1], input_root=root,
            )
        )  # fmt: skip
        forged = dict(honest)
        tx_hash = "0x" + bytes(receipt["transactionHash"]).hex()
        forged.update(
            ref=ref, seq=10**6, amount=honest["amount"] + 1, input=text, input_hash=input_hash,
            proof=[], root="0x" + root.hex(), tx_hash=tx_hash, block=int(receipt["blockNumber"]),
        )  # fmt: skip
        code, report = recompute(issued, [forged], tmp_path / "forged.ndjson")
        assert (code, errors(report)) == (1, [("amount_mismatch", ref)])
    finally:
        assert rpc_call(url, "evm_revert", [snapshot]) is True


def test_bad_lines_and_another_network_are_named(issued: Gateway, tmp_path: Path) -> None:
    line = export(issued)[0]
    elsewhere = dict(line, hub="0x" + "12" * 20)
    path = tmp_path / "bad.ndjson"
    path.write_text("not json\n" + json.dumps(elsewhere) + "\n")
    result = runner.invoke(
        app,
        ["audit", "recompute", "--rpc-url", issued.context.settings.rpc_url, "--hub",
         issued.context.link.network.hub.address, "--disclosure", str(path), "--json"],
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    codes = sorted(code for code, _ref in errors(json.loads(result.stdout)))
    assert codes == ["bad_line", "wrong_network"]


def test_a_version_not_in_effect_and_another_rule_hash_are_named(issued: Gateway) -> None:
    """On facts the hub cannot produce (it refuses both): v1 in effect only later, and
    published under another hash."""
    lines, bad = parse_disclosures(json.dumps(line) for line in export(issued))
    assert bad == []
    blocks = [json.loads(line.input)["accepted_block"] for line in lines if line.input]
    network = issued.context.link.network
    facts = read_facts(issued.context.settings.rpc_url, network.hub.address, blocks)
    assert [f for f in check_lines(lines, bad, facts) if f.error] == []
    merchant = issued.merchants[0].id
    facts.admitted[merchant] = 2**40  # v1 takes effect long after every acceptance
    found = {(f.code, f.ref) for f in check_lines(lines, bad, facts) if f.error}
    assert found == {("version_not_in_effect", line.ref) for line in lines}

    facts = read_facts(issued.context.settings.rpc_url, network.hub.address, blocks)
    v1 = facts.rules[(merchant, 1)]
    facts.rules[(merchant, 1)] = replace(v1, hash="0x" + "00" * 32)
    found = {(f.code, f.ref) for f in check_lines(lines, bad, facts) if f.error}
    assert found == {("rule_hash_mismatch", line.ref) for line in lines}


def test_an_op_not_in_its_transaction_an_unreadable_input_and_a_wrong_block_time(
    issued: Gateway,
) -> None:
    raw = export(issued)
    first = raw[0]
    other_tx = next(x["tx_hash"] for x in raw if x["tx_hash"] != first["tx_hash"])
    moved = dict(first, tx_hash=other_tx)
    garbled = dict(raw[1], input="not an input")
    garbled["input_hash"] = "0x" + keccak(text="not an input").hex()
    lines, bad = parse_disclosures(json.dumps(x) for x in (moved, garbled, raw[2]))
    blocks = [json.loads(x["input"])["accepted_block"] for x in raw]
    network = issued.context.link.network
    facts = read_facts(issued.context.settings.rpc_url, network.hub.address, blocks)
    accepted = json.loads(raw[2]["input"])["accepted_block"]
    facts.block_times[accepted] += 1
    found = {(f.code, f.ref) for f in check_lines(lines, bad, facts) if f.error}
    assert found == {
        ("not_on_chain", first["ref"]),
        ("not_committed", garbled["ref"]),
        ("engine_error", garbled["ref"]),
        ("accepted_block_mismatch", raw[2]["ref"]),
    }
