"""Tier changes decided on the accept path queue ``tier.changed`` webhooks, for a
merchant with a webhook URL only (the accept path skips the queue for the others)."""

from __future__ import annotations

import uuid

from gateway_kit import Gateway, purchase
from sqlalchemy import func, select

from gateway.models import ChainOp, Merchant, WebhookDelivery
from gateway.schemas import EventCreate
from gateway.services.events import submit_many


def _tier_changes(gateway: Gateway, index: int, run: str) -> tuple[int, int]:
    """Big purchases of new customers at merchant ``index``: (tier ops, tier webhooks)."""
    merchant_id = gateway.merchants[index].id
    with gateway.context.sessions() as session:
        merchant = session.get(Merchant, merchant_id)
        assert merchant is not None
        session.expunge(merchant)
        queued = session.scalar(
            select(func.count()).where(
                WebhookDelivery.merchant_id == merchant_id,
                WebhookDelivery.event_type == "tier.changed",
            )
        )
    items = [
        (f"{run}-{index}-k{i}",
         EventCreate.model_validate(purchase(f"{run}-{index}-c{i % 3}", f"{run}-{index}-o{i}",
                                             amount="2500.00")))
        for i in range(12)
    ]  # fmt: skip
    answers = submit_many(gateway.context, merchant, items)
    assert all(status == 202 for status, _a in answers), answers
    with gateway.context.sessions() as session:
        tiers = session.scalar(
            select(func.count()).where(
                ChainOp.merchant_id == merchant_id,
                ChainOp.kind == "tier",
                ChainOp.event_id.in_([a["id"] for _s, a in answers]),
            )
        )
        now = session.scalar(
            select(func.count()).where(
                WebhookDelivery.merchant_id == merchant_id,
                WebhookDelivery.event_type == "tier.changed",
            )
        )
    return int(tiers or 0), int(now or 0) - int(queued or 0)


def test_tier_changes_queue_webhooks_for_a_hooked_merchant_only(gateway: Gateway) -> None:
    run = uuid.uuid4().hex[:8]
    with gateway.context.sessions() as session, session.begin():
        hooked = session.get(Merchant, gateway.merchants[1].id)
        assert hooked is not None
        hooked.webhook_url = "https://example.com/hooks"
    try:
        plain_tiers, plain_queued = _tier_changes(gateway, 0, run)
        hooked_tiers, hooked_queued = _tier_changes(gateway, 1, run)
    finally:
        with gateway.context.sessions() as session, session.begin():
            hooked = session.get(Merchant, gateway.merchants[1].id)
            assert hooked is not None
            hooked.webhook_url = None
    assert plain_tiers > 0 and plain_queued == 0
    assert hooked_tiers > 0 and hooked_queued == hooked_tiers
