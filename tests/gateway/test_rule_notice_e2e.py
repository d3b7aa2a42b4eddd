"""Issue 15 end to end: a merchant's new rule set is published on chain with notice and
applies only from its effective time, on a real anvil, the real app and outbox worker.

The network is deployed with a notice of ``NOTICE`` seconds; the tests move the chain's
clock past it (``evm_increaseTime`` + ``evm_mine``) rather than wait. Each test starts
from a network whose latest rule set is in effect (``_settled_rules``), whatever ran
before it.
"""

from __future__ import annotations

import json
import secrets
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from eth_utils import keccak
from factories import database_for
from gateway_kit import Gateway, purchase, start_gateway
from hexbytes import HexBytes
from sqlalchemy import func, select
from typer.testing import CliRunner

from chain import merkle
from chain.decode import decode_logs
from chain.deploy import operator_sender
from chain.devnet import rpc_call
from chain.records import ClawbackCommitment as Commitment
from chain.records import IssuanceBatch, RuleSetPublication
from gateway.cli import app
from gateway.db import transaction
from gateway.models import ChainOp, ChainTx, RuleSetVersion
from gateway.rules.model import canonical_json, parse_rule_set, rule_set_hash

#: The network's rule notice: a new version applies this long after its publication.
NOTICE = 120


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def gateway(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    with database_for(request.param) as url:
        yield from start_gateway(
            tmp_path_factory.mktemp("notice"), database_url=url, rule_notice_seconds=NOTICE
        )


# ------------------------------------------------------------------ helpers


def _unix(value: Any) -> int:
    """An effective time as the API gives it (unix seconds or ISO 8601) in unix seconds."""
    if isinstance(value, int):
        return value
    return int(datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp())


def _chain_time(gateway: Gateway) -> int:
    return int(gateway.context.link.w3.eth.get_block("latest")["timestamp"])


def _warp_past(gateway: Gateway, when: int) -> None:
    """Move the chain's clock past ``when`` (one block mined there) and let the gateway's
    clock see that block."""
    rpc = gateway.worker.sender.rpc
    rpc.call("evm_increaseTime", [max(0, when - _chain_time(gateway)) + 1])
    rpc.call("evm_mine", [])
    assert _chain_time(gateway) > when
    refresh = getattr(gateway.context.clock, "refresh", None)
    if refresh is not None:
        refresh()
    assert gateway.context.clock.chain_head().timestamp > when


def _rules(gateway: Gateway, merchant: int = 0) -> dict[str, Any]:
    response = gateway.client.get("/v1/rules", headers=gateway.headers(merchant))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _settled_rules(gateway: Gateway, merchant: int = 0) -> dict[str, Any]:
    """Publish whatever is queued and move the clock past a pending version: the latest
    version is in effect (GET answers the version in effect and the one after it)."""
    gateway.settle()
    current = _rules(gateway, merchant)
    if current["upcoming"] is not None:
        _warp_past(gateway, _unix(current["upcoming"]["effective_at"]))
        current = _rules(gateway, merchant)
    assert current["status"] == "in_effect" and current["upcoming"] is None, current
    return current


def _pending(gateway: Gateway, merchant: int = 0) -> dict[str, Any]:
    """The version published and waiting for its effective time."""
    upcoming: dict[str, Any] = _rules(gateway, merchant)["upcoming"]
    assert upcoming is not None and upcoming["status"] == "published", upcoming
    return upcoming


def _put(gateway: Gateway, rules: dict[str, Any], earn_rate: int, merchant: int = 0) -> Any:
    return gateway.client.put(
        "/v1/rules", json={**rules, "earn_rate": str(earn_rate)}, headers=gateway.headers(merchant)
    )


def _buy(gateway: Gateway, amount: str = "100.00", merchant: int = 0) -> dict[str, Any]:
    """A purchase by a new customer (so bonuses and tier are the same every time)."""
    customer = f"notice-{uuid.uuid4().hex[:10]}"
    currency = ("EUR", "JPY")[merchant]  # the two merchants' home currencies
    body = purchase(customer, f"O-{customer}", amount, currency)
    response = gateway.client.post("/v1/events", json=body, headers=gateway.headers(merchant))
    assert response.status_code == 202, response.text
    event: dict[str, Any] = response.json()
    return event


def _base(event: dict[str, Any]) -> int:
    """The points an event earned from the earn rate alone."""
    return sum(line["points"] for line in event["breakdown"] if line["rule"] == "base")


def _issued_version(gateway: Gateway, event_id: str) -> int:
    """The rule version the chain's ``PointsIssued`` names for event ``event_id``."""
    with gateway.context.sessions() as session:
        tx = session.scalar(
            select(ChainTx)
            .join(ChainOp, ChainOp.tx_id == ChainTx.id)
            .where(ChainOp.event_id == event_id, ChainOp.kind == "issue")
        )
        assert tx is not None and tx.status == "confirmed"
        tx_hash = tx.tx_hash
    receipt = gateway.worker.sender.receipts([tx_hash])[0]
    assert receipt is not None
    records = decode_logs(gateway.context.link.network.emitters(), receipt.logs)
    [batch] = [r for r in records if isinstance(r, IssuanceBatch)]
    return batch.rule_version


# ------------------------------------------------------------------ the issue's flow


def test_a_new_rule_set_applies_from_its_effective_time_and_not_before(gateway: Gateway) -> None:
    current = _settled_rules(gateway)
    version, rules = current["version"], current["rules"]
    rate = int(float(rules["earn_rate"]))
    before = _buy(gateway)
    assert before["rule_version"] == version

    # PUT: 202, queued, with the effective time it can expect (head + notice, estimated).
    response = _put(gateway, rules, rate * 2)
    assert response.status_code == 202, response.text
    queued = response.json()
    assert queued["version"] == version + 1 and queued["status"] == "queued"
    estimated = _unix(queued["effective_at"])
    assert abs(estimated - (_chain_time(gateway) + NOTICE)) <= 5

    # Published: the exact effective time is the publication's block time + the notice.
    gateway.settle()
    answer = _rules(gateway)
    assert answer["version"] == version and answer["status"] == "in_effect"
    published = _pending(gateway)
    assert published["version"] == version + 1
    with gateway.context.sessions() as session:
        row = session.scalars(
            select(RuleSetVersion).where(
                RuleSetVersion.merchant_id == gateway.merchants[0].id,
                RuleSetVersion.version == version + 1,
            )
        ).one()
        assert row.published_block is not None and row.effective_at is not None
        block = gateway.context.link.w3.eth.get_block(row.published_block)
        assert row.effective_at == int(block["timestamp"]) + NOTICE
        effective_at, canonical = row.effective_at, row.canonical
    assert _unix(published["effective_at"]) == effective_at >= estimated - 5
    receipt = gateway.worker.sender.receipts([published["tx_hash"]])[0]
    assert receipt is not None
    [logged] = [
        r
        for r in decode_logs(gateway.context.link.network.emitters(), receipt.logs)
        if isinstance(r, RuleSetPublication)
    ]
    assert logged.text == canonical and logged.effective_at == effective_at

    # Before the effective time: the version before it, on the API and on chain.
    during = _buy(gateway)
    assert during["rule_version"] == version and _base(during) == _base(before)
    # No other change while one is pending.
    refused = _put(gateway, rules, rate * 3)
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"]["code"] == "rule_change_pending"
    gateway.settle()
    assert _issued_version(gateway, during["id"]) == version

    # From the effective time on: the new version.
    _warp_past(gateway, effective_at)
    switched = _rules(gateway)
    assert switched["version"] == version + 1 and switched["status"] == "in_effect"
    assert switched["upcoming"] is None
    after = _buy(gateway)
    assert after["rule_version"] == version + 1
    assert _base(before) > 0 and abs(_base(after) - 2 * _base(before)) <= 1  # each rounded
    gateway.settle()
    assert _issued_version(gateway, after["id"]) == version + 1
    for event in (before, during, after):
        final = gateway.client.get(f"/v1/events/{event['id']}", headers=gateway.headers()).json()
        assert final["status"] == "confirmed"
        balance = gateway.context.link.network.token.balance_of(event["member_address"])
        assert balance == event["points"]


def test_the_hub_refuses_an_issuance_under_a_version_not_in_effect_yet(gateway: Gateway) -> None:
    current = _settled_rules(gateway)
    rate = int(float(current["rules"]["earn_rate"]))
    assert _put(gateway, current["rules"], rate + 1).status_code == 202
    gateway.settle()
    pending = _pending(gateway)
    merchant_id = gateway.merchants[0].id
    hub = gateway.context.link.network.hub
    # Straight to the hub with the operator's key, past the gateway: mined, and reverted.
    sender = gateway.worker.sender
    call = hub.issue_batch(
        merchant_id, pending["version"], 10**9, [secrets.token_bytes(32)], [sender.address], [1]
    )
    signed = sender.sign(call.address, HexBytes(call._encode_transaction_data()), gas=500_000)
    sender.broadcast(signed)
    receipt = None
    for _ in range(100):
        receipt = sender.receipts([signed.hash])[0]
        if receipt is not None:
            break
        time.sleep(0.05)
    assert receipt is not None and not receipt.ok
    revert = sender.revert_reason(signed.hash, receipt.block)
    assert revert.name == "LoyaltyNetworkRuleVersionNotInEffect"
    assert int(revert.args_by_name["ruleVersion"]) == pending["version"]
    assert int(revert.args_by_name["effectiveAt"]) == _unix(pending["effective_at"])


# ------------------------------------------------------------------ the outbox's holds


def test_issuances_naming_a_version_not_in_effect_yet_wait_for_it(gateway: Gateway) -> None:
    current = _settled_rules(gateway)
    rate = int(float(current["rules"]["earn_rate"]))
    assert _put(gateway, current["rules"], rate + 1).status_code == 202
    gateway.settle()
    pending = _pending(gateway)
    event = _buy(gateway)
    # As if the accept path had chosen the pending version early: the hub refuses the
    # batch, and the outbox holds its issuance instead of failing it.
    with transaction(gateway.context.sessions) as session:
        op = session.scalars(
            select(ChainOp).where(ChainOp.event_id == event["id"], ChainOp.kind == "issue")
        ).one()
        op.rule_version = pending["version"]
        op_id = op.id
    for _ in range(3):
        gateway.worker.run_once()
    merchant_id = gateway.merchants[0].id
    assert (merchant_id, pending["version"]) in gateway.worker._version_holds
    with gateway.context.sessions() as session:
        held = session.get(ChainOp, op_id)
        assert held is not None and held.status == "pending" and held.seq is None
    _warp_past(gateway, _unix(pending["effective_at"]))
    gateway.settle()
    with gateway.context.sessions() as session:
        issued = session.get(ChainOp, op_id)
        assert issued is not None and issued.status == "confirmed"
    assert _issued_version(gateway, event["id"]) == pending["version"]


@pytest.mark.parametrize("where", ["simulated", "on chain"])
def test_a_rule_set_refused_during_the_notice_of_the_one_before_waits_for_it(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    current = _settled_rules(gateway)
    rate = int(float(current["rules"]["earn_rate"]))
    assert _put(gateway, current["rules"], rate + 1).status_code == 202
    gateway.settle()
    pending = _pending(gateway)
    # A version queued behind the pending one, past the gateway's 409 (a race): the hub
    # refuses it until the pending one is in effect; the outbox holds it, never fails it,
    # whether the refusal shows in its simulation or, mined, on chain.
    merchant_id = gateway.merchants[0].id
    rules = parse_rule_set({**current["rules"], "earn_rate": str(rate + 2)})
    text, digest = canonical_json(rules), "0x" + rule_set_hash(rules).hex()
    version = pending["version"] + 1
    with transaction(gateway.context.sessions) as session:
        failed_before = int(
            session.scalar(
                select(func.count(ChainTx.id)).where(
                    ChainTx.kind == "rule", ChainTx.status == "failed"
                )
            )
            or 0
        )
        session.add(
            RuleSetVersion(
                merchant_id=merchant_id, version=version, content=json.loads(text),
                canonical=text, hash=digest,
            )
        )  # fmt: skip
        op = ChainOp(
            merchant_id=merchant_id, kind="rule", member_address="0x" + "0" * 40, ref=digest,
            payload={"hash": digest, "version": version},
        )  # fmt: skip
        session.add(op)
        session.flush()
        op_id = op.id
    if where == "on chain":  # priced without a simulation: sent, mined, reverted
        monkeypatch.setattr(gateway.worker.sender, "estimate_gas", lambda *a, **k: 1_000_000)
    for _ in range(3):
        gateway.worker.run_once()
    assert op_id in gateway.worker._rule_holds
    with gateway.context.sessions() as session:
        held = session.get(ChainOp, op_id)
        assert held is not None and held.status == "pending" and held.tx_id is None
        failed = session.scalar(
            select(func.count(ChainTx.id)).where(ChainTx.kind == "rule", ChainTx.status == "failed")
        )
        assert failed == failed_before + (1 if where == "on chain" else 0)
    _warp_past(gateway, _unix(pending["effective_at"]))
    gateway.settle()
    with gateway.context.sessions() as session:
        row = session.scalars(
            select(RuleSetVersion).where(
                RuleSetVersion.merchant_id == merchant_id, RuleSetVersion.version == version
            )
        ).one()
        assert row.tx_hash is not None and row.effective_at is not None
        assert row.effective_at > _unix(pending["effective_at"])
    assert gateway.context.link.network.hub.merchant(merchant_id).rule_version == version


# ------------------------------------------------------------------ what a merchant discloses


def test_every_exported_issuance_is_proved_against_its_batchs_root_under_a_version_then_in_effect(
    gateway: Gateway, tmp_path: Path
) -> None:
    # The second merchant: the other tests here bend the first one's issuances by hand.
    current = _settled_rules(gateway, 1)
    events = [_buy(gateway, "12000", 1) for _ in range(3)]
    rate = int(float(current["rules"]["earn_rate"]))
    assert _put(gateway, current["rules"], rate + 1, 1).status_code == 202
    gateway.settle()
    events.append(_buy(gateway, "12000", 1))  # under the version in effect, the next published
    _warp_past(gateway, _unix(_pending(gateway, 1)["effective_at"]))
    events.append(_buy(gateway, "12000", 1))  # under the new one
    gateway.settle()
    merchant_id = gateway.merchants[1].id
    with gateway.context.sessions() as session:
        effective = {
            row.version: (row.effective_at or 0)
            for row in session.scalars(
                select(RuleSetVersion).where(RuleSetVersion.merchant_id == merchant_id)
            )
        }
    response = gateway.client.get("/v1/events/export", headers=gateway.headers(1))
    assert response.status_code == 200, response.text
    lines = [json.loads(line) for line in response.text.splitlines() if line]
    ours = {line["event_id"]: line for line in lines if line["kind"] == "issue"}
    assert {e["id"] for e in events} <= set(ours)
    roots: dict[str, str] = {}
    for line in lines:
        if line["input"] is None:
            continue
        # The input is the one committed: its hash, its leaf's path to the batch's root...
        assert "0x" + keccak(text=line["input"]).hex() == line["input_hash"]
        leaf = merkle.input_leaf(line["ref"], line["input_hash"])
        root = HexBytes(line["root"])
        assert merkle.verify(leaf, [HexBytes(p) for p in line["proof"]], root)
        # ... and the root the batch logged on chain.
        if line["tx_hash"] not in roots:
            receipt = gateway.worker.sender.receipts([line["tx_hash"]])[0]
            assert receipt is not None and receipt.ok
            logged = decode_logs(gateway.context.link.network.emitters(), receipt.logs)
            found = [r.input_root for r in logged if isinstance(r, IssuanceBatch | Commitment)]
            assert len(found) == 1
            roots[line["tx_hash"]] = found[0]
        assert roots[line["tx_hash"]] == line["root"]
        # The version it names was in effect when the event was accepted, by chain time.
        body = json.loads(line["input"])
        if line["kind"] == "issue" and body["part"] == "points":
            version, accepted = int(body["rule_version"]), int(body["accepted_at"])
            assert version == 1 or effective[version] <= accepted
            assert version + 1 not in effective or accepted < effective[version + 1]
    versions = [int(json.loads(ours[e["id"]]["input"])["rule_version"]) for e in events]
    assert versions == [current["version"]] * 4 + [current["version"] + 1]

    # The whole export checks out from the chain alone, every rule issuance disclosed.
    code, report = _recompute(gateway, lines, tmp_path / "export.ndjson", "--require-all")
    assert (code, _errors(report)) == (0, []), report

    # An input accepted under the old version, rewritten to name the new one and minted
    # straight through the hub once that one is in effect: the version was not in effect
    # when the input says the event was accepted.
    honest = ours[events[3]["id"]]
    old, new = current["version"], current["version"] + 1
    with gateway.context.sessions() as session:
        hashes = {
            row.version: row.hash
            for row in session.scalars(
                select(RuleSetVersion).where(RuleSetVersion.merchant_id == merchant_id)
            )
        }
    ref = "0x" + secrets.token_hex(32)
    text = (
        honest["input"]
        .replace(f'"rule_version":{old},', f'"rule_version":{new},')
        .replace(f'"rule_set_hash":"{hashes[old]}"', f'"rule_set_hash":"{hashes[new]}"')
        .replace(honest["ref"], ref)
    )
    assert json.loads(text)["rule_version"] == new and ref in text
    input_hash = "0x" + keccak(text=text).hex()
    forged_root = merkle.input_root([(ref, input_hash)])
    operator = operator_sender(gateway.context.settings, gateway.context.link.w3)
    member = events[3]["member_address"]
    snapshot = rpc_call(gateway.context.settings.rpc_url, "evm_snapshot")
    try:
        mined = operator.transact(
            gateway.context.link.network.hub.issue_batch(
                merchant_id, new, 10**6, [bytes.fromhex(ref[2:])], [member], [honest["amount"]],
                input_root=forged_root,
            )
        )  # fmt: skip
        forged = dict(honest)
        forged.update(
            ref=ref, seq=10**6, input=text, input_hash=input_hash, proof=[],
            root="0x" + forged_root.hex(), tx_hash="0x" + bytes(mined["transactionHash"]).hex(),
            block=int(mined["blockNumber"]),
        )  # fmt: skip
        code, report = _recompute(gateway, [forged], tmp_path / "forged.ndjson")
        assert code == 1 and ("version_not_in_effect", ref) in _errors(report), report
    finally:
        assert rpc_call(gateway.context.settings.rpc_url, "evm_revert", [snapshot]) is True


def _recompute(gateway: Gateway, lines: list[dict[str, Any]], path: Path, *args: str) -> Any:
    """``pointsnet audit recompute --json`` on ``lines``: (exit code, report)."""
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    result = CliRunner().invoke(
        app,
        ["audit", "recompute", "--rpc-url", gateway.context.settings.rpc_url, "--hub",
         gateway.context.link.network.hub.address, "--disclosure", str(path), "--json", *args],
    )  # fmt: skip
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code in (0, 1), result.output
    return result.exit_code, json.loads(result.stdout)


def _errors(report: dict[str, Any]) -> list[tuple[str, str | None]]:
    return [(f["code"], f["ref"]) for f in report["findings"] if f["error"]]
