"""Webhooks to merchants, in the order a delivery takes:

- ``dispatcher``: ``queue_webhook`` adds a delivery in the caller's transaction,
  ``queue_webhooks`` many in one INSERT; ``WebhookDispatcher`` claims due
  deliveries in one statement, posts them signed and concurrently, and records
  their outcomes together (the database side);
- ``destinations``: where a post may go: ``check_postable`` (the URL parses),
  ``destination_refusal`` / ``check_destination`` (public addresses only outside
  the devnet) and ``public_only_transport`` (checked again at connect time).
  No database: ``gateway.schemas`` imports it alone.

Import from the module itself; this package re-exports nothing, so importing
``destinations`` never loads the database layer.
"""
