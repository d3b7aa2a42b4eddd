"""Signed webhooks to merchants: queued in the database, delivered with backoff.

Each delivery is a POST of ``{"id", "type", "created_at", "data"}`` with the
header ``Pointsnet-Signature: t=<unix>,v1=<HMAC-SHA256 of "t.body">`` under the
merchant's webhook secret.  A non-2xx answer or a network error is retried with
exponential backoff (2, 4, 8 ... seconds) up to ``webhook_max_attempts``; every
attempt's outcome is kept on the delivery row.

No database transaction is open while a merchant's endpoint is called: a
dispatcher claims due deliveries in one short transaction (leasing them for
``LEASE_SECONDS``), posts them, and records the outcomes in another.  A slow or
silent endpoint therefore never holds SQLite's write lock (which every accepted
event needs).  A dispatcher that dies mid-request leaves its deliveries due
again when the lease runs out: delivery is at least once, and the ``id`` lets a
merchant drop a repeat.

Outside the devnet, webhook URLs must not lead to private, loopback,
link-local or otherwise non-public addresses (``destination_refusal``): a
merchant could otherwise make the gateway call into its own network.  The
check runs when the URL is set and again before every attempt, as a name may
resolve elsewhere later.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import socket
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from gateway.crypto import SecretBox, sign_webhook
from gateway.db import is_postgres, transaction
from gateway.models import Merchant, WebhookDelivery

log = logging.getLogger("pointsnet.webhooks")

EVENT_TYPES = ("event.confirmed", "event.failed", "redemption.confirmed", "tier.changed")

#: Seconds a merchant's endpoint has to answer one delivery.
REQUEST_TIMEOUT = 10.0
#: Seconds a claimed delivery belongs to its dispatcher (well past a batch's requests).
LEASE_SECONDS = 120.0


def queue_webhook(
    session: Session, merchant_id: int, event_type: str, data: dict[str, Any]
) -> None:
    """Queue a webhook in the caller's transaction (only if the merchant configured one)."""
    merchant = session.get(Merchant, merchant_id)
    if merchant is None or not merchant.webhook_url:
        return
    session.add(WebhookDelivery(merchant_id=merchant_id, event_type=event_type, payload=data))


def destination_refusal(url: str, allow_private: bool) -> str | None:
    """Why the gateway will not post to ``url``, or None when it may.

    With ``allow_private`` (the devnet) every URL may be used.  Otherwise the
    host must resolve, and only to public addresses.
    """
    if allow_private:
        return None
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        return f"{host} does not resolve ({exc})"
    for *_, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if not address.is_global or address.is_multicast:
            return f"{host} resolves to {address}, which is not a public address"
    return None


@dataclass(frozen=True)
class _Claimed:
    """A delivery leased to this dispatcher, with what its request needs."""

    id: int
    attempts: int
    url: str
    secret: bytes
    event_type: str
    body: bytes


@dataclass(frozen=True)
class _Outcome:
    id: int
    attempts: int
    ok: bool
    status_code: int | None = None
    error: str | None = None
    final: bool = False  # no retry: the destination is refused


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
        self.client = httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False)

    def run(self, stop: threading.Event, idle_sleep: float = 0.5) -> None:
        while not stop.is_set():
            try:
                busy = self.deliver_due()
            except Exception:  # never let one bad row stop deliveries
                log.exception("webhook dispatch failed")
                busy = False
            if not busy:
                stop.wait(idle_sleep)

    def deliver_due(self, limit: int = 50) -> bool:
        """Claim up to ``limit`` due deliveries, post them, record how each went."""
        claimed = self._claim(limit)
        if not claimed:
            return False
        self._record([self._post(delivery) for delivery in claimed])
        return True

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
                url = merchant.webhook_url
                claimed.append(
                    _Claimed(delivery.id, delivery.attempts, url, secret, delivery.event_type, body)
                )
        return claimed

    def _post(self, delivery: _Claimed) -> _Outcome:
        """One attempt, outside any database transaction."""
        refusal = destination_refusal(delivery.url, self.allow_private)
        if refusal is not None:
            return _Outcome(delivery.id, delivery.attempts, False, error=refusal, final=True)
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
        except httpx.HTTPError as exc:
            failure = f"{type(exc).__name__}: {exc}"[:500]
            return _Outcome(delivery.id, delivery.attempts, False, error=failure)
        ok = 200 <= response.status_code < 300
        error = None if ok else f"HTTP {response.status_code}"
        return _Outcome(delivery.id, delivery.attempts, ok, response.status_code, error)

    def _record(self, outcomes: list[_Outcome]) -> None:
        now = datetime.now(UTC)
        with transaction(self.sessions) as session:
            for outcome in outcomes:
                delivery = session.get(WebhookDelivery, outcome.id)
                if delivery is None or delivery.attempts != outcome.attempts:
                    continue  # the lease ran out and another dispatcher took it on
                delivery.last_status_code = outcome.status_code
                delivery.last_error = outcome.error
                if outcome.ok:
                    delivery.status = "delivered"
                elif outcome.final or delivery.attempts >= self.max_attempts:
                    delivery.status = "failed"
                else:
                    delivery.next_attempt_at = now + timedelta(seconds=2**delivery.attempts)
