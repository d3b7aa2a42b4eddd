"""The merchant API, endpoint by endpoint: answers, error codes, nothing half-written."""

from __future__ import annotations

import json
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, ClassVar

import pytest
from gateway_kit import Gateway, purchase
from sqlalchemy import select

from chain.devnet import free_port
from gateway.crypto import verify_webhook
from gateway.models import Event, IdempotencyRecord, Merchant
from gateway.settings import Settings
from gateway.webhooks.dispatcher import WebhookDispatcher


def post(gateway: Gateway, body: Any, key: str | None = None, merchant: int = 0) -> Any:
    return gateway.client.post("/v1/events", json=body, headers=gateway.headers(merchant, key))


def error_code(response: Any) -> str:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    return str(body["error"]["code"])


def count_events(gateway: Gateway) -> int:
    with gateway.context.sessions() as session:
        return session.query(Event).count()


# ------------------------------------------------------------------ idempotency


def test_post_event_replays_response_for_same_idempotency_key(gateway: Gateway) -> None:
    key = uuid.uuid4().hex
    first = post(gateway, purchase("idem-1", "I-1"), key)
    second = post(gateway, purchase("idem-1", "I-1"), key)
    assert first.status_code == second.status_code == 202
    assert first.json() == second.json()


def test_post_event_refuses_same_key_with_another_body(gateway: Gateway) -> None:
    key = uuid.uuid4().hex
    assert post(gateway, purchase("idem-2", "I-2"), key).status_code == 202
    before = count_events(gateway)
    response = post(gateway, purchase("idem-2", "I-2", "999.00"), key)
    assert response.status_code == 422
    assert error_code(response) == "idempotency_key_reused"
    assert count_events(gateway) == before


def test_concurrent_requests_with_one_key_make_one_event(gateway: Gateway) -> None:
    key = uuid.uuid4().hex
    body = purchase("idem-3", "I-3")
    barrier = threading.Barrier(12)

    def send(_: int) -> tuple[int, dict[str, object]]:
        barrier.wait()
        response = post(gateway, body, key)
        return response.status_code, response.json()

    with ThreadPoolExecutor(max_workers=12) as pool:
        results = list(pool.map(send, range(12)))
    assert {status for status, _ in results} == {202}
    assert len({answer["id"] for _, answer in results}) == 1
    with gateway.context.sessions() as session:
        events = session.scalars(
            select(Event).where(
                Event.merchant_id == gateway.merchants[0].id, Event.idempotency_key == key
            )
        ).all()
        records = session.scalars(
            select(IdempotencyRecord).where(IdempotencyRecord.key == key)
        ).all()
    assert len(events) == 1 and len(records) == 1


def test_idempotency_keys_are_per_merchant(gateway: Gateway) -> None:
    key = uuid.uuid4().hex
    a = post(gateway, purchase("idem-4", "I-4"), key, merchant=0)
    b = post(gateway, purchase("idem-4", "I-4", currency="JPY"), key, merchant=1)
    assert a.status_code == b.status_code == 202
    assert a.json()["id"] != b.json()["id"]


def test_a_refused_request_is_refused_again_on_retry(gateway: Gateway) -> None:
    key = uuid.uuid4().hex
    refund = {"type": "refund", "customer_id": "nobody-x", "occurred_at": "2026-11-20T10:00:00Z",
              "refund": {"order_id": "never"}}  # fmt: skip
    first = post(gateway, refund, key)
    second = post(gateway, refund, key)
    assert first.status_code == second.status_code
    assert first.status_code >= 400
    assert first.json() == second.json()


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (lambda b: b["order"].update(amount="-5.00"), "invalid_request"),
        (lambda b: b["order"].update(amount="1e9999"), "invalid_request"),
        (lambda b: b["order"].update(amount=12.5), "invalid_request"),
        (lambda b: b["order"].update(amount="99999999999999.00"), "invalid_request"),
        (lambda b: b["order"].update(amount="0.1234567"), "invalid_request"),
        (lambda b: b["order"].update(currency="ZZZ"), "event_rejected"),
        (lambda b: b["order"].update(currency="eur"), "invalid_request"),
        (lambda b: b.update(type="teleport"), "invalid_request"),
        (lambda b: b.update(customer_id=""), "invalid_request"),
        (lambda b: b.update(customer_id="a b"), "invalid_request"),
        (lambda b: b.update(occurred_at="2026-11-20T10:00:00"), "invalid_request"),
        (lambda b: b.update(unexpected="field"), "invalid_request"),
        (lambda b: b.pop("order"), "invalid_request"),
        (lambda b: b.update(referrer_customer_id=b["customer_id"]), "invalid_request"),
    ],
)
def test_bad_event_input_gets_a_clear_4xx_and_writes_nothing(
    gateway: Gateway, mutate: Any, code: str
) -> None:
    body = purchase("bad-input", "BAD-1")
    mutate(body)
    before = count_events(gateway)
    response = post(gateway, body)
    assert response.status_code == 422, response.text
    assert error_code(response) == code
    assert count_events(gateway) == before


