"""The product's main path, end to end: earn at one partner, spend at another."""

from __future__ import annotations

import time

import pytest
from gateway_kit import Gateway, purchase, redeem
from sqlalchemy import func, select

from gateway.models import ChainTx
from gateway.outbox import packing as packing_module


def test_purchase_is_confirmed_on_chain_with_its_tx_hash(gateway: Gateway) -> None:
    response = gateway.client.post(
        "/v1/events", json=purchase("alice", "A-1"), headers=gateway.headers()
    )
    assert response.status_code == 202, response.text
    event = response.json()
    assert event["status"] == "accepted"
    assert event["points"] > 0
    gateway.settle()
    confirmed = gateway.client.get(f"/v1/events/{event['id']}", headers=gateway.headers()).json()
    assert confirmed["status"] == "confirmed"
    assert confirmed["tx_hash"].startswith("0x") and confirmed["block_number"] > 0
    balance = gateway.context.link.network.token.balance_of(event["member_address"])
    assert balance == event["points"]
    member = gateway.client.get("/v1/members/alice", headers=gateway.headers()).json()
    assert member["balance"] == event["points"]
    assert member["pending_points"] == 0


def test_refund_claws_back_what_the_order_earned(gateway: Gateway) -> None:
    earned = gateway.client.post(
        "/v1/events", json=purchase("bob", "B-1", "50.00"), headers=gateway.headers()
    ).json()
    gateway.settle()
    token = gateway.context.link.network.token
    before = token.balance_of(earned["member_address"])
    refund = {
        "type": "refund",
        "customer_id": "bob",
        "occurred_at": "2026-11-21T10:00:00Z",
        "refund": {"order_id": "B-1"},
    }
    response = gateway.client.post("/v1/events", json=refund, headers=gateway.headers())
    assert response.status_code == 202, response.text
    assert response.json()["clawback"] == earned["points"]
    gateway.settle()
    assert token.balance_of(earned["member_address"]) == before - earned["points"]
    final = gateway.client.get(f"/v1/events/{response.json()['id']}", headers=gateway.headers())
    assert final.json()["status"] == "confirmed"


def test_points_earned_at_one_partner_are_redeemed_at_another(gateway: Gateway) -> None:
    earned = gateway.client.post(
        "/v1/events", json=purchase("carol", "C-1", "900.00"), headers=gateway.headers(0)
    ).json()
    gateway.settle()
    address = earned["member_address"]
    partner2 = gateway.merchants[1]
    response = redeem(gateway, 1, address, 100)  # a reward of partner 2, relayed for it
    gateway.settle()
    done = gateway.client.get(
        f"/v1/redemptions/{response.json()['id']}", headers=gateway.headers(1)
    ).json()
    assert done["status"] == "confirmed" and done["voucher_code"]
    token = gateway.context.link.network.token
    assert token.balance_of(address) == earned["points"] - 100
    merchant2 = gateway.context.link.network.hub.merchant(partner2.id)
    assert merchant2.redeemed == 100


def test_a_refund_of_spent_points_is_netted_from_the_next_earnings(gateway: Gateway) -> None:
    earned = gateway.client.post(
        "/v1/events", json=purchase("dave", "D-1", "300.00"), headers=gateway.headers(0)
    ).json()
    gateway.settle()
    address = earned["member_address"]
    token = gateway.context.link.network.token
    # dave spends all but 10 points at the other partner
    redeem(gateway, 1, address, earned["points"] - 10)
    gateway.settle()
    assert token.balance_of(address) == 10

    refund = {"type": "refund", "customer_id": "dave", "occurred_at": "2026-11-21T10:00:00Z",
              "refund": {"order_id": "D-1"}}  # fmt: skip
    gateway.client.post("/v1/events", json=refund, headers=gateway.headers(0))
    gateway.settle()
    assert token.balance_of(address) == 0
    owed = earned["points"] - 10
    member = gateway.client.get("/v1/members/dave", headers=gateway.headers(0)).json()
    assert member["owed_points"] == owed

    later = gateway.client.post(
        "/v1/events", json=purchase("dave", "D-2", "2000.00"), headers=gateway.headers(0)
    ).json()
    assert later["clawback"] == owed
    assert later["breakdown"][-1] == {
        "rule": "refund_shortfall", "points": -owed,
        "description": "netted against points an earlier refund could not claw back",
    }  # fmt: skip
    assert sum(line["points"] for line in later["breakdown"]) == later["points"]
    gateway.settle()
    assert token.balance_of(address) == later["points"]
    member = gateway.client.get("/v1/members/dave", headers=gateway.headers(0)).json()
    assert member["owed_points"] == 0


def test_refund_of_an_order_deep_in_a_large_issuance_batch_claws_back_its_points(
    gateway: Gateway,
) -> None:
    # Twelve orders go out in one issueBatch (two chunks of the batch's Merkle tree); the
    # refund of the eleventh proves its chunk, the second one, to the hub.
    earned = [
        gateway.client.post(
            "/v1/events", json=purchase(f"big-{i}", f"G-{i}", "40.00"), headers=gateway.headers()
        ).json()
        for i in range(12)
    ]
    gateway.settle()
    hashes = {
        gateway.client.get(f"/v1/events/{e['id']}", headers=gateway.headers()).json()["tx_hash"]
        for e in earned
    }
    assert len(hashes) == 1
    token = gateway.context.link.network.token
    target = earned[10]
    before = token.balance_of(target["member_address"])
    refund = {"type": "refund", "customer_id": "big-10", "occurred_at": "2026-11-21T10:00:00Z",
              "refund": {"order_id": "G-10"}}  # fmt: skip
    response = gateway.client.post("/v1/events", json=refund, headers=gateway.headers())
    assert response.status_code == 202, response.text
    gateway.settle()

    final = gateway.client.get(f"/v1/events/{response.json()['id']}", headers=gateway.headers())
    assert final.json()["status"] == "confirmed"
    assert token.balance_of(target["member_address"]) == before - target["points"]
    assert token.balance_of(earned[9]["member_address"]) == earned[9]["points"]


def test_a_worker_cycle_packs_for_a_bounded_time_then_follows_receipts(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under a steady inflow there is always another batch to pack: a cycle stops packing
    after PACK_SECONDS (but packs at least one batch), so confirmations keep flowing."""
    gateway.settle()
    for merchant in (0, 1):
        body = purchase(f"budget-{merchant}", f"BU-{merchant}", "10.00", currency="EUR")
        response = gateway.client.post("/v1/events", json=body, headers=gateway.headers(merchant))
        assert response.status_code == 202, response.text
    time.sleep(gateway.context.settings.batch_max_wait + 0.1)  # both batches are due
    monkeypatch.setattr(packing_module, "PACK_SECONDS", 0.0)
    before = issue_txs(gateway)
    assert gateway.worker._pack_issues()
    assert issue_txs(gateway) == before + 1  # one batch, then back to the receipts
    assert gateway.worker._pack_issues()
    assert issue_txs(gateway) == before + 2
    gateway.settle()


def issue_txs(gateway: Gateway) -> int:
    with gateway.context.sessions() as session:
        count = session.scalar(select(func.count(ChainTx.id)).where(ChainTx.kind == "issue"))
    return int(count or 0)
