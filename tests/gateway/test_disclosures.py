"""Disclosure lines over a real anvil: ``GET /v1/events/export`` and ``pointsnet merchant
export`` give one line per confirmed issuance and clawback, whose input hashes to its
``input_hash`` and whose proof folds to the input root its batch logged on chain; one
merchant's lines only, resumable by cursor, not shadowed by ``GET /v1/events/{id}``."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from eth_utils import keccak
from gateway_kit import Gateway, purchase
from sqlalchemy import delete, select, update
from typer.testing import CliRunner

from chain import merkle
from chain.abi import ZERO32
from chain.decode import decode_logs
from chain.records import ClawbackCommitment, IssuanceBatch
from gateway.cli import app as cli
from gateway.models import ChainOp, IssuanceInput
from gateway.rules.disclosure import decode_input
from gateway.services import disclosures


def export(gateway: Gateway, merchant: int = 0, **params: Any) -> list[dict[str, Any]]:
    """The merchant's export, parsed line by line."""
    headers = {"Authorization": gateway.headers(merchant)["Authorization"]}
    response = gateway.client.get("/v1/events/export", params=params, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/x-ndjson")
    return [json.loads(text) for text in response.text.splitlines()]


def logged_root(gateway: Gateway, tx_hash: str) -> str:
    """The input root transaction ``tx_hash`` logged on chain."""
    receipt = gateway.worker.sender.receipts([tx_hash])[0]
    assert receipt is not None and receipt.ok
    logged = decode_logs(gateway.context.link.network.emitters(), receipt.logs)
    [root] = [r.input_root for r in logged if isinstance(r, IssuanceBatch | ClawbackCommitment)]
    return str(root)


def assert_proves(gateway: Gateway, line: dict[str, Any]) -> None:
    """``line``'s input hashes to its hash, and its leaf + proof give the logged root."""
    link = gateway.context.link
    assert (line["disclosure"], line["chain_id"]) == (1, link.chain_id)
    assert line["hub"] == link.network.hub.address
    if line["input"] is not None:
        assert line["input_hash"] == "0x" + keccak(text=line["input"]).hex()
    leaf = merkle.input_leaf(line["ref"], line["input_hash"] or ZERO32)
    proof = [bytes.fromhex(node[2:]) for node in line["proof"]]
    assert merkle.verify(leaf, proof, bytes.fromhex(line["root"][2:]))
    assert line["root"] == logged_root(gateway, line["tx_hash"])


def earn(gateway: Gateway, customer: str, merchant: int = 0, amount: str = "40.00") -> str:
    """A purchase's event id (not settled)."""
    body = purchase(customer, f"o-{uuid.uuid4().hex[:8]}", amount)
    response = gateway.client.post("/v1/events", json=body, headers=gateway.headers(merchant))
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def test_every_line_proves_its_input_against_the_root_its_batch_logged(gateway: Gateway) -> None:
    customers = [f"disc-{uuid.uuid4().hex[:6]}" for _ in range(3)]
    bodies = [purchase(c, f"O-{c}", "40.00") for c in customers]
    events = []
    for body in bodies:
        response = gateway.client.post("/v1/events", json=body, headers=gateway.headers())
        assert response.status_code == 202, response.text
        events.append(response.json()["id"])
    other = earn(gateway, f"disc-other-{uuid.uuid4().hex[:6]}", merchant=1)
    gateway.settle()
    refund = {
        "type": "refund",
        "customer_id": customers[0],
        "occurred_at": "2026-11-21T10:00:00Z",
        "refund": {"order_id": f"O-{customers[0]}"},
    }
    refunded = gateway.client.post("/v1/events", json=refund, headers=gateway.headers())
    assert refunded.status_code == 202, refunded.text
    events.append(refunded.json()["id"])
    gateway.settle()

    lines = export(gateway)
    mine = [line for line in lines if line["event_id"] in events]
    assert {line["kind"] for line in mine} == {"issue", "clawback"}
    assert {line["event_id"] for line in mine} == set(events)
    assert [line["op_id"] for line in lines] == sorted(line["op_id"] for line in lines)
    for line in mine:
        assert_proves(gateway, line)
        decoded = decode_input(line["input"])
        assert decoded.stamp.ref == line["ref"] and decoded.stamp.part == line["part"]
        assert decoded.stamp.merchant_id == line["merchant_id"] == gateway.merchants[0].id
    # One merchant's lines only, each way.
    assert all(line["merchant_id"] == gateway.merchants[0].id for line in lines)
    theirs = export(gateway, merchant=1)
    assert other in {line["event_id"] for line in theirs}
    assert not {line["ref"] for line in theirs} & {line["ref"] for line in lines}
    for line in theirs:
        assert_proves(gateway, line)


def test_export_is_its_own_route_and_needs_the_merchant_key(gateway: Gateway) -> None:
    assert gateway.client.get("/v1/events/export").status_code == 401
    wrong = {"Authorization": "Bearer pn_live_nothing"}
    assert gateway.client.get("/v1/events/export", headers=wrong).status_code == 401
    unknown = gateway.client.get("/v1/events/no-such-event", headers=gateway.headers())
    assert unknown.status_code == 404
    for after in (-1, 2**31, 2**64):
        bad = gateway.client.get(
            "/v1/events/export", params={"after": after}, headers=gateway.headers()
        )
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_request"


def test_pages_cursor_and_time_bounds_cut_the_same_lines(gateway: Gateway) -> None:
    for _ in range(3):
        earn(gateway, f"page-{uuid.uuid4().hex[:6]}")
    gateway.settle()
    full = export(gateway)
    assert len(full) >= 4
    network = disclosures.Network.of(gateway.context)
    scope = disclosures.Scope(merchant_id=gateway.merchants[0].id)
    paged = list(disclosures.lines(gateway.context.sessions, network, scope, page_size=2))
    assert paged == full
    assert export(gateway, after=full[1]["op_id"]) == full[2:]
    assert export(gateway, after=full[-1]["op_id"]) == []
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert export(gateway, since=later) == []
    assert export(gateway, until=later) == full
    earlier = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    assert export(gateway, until=earlier) == []


def test_an_erased_input_is_withheld_and_its_hash_still_proves(gateway: Gateway) -> None:
    event = earn(gateway, f"erase-{uuid.uuid4().hex[:6]}")
    gateway.settle()
    with gateway.context.sessions.begin() as session:
        session.execute(delete(IssuanceInput).where(IssuanceInput.event_id == event))
    [line] = [line for line in export(gateway) if line["event_id"] == event]
    assert line["input"] is None and line["erased"] is True
    assert line["reason"] == disclosures.ERASED and line["input_hash"] is not None
    assert_proves(gateway, line)


def test_an_op_without_a_kept_input_commits_the_zero_hash_and_says_so(gateway: Gateway) -> None:
    event = earn(gateway, f"old-{uuid.uuid4().hex[:6]}")
    # As an op accepted before inputs were kept (migration 0008): no hash, no input.
    with gateway.context.sessions.begin() as session:
        session.execute(delete(IssuanceInput).where(IssuanceInput.event_id == event))
        session.execute(update(ChainOp).where(ChainOp.event_id == event).values(input_hash=None))
    gateway.settle()
    [line] = [line for line in export(gateway) if line["event_id"] == event]
    assert (line["input"], line["input_hash"], line["part"]) == (None, None, None)
    assert line["reason"] == disclosures.BEFORE_INPUTS and "erased" not in line
    assert_proves(gateway, line)


def test_merchant_export_writes_the_lines_the_api_streams(
    gateway: Gateway, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    earn(gateway, f"cli-{uuid.uuid4().hex[:6]}", merchant=1)
    gateway.settle()
    settings = gateway.context.settings
    monkeypatch.setattr("gateway.cli.common.get_settings", lambda: settings)
    runner = CliRunner()
    one, every = tmp_path / "one.ndjson", tmp_path / "all.ndjson"
    merchant = str(gateway.merchants[1].id)
    result = runner.invoke(cli, ["merchant", "export", merchant, "--out", str(one)])
    assert result.exit_code == 0, result.output
    assert [json.loads(t) for t in one.read_text().splitlines()] == export(gateway, merchant=1)
    result = runner.invoke(cli, ["merchant", "export", "--all", "--out", str(every)])
    assert result.exit_code == 0, result.output
    written = [json.loads(t) for t in every.read_text().splitlines()]
    both = export(gateway, merchant=0) + export(gateway, merchant=1)
    assert sorted(written, key=lambda line: line["op_id"]) == sorted(
        both, key=lambda line: line["op_id"]
    )
    with gateway.context.sessions() as session:
        confirmed = session.scalar(
            select(ChainOp.id)
            .where(ChainOp.status == "confirmed", ChainOp.kind.in_(disclosures.KINDS))
            .order_by(ChainOp.id.desc())
        )
    assert written and max(line["op_id"] for line in written) == confirmed
    neither = runner.invoke(cli, ["merchant", "export", "--out", str(one)])
    assert neither.exit_code != 0
