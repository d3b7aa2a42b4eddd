"""merchant admissions scheduled through the timelock

Revision ID: 3d8a51c7e0f2
Revises: 7c1f4e9a2b30
Create Date: 2026-11-24 00:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "3d8a51c7e0f2"
down_revision = "7c1f4e9a2b30"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "merchant_admissions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("cap_per_period", sa.BigInteger(), nullable=False),
        sa.Column("signer_address", sa.String(42), nullable=False),
        sa.Column("signer_key_enc", sa.LargeBinary(), nullable=True),
        sa.Column("api_key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("api_key_prefix", sa.String(16), nullable=False),
        sa.Column("operation_id", sa.String(66), nullable=False, unique=True),
        sa.Column("target", sa.String(42), nullable=False),
        sa.Column("call_data", sa.LargeBinary(), nullable=False),
        sa.Column("salt", sa.LargeBinary(), nullable=False),
        sa.Column("ready_at", sa.BigInteger(), nullable=False),
        sa.Column("scheduled_block", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("merchant_id", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("merchant_admissions")