def test_malformed_json_is_a_400(gateway: Gateway) -> None:
    response = gateway.client.post(
        "/v1/events", content=b'{"type": "purchase",', headers={
            **gateway.headers(), "Content-Type": "application/json"}
    )  # fmt: skip
    assert response.status_code == 400
    assert error_code(response) == "malformed_json"


def test_missing_idempotency_key_is_refused(gateway: Gateway) -> None:
    headers = gateway.headers()
    del headers["Idempotency-Key"]
    response = gateway.client.post("/v1/events", json=purchase("k", "K-1"), headers=headers)
    assert response.status_code == 422
    assert error_code(response) == "invalid_request"


def test_unknown_api_key_is_401(gateway: Gateway) -> None:
    response = gateway.client.post(
        "/v1/events", json=purchase("x", "X-1"),
        headers={"Authorization": "Bearer pn_live_nope", "Idempotency-Key": "k"},
    )  # fmt: skip
    assert response.status_code == 401
    assert error_code(response) == "unauthorized"
    response = gateway.client.get("/v1/members/x")
    assert response.status_code == 401


def test_an_unknown_currency_order_is_refused(gateway: Gateway) -> None:
    response = post(gateway, purchase("cur", "CUR-1", currency="XAU"))
    assert response.status_code == 422


# ------------------------------------------------------------------ reading and isolation


def test_get_event_of_another_merchant_is_not_found(gateway: Gateway) -> None:
    event = post(gateway, purchase("iso-1", "ISO-1")).json()
    response = gateway.client.get(f"/v1/events/{event['id']}", headers=gateway.headers(1))
    assert response.status_code == 404
    assert error_code(response) == "not_found"


def test_a_merchant_cannot_read_another_merchants_customer(gateway: Gateway) -> None:
    post(gateway, purchase("iso-2", "ISO-2"), merchant=0)
    gateway.settle()
    assert gateway.client.get("/v1/members/iso-2", headers=gateway.headers(0)).status_code == 200
    response = gateway.client.get("/v1/members/iso-2", headers=gateway.headers(1))
    assert response.status_code == 404


def test_batch_endpoint_answers_each_event_on_its_own(gateway: Gateway) -> None:
    good = {"idempotency_key": uuid.uuid4().hex, "event": purchase("batch-1", "BA-1")}
    refund = {"idempotency_key": uuid.uuid4().hex, "event": {
        "type": "refund", "customer_id": "batch-1", "occurred_at": "2026-11-20T11:00:00Z",
        "refund": {"order_id": "unknown-order"}}}  # fmt: skip
    response = gateway.client.post(
        "/v1/events/batch", json={"events": [good, refund, good]}, headers=gateway.headers()
    )
    assert response.status_code == 200
    data = response.json()["data"]
    assert data[0]["status_code"] == 202
    assert data[1]["status_code"] >= 400 and data[1]["error"]["code"]
    assert data[2] == data[0]  # the same key again: the same answer


def test_batch_endpoint_refuses_more_than_1000_events(gateway: Gateway) -> None:
    item = {"idempotency_key": "k", "event": purchase("b", "B-1")}
    response = gateway.client.post(
        "/v1/events/batch", json={"events": [item] * 1001}, headers=gateway.headers()
    )
    assert response.status_code == 422


# ------------------------------------------------------------------ rules, rewards, webhooks


def test_rules_are_versioned_and_published_before_they_apply(gateway: Gateway) -> None:
    current = gateway.client.get("/v1/rules", headers=gateway.headers()).json()
    assert current["published"] is True and current["status"] == "in_effect"
    rules = current["rules"]
    rules["earn_rate"] = "2"
    response = gateway.client.put("/v1/rules", json=rules, headers=gateway.headers())
    assert response.status_code == 202, response.text
    new = response.json()
    assert new["version"] == current["version"] + 1 and new["published"] is False
    assert new["status"] == "queued" and new["effective_at_estimated"] is True
    waiting = gateway.client.get("/v1/rules", headers=gateway.headers()).json()
    assert waiting["version"] == current["version"]  # not on chain: the old one applies
    assert waiting["upcoming"]["version"] == new["version"]
    gateway.settle()  # the test network has no rule notice: in effect once published
    published = gateway.client.get("/v1/rules", headers=gateway.headers()).json()
    assert published["published"] is True and published["tx_hash"]
    assert (published["version"], published["status"]) == (new["version"], "in_effect")
    assert published["effective_at"] >= new["effective_at"] and published["upcoming"] is None
    hub = gateway.context.link.network.hub
    assert hub.merchant(gateway.merchants[0].id).rule_set_hash.hex() == published["hash"][2:]


def test_an_invalid_rule_set_is_refused(gateway: Gateway) -> None:
    response = gateway.client.put("/v1/rules", json={"earn_rate": "-1"}, headers=gateway.headers())
    assert response.status_code == 422
    assert error_code(response) == "invalid_request"


