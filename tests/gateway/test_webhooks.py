"""Webhook delivery: no transaction held across a merchant's request, no private targets.

The dispatcher runs here on a database alone (no chain is needed): a merchant
row with a webhook, deliveries queued as the worker queues them.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from factories import database_for
from sqlalchemy import event, select
from sqlalchemy.orm import Session, sessionmaker

from chain.devnet import free_port
from gateway.crypto import SecretBox
from gateway.db import make_engine, make_session_factory, transaction
from gateway.migrate import upgrade
from gateway.models import Merchant, WebhookDelivery
from gateway.settings import Settings
from gateway.webhooks.destinations import destination_refusal
from gateway.webhooks.dispatcher import WebhookDispatcher, queue_webhook, queue_webhooks

MERCHANT = 7


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def sessions(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    with database_for(request.param) as url:
        engine = make_engine(url or f"sqlite:///{tmp_path / 'gateway.db'}")
        upgrade(engine)
        yield make_session_factory(engine)
        engine.dispose()


BOX = SecretBox(b"k" * 32)


def configure(sessions: sessionmaker[Session], url: str) -> None:
    with transaction(sessions) as session:
        merchant = session.get(Merchant, MERCHANT)
        if merchant is None:
            merchant = Merchant(
                id=MERCHANT, name="Hooks", currency="EUR", api_key_hash="h" * 64,
                api_key_prefix="pn_test", cap_per_period=10**6, signer_address="0x" + "1" * 40,
            )  # fmt: skip
            session.add(merchant)
        merchant.webhook_url = url
        merchant.webhook_secret_enc = BOX.encrypt(b"s" * 32)


def queue(sessions: sessionmaker[Session], n: int = 1) -> list[int]:
    with transaction(sessions) as session:
        for i in range(n):
            queue_webhook(session, MERCHANT, "event.confirmed", {"event_id": f"e{i}"})
    with sessions() as session:
        return [d.id for d in session.query(WebhookDelivery).filter_by(status="pending")]


def counting(sessions: sessionmaker[Session]) -> list[str]:
    """The SQL statements run on ``sessions``' engine from now on (this test's)."""
    statements: list[str] = []
    engine = sessions.kw["bind"]

    def count(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        statements.append(sql)

    event.listen(engine, "before_cursor_execute", count)
    return statements


def dispatcher(
    sessions: sessionmaker[Session], *, allow_private: bool = True, timeout: float = 10.0
) -> WebhookDispatcher:
    return WebhookDispatcher(sessions, BOX, allow_private=allow_private, timeout=timeout)


def delivery(sessions: sessionmaker[Session], delivery_id: int) -> WebhookDelivery:
    with sessions() as session:
        row = session.get(WebhookDelivery, delivery_id)
        assert row is not None
        return row


class _Receiver(BaseHTTPRequestHandler):
    paths: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        _Receiver.paths.append(self.path)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        return


class _ConcurrentServer(ThreadingHTTPServer):
    request_queue_size = 128


@pytest.fixture
def receiver() -> Iterator[str]:
    # A merchant's endpoint takes concurrent requests, as the dispatcher sends them (up
    # to CONCURRENCY at once): a one-at-a-time server with a backlog of 5 drops some of
    # them on a loaded machine, and they come back only after a back-off.
    server = _ConcurrentServer(("127.0.0.1", free_port()), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Receiver.paths.clear()
    yield f"http://127.0.0.1:{server.server_port}/hook"
    server.shutdown()
    server.server_close()


# ------------------------------------------------------------------ no transaction held


def test_a_silent_endpoint_does_not_hold_up_the_gateways_writes(
    sessions: sessionmaker[Session],
) -> None:
    """A merchant endpoint that accepts the connection and never answers: while the
    dispatcher waits for it, other writers (the API accepting events) go on."""
    silent = socket.create_server(("127.0.0.1", 0))
    silent.settimeout(30)
    configure(sessions, f"http://127.0.0.1:{silent.getsockname()[1]}/hook")
    (waiting,) = queue(sessions)
    thread = threading.Thread(target=dispatcher(sessions, timeout=8.0).deliver_due)
    try:
        thread.start()
        connection, _ = silent.accept()  # the request is in flight now
        started = time.monotonic()
        queue(sessions)  # a write transaction, as accepting an event is
        took = time.monotonic() - started
        thread.join(30)
        connection.close()
    finally:
        silent.close()
    assert took < 4.0, f"a write waited {took:.1f} s for a webhook request"
    row = delivery(sessions, waiting)
    assert (row.status, row.attempts) == ("pending", 1)
    assert row.last_error is not None and "Timeout" in row.last_error
    assert row.next_attempt_at.replace(tzinfo=UTC) > datetime.now(UTC)  # backing off


def test_outcomes_are_recorded_after_the_requests(
    sessions: sessionmaker[Session], receiver: str
) -> None:
    configure(sessions, receiver)
    ids = queue(sessions, 3)
    assert dispatcher(sessions).deliver_due()
    assert [delivery(sessions, i).status for i in ids] == ["delivered"] * 3
    assert [delivery(sessions, i).last_status_code for i in ids] == [204] * 3
    assert _Receiver.paths == ["/hook"] * 3
    assert not dispatcher(sessions).deliver_due()  # nothing due twice


def test_a_claimed_delivery_is_not_sent_again_while_its_lease_runs(
    sessions: sessionmaker[Session], receiver: str
) -> None:
    """Another dispatcher (another worker process) does not take up a delivery that
    one has claimed and is still sending."""
    configure(sessions, receiver)
    (claimed_id,) = queue(sessions)
    first, second = dispatcher(sessions), dispatcher(sessions)
    (claimed,) = first._claim(10)
    assert claimed.id == claimed_id
    assert not second.deliver_due()
    first._record(first._post(claimed))
    assert delivery(sessions, claimed_id).status == "delivered"
    assert _Receiver.paths == ["/hook"]


# ------------------------------------------------------------------ private destinations


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://172.16.5.4/hook",
        "http://169.254.169.254/latest/meta-data",  # cloud metadata
        "http://100.64.0.1/hook",  # carrier-grade NAT
        "http://0.0.0.0/hook",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://[fd00::1]/hook",
        "http://[fec0::1]/hook",  # site-local
        "http://[64:ff9b::7f00:1]/hook",  # NAT64 of 127.0.0.1
        "http://[2002:a00:1::1]/hook",  # 6to4 of 10.0.0.1
        "http://[::7f00:1]/hook",  # IPv4-compatible 127.0.0.1
        "https://no-such-host.invalid/hook",
    ],
)
def test_non_public_destinations_are_refused_outside_the_devnet(url: str) -> None:
    assert destination_refusal(url, allow_private=False) is not None
    assert destination_refusal(url, allow_private=True) is None


@pytest.mark.parametrize(
    "url",
    [
        "https://93.184.216.34/hook",
        "http://[2606:4700::1111]:8443/",
        "http://[64:ff9b::5db8:d822]/",
    ],
)
def test_public_addresses_may_be_used(url: str) -> None:
    assert destination_refusal(url, allow_private=False) is None


def test_the_devnet_allows_private_webhooks_and_other_profiles_do_not(tmp_path: Path) -> None:
    assert Settings(data_dir=tmp_path).allows_private_webhooks
    testnet = Settings(data_dir=tmp_path, chain_id=11155111)
    assert not testnet.allows_private_webhooks
    assert Settings(
        data_dir=tmp_path, chain_id=11155111, webhook_allow_private=True
    ).allows_private_webhooks


def test_a_stored_url_that_now_leads_inside_is_not_called(
    sessions: sessionmaker[Session], receiver: str
) -> None:
    """Checked again before each attempt: a name may resolve elsewhere later."""
    configure(sessions, receiver)
    (refused,) = queue(sessions)
    assert dispatcher(sessions, allow_private=False).deliver_due()
    row = delivery(sessions, refused)
    assert row.status == "failed"  # not retried: it would be refused each time
    assert row.last_error is not None and "not a public address" in row.last_error
    assert _Receiver.paths == []


def test_a_name_that_resolves_inside_at_connect_time_is_not_connected_to(
    sessions: sessionmaker[Session], receiver: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS rebinding: the name is public when checked, then points at the gateway's own
    network when the connection is made. The dispatcher connects only to an address it
    checked at connect time."""
    port = int(receiver.rsplit(":", 1)[1].split("/")[0])
    configure(sessions, f"http://partner.example:{port}/hook")
    (delivery_id,) = queue(sessions)
    answers = iter([("93.184.216.34", port)])  # first lookup public, every later one local

    def rebinding(host: str, port_: object, *args: object, **kwargs: object) -> list[Any]:
        address = next(answers, ("127.0.0.1", port))
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", address)]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    dispatcher(sessions, allow_private=False).deliver_due()
    monkeypatch.undo()
    row = delivery(sessions, delivery_id)
    assert row.last_error is not None and "127.0.0.1" in row.last_error
    assert "not a public address" in row.last_error
    assert _Receiver.paths == []


