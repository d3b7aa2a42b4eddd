"""Signed webhooks to merchants: queued in the database, delivered with backoff.

Each delivery is a POST of ``{"id", "type", "created_at", "data"}`` with the
header ``Pointsnet-Signature: t=<unix>,v1=<HMAC-SHA256 of "t.body">`` under the
merchant's webhook secret.  A non-2xx answer or a network error is retried with
exponential backoff (2, 4, 8 ... seconds) up to ``webhook_max_attempts``; every
attempt's outcome is kept on the delivery row.

No database transaction is open while a merchant's endpoint is called: a
dispatcher claims a few due deliveries in one short transaction (leasing them
for ``LEASE_SECONDS``), then posts each and records its outcome in a short
transaction of its own.  A slow or silent endpoint therefore never holds
SQLite's write lock (which every accepted event needs).  A dispatcher that dies
mid-request leaves its deliveries due again when the lease runs out: delivery
is at least once, and the ``id`` lets a merchant drop a repeat.

Every attempt goes through :mod:`gateway.webhooks.destinations` first (outside
the devnet: public addresses only, checked again at connect time).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select
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
CLAIM_LIMIT = 10
#: Seconds a claimed delivery belongs to its dispatcher (well past its claim's requests);
#: one not posted by then is left alone, another dispatcher may have taken it.
LEASE_SECONDS = 300.0


def queue_webhook(
    session: Session, merchant_id: int, event_type: str, data: dict[str, Any]
) -> None:
    """Queue a webhook in the caller's transaction (only if the merchant configured one)."""
    merchant = session.get(Merchant, merchant_id)
    if merchant is None or not merchant.webhook_url:
        return
    session.add(WebhookDelivery(merchant_id=merchant_id, event_type=event_type, payload=data))


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
    ) -> None:
        self.sessions = sessions
        self.box = box
        self.max_attempts = max_attempts
        self.allow_private = allow_private
        self.client = httpx.Client(
            timeout=timeout,
            follow_redirects=False,
            trust_env=False,
            transport=None if allow_private else public_only_transport(),
        )

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
        """Claim up to ``limit`` due deliveries, then post each and record how it went."""
        claimed = self._claim(limit)
        for delivery in claimed:
            if time.monotonic() - delivery.claimed_at > LEASE_SECONDS - REQUEST_TIMEOUT:
                break  # the lease is running out: the rest may be another dispatcher's
            self._record(self._post(delivery))
        return bool(claimed)

    def _claim(self, limit: int) -> list[_Claimed]:
        now = datetime.now(UTC)
        claimed = []
        with transaction(self.sessions) as session:
            query = (
                select(WebhookDelivery)
                .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now)
                .order_by(WebhookDelivery.id)
                .limit(limit)
            )
            if is_postgres(session):
                query = query.with_for_update(skip_locked=True)
            for delivery in session.scalars(query).all():
                merchant = session.get(Merchant, delivery.merchant_id)
                if merchant is None or not merchant.webhook_url or not merchant.webhook_secret_enc:
                    delivery.status = "failed"
                    delivery.last_error = "no webhook configured"
                    continue
                if delivery.attempts >= self.max_attempts:  # its dispatchers died each time
                    delivery.status = "failed"
                    continue
                delivery.attempts += 1
                delivery.next_attempt_at = now + timedelta(seconds=LEASE_SECONDS)
                body = json.dumps(
                    {
                        "id": f"whd_{delivery.id}",
                        "type": delivery.event_type,
                        "created_at": delivery.created_at.isoformat(),
                        "data": delivery.payload,
                    },
                    separators=(",", ":"),
                    sort_keys=True,
                ).encode()
                secret = self.box.decrypt(merchant.webhook_secret_enc)
                claimed.append(
                    _Claimed(
                        id=delivery.id,
                        attempts=delivery.attempts,
                        url=merchant.webhook_url,
                        secret=secret,
                        event_type=delivery.event_type,
                        body=body,
                        claimed_at=time.monotonic(),
                    )
                )
        return claimed

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
        with transaction(self.sessions) as session:
            delivery = session.get(WebhookDelivery, outcome.id, with_for_update=True)
            if delivery is None or delivery.attempts != outcome.attempts:
                return  # the lease ran out and another dispatcher took it on
            delivery.last_status_code = outcome.status_code
            delivery.last_error = outcome.error
            if outcome.ok:
                delivery.status = "delivered"
            elif outcome.final or delivery.attempts >= self.max_attempts:
                delivery.status = "failed"
            else:
                delivery.next_attempt_at = datetime.now(UTC) + timedelta(
                    seconds=2**delivery.attempts
                )