def test_rewards_are_listed_per_merchant(gateway: Gateway) -> None:
    created = gateway.client.post(
        "/v1/rewards", json={"name": "Tote bag", "cost_points": 250}, headers=gateway.headers(1)
    )
    assert created.status_code == 201
    mine = gateway.client.get("/v1/rewards", headers=gateway.headers(1)).json()
    assert created.json()["id"] in [r["id"] for r in mine["data"]]
    theirs = gateway.client.get("/v1/rewards", headers=gateway.headers(0)).json()
    assert created.json()["id"] not in [r["id"] for r in theirs["data"]]
    bad = gateway.client.post(
        "/v1/rewards", json={"name": "x", "cost_points": 0}, headers=gateway.headers(1)
    )
    assert bad.status_code == 422


def test_redemption_with_a_bad_signature_is_refused(gateway: Gateway) -> None:
    reward = gateway.client.post(
        "/v1/rewards", json={"name": "Mug", "cost_points": 10}, headers=gateway.headers(1)
    ).json()
    response = gateway.client.post(
        "/v1/redemptions",
        json={"reward_id": reward["id"], "member": "0x" + "11" * 20, "nonce": 0,
              "deadline": 4_000_000_000, "signature": "0x" + "22" * 65},
        headers=gateway.headers(1),
    )  # fmt: skip
    assert response.status_code == 422
    assert error_code(response) == "invalid_signature"


class _Receiver(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[dict[str, str], bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Receiver.received.append((dict(self.headers), body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        return


def test_webhooks_are_signed_and_delivered(gateway: Gateway) -> None:
    port = free_port()
    server = HTTPServer(("127.0.0.1", port), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        configured = gateway.client.put(
            "/v1/webhook", json={"url": f"http://127.0.0.1:{port}/hook"}, headers=gateway.headers()
        ).json()
        secret = bytes.fromhex(configured["secret"])
        event = post(gateway, purchase("hook-1", "H-1")).json()
        gateway.settle()
        dispatcher = WebhookDispatcher(
            gateway.context.sessions, gateway.context.box, allow_private=True
        )
        dispatcher.deliver_due()
        confirmed = [
            (h, b) for h, b in _Receiver.received
            if json.loads(b)["data"].get("event_id") == event["id"]
        ]  # fmt: skip
        assert confirmed, _Receiver.received
        headers, body = confirmed[0]
        assert json.loads(body)["type"] == "event.confirmed"
        assert verify_webhook(secret, body, headers["Pointsnet-Signature"])
        assert not verify_webhook(b"wrong" * 8, body, headers["Pointsnet-Signature"])
    finally:
        server.shutdown()
        gateway.client.put(
            "/v1/webhook", json={"url": "http://127.0.0.1:9/none"}, headers=gateway.headers()
        )


def test_a_private_webhook_url_is_refused_outside_the_devnet(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    def put(url: str) -> Any:
        return gateway.client.put("/v1/webhook", json={"url": url}, headers=gateway.headers())

    assert put("http://127.0.0.1:9/none").status_code == 200  # the devnet allows it
    monkeypatch.setattr(Settings, "allows_private_webhooks", property(lambda _s: False))
    refused = put("http://169.254.169.254/hook")
    assert refused.status_code == 422
    assert error_code(refused) == "webhook_url_not_allowed"
    with gateway.context.sessions() as session:
        merchant = session.get(Merchant, gateway.merchants[0].id)
        assert merchant is not None and merchant.webhook_url == "http://127.0.0.1:9/none"
    assert put("https://93.184.216.34/hook").status_code == 200  # a public address
    monkeypatch.undo()
    assert put("http://127.0.0.1:9/none").status_code == 200


def test_held_events_wait_for_release(gateway: Gateway) -> None:
    # Many accounts on one device: the clustering rule holds the event for review.
    held = None
    for i in range(12):
        body = purchase(f"cluster-{i}", f"CL-{i}", device_id="shared-device-1")
        answer = post(gateway, body).json()
        if answer["status"] == "held":
            held = answer
            break
    assert held is not None, "clustering never held an event"
    other = gateway.client.post(f"/v1/events/{held['id']}/release", headers=gateway.headers(1))
    assert other.status_code == 404
    released = gateway.client.post(f"/v1/events/{held['id']}/release", headers=gateway.headers())
    assert released.status_code == 200 and released.json()["status"] == "accepted"
    gateway.settle()
    final = gateway.client.get(f"/v1/events/{held['id']}", headers=gateway.headers()).json()
    assert final["status"] == "confirmed"
    again = gateway.client.post(f"/v1/events/{held['id']}/reject", headers=gateway.headers())
    assert again.status_code == 422


def test_a_frozen_members_events_are_refused(gateway: Gateway) -> None:
    from gateway.services.members import set_frozen

    assert post(gateway, purchase("frosty", "FR-1")).status_code == 202
    with gateway.context.sessions() as session, session.begin():
        set_frozen(session, gateway.merchants[0].id, "frosty", True)
    before = count_events(gateway)
    response = post(gateway, purchase("frosty", "FR-2"))
    assert response.status_code == 422
    assert error_code(response) == "event_rejected"
    assert response.json()["error"]["details"]["reason"] == "member_frozen"
    assert count_events(gateway) == before
    with gateway.context.sessions() as session, session.begin():
        set_frozen(session, gateway.merchants[0].id, "frosty", False)
    assert post(gateway, purchase("frosty", "FR-3")).status_code == 202
