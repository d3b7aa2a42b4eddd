"""``POST /v1/events/batch`` answers each item: an item that fails the schema gets the
422 a single event would get, the others are accepted (issue 17); a body that is
not a batch is refused as a whole.  SQLite and PostgreSQL (the ``gateway`` fixture)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from gateway_kit import Gateway, purchase
from sqlalchemy import func, select

from gateway.models import Event, IdempotencyRecord

BATCH = "/v1/events/batch"


def item(key: str, event: Any) -> dict[str, Any]:
    return {"idempotency_key": key, "event": event}


def post_batch(gateway: Gateway, body: Any, merchant: int = 0) -> Any:
    return gateway.client.post(BATCH, json=body, headers=gateway.headers(merchant))


def stored(gateway: Gateway, keys: list[str]) -> tuple[int, int]:
    """(events, idempotency records) stored under ``keys``."""
    with gateway.context.sessions() as session:
        events = session.scalar(select(func.count(Event.id)).where(Event.idempotency_key.in_(keys)))
        records = session.scalar(
            select(func.count(IdempotencyRecord.id)).where(IdempotencyRecord.key.in_(keys))
        )
    return int(events or 0), int(records or 0)


def all_rows(gateway: Gateway) -> tuple[int, int]:
    with gateway.context.sessions() as session:
        events = session.scalar(select(func.count(Event.id)))
        records = session.scalar(select(func.count(IdempotencyRecord.id)))
    return int(events or 0), int(records or 0)


def test_items_failing_the_schema_get_422_and_the_others_are_accepted(gateway: Gateway) -> None:
    tag = uuid.uuid4().hex[:8]
    keys = [f"{tag}-{n}" for n in range(5)]
    float_amount = purchase(f"{tag}-c1", f"{tag}-O1")
    float_amount["order"]["amount"] = 12.5  # type: ignore[index]
    body = {
        "events": [
            item(keys[0], purchase(f"{tag}-c0", f"{tag}-O0")),
            item(keys[1], float_amount),
            item(keys[2], purchase(f"{tag}-c2", f"{tag}-O2")),
            item(keys[3], {"type": "teleport", "customer_id": f"{tag}-c3"}),
            item(keys[4], purchase(f"{tag}-c4", f"{tag}-O4")),
        ]
    }
    response = post_batch(gateway, body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["count"] == 5
    data = answer["data"]
    assert [d["idempotency_key"] for d in data] == keys
    assert [d["status_code"] for d in data] == [202, 422, 202, 422, 202]
    for good in (data[0], data[2], data[4]):
        assert good["error"] is None and good["event"]["status"] == "accepted"
    bad = data[1]
    assert bad["event"] is None
    assert bad["error"]["code"] == "invalid_request"
    assert bad["error"]["message"] == "the request is not valid"
    assert [e["loc"] for e in bad["error"]["details"]["errors"]] == [
        ["body", "events", "1", "event", "order", "amount"]
    ]
    assert data[3]["error"]["code"] == "invalid_request"
    locs = {tuple(e["loc"]) for e in data[3]["error"]["details"]["errors"]}
    assert ("body", "events", "3", "event", "type") in locs
    # Nothing stored for the refused items: their keys are free for a corrected event.
    assert stored(gateway, [keys[1], keys[3]]) == (0, 0)
    assert stored(gateway, [keys[0], keys[2], keys[4]]) == (3, 3)


def test_a_batch_items_422_is_the_422_of_the_same_event_posted_alone(gateway: Gateway) -> None:
    event = purchase(f"alone-{uuid.uuid4().hex[:8]}", "AL-1")
    event["order"]["amount"] = True  # type: ignore[index]
    event["device_id"] = 42
    alone = gateway.client.post("/v1/events", json=event, headers=gateway.headers())
    assert alone.status_code == 422
    batched = post_batch(gateway, {"events": [item(uuid.uuid4().hex, event)]})
    assert batched.status_code == 200
    (result,) = batched.json()["data"]
    assert result["status_code"] == 422
    single_error, item_error = alone.json()["error"], result["error"]
    assert item_error["code"] == single_error["code"] == "invalid_request"
    assert item_error["message"] == single_error["message"]

    def fields(error: dict[str, Any], prefix: int) -> list[tuple[Any, ...]]:
        return sorted(
            (tuple(e["loc"][prefix:]), e["msg"], e["type"]) for e in error["details"]["errors"]
        )

    # Same fields, messages and types; the batch's locs name the item in the body.
    assert len(single_error["details"]["errors"]) == 2
    assert fields(item_error, 4) == fields(single_error, 1)
    assert all(
        e["loc"][:4] == ["body", "events", "0", "event"] for e in item_error["details"]["errors"]
    )


def test_a_mixed_batch_replays_under_the_same_keys(gateway: Gateway) -> None:
    """Again the same batch: the same answers, nothing more written (the business
    refusal replayed from its stored answer, the schema failure refused afresh);
    then the bad item corrected under its key is accepted."""
    tag = uuid.uuid4().hex[:8]
    good, refused, invalid = f"{tag}-good", f"{tag}-refused", f"{tag}-invalid"
    unknown_refund = {
        "type": "refund", "customer_id": f"{tag}-c", "occurred_at": "2026-11-20T11:00:00Z",
        "refund": {"order_id": "no-such-order"},
    }  # fmt: skip
    broken = purchase(f"{tag}-c", f"{tag}-O2", amount="-5.00")
    body = {
        "events": [
            item(good, purchase(f"{tag}-c", f"{tag}-O1")),
            item(refused, unknown_refund),
            item(invalid, broken),
        ]
    }
    first = post_batch(gateway, body)
    assert first.status_code == 200
    statuses = [d["status_code"] for d in first.json()["data"]]
    assert statuses[0] == 202 and statuses[1] >= 400 and statuses[1] != 500
    assert statuses[2] == 422
    rows = all_rows(gateway)
    again = post_batch(gateway, body)
    assert again.status_code == 200
    assert again.json() == first.json()
    assert all_rows(gateway) == rows
    # The refused item's answer is stored under its key, the invalid one's is not.
    assert stored(gateway, [refused]) == (0, 1)
    assert stored(gateway, [invalid]) == (0, 0)
    fixed = post_batch(gateway, {"events": [item(invalid, purchase(f"{tag}-c", f"{tag}-O2"))]})
    (answer,) = fixed.json()["data"]
    assert answer["status_code"] == 202 and answer["event"]["idempotency_key"] == invalid
    # The good item's key with another body is still refused as reused.
    reused = post_batch(gateway, {"events": [item(good, purchase(f"{tag}-c", f"{tag}-O9"))]})
    (answer,) = reused.json()["data"]
    assert answer["status_code"] == 422
    assert answer["error"]["code"] == "idempotency_key_reused"


@pytest.mark.parametrize(
    ("raw_item", "key"),
    [
        (5, None),
        ("an event", None),
        ({"event": purchase("nokey", "NK-1")}, None),
        ({"idempotency_key": "", "event": purchase("emptykey", "EK-1")}, ""),
        ({"idempotency_key": 7, "event": purchase("numkey", "NUM-1")}, None),
        ({"idempotency_key": "k\x00", "event": purchase("nb", "NB")}, "k\x00"),
        ({"idempotency_key": "x" * 256, "event": purchase("longkey", "LK-1")}, "x" * 256),
        ({"idempotency_key": "extra", "event": purchase("ex", "EX-1"), "more": 1}, "extra"),
    ],
    ids=[
        "number",
        "text",
        "no key",
        "empty key",
        "key as number",
        "NUL in key",
        "long key",
        "unknown field",
    ],
)
def test_an_item_that_is_not_a_batch_item_gets_its_own_422(
    gateway: Gateway, raw_item: Any, key: str | None
) -> None:
    tag = uuid.uuid4().hex[:8]
    good_key = f"{tag}-ok"
    before = all_rows(gateway)
    response = post_batch(
        gateway, {"events": [raw_item, item(good_key, purchase(f"{tag}-c", f"{tag}-O"))]}
    )
    assert response.status_code == 200, response.text
    bad, good = response.json()["data"]
    assert bad["idempotency_key"] == key
    assert bad["status_code"] == 422 and bad["event"] is None
    assert bad["error"]["code"] == "invalid_request"
    assert bad["error"]["details"]["errors"], bad
    assert all(e["loc"][:3] == ["body", "events", "0"] for e in bad["error"]["details"]["errors"])
    assert good["status_code"] == 202
    assert all_rows(gateway) == (before[0] + 1, before[1] + 1)


def test_a_batch_of_only_invalid_items_writes_nothing(gateway: Gateway) -> None:
    before = all_rows(gateway)
    response = post_batch(gateway, {"events": [{"idempotency_key": "a"}, 1, None]})
    assert response.status_code == 200
    data = response.json()["data"]
    assert [d["status_code"] for d in data] == [422, 422, 422]
    assert [d["idempotency_key"] for d in data] == ["a", None, None]
    assert all_rows(gateway) == before


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        ({"content": b'{"events": [', "headers": {"Content-Type": "application/json"}},
         400, "malformed_json"),
        ({"json": [item("k", purchase("arr", "ARR"))]}, 422, "invalid_request"),
        ({"json": None}, 422, "invalid_request"),
        ({"json": {}}, 422, "invalid_request"),
        ({"json": {"events": []}}, 422, "invalid_request"),
        ({"json": {"events": {"0": item("k", purchase("o", "O"))}}}, 422, "invalid_request"),
        ({"json": {"events": [item("k", purchase("x", "X"))], "more": 1}}, 422,
         "invalid_request"),
        ({"json": {"events": [item("k", purchase("b", "B-1"))] * 1001}}, 422, "invalid_request"),
        ({"content": b"events", "headers": {"Content-Type": "text/plain"}}, 422,
         "invalid_request"),
    ],
    ids=["not JSON", "an array", "null", "no events", "no items", "events as an object",
         "unknown field", "1,001 items", "text/plain"],
)  # fmt: skip
def test_a_body_that_is_not_a_batch_is_refused_as_a_whole(
    gateway: Gateway, kwargs: dict[str, Any], status: int, code: str
) -> None:
    before = all_rows(gateway)
    kwargs = dict(kwargs)  # the parameters are shared by the SQLite and PostgreSQL runs
    headers = {**gateway.headers(), **kwargs.pop("headers", {})}
    response = gateway.client.post(BATCH, headers=headers, **kwargs)
    assert response.status_code == status, response.text[:300]
    assert response.json()["error"]["code"] == code
    assert all_rows(gateway) == before


def test_authentication_is_checked_before_the_items(gateway: Gateway) -> None:
    body = {"events": [5]}
    response = gateway.client.post(BATCH, json=body, headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


def test_the_openapi_document_describes_items_and_per_item_answers(gateway: Gateway) -> None:
    document = gateway.client.get("/openapi.json").json()
    schemas = document["components"]["schemas"]
    operation = document["paths"][BATCH]["post"]
    body_ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    batch = schemas[body_ref.rsplit("/", 1)[1]]
    assert batch["properties"]["events"]["items"] == {"$ref": "#/components/schemas/BatchItemIn"}
    assert batch["properties"]["events"]["maxItems"] == 1000
    result = schemas["BatchItemResult"]["properties"]
    assert {"type": "null"} in result["idempotency_key"]["anyOf"]
