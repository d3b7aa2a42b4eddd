"""indexes for the accept path's per-member and per-merchant lookups

Revision ID: 7c1f4e9a2b30
Revises: 00bb141c8720
Create Date: 2026-11-23 23:58:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "7c1f4e9a2b30"
down_revision = "00bb141c8720"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Keys are now stored with their answer in the accepting transaction; a key
    # left "processing" by an older version belongs to a request that never
    # answered, so its client retries: let the retry start afresh.
    op.execute("DELETE FROM idempotency_keys WHERE state = 'processing'")
    op.create_index("ix_chain_ops_member_kind", "chain_ops", ["member_address", "kind"])
    op.create_index("ix_events_merchant_created", "events", ["merchant_id", "created_at"])
    op.create_index("ix_events_member_created", "events", ["member_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_events_member_created", table_name="events")
    op.drop_index("ix_events_merchant_created", table_name="events")
    op.drop_index("ix_chain_ops_member_kind", table_name="chain_ops")