def test_a_name_that_does_not_resolve_now_is_tried_again_later(
    sessions: sessionmaker[Session],
) -> None:
    configure(sessions, "https://no-such-host.invalid/hook")
    (delivery_id,) = queue(sessions)
    dispatcher(sessions, allow_private=False).deliver_due()
    row = delivery(sessions, delivery_id)
    assert (row.status, row.attempts) == ("pending", 1)
    assert row.last_error is not None and "does not resolve" in row.last_error


def test_a_url_httpx_cannot_use_fails_without_stopping_the_others(
    sessions: sessionmaker[Session], receiver: str
) -> None:
    configure(sessions, "https://example.com/\x01")
    (unusable,) = queue(sessions)
    configure(sessions, receiver)
    queue(sessions)
    with transaction(sessions) as session:  # the first one still has the unusable URL
        row = session.get(WebhookDelivery, unusable)
        assert row is not None
        row.merchant_id = MERCHANT + 1
        session.add(Merchant(
            id=MERCHANT + 1, name="Broken", currency="EUR", api_key_hash="b" * 64,
            api_key_prefix="pn_test", cap_per_period=1, signer_address="0x" + "2" * 40,
            webhook_url="https://example.com/\x01", webhook_secret_enc=BOX.encrypt(b"s" * 32),
        ))  # fmt: skip
    assert dispatcher(sessions).deliver_due()
    broken = delivery(sessions, unusable)
    assert broken.status == "failed" and "InvalidURL" in (broken.last_error or "")
    assert _Receiver.paths == ["/hook"]


