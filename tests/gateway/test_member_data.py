"""What a member can get about themselves from the wallet over a real anvil: one history
entry's disclosure line with the rule version it was computed under
(``GET /v1/wallet/entries/{op_id}/proof``) and every line of theirs
(``GET /v1/wallet/disclosure``), each proving against the root its batch logged."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from typing import Any

from gateway_kit import Gateway, purchase, redeem
from sqlalchemy import select
from test_disclosures import assert_proves, export

from gateway.models import (
    Base,
    ChainOp,
    Erasure,
    Member,
    RuleSetVersion,
    WebhookDelivery,
)
from gateway.rules import explain
from gateway.services import disclosures, privacy
from gateway.services.reconcile import reconcile


def wallet_of(gateway: Gateway, customer: str, merchant: int = 0) -> dict[str, str]:
    """A custodial wallet session's headers for a merchant's customer (login link)."""
    url = gateway.client.post(
        f"/v1/members/{customer}/login-link", headers=gateway.headers(merchant)
    ).json()["url"]
    response = gateway.client.post("/v1/wallet/login-link", json={"token": url.split("#login=")[1]})
    assert response.status_code == 200, response.text
    gateway.client.cookies.clear()
    return {"Authorization": f"Bearer {response.json()['token']}"}


def earned_and_refunded(gateway: Gateway, **extra: object) -> tuple[str, dict[str, str]]:
    """A customer with two confirmed purchases (``extra`` fields in each), one refunded;
    (customer, wallet headers).  Order ids do not contain the customer id."""
    customer = f"md-{uuid.uuid4().hex[:8]}"
    orders = [f"ord-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    for order in orders:
        body = {**purchase(customer, order, "60.00"), **extra}
        response = gateway.client.post("/v1/events", json=body, headers=gateway.headers())
        assert response.status_code == 202, response.text
    gateway.settle()
    refund = {
        "type": "refund",
        "customer_id": customer,
        "occurred_at": "2026-11-21T10:00:00Z",
        "refund": {"order_id": orders[0]},
    }
    response = gateway.client.post("/v1/events", json=refund, headers=gateway.headers())
    assert response.status_code == 202, response.text
    gateway.settle()
    return customer, wallet_of(gateway, customer)


def own_lines(gateway: Gateway, wallet: dict[str, str]) -> list[dict[str, Any]]:
    response = gateway.client.get("/v1/wallet/disclosure", headers=wallet)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/x-ndjson")
    return [json.loads(text) for text in response.text.splitlines()]


def test_an_entry_s_proof_is_its_line_and_the_rules_it_was_computed_under(
    gateway: Gateway,
) -> None:
    _, wallet = earned_and_refunded(gateway)
    history = gateway.client.get("/v1/wallet/history", headers=wallet).json()["data"]
    entries = [e for e in history if e["kind"] in ("issue", "clawback")]
    assert sorted(e["kind"] for e in entries) == ["clawback", "issue", "issue"]
    merchant_id = gateway.merchants[0].id
    with gateway.context.sessions() as session:
        v1 = session.scalars(
            select(RuleSetVersion).where(
                RuleSetVersion.merchant_id == merchant_id, RuleSetVersion.version == 1
            )
        ).one()
    for entry in entries:
        response = gateway.client.get(f"/v1/wallet/entries/{entry['id']}/proof", headers=wallet)
        assert response.status_code == 200, response.text
        body = response.json()
        line = body["line"]
        assert (line["op_id"], line["kind"], line["tx_hash"]) == (
            entry["id"], entry["kind"], entry["tx_hash"]
        )  # fmt: skip
        assert line["part"] == ("points" if entry["kind"] == "issue" else "clawback")
        assert line["input"] is not None and line["reason"] is None and not line["erased"]
        assert_proves(gateway, line)
        assert body["rules"]["version"] == 1 and body["rules"]["hash"] == v1.hash
        assert body["rules"]["superseded_at"] is None
        keys = [clause["key"] for clause in body["explanation"]]
        assert set(keys) <= explain.KEYS
        if entry["kind"] == "issue":  # 60.00 EUR at 1 point per USD, through the FX rate
            [base] = [c["params"] for c in body["explanation"] if c["key"] == "why.base_fx"]
            assert base["currency"] == "EUR" and Decimal(str(base["order_amount"])) == 60


def test_an_entry_of_another_member_or_of_no_issuance_is_not_found(gateway: Gateway) -> None:
    _, wallet = earned_and_refunded(gateway)
    _, other = earned_and_refunded(gateway)
    theirs = gateway.client.get("/v1/wallet/history", headers=other).json()["data"][0]["id"]
    for op_id in (theirs, 2**31 - 1):
        response = gateway.client.get(f"/v1/wallet/entries/{op_id}/proof", headers=wallet)
        assert response.status_code == 404, response.text
        assert response.json()["error"]["code"] == "not_found"
    assert gateway.client.get(f"/v1/wallet/entries/{theirs}/proof").status_code == 401
    assert gateway.client.get("/v1/wallet/entries/0/proof", headers=wallet).status_code == 422


def test_a_member_s_disclosure_is_their_lines_and_only_theirs(gateway: Gateway) -> None:
    _, wallet = earned_and_refunded(gateway)
    _, other = earned_and_refunded(gateway)
    lines = own_lines(gateway, wallet)
    assert sorted(line["kind"] for line in lines) == ["clawback", "issue", "issue"]
    for line in lines:
        assert_proves(gateway, line)
    # The very lines of the merchant's export, and none of another member's.
    exported = {line["op_id"]: line for line in export(gateway)}
    assert all(exported[line["op_id"]] == line for line in lines)
    theirs = {line["op_id"] for line in own_lines(gateway, other)}
    assert len(theirs) == 3 and not theirs & {line["op_id"] for line in lines}
    assert gateway.client.get("/v1/wallet/disclosure").status_code == 401


def test_openapi_documents_the_member_s_proof_and_disclosure(gateway: Gateway) -> None:
    paths = gateway.client.get("/openapi.json").json()["paths"]
    for path in ("/v1/wallet/entries/{op_id}/proof", "/v1/wallet/disclosure", "/v1/events/export"):
        operation = paths[path]["get"]
        assert operation.get("description"), path
        assert "422" in operation["responses"] and "401" in operation["responses"], path
    assert (
        "application/x-ndjson"
        in paths["/v1/wallet/disclosure"]["get"]["responses"]["200"]["content"]
    )


def test_a_member_gets_everything_held_about_them_and_no_secret(gateway: Gateway) -> None:
    customer, wallet = earned_and_refunded(gateway, birth_month=7)
    response = gateway.client.get("/v1/wallet/data", headers=wallet)
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["member"]["birth_month"] == 7 and data["claimed"] == []
    assert [link["customer_id"] for link in data["links"]] == [customer]
    assert len(data["events"]) == 3 and all(e["customer_id"] == customer for e in data["events"])
    assert all(e["payload"]["customer_id"] == customer for e in data["events"])
    assert sorted(i["part"] for i in data["inputs"]) == ["clawback", "points", "points"]
    assert data["counters"] and data["sessions"] and data["erasures"] == []
    for secret in privacy.SECRET_COLUMNS:
        assert f'"{secret}"' not in response.text
    assert gateway.client.get("/v1/wallet/data").status_code == 401


def test_erasure_leaves_no_personal_data_and_the_member_still_redeems(gateway: Gateway) -> None:
    device, ip = f"dev-{uuid.uuid4().hex}", f"198.51.100.{uuid.uuid4().int % 250}"
    customer, wallet = earned_and_refunded(gateway, birth_month=3, device_id=device, ip=ip)
    me = gateway.client.get("/v1/wallet/me", headers=wallet).json()
    address, balance = me["address"], me["balance"]
    assert balance > 0
    held = gateway.client.get("/v1/wallet/data", headers=wallet).json()
    kept_order = next(e["order_id"] for e in held["events"] if e["clawback"] == 0 and e["points"])
    with gateway.context.sessions.begin() as session:  # a webhook queued about the customer
        payload = {"event": {"id": "e-1", "customer_id": customer, "points": 5}}
        merchant_id = gateway.merchants[0].id
        session.add(WebhookDelivery(merchant_id=merchant_id, event_type="t", payload=payload))
    refused = gateway.client.request("DELETE", "/v1/wallet/data", json={}, headers=wallet)
    assert refused.status_code == 422
    response = gateway.client.request(
        "DELETE", "/v1/wallet/data", json={"confirm": "erase"}, headers=wallet
    )
    assert response.status_code == 200, response.text
    counts = response.json()["counts"]
    assert counts["issuance_inputs"] == 3 and counts["customer_links"] == 1
    assert counts["events"] == 3 and counts["wallet_sessions"] >= 1
    assert counts["webhook_deliveries"] == 1
    assert gateway.client.get("/v1/wallet/me", headers=wallet).status_code == 401
    # No table holds the customer id, the device or the address of the request any more.
    with gateway.context.sessions() as session:
        for table in Base.metadata.sorted_tables:
            text = json.dumps([list(r) for r in session.execute(table.select())], default=str)
            for secret in (customer, device, ip):
                assert secret not in text, (table.name, secret)
        member = session.scalars(select(Member).where(Member.address == address)).one()
        assert member.birth_month is None and member.key_customer_id is None
        assert member.key_enc
        erasure = session.scalars(select(Erasure).where(Erasure.member_address == address)).one()
        assert erasure.counts == counts
    # Chain facts stay: the lines are still there, withheld, and still prove.
    mine = [line for line in export(gateway) if line["ref"] in _refs(gateway, address)]
    assert len(mine) == 3
    for line in mine:
        assert line["input"] is None and line["erased"] is True
        assert line["reason"] == disclosures.ERASED
        assert_proves(gateway, line)
    # The custodial member still signs: a redemption of part of the balance confirms.
    redeem(gateway, 0, address, 1)
    gateway.settle()
    assert gateway.context.link.network.token.balance_of(address) == balance - 1
    # The database and the chain still agree.
    report = reconcile(gateway.context)
    assert report.ok, report
    # A refund of an order from before the erasure finds no purchase: the link is gone.
    refund = {
        "type": "refund",
        "customer_id": customer,
        "occurred_at": "2026-11-22T10:00:00Z",
        "refund": {"order_id": kept_order},
    }
    late = gateway.client.post("/v1/events", json=refund, headers=gateway.headers())
    assert late.status_code == 422, late.text
    error = late.json()["error"]
    assert (error["code"], error["details"]["reason"]) == ("event_rejected", "refund_unknown_order")
    # The customer may come back: a new purchase links them again, to the same account.
    again = purchase(customer, f"ord-{uuid.uuid4().hex[:8]}", "20.00")
    response = gateway.client.post("/v1/events", json=again, headers=gateway.headers())
    assert response.status_code == 202, response.text
    gateway.settle()
    assert (
        gateway.client.get(f"/v1/events/{response.json()['id']}", headers=gateway.headers()).json()[
            "status"
        ]
        == "confirmed"
    )
    assert response.json()["member_address"] == address


def test_erasure_waits_for_operations_on_their_way_to_the_chain(gateway: Gateway) -> None:
    customer, wallet = earned_and_refunded(gateway)
    body = purchase(customer, f"ord-{uuid.uuid4().hex[:8]}", "10.00")
    assert (
        gateway.client.post("/v1/events", json=body, headers=gateway.headers()).status_code == 202
    )
    confirm = {"confirm": "erase"}
    blocked = gateway.client.request("DELETE", "/v1/wallet/data", json=confirm, headers=wallet)
    assert blocked.status_code == 409, blocked.text
    error = blocked.json()["error"]
    assert error["code"] == "erasure_blocked" and error["details"]["ops_in_flight"] >= 1
    gateway.settle()
    done = gateway.client.request("DELETE", "/v1/wallet/data", json=confirm, headers=wallet)
    assert done.status_code == 200, done.text
    assert done.json()["counts"]["issuance_inputs"] == 4


def _refs(gateway: Gateway, address: str) -> set[str]:
    with gateway.context.sessions() as session:
        return set(session.scalars(select(ChainOp.ref).where(ChainOp.member_address == address)))
