"""``/v1/webhook``: where the gateway sends the merchant signed notifications."""

from __future__ import annotations

from fastapi import APIRouter

from gateway.api.deps import ContextDep, CurrentMerchant
from gateway.api.routes.events import ERRORS
from gateway.db import transaction
from gateway.errors import WebhookUrlNotAllowed
from gateway.models import Merchant
from gateway.schemas import WebhookConfigIn, WebhookConfigPublic
from gateway.services.merchants import new_webhook_secret
from gateway.webhooks.destinations import destination_refusal
from gateway.webhooks.dispatcher import EVENT_TYPES

router = APIRouter(prefix="/v1/webhook", tags=["webhooks"])


@router.put("", response_model=WebhookConfigPublic, responses=ERRORS)
def configure_webhook(
    body: WebhookConfigIn, merchant: CurrentMerchant, context: ContextDep
) -> WebhookConfigPublic:
    """Set the webhook URL; a new signing secret is returned once (HMAC-SHA256 over
    ``timestamp.body``, header ``Pointsnet-Signature: t=...,v1=...``).

    Outside the devnet the URL must resolve to public addresses only
    (``webhook_url_not_allowed`` otherwise)."""
    refusal = destination_refusal(body.url, context.settings.allows_private_webhooks)
    if refusal is not None:
        raise WebhookUrlNotAllowed(f"webhook URL not allowed: {refusal}", url=body.url)
    secret = new_webhook_secret()
    with transaction(context.sessions) as session:
        row = session.get(Merchant, merchant.id)
        assert row is not None
        row.webhook_url = body.url
        row.webhook_secret_enc = context.box.encrypt(secret)
    return WebhookConfigPublic(url=body.url, secret=secret.hex(), event_types=list(EVENT_TYPES))
