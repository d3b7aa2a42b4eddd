"""Signed webhooks to merchants: queued in the database, delivered with backoff.

Each delivery is a POST of ``{"id", "type", "created_at", "data"}`` with the
header ``Pointsnet-Signature: t=<unix>,v1=<HMAC-SHA256 of "t.body">`` under the
merchant's webhook secret.  A non-2xx answer or a network error is retried with
exponential backoff (2, 4, 8 ... seconds) up to ``webhook_max_attempts``; every
attempt's outcome is kept on the delivery row.

Queueing is part of the caller's transaction: ``queue_webhook`` adds one,
``queue_webhooks`` many in one multi-row INSERT (the outbox confirms events by
the hundred).

No database transaction is open while a merchant's endpoint is called: a
dispatcher claims up to ``CLAIM_LIMIT`` due deliveries in one UPDATE ... RETURNING
(leasing them for ``LEASE_SECONDS``), posts them concurrently (at most
``CONCURRENCY`` requests in flight), then records every outcome in one short
transaction (one executemany UPDATE for the finished ones, one for the retries).
A slow or silent endpoint therefore never holds SQLite's write lock (which every
accepted event needs).  A dispatcher that dies mid-request leaves its deliveries
due again when the lease runs out: delivery is at least once, and the ``id`` lets
a merchant drop a repeat.  Deliveries are claimed oldest first, but neither
retries nor concurrent posts keep their order: a merchant orders by the payload.

Every attempt goes through :mod:`gateway.webhooks.destinations` first (outside
the devnet: public addresses only, checked again at connect time).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import bindparam, case, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from gateway.crypto import SecretBox, sign_webhook
from gateway.db import is_postgres, transaction
from gateway.errors import DestinationRefused
from gateway.models import Merchant, WebhookDelivery
from gateway.webhooks.destinations import check_destination, public_only_transport

log = logging.getLogger("pointsnet.webhooks")

EVENT_TYPES = ("event.confirmed", "event.failed", "redemption.confirmed", "tier.changed")

#: Seconds a merchant's endpoint has to answer one delivery.
REQUEST_TIMEOUT = 10.0
#: Deliveries one dispatcher claims at a time.
CLAIM_LIMIT = 100
#: Requests one dispatcher has in flight at most.
CONCURRENCY = 16
#: Seconds a claimed delivery belongs to its dispatcher (well past its claim's requests:
#: ``CLAIM_LIMIT / CONCURRENCY`` rounds of ``REQUEST_TIMEOUT``); one not posted by then
#: is left alone, another dispatcher may have taken it.
LEASE_SECONDS = 300.0

#: A webhook to queue: (merchant id, event type, data).
Webhook = tuple[int, str, dict[str, Any]]


def queue_webhook(
    session: Session, merchant_id: int, event_type: str, data: dict[str, Any]
) -> None:
    """Queue a webhook in the caller's transaction (only if the merchant configured one)."""
    merchant = session.get(Merchant, merchant_id)
    if merchant is None or not merchant.webhook_url:
        return
    session.add(WebhookDelivery(merchant_id=merchant_id, event_type=event_type, payload=data))


