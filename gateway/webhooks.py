"""Signed webhooks to merchants: queued in the database, delivered with backoff.

Each delivery is a POST of ``{"id", "type", "created_at", "data"}`` with the
header ``Pointsnet-Signature: t=<unix>,v1=<HMAC-SHA256 of "t.body">`` under the
merchant's webhook secret.  A non-2xx answer or a network error is retried with
exponential backoff (2, 4, 8 ... seconds) up to ``webhook_max_attempts``; every
attempt's outcome is kept on the delivery row.
"""

from __future__ import annotations

import json
import logging
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from gateway.crypto import SecretBox, sign_webhook
from gateway.db import transaction
from gateway.models import Merchant, WebhookDelivery

log = logging.getLogger("pointsnet.webhooks")

EVENT_TYPES = ("event.confirmed", "event.failed", "redemption.confirmed", "tier.changed")


def queue_webhook(
    session: Session, merchant_id: int, event_type: str, data: dict[str, Any]
) -> None:
    """Queue a webhook in the caller's transaction (only if the merchant configured one)."""
    merchant = session.get(Merchant, merchant_id)
    if merchant is None or not merchant.webhook_url:
        return
    session.add(WebhookDelivery(merchant_id=merchant_id, event_type=event_type, payload=data))


class WebhookDispatcher:
    """Delivers due webhooks; safe to run beside the worker."""

    def __init__(
        self, sessions: sessionmaker[Session], box: SecretBox, max_attempts: int = 8
    ) -> None:
        self.sessions = sessions
        self.box = box
        self.max_attempts = max_attempts
        self.client = httpx.Client(timeout=10.0, follow_redirects=False, trust_env=False)

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
        now = datetime.now(UTC)
        with transaction(self.sessions) as session:
            query = (
                select(WebhookDelivery)
                .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now)
                .order_by(WebhookDelivery.id)
                .limit(limit)
            )
            if session.get_bind().dialect.name == "postgresql":
                # Several worker processes run a dispatcher each: one delivery, one of them.
                query = query.with_for_update(skip_locked=True)
            due = session.scalars(query).all()
            for delivery in due:
                self._attempt(session, delivery)
            return bool(due)

    def _attempt(self, session: Session, delivery: WebhookDelivery) -> None:
        merchant = session.get(Merchant, delivery.merchant_id)
        if merchant is None or not merchant.webhook_url or merchant.webhook_secret_enc is None:
            delivery.status = "failed"
            delivery.last_error = "no webhook configured"
            return
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
        delivery.attempts += 1
        try:
            response = self.client.post(
                merchant.webhook_url,
                content=body,
                headers={
                    "Content-Type": "application/json",
                    "Pointsnet-Signature": sign_webhook(secret, body),
                    "Pointsnet-Event": delivery.event_type,
                },
            )
            delivery.last_status_code = response.status_code
            ok = 200 <= response.status_code < 300
            delivery.last_error = None if ok else f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            ok = False
            delivery.last_error = f"{type(exc).__name__}: {exc}"[:500]
        if ok:
            delivery.status = "delivered"
        elif delivery.attempts >= self.max_attempts:
            delivery.status = "failed"
        else:
            delivery.next_attempt_at = datetime.now(UTC) + timedelta(seconds=2**delivery.attempts)
