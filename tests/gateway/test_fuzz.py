"""The HTTP API under fuzzing: no input gets a server error.

Two halves:

- schemathesis generates requests for every operation of the app's own OpenAPI
  document, valid ones and deliberately invalid ones (wrong types, values out of
  range, missing or extra fields), with a valid API key or wallet session so they
  get past authentication, and half of them aimed at real ids (an event, a
  member, a reward, a redemption, a transfer) so they reach the code behind the
  lookups. Every answer must be below 500, and every error must have the one
  error body with a stable code. ``POINTSNET_FUZZ_EXAMPLES`` (default 100) sets
  the examples per operation; ``--hypothesis-seed`` replays a run.
- the inputs a fuzzer rarely produces (malformed or deeply nested JSON, 1 MB
  bodies, NUL characters, amounts and dates at the edges, unicode ids): each gets
  its 4xx with a stable code, and the database holds nothing more than before.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, cast

import pytest
import schemathesis
from gateway_kit import Gateway, purchase
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from gateway.models import Base, IdempotencyRecord
from gateway.rules.badges import BADGES

FUZZ_EXAMPLES = int(os.environ.get("POINTSNET_FUZZ_EXAMPLES", "100"))

#: Operations not fuzzed: recompiling the contracts takes seconds per call and
#: takes no input but the request itself (tests/audit_page covers it).
#: Erasure revokes the fuzz member's session (every later wallet operation would get 401):
#: tests/gateway/test_member_data.py covers it.
NOT_FUZZED = {("POST", "/v1/audit/verification/recompile"), ("DELETE", "/v1/wallet/data")}


def assert_error_body(response: Any) -> str:
    """The one error body, ``{"error": {"code", "message", "details"}}``; returns the code."""
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    assert isinstance(body["error"]["code"], str) and body["error"]["code"], body
    return str(body["error"]["code"])


@dataclass
class FuzzTarget:
    """The schema under test, credentials, and real ids the fuzzer may aim at."""

    gateway: Gateway
    schema: Any
    wallet_token: str
    ids: dict[str, Any] = field(default_factory=dict)

    def auth_for(self, path: str) -> dict[str, str]:
        if path == "/v1/wallet/logout":
            return {}  # its own session: the fuzzer's must survive
        if path.startswith("/v1/wallet/"):
            return {"Authorization": f"Bearer {self.wallet_token}"}
        if path.startswith(("/v1/events", "/v1/members", "/v1/rules", "/v1/rewards")) or (
            path.startswith(("/v1/redemptions", "/v1/webhook"))
        ):
            return {"Authorization": f"Bearer {self.gateway.merchants[0].api_key}"}
        return {}

    def aim(self, case: Any, at_real_ids: bool) -> Any:
        """Point the case's ids at existing records (half of the examples)."""
        if case.headers:  # our credentials replace generated ones
            case.headers = {k: v for k, v in case.headers.items() if k.lower() != "authorization"}
        if not at_real_ids:
            return case
        for name in list(case.path_parameters or {}):
            if name in self.ids:
                case.path_parameters[name] = self.ids[name]
        if isinstance(case.body, dict) and "reward_id" in case.body:
            case.body["reward_id"] = self.ids["reward_id"]
        return case


