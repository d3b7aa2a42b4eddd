"""Webhooks to merchants, in the order a delivery takes:

- ``dispatcher``: ``queue_webhook`` adds a delivery in the caller's transaction;
  ``WebhookDispatcher`` claims due deliveries, posts them signed, and records
  each outcome (the database side);
- ``destinations``: where a post may go: ``check_postable`` (the URL parses),
  ``destination_refusal`` / ``check_destination`` (public addresses only outside
  the devnet) and ``public_only_transport`` (checked again at connect time).
  No database: ``gateway.schemas`` imports it alone.
"""

from gateway.webhooks.destinations import check_destination, check_postable, destination_refusal
from gateway.webhooks.dispatcher import EVENT_TYPES, WebhookDispatcher, queue_webhook

__all__ = [
    "EVENT_TYPES",
    "WebhookDispatcher",
    "check_destination",
    "check_postable",
    "destination_refusal",
    "queue_webhook",
]