def test_a_delivery_out_of_attempts_is_failed_when_claimed(
    sessions: sessionmaker[Session], receiver: str
) -> None:
    """Its dispatchers died mid-request every time: it is not tried forever."""
    configure(sessions, receiver)
    (doomed,) = queue(sessions)
    with transaction(sessions) as session:
        row = session.get(WebhookDelivery, doomed)
        assert row is not None
        row.attempts = 8
    dispatcher(sessions).deliver_due()
    assert delivery(sessions, doomed).status == "failed"
    assert _Receiver.paths == []


# ------------------------------------------------------------------ in bulk


class _Slow(BaseHTTPRequestHandler):
    """Answers after ``delay`` seconds: 204 on ``/ok``, 500 elsewhere."""

    delay: ClassVar[float] = 0.0
    paths: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        time.sleep(_Slow.delay)
        _Slow.paths.append(self.path)
        self.send_response(204 if self.path == "/ok" else 500)
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        return


@pytest.fixture
def slow() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), _Slow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Slow.paths.clear()
    _Slow.delay = 0.0
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def add_merchant(sessions: sessionmaker[Session], merchant_id: int, url: str | None) -> None:
    with transaction(sessions) as session:
        session.add(Merchant(
            id=merchant_id, name=f"M{merchant_id}", currency="EUR",
            api_key_hash=f"{merchant_id:064}",
            api_key_prefix="pn_test", cap_per_period=1, signer_address="0x" + "3" * 40,
            webhook_url=url, webhook_secret_enc=BOX.encrypt(b"t" * 32) if url else None,
        ))  # fmt: skip


def rows(sessions: sessionmaker[Session]) -> list[WebhookDelivery]:
    with sessions() as session:
        return list(session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)))


