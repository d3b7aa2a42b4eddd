"""Rule versions switch at the chain head's block timestamp (a ManualClock here).

Version 1 applies from admission; a later version from its ``effective_at``
exactly; PUT /v1/rules answers when it is expected to apply and refuses a new
version while one is pending, or one larger than the hub takes.  The worker's
receipt (which fills ``effective_at``) is played by an UPDATE of the row.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from gateway_kit import Gateway, purchase
from sqlalchemy import update

from gateway.app import create_app
from gateway.clock import ManualClock
from gateway.context import GatewayContext
from gateway.models import RuleSetVersion
from gateway.rules.model import RuleSet, canonical_json
from gateway.services import rulesets
from gateway.services.merchants import NewMerchant, register


@dataclass
class Shop:
    """A merchant served by an app whose clock the test sets."""

    context: GatewayContext
    client: TestClient
    clock: ManualClock
    merchant: NewMerchant

    def headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self.merchant.api_key}",
            "Idempotency-Key": uuid.uuid4().hex,
        }

    def buy(self, amount: str = "100.00") -> dict[str, Any]:
        run = uuid.uuid4().hex[:8]
        answer = self.client.post(
            "/v1/events", json=purchase(f"c-{run}", f"o-{run}", amount), headers=self.headers()
        )
        assert answer.status_code == 202, answer.text
        return dict(answer.json())

    def rules(self) -> dict[str, Any]:
        answer = self.client.get("/v1/rules", headers=self.headers())
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    def put(self, rules: dict[str, Any]) -> Any:
        return self.client.put("/v1/rules", json=rules, headers=self.headers())

    def publish(self, version: int, effective_at: int) -> None:
        """What the rule op's receipt records: the version is on chain, in effect then."""
        head = self.clock.chain_head()
        with self.context.sessions.begin() as session:
            session.execute(
                update(RuleSetVersion)
                .where(
                    RuleSetVersion.merchant_id == self.merchant.id,
                    RuleSetVersion.version == version,
                )
                .values(
                    effective_at=effective_at, published_block=head.block, tx_hash="0x" + "77" * 32
                )
            )


def open_shop(gateway: Gateway, name: str, settle: bool) -> Iterator[Shop]:
    merchant = register(gateway.context, name, "EUR")
    if settle:
        gateway.settle()  # v1 published
    latest = gateway.context.link.w3.eth.get_block("latest")
    clock = ManualClock(datetime.now(UTC))
    clock.set_head(int(latest["number"]), int(latest["timestamp"]))
    base = gateway.context
    context = GatewayContext(
        settings=base.settings, engine=base.engine, sessions=base.sessions, link=base.link,
        box=base.box, clock=clock,
    )  # fmt: skip
    with TestClient(create_app(context), raise_server_exceptions=False) as client:
        yield Shop(context, client, clock, merchant)


@pytest.fixture
def shop(gateway: Gateway) -> Iterator[Shop]:
    """A merchant of its own per test (its versions are the test's), v1 published."""
    yield from open_shop(gateway, f"Clockwork {uuid.uuid4().hex[:6]}", settle=True)


def base_points(event: dict[str, Any]) -> int:
    return next(line["points"] for line in event["breakdown"] if line["rule"] == "base")


def test_version_1_applies_from_admission_before_its_publication(gateway: Gateway) -> None:
    for fresh in open_shop(gateway, "Early Goods", settle=False):
        rules = fresh.rules()
        assert (rules["version"], rules["status"], rules["published"]) == (1, "queued", False)
        assert rules["upcoming"] is None
        assert fresh.buy()["rule_version"] == 1


def test_a_new_version_applies_exactly_from_its_effective_time(shop: Shop) -> None:
    current = shop.rules()
    assert (current["version"], current["status"]) == (1, "in_effect")
    assert current["effective_at"] is not None and current["published"] is True
    head = shop.clock.chain_head()
    notice = rulesets.notice_seconds(shop.context)
    rules = current["rules"]
    rules["earn_rate"] = "2"

    queued = shop.put(rules)
    assert queued.status_code == 202, queued.text
    answer = queued.json()
    assert (answer["version"], answer["status"], answer["effective_at_estimated"]) == (
        2, "queued", True,
    )  # fmt: skip
    assert answer["effective_at"] == head.timestamp + notice
    waiting = shop.rules()
    assert waiting["version"] == 1 and waiting["upcoming"]["version"] == 2
    assert waiting["upcoming"]["status"] == "queued"

    effective = head.timestamp + 120
    shop.publish(2, effective)
    assert shop.rules()["upcoming"]["status"] == "published"
    shop.clock.set_head(head.block + 1, effective - 1)
    before = shop.buy("200.00")  # 207 USD: base points exact at either rate
    shop.clock.set_head(head.block + 2, effective)
    after = shop.buy("200.00")

    assert before["rule_version"] == 1 and after["rule_version"] == 2
    assert base_points(after) == 2 * base_points(before)
    now = shop.rules()
    assert (now["version"], now["status"], now["effective_at"]) == (2, "in_effect", effective)
    assert now["published_block"] == head.block and now["upcoming"] is None
    with shop.context.sessions() as session:
        views = rulesets.describe(session, shop.merchant.id, effective)
        assert [(v.version, v.status, v.superseded_at) for v in views] == [
            (1, "superseded", effective), (2, "in_effect", None),
        ]  # fmt: skip
        assert rulesets.next_effective_at(session, effective - 1) == effective


def test_a_new_version_is_refused_while_one_is_pending(shop: Shop) -> None:
    rules = shop.rules()["rules"]
    rules["earn_rate"] = "3"
    assert shop.put(rules).status_code == 202
    version = shop.rules()["upcoming"]["version"]

    rules["earn_rate"] = "4"
    queued = shop.put(rules)
    assert queued.status_code == 409
    assert queued.json()["error"]["code"] == "rule_change_pending"
    assert queued.json()["error"]["details"]["version"] == version

    head = shop.clock.chain_head()
    shop.publish(version, head.timestamp + 60)
    published = shop.put(rules)
    assert published.status_code == 409
    assert published.json()["error"]["details"]["effective_at"] == head.timestamp + 60

    shop.clock.set_head(head.block + 1, head.timestamp + 60)
    assert shop.put(rules).status_code == 202  # in effect: the next one may be queued


def test_a_rule_set_larger_than_the_hub_takes_is_refused(shop: Shop) -> None:
    rules = shop.rules()["rules"]
    rules["campaigns"] = [
        {"key": f"campaign-{i:03d}", "name": f"A long campaign name number {i:03d} " * 3,
         "starts_at": "2027-01-01T00:00:00+00:00", "ends_at": "2027-01-02T00:00:00+00:00",
         "multiplier": "2", "categories": ["books", "toys"]}
        for i in range(100)
    ]  # fmt: skip
    size = len(canonical_json(RuleSet.model_validate(rules)))
    assert size > 16_384
    answer = shop.put(rules)

    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["code"] == "rule_set_too_large"
    assert error["details"] == {"size": size, "limit": 16_384}
