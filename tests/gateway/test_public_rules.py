"""``/v1/public``: merchants' rules as published on chain, read without a key.

What a member or an auditor relies on: the text is the one whose keccak the hub
holds, the version in effect is the chain's (at its latest block), a version
still in its notice period is listed as upcoming with the changes it brings, a
queued one is not listed before it is on chain, and the errors are the stable ones.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from eth_utils import keccak
from gateway_kit import Gateway

from gateway.clock import ChainTime, ManualClock
from gateway.ratelimit import RateLimiter
from gateway.rules.model import canonical_json, parse_rule_set
from gateway.services.merchants import NewMerchant, register

NO_KEY: dict[str, str] = {}


def rules_of(gateway: Gateway, merchant_id: int) -> dict[str, Any]:
    response = gateway.client.get(f"/v1/public/merchants/{merchant_id}/rules")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def unix(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp())


def put_rules(gateway: Gateway, merchant: NewMerchant, **changes: Any) -> int:
    headers = {"Authorization": f"Bearer {merchant.api_key}"}
    rules = gateway.client.get("/v1/rules", headers=headers).json()["rules"]
    rules.update(changes)
    response = gateway.client.put("/v1/rules", json=rules, headers=headers)
    assert response.status_code == 202, response.text
    return int(response.json()["version"])


@pytest.fixture(scope="module")
def doubled(gateway: Gateway) -> NewMerchant:
    """A merchant whose v2 doubles the earn rate, both published."""
    merchant = register(gateway.context, f"Public Goods {uuid.uuid4().hex[:4]}", "EUR")
    gateway.settle()
    assert put_rules(gateway, merchant, earn_rate="2") == 2
    gateway.settle()
    return merchant


@pytest.fixture
def head_at(gateway: Gateway) -> Iterator[Any]:
    """Set the chain head the gateway sees (restored after the test)."""
    original = gateway.context.clock

    def move(timestamp: int) -> None:
        real = original.chain_head()
        gateway.context.clock = ManualClock(original.now(), ChainTime(real.block, timestamp))

    yield move
    gateway.context.clock = original


def test_the_merchants_are_listed_without_a_key(gateway: Gateway, doubled: NewMerchant) -> None:
    response = gateway.client.get("/v1/public/merchants", headers=NO_KEY)
    assert response.status_code == 200, response.text
    body = response.json()
    network = gateway.context.link.network
    assert body["chain_id"] == gateway.context.link.chain_id
    assert body["hub"] == network.hub.address
    assert body["notice_seconds"] == network.hub.rule_notice_seconds()
    listed = {m["id"]: m for m in body["merchants"]}
    assert set(listed) >= {m.id for m in gateway.merchants} | {doubled.id}
    assert listed[doubled.id] == {
        "id": doubled.id, "name": doubled.name, "currency": "EUR", "status": "active",
        "current_version": 2, "upcoming": None,
    }  # fmt: skip


def test_a_merchants_rules_are_the_published_text_with_its_hash_and_plain_words(
    gateway: Gateway, doubled: NewMerchant
) -> None:
    body = rules_of(gateway, doubled.id)
    assert body["merchant"]["id"] == doubled.id and body["upcoming"] == []
    current, (first,) = body["current"], body["past"]
    assert (current["version"], current["status"]) == (2, "in_effect")
    assert (first["version"], first["status"]) == (1, "superseded")
    for version in (current, first):
        assert "0x" + keccak(text=version["canonical"]).hex() == version["hash"]
        assert canonical_json(parse_rule_set(version["canonical"])) == version["canonical"]
        assert json.loads(version["canonical"]) == version["rules"]
        assert version["published_tx"] and version["published_block"] > 0
        assert version["explained"][0]["key"] == "earn.base"
    assert current["explained"][0]["params"] == {"rate": "2", "unit": "USD"}
    assert current["changes"] == [
        {"key": "change.earn_rate", "params": {"unit": "USD", "from": "1", "to": "2"}}
    ]
    assert first["changes"] == [] and first["superseded_at"] == current["effective_at"]
    assert current["superseded_at"] is None
    on_chain = gateway.context.link.network.hub.merchant(doubled.id)
    assert (on_chain.rule_version, "0x" + on_chain.rule_set_hash.hex()) == (2, current["hash"])
    assert on_chain.rule_effective_at == unix(current["effective_at"])


def test_a_version_in_its_notice_period_is_upcoming(
    gateway: Gateway, doubled: NewMerchant, head_at: Any
) -> None:
    v2 = rules_of(gateway, doubled.id)["current"]
    effective = unix(v2["effective_at"])
    head_at(effective - 1)
    body = rules_of(gateway, doubled.id)
    assert body["current"]["version"] == 1 and body["past"] == []
    assert [(v["version"], v["status"]) for v in body["upcoming"]] == [(2, "published")]
    assert body["upcoming"][0]["changes"][0]["key"] == "change.earn_rate"
    listed = {m["id"]: m for m in gateway.client.get("/v1/public/merchants").json()["merchants"]}
    assert listed[doubled.id]["current_version"] == 1
    assert listed[doubled.id]["upcoming"] == {"version": 2, "effective_at": v2["effective_at"]}
    head_at(effective)  # the switch is exactly at effective_at
    assert rules_of(gateway, doubled.id)["current"]["version"] == 2


def test_a_queued_version_is_not_listed_before_it_is_on_chain(gateway: Gateway) -> None:
    merchant = register(gateway.context, f"Queued Goods {uuid.uuid4().hex[:4]}", "EUR")
    gateway.settle()
    put_rules(gateway, merchant, earn_rate="3")
    body = rules_of(gateway, merchant.id)
    assert body["current"]["version"] == 1 and body["upcoming"] == [] and body["past"] == []
    gateway.settle()
    assert rules_of(gateway, merchant.id)["current"]["version"] == 2


def test_an_unchanged_answer_is_304_with_its_etag(gateway: Gateway, doubled: NewMerchant) -> None:
    first = gateway.client.get(f"/v1/public/merchants/{doubled.id}/rules")
    tag = first.headers["ETag"]
    again = gateway.client.get(
        f"/v1/public/merchants/{doubled.id}/rules", headers={"If-None-Match": tag}
    )
    assert again.status_code == 304 and again.headers["ETag"] == tag and not again.content


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/v1/public/merchants/999999/rules", 404, "not_found"),
        ("/v1/public/merchants/-1/rules", 422, "invalid_request"),
        ("/v1/public/merchants/abc/rules", 422, "invalid_request"),
        (f"/v1/public/merchants/{2**31 - 1}/rules", 404, "not_found"),
        (f"/v1/public/merchants/{2**31}/rules", 422, "invalid_request"),  # PostgreSQL: int4
        (f"/v1/public/merchants/{2**32}/rules", 422, "invalid_request"),
    ],
)
def test_bad_merchant_ids_get_stable_errors(
    gateway: Gateway, path: str, status: int, code: str
) -> None:
    response = gateway.client.get(path)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code


def test_public_reads_are_limited_per_client_address(gateway: Gateway) -> None:
    original = gateway.context.limiter
    gateway.context.limiter = RateLimiter(per_minute=3)
    try:
        codes = [gateway.client.get("/v1/public/merchants").status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        limited = gateway.client.get(f"/v1/public/merchants/{gateway.merchants[0].id}/rules")
        assert limited.status_code == 429 and limited.json()["error"]["code"] == "rate_limited"
        assert int(limited.headers["Retry-After"]) >= 1
        # A merchant's key is a bucket of its own.
        assert gateway.client.get("/v1/rules", headers=gateway.headers(0)).status_code == 200
    finally:
        gateway.context.limiter = original