@pytest.fixture(scope="module")
def fuzz(gateway: Gateway) -> FuzzTarget:
    client, headers = gateway.client, gateway.headers
    event = client.post(
        "/v1/events", json=purchase("fuzz-alice", "FZ-1", "500.00"), headers=headers()
    )
    assert event.status_code == 202, event.text
    gateway.settle()
    reward = client.post(
        "/v1/rewards", json={"name": "Fuzz mug", "cost_points": 5, "stock": 1000}, headers=headers()
    ).json()
    url = client.post("/v1/members/fuzz-alice/login-link", headers=headers()).json()["url"]
    session = client.post("/v1/wallet/login-link", json={"token": url.split("#login=")[1]})
    assert session.status_code == 200, session.text
    client.cookies.clear()
    token = session.json()["token"]
    wallet = {"Authorization": f"Bearer {token}"}
    redemption = client.post(
        "/v1/wallet/redemptions", json={"reward_id": reward["id"]}, headers=wallet
    )
    assert redemption.status_code == 202, redemption.text
    transfer = client.post(
        "/v1/wallet/transfers", json={"to": "0x" + "ab" * 20, "amount": 1}, headers=wallet
    )
    assert transfer.status_code == 202, transfer.text
    gateway.settle()
    schema = schemathesis.openapi.from_asgi("/openapi.json", client.app)
    ids = {
        "event_id": event.json()["id"],
        "customer_id": "fuzz-alice",
        "reward_id": reward["id"],
        "redemption_id": redemption.json()["id"],
        "transfer_id": transfer.json()["id"],
        "badge_id": BADGES[0].id,
    }
    return FuzzTarget(gateway, schema, token, ids)


def processing_keys(gateway: Gateway) -> int:
    with gateway.context.sessions() as session:
        return int(
            session.scalar(
                select(func.count(IdempotencyRecord.id)).where(
                    IdempotencyRecord.state == "processing"
                )
            )
            or 0
        )


def fuzz_operation(fuzz: FuzzTarget, operation: Any) -> None:
    """Run the examples of one operation; raises on the first (shrunk) failure."""
    generated = operation.as_strategy() | operation.as_strategy(
        generation_mode=schemathesis.GenerationMode.NEGATIVE
    )
    strategy = st.tuples(generated, st.booleans()).map(lambda pair: fuzz.aim(*pair))
    auth = fuzz.auth_for(operation.path)
    seen: dict[int, int] = {}

    @settings(
        max_examples=FUZZ_EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case: Any) -> None:
        response = case.call(headers=auth)
        seen[response.status_code] = seen.get(response.status_code, 0) + 1
        if operation.path == "/readyz" and response.status_code == 503:
            # "not ready" is an answer of /readyz, not a server error: no worker runs
            # here, so the events the fuzzer queues age past the worker-lag threshold.
            assert response.json()["ready"] is False
            return
        assert response.status_code < 500, f"{case.as_curl_command()}\n-> {response.text}"
        if response.status_code >= 400:
            assert_error_body(response)
        fuzz.gateway.client.cookies.clear()

    run()
    assert processing_keys(fuzz.gateway) == 0, "a request left its Idempotency-Key half-done"
    if auth and operation.path != "/v1/wallet/logout":
        assert set(seen) != {401}, f"no request got past authentication: {seen}"


def test_fuzzed_requests_never_get_a_server_error(fuzz: FuzzTarget) -> None:
    """Every operation of the OpenAPI document; the failures of all of them are listed."""
    failures: list[str] = []
    fuzzed = 0
    for result in fuzz.schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) in NOT_FUZZED:
            continue
        fuzzed += 1
        try:
            fuzz_operation(fuzz, operation)
        except Exception as exc:
            failures.append(f"{operation.label}: {exc}")
    assert not failures, "\n\n".join(failures)
    assert fuzzed >= 40, f"only {fuzzed} operations in the OpenAPI document"


# ---------------------------------------------------------------------- explicit cases


def table_counts(gateway: Gateway) -> dict[str, int]:
    """Rows per table (idempotency records apart: a refused event's answer is one)."""
    with gateway.context.sessions() as session:
        return {
            table.name: int(session.scalar(select(func.count()).select_from(table)) or 0)
            for table in Base.metadata.sorted_tables
            if table.name != IdempotencyRecord.__tablename__
        }


JSON = {"Content-Type": "application/json"}


def raw(content: bytes, content_type: str = "application/json") -> dict[str, Any]:
    return {"content": content, "headers": {"Content-Type": content_type}}