def test_queue_webhooks_queues_many_in_one_insert_in_order_for_hooked_merchants_only(
    sessions: sessionmaker[Session], receiver: str
) -> None:
    configure(sessions, receiver)
    add_merchant(sessions, MERCHANT + 1, None)  # no webhook: nothing queued for it
    statements = counting(sessions)
    items = [
        (MERCHANT if i % 3 else MERCHANT + 1, "event.confirmed", {"event_id": f"b{i}"})
        for i in range(30)
    ]
    with transaction(sessions) as session:
        queue_webhook(session, MERCHANT, "event.failed", {"event_id": "single"})
        session.flush()
        statements.clear()
        assert queue_webhooks(session, items) == 20
        inserts = [s for s in statements if s.startswith("INSERT")]
    assert len(inserts) == 1
    queued = rows(sessions)
    assert [(d.merchant_id, d.event_type, d.payload) for d in queued] == [
        (MERCHANT, "event.failed", {"event_id": "single"}),
        *[(m, t, d) for m, t, d in items if m == MERCHANT],
    ]
    assert {(d.status, d.attempts) for d in queued} == {("pending", 0)}
    with transaction(sessions) as session:
        assert queue_webhooks(session, []) == 0
    assert dispatcher(sessions).deliver_due()
    assert {(d.status, d.last_error) for d in rows(sessions)} == {("delivered", None)}
    assert len(_Receiver.paths) == 21


def test_a_claim_is_posted_concurrently_and_its_outcomes_recorded_together(
    sessions: sessionmaker[Session], slow: str
) -> None:
    configure(sessions, f"{slow}/ok")
    add_merchant(sessions, MERCHANT + 1, f"{slow}/fail")
    add_merchant(sessions, MERCHANT + 2, "http://127.0.0.1:9/gone")  # configured, then cleared
    with transaction(sessions) as session:
        queue_webhooks(
            session, [(MERCHANT + i % 3, "event.confirmed", {"n": i}) for i in range(24)]
        )
        gone = session.get(Merchant, MERCHANT + 2)
        assert gone is not None
        gone.webhook_url = None
    _Slow.delay = 0.25
    statements = counting(sessions)
    started = time.monotonic()
    assert dispatcher(sessions).deliver_due()
    took = time.monotonic() - started
    assert len(_Slow.paths) == 16
    assert took < 16 * 0.25 / 2, f"16 posts of 0.25 s took {took:.2f} s: not concurrent"
    sql = [s for s in statements if s.startswith(("UPDATE", "SELECT"))]
    # anything due, the claim, its merchants, the unconfigured ones, the finished ones,
    # the retried ones: for any number of deliveries
    assert len(sql) == 6, sql
    by_merchant: dict[int, set[tuple[str, int, int | None]]] = {}
    for d in rows(sessions):
        by_merchant.setdefault(d.merchant_id, set()).add((d.status, d.attempts, d.last_status_code))
    assert by_merchant[MERCHANT] == {("delivered", 1, 204)}
    assert by_merchant[MERCHANT + 1] == {("pending", 1, 500)}  # backing off 2 s
    assert by_merchant[MERCHANT + 2] == {("failed", 0, None)}
    for d in rows(sessions):
        if d.merchant_id == MERCHANT + 1:
            assert d.last_error == "HTTP 500"
            wait = d.next_attempt_at.replace(tzinfo=UTC) - datetime.now(UTC)
            assert 0 < wait.total_seconds() <= 2
    statements.clear()
    assert not dispatcher(sessions).deliver_due()  # nothing due before the backoff ends
    assert "BEGIN IMMEDIATE" not in statements  # no write lock taken (SQLite)
    assert [s.split()[0] for s in statements if s != "BEGIN"] == ["SELECT"]


def test_an_outcome_whose_lease_another_dispatcher_took_over_is_not_recorded(
    sessions: sessionmaker[Session], receiver: str
) -> None:
    configure(sessions, receiver)
    first_id, second_id = queue(sessions, 2)
    first = dispatcher(sessions)
    claimed = first._claim(10)
    assert [c.id for c in claimed] == [first_id, second_id]
    with transaction(sessions) as session:  # the lease ran out; another dispatcher claimed it
        row = session.get(WebhookDelivery, first_id)
        assert row is not None
        row.attempts += 1
    first._record_all([first._post(c) for c in claimed])
    assert delivery(sessions, first_id).status == "pending"
    assert delivery(sessions, second_id).status == "delivered"


def test_the_last_attempt_fails_a_delivery_for_good(
    sessions: sessionmaker[Session], slow: str
) -> None:
    configure(sessions, f"{slow}/fail")
    (doomed,) = queue(sessions)
    with transaction(sessions) as session:
        row = session.get(WebhookDelivery, doomed)
        assert row is not None
        row.attempts = 7
    assert dispatcher(sessions).deliver_due()
    row = delivery(sessions, doomed)
    assert (row.status, row.attempts, row.last_status_code) == ("failed", 8, 500)