def queue_webhooks(session: Session, items: Iterable[Webhook]) -> int:
    """Queue many webhooks in the caller's transaction: one SELECT of the merchants with
    a webhook, one multi-row INSERT (in ``items``' order). Returns how many were queued."""
    items = list(items)
    merchant_ids = {merchant_id for merchant_id, _type, _data in items}
    if not merchant_ids:
        return 0
    hooked = set(
        session.scalars(
            select(Merchant.id).where(
                Merchant.id.in_(merchant_ids),
                Merchant.webhook_url.is_not(None),
                Merchant.webhook_url != "",
            )
        )
    )
    now = datetime.now(UTC)
    rows = [
        {
            "merchant_id": merchant_id,
            "event_type": event_type,
            "payload": data,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for merchant_id, event_type, data in items
        if merchant_id in hooked
    ]
    if rows:
        session.execute(insert(WebhookDelivery), rows)
    return len(rows)


@dataclass(frozen=True)
class _Claimed:
    """A delivery leased to this dispatcher, with what its request needs."""

    id: int
    attempts: int
    url: str
    secret: bytes
    event_type: str
    body: bytes
    claimed_at: float  # time.monotonic()


@dataclass(frozen=True)
class _Outcome:
    id: int
    attempts: int
    ok: bool
    status_code: int | None = None
    error: str | None = None
    final: bool = False  # no retry: the destination is refused or the URL unusable


class WebhookDispatcher:
    """Delivers due webhooks; safe to run beside the worker, and several at once."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        box: SecretBox,
        max_attempts: int = 8,
        *,
        allow_private: bool,
        timeout: float = REQUEST_TIMEOUT,
        concurrency: int = CONCURRENCY,
    ) -> None:
        self.sessions = sessions
        self.box = box
        self.max_attempts = max_attempts
        self.allow_private = allow_private
        self.client = httpx.Client(
            timeout=timeout,
            follow_redirects=False,
            trust_env=False,
            limits=httpx.Limits(max_connections=concurrency),
            transport=None if allow_private else public_only_transport(),
        )
        self.pool = ThreadPoolExecutor(concurrency, thread_name_prefix="webhook-post")

    def run(self, stop: threading.Event, idle_sleep: float = 0.5) -> None:
        while not stop.is_set():
            try:
                busy = self.deliver_due()
            except Exception:  # never let one bad row stop deliveries
                log.exception("webhook dispatch failed")
                busy = False
            if not busy:
                stop.wait(idle_sleep)

    def deliver_due(self, limit: int = CLAIM_LIMIT) -> bool:
        """Claim up to ``limit`` due deliveries, post them concurrently, record how they went."""
        claimed = self._claim(limit)
        outcomes = [o for o in self.pool.map(self._post_leased, claimed) if o is not None]
        self._record_all(outcomes)
        return bool(claimed)

    def _claim(self, limit: int) -> list[_Claimed]:
        """Lease up to ``limit`` due deliveries: one UPDATE ... RETURNING, one SELECT of
        their merchants; the ones that cannot be sent are failed here. When nothing is
        due (the usual poll) one read finds that, without taking SQLite's write lock."""
        now = datetime.now(UTC)
        due = (
            select(WebhookDelivery.id)
            .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now)
            .order_by(WebhookDelivery.id)
            .limit(limit)
        )
        with self.sessions() as session:
            if session.scalar(due.limit(1)) is None:
                return []
        with transaction(self.sessions) as session:
            if is_postgres(session):
                due = due.with_for_update(skip_locked=True)
            out_of_attempts = WebhookDelivery.attempts >= self.max_attempts
            leased = session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id.in_(due.scalar_subquery()))
                .values(
                    # Its dispatchers died mid-request each time: not tried forever.
                    status=case((out_of_attempts, "failed"), else_=WebhookDelivery.status),
                    attempts=case(
                        (out_of_attempts, WebhookDelivery.attempts),
                        else_=WebhookDelivery.attempts + 1,
                    ),
                    next_attempt_at=now + timedelta(seconds=LEASE_SECONDS),
                )
                .returning(
                    WebhookDelivery.id,
                    WebhookDelivery.status,
                    WebhookDelivery.attempts,
                    WebhookDelivery.merchant_id,
                    WebhookDelivery.event_type,
                    WebhookDelivery.payload,
                    WebhookDelivery.created_at,
                )
                .execution_options(synchronize_session=False)
            ).all()
            leased = sorted((row for row in leased if row.status == "pending"), key=_row_id)
            merchant_ids = {row.merchant_id for row in leased}
            merchants = {
                m.id: (m.webhook_url, m.webhook_secret_enc)
                for m in session.execute(
                    select(Merchant.id, Merchant.webhook_url, Merchant.webhook_secret_enc).where(
                        Merchant.id.in_(merchant_ids)
                    )
                )
            }
            secrets: dict[int, bytes] = {}
            unconfigured: list[int] = []
            claimed: list[_Claimed] = []
            for row in leased:
                url, secret_enc = merchants.get(row.merchant_id, (None, None))
                if not url or not secret_enc:
                    unconfigured.append(row.id)
                    continue
                secret = secrets.get(row.merchant_id)
                if secret is None:
                    secret = secrets[row.merchant_id] = self.box.decrypt(secret_enc)
                claimed.append(
                    _Claimed(
                        id=row.id,
                        attempts=row.attempts,
                        url=url,
                        secret=secret,
                        event_type=row.event_type,
                        body=_body(row.id, row.event_type, row.created_at, row.payload),
                        claimed_at=time.monotonic(),
                    )
                )
            if unconfigured:
                session.execute(
                    update(WebhookDelivery)
                    .where(WebhookDelivery.id.in_(unconfigured))
                    .values(  # failed unsent: no attempt was made
                        status="failed",
                        attempts=WebhookDelivery.attempts - 1,
                        last_error="no webhook configured",
                    )
                    .execution_options(synchronize_session=False)
                )
        return claimed

    def _post_leased(self, delivery: _Claimed) -> _Outcome | None:
        """:meth:`_post`, unless the lease is running out (the delivery may be another
        dispatcher's by the time the request would end): None then."""
        if time.monotonic() - delivery.claimed_at > LEASE_SECONDS - REQUEST_TIMEOUT:
            return None
        return self._post(delivery)

    def _post(self, delivery: _Claimed) -> _Outcome:
        """One attempt, outside any database transaction."""
        if not self.allow_private:
            try:
                check_destination(delivery.url)  # a clear, final answer before connecting
            except DestinationRefused as refused:
                return _Outcome(
                    delivery.id, delivery.attempts, False, error=str(refused), final=refused.final
                )
        try:
            response = self.client.post(
                delivery.url,
                content=delivery.body,
                headers={
                    "Content-Type": "application/json",
                    "Pointsnet-Signature": sign_webhook(delivery.secret, delivery.body),
                    "Pointsnet-Event": delivery.event_type,
                },
            )
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
            failure = f"{type(exc).__name__}: {exc}"[:500]
            return _Outcome(delivery.id, delivery.attempts, False, error=failure, final=True)
        except Exception as exc:  # network errors and anything else: tried again later
            failure = f"{type(exc).__name__}: {exc}"[:500]
            return _Outcome(delivery.id, delivery.attempts, False, error=failure)
        ok = 200 <= response.status_code < 300
        error = None if ok else f"HTTP {response.status_code}"
        return _Outcome(delivery.id, delivery.attempts, ok, response.status_code, error)

    def _record(self, outcome: _Outcome) -> None:
        self._record_all([outcome])

    def _record_all(self, outcomes: list[_Outcome]) -> None:
        """Every outcome in one transaction: one UPDATE for the finished deliveries, one
        for those tried again later. A delivery whose ``attempts`` moved on is left
        alone: its lease ran out and another dispatcher took it on."""
        if not outcomes:
            return
        now = datetime.now(UTC)
        finished: list[dict[str, Any]] = []
        retried: list[dict[str, Any]] = []
        for outcome in outcomes:
            row = {
                "b_id": outcome.id,
                "b_attempts": outcome.attempts,
                "b_code": outcome.status_code,
                "b_error": outcome.error,
            }
            if outcome.ok:
                finished.append({**row, "b_status": "delivered"})
            elif outcome.final or outcome.attempts >= self.max_attempts:
                finished.append({**row, "b_status": "failed"})
            else:
                at = now + timedelta(seconds=2**outcome.attempts)
                retried.append({**row, "b_next": at})
        mine = (WebhookDelivery.id == bindparam("b_id")) & (
            WebhookDelivery.attempts == bindparam("b_attempts")
        )
        outcome_values: dict[str, Any] = {
            "last_status_code": bindparam("b_code"),
            "last_error": bindparam("b_error"),
        }
        with transaction(self.sessions) as session:
            connection = session.connection()
            if finished:
                connection.execute(
                    update(WebhookDelivery)
                    .where(mine)
                    .values(status=bindparam("b_status"), **outcome_values),
                    finished,
                )
            if retried:
                connection.execute(
                    update(WebhookDelivery)
                    .where(mine)
                    .values(next_attempt_at=bindparam("b_next"), **outcome_values),
                    retried,
                )


def _row_id(row: Any) -> int:
    return int(row.id)


def _body(delivery_id: int, event_type: str, created_at: datetime, payload: Any) -> bytes:
    """The signed JSON body of one delivery."""
    return json.dumps(
        {
            "id": f"whd_{delivery_id}",
            "type": event_type,
            "created_at": created_at.isoformat(),
            "data": payload,
        },
        separators=(",", ":"),
        sort_keys=True,
    ).encode()