def event_with(**fields: Any) -> dict[str, Any]:
    body = purchase("edge-cust", f"EDGE-{uuid.uuid4().hex[:6]}")
    body.update(fields)
    return {"json": body}


def order_with(**fields: Any) -> dict[str, Any]:
    body = purchase("edge-cust", f"EDGE-{uuid.uuid4().hex[:6]}")
    cast(dict[str, Any], body["order"]).update(fields)
    return {"json": body}


def item_with(**fields: Any) -> dict[str, Any]:
    item = {"sku": "sku-1", "category": "apparel", "amount": "10.00", **fields}
    return order_with(amount="10.00", items=[item])


MB = 1_000_000
DEEP = b"[" * 100_000 + b"]" * 100_000


def _chunks(total: int) -> Iterator[bytes]:
    yield b'{"type": "'
    for _ in range(total // 10_000):
        yield b"x" * 10_000
    yield b'"}'


Make = Callable[[], dict[str, Any]]


def edges(status: int, code: str, method: str, path: str, makers: dict[str, Make]) -> list[Any]:
    """Edge cases sharing a request line and an answer: ``makers`` build each request's
    httpx arguments, by the case's name."""
    return [
        pytest.param(method, path, make, status, code, id=name) for name, make in makers.items()
    ]


def reward(**fields: Any) -> dict[str, Any]:
    return {"json": {"name": "Edge mug", "cost_points": 5, **fields}}


def no_body() -> dict[str, Any]:
    return {}


SIGNED = {"member": "0x" + "11" * 20, "deadline": 4_000_000_000, "signature": "0x" + "22" * 65}
UTF16 = json.dumps(purchase("u16", "U16")).encode("utf-16")
SURROGATE = json.dumps(purchase("sur", "SUR", device_id="@")).replace('"@"', '"\\ud800"').encode()
REFUND = {"type": "refund", "customer_id": "edge-cust", "occurred_at": "2026-11-20T10:00:00Z"}
NEGATIVE_REFUND = {"order_id": "X", "amount": "-3"}
SIGNUP = {"type": "signup", "customer_id": "edge-cust", "occurred_at": "2026-11-20T10:00:00Z"}
PLAIN = json.dumps(purchase("tp", "TP")).encode()
INVALID = "invalid_request"

EDGE_CASES = [
    *edges(400, "malformed_json", "POST", "/v1/events", {
        "truncated JSON": lambda: raw(b'{"type": "purchase",'),
        "JSON not UTF-8": lambda: raw(b'{"type": "\xff\xfe"}'),
        "JSON in UTF-16": lambda: raw(UTF16),
        "lone surrogate in device id": lambda: raw(SURROGATE),
        "JSON nested 100,000 deep": lambda: raw(DEEP),
    }),
    *edges(400, "malformed_json", "POST", "/v1/events/batch", {
        "batch nested 100,000 deep": lambda: raw(DEEP),
    }),
    *edges(400, "malformed_json", "PUT", "/v1/rules", {
        "rules nested 100,000 deep": lambda: raw(DEEP),
    }),
    *edges(422, INVALID, "POST", "/v1/events", {
        # not an event object
        "JSON as text/plain": lambda: raw(PLAIN, "text/plain"),
        "body is an array": lambda: {"json": [purchase("arr", "ARR")]},
        "no body": no_body,
        # wrong types
        "amount as a float": lambda: order_with(amount=12.5),
        "amount as a boolean": lambda: order_with(amount=True),
        "customer id as a number": lambda: event_with(customer_id=42),
        "items as an object": lambda: order_with(items={"sku": "x"}),
        "occurred_at as a list": lambda: event_with(occurred_at=[2026, 11, 20]),
        "eco as text": lambda: item_with(eco="very"),
        # amounts
        "negative amount": lambda: order_with(amount="-5.00"),
        "huge amount": lambda: order_with(amount="1" * 400),
        "huge integer amount": lambda: order_with(amount=10**400),
        "amount above the maximum": lambda: order_with(amount="1000000000.01"),
        "amount with 7 decimals": lambda: order_with(amount="0.0000001"),
        "amount in exponent form": lambda: order_with(amount="1e3"),
        "amount NaN": lambda: order_with(amount="NaN"),
        "amount Infinity": lambda: order_with(amount="Infinity"),
        "negative line amount": lambda: item_with(amount="-1.00"),
        "negative refund amount": lambda: {"json": {**REFUND, "refund": NEGATIVE_REFUND}},
        # currencies the schema refuses (well-formed unknown ones are the rules' call, below)
        "lower-case currency": lambda: order_with(currency="eur"),
        "currency symbol": lambda: order_with(currency="€"),
        "four-letter currency": lambda: order_with(currency="EURO"),
        "Cyrillic currency": lambda: order_with(currency="\u0415\u0412\u0420"),
        # unicode and NUL in ids and text
        "Cyrillic customer id": lambda: event_with(customer_id="алиса"),
        "emoji customer id": lambda: event_with(customer_id="ali😀ce"),
        "combining accent in customer id": lambda: event_with(customer_id="jose\u0301"),
        "right-to-left mark in order id": lambda: order_with(id="A\u200f1"),
        "Chinese sku": lambda: item_with(sku="围巾"),
        "NUL in customer id": lambda: event_with(customer_id="a\x00b"),
        "NUL in device id": lambda: event_with(device_id="dev\x00"),
        "NUL in item category": lambda: item_with(category="apparel\x00"),
        # dates
        "event in year 1": lambda: event_with(occurred_at="0001-01-01T00:00:00+05:00"),
        "event in year 9999": lambda: event_with(occurred_at="9999-12-31T23:59:59-23:59"),
        "event without a time zone": lambda: event_with(occurred_at="2026-11-20T10:00:00"),
        "birth month 13": lambda: {"json": {**SIGNUP, "birth_month": 13}},
    }),
    *edges(422, "event_rejected", "POST", "/v1/events", {
        "unknown currency": lambda: order_with(currency="ZZZ"),
    }),
    *edges(422, INVALID, "POST", "/v1/events/batch", {
        # the body as a whole (an item that fails alone is answered alone:
        # test_api_batch_items.py)
        "batch events as text": lambda: {"json": {"events": "k\x00"}},
    }),
    *edges(422, INVALID, "POST", "/v1/rewards", {
        "body is null": lambda: raw(b"null"),
        "cost_points as text": lambda: reward(cost_points="ten"),
        "negative reward cost": lambda: reward(cost_points=-5),
        "huge reward cost": lambda: reward(cost_points=10**30),
        "fractional reward cost": lambda: reward(cost_points=2.5),
        "huge reward stock": lambda: reward(stock=10**12),
        "NUL in reward name": lambda: reward(name="mug\x00"),
    }),
    *edges(422, INVALID, "POST", "/v1/redemptions", {
        "huge redemption nonce": lambda: {"json": {**SIGNED, "reward_id": "r", "nonce": 2**70}},
    }),
    *edges(422, INVALID, "PUT", "/v1/rules", {
        "NUL in rule set": lambda: {"json": {"currency": "EUR\x00"}},
    }),
    *edges(422, INVALID, "PUT", "/v1/webhook", {
        "NUL in webhook URL": lambda: {"json": {"url": "http://a\x00b/"}},
        "webhook URL without a host": lambda: {"json": {"url": "http://"}},
        "webhook URL with a bad port": lambda: {"json": {"url": "http://hooks.example:http/"}},
    }),
    *edges(422, INVALID, "GET", "/v1/events/%D0%B0%D0%B1", {"Cyrillic event id": no_body}),
    *edges(422, INVALID, "GET", "/v1/events/a%00b", {"NUL in event id": no_body}),
    *edges(422, INVALID, "POST", "/v1/events/a%00b/release", {"NUL in held event id": no_body}),
    *edges(422, INVALID, "GET", "/v1/members/%D0%B0%D0%B1", {"Cyrillic member id": no_body}),
    *edges(422, INVALID, "GET", "/v1/redemptions/a%00b", {"NUL in redemption id": no_body}),
    *edges(422, INVALID, "POST", "/v1/members/%F0%9F%98%80/login-link", {
        "emoji in login-link customer": no_body,
    }),
    *edges(422, INVALID, "GET", "/v1/wallet/transfers/888755426196701577216", {
        "transfer id past 32 bits": no_body,
    }),
    # 1 MB bodies
    *edges(413, "payload_too_large", "POST", "/v1/events", {
        "1 MB event": lambda: raw(b'{"type": "' + b"x" * MB + b'"}'),
        "1 MB event, streamed": lambda: {"content": _chunks(MB), "headers": JSON},
    }),
    *edges(413, "payload_too_large", "PUT", "/v1/rules", {
        "1 MB rule set": lambda: raw(b'{"a": "' + b"x" * MB + b'"}'),
    }),
    *edges(413, "payload_too_large", "POST", "/v1/rewards", {
        "1 MB reward": lambda: reward(name="x" * MB),
    }),
    *edges(413, "payload_too_large", "POST", "/v1/wallet/siwe/verify", {
        "1 MB sign-in": lambda: {"json": {"message": "x" * MB, "signature": "0x"}},
    }),
    *edges(413, "payload_too_large", "POST", "/v1/events/batch", {
        "5 MB batch": lambda: raw(b'{"events": "' + b"x" * (5 * MB) + b'"}'),
    }),
]  # fmt: skip


@pytest.mark.parametrize(("method", "path", "request_kwargs", "status", "code"), EDGE_CASES)
def test_edge_input_gets_a_clear_4xx_and_writes_nothing(
    fuzz: FuzzTarget,
    method: str,
    path: str,
    request_kwargs: Callable[[], dict[str, Any]],
    status: int,
    code: str,
) -> None:
    gateway = fuzz.gateway
    kwargs = request_kwargs()
    headers = {**fuzz.auth_for(path), "Idempotency-Key": uuid.uuid4().hex}
    headers.update(kwargs.pop("headers", {}))
    before = table_counts(gateway)
    response = gateway.client.request(method, path, headers=headers, **kwargs)
    assert response.status_code == status, response.text[:500]
    assert assert_error_body(response) == code
    assert table_counts(gateway) == before
    assert processing_keys(gateway) == 0


def test_the_same_refusal_comes_back_on_retry(fuzz: FuzzTarget) -> None:
    """A refusal by the rules is stored under its key: a retry gets it again, nothing more."""
    gateway = fuzz.gateway
    headers = {**fuzz.auth_for("/v1/events"), "Idempotency-Key": uuid.uuid4().hex}
    body = order_with(currency="ZZZ")["json"]
    first = gateway.client.post("/v1/events", json=body, headers=headers)
    before = table_counts(gateway)
    again = gateway.client.post("/v1/events", json=body, headers=headers)
    assert first.status_code == again.status_code == 422
    assert first.json() == again.json()
    assert table_counts(gateway) == before


def test_a_body_just_under_the_limit_is_read(fuzz: FuzzTarget) -> None:
    """The limits refuse what is too large, not what is large: 100 KB of items is read."""
    items = [
        {"sku": f"{i}-" + "s" * 100, "category": "c" * 60, "amount": "1.00"} for i in range(500)
    ]
    body = order_with(amount="500.00", items=items)["json"]
    assert 100_000 < len(json.dumps(body)) < 256 * 1024
    response = fuzz.gateway.client.post(
        "/v1/events", json=body, headers={**fuzz.auth_for("/v1/events"), "Idempotency-Key": "big"}
    )
    assert response.status_code == 202, response.text[:300]
