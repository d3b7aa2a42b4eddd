"""chain ops record the block that included them

Revision ID: 5b2e8f0c4a61
Revises: 3d8a51c7e0f2
Create Date: 2026-12-04 20:45:00.000000

With each op's inclusion block stored, "what was still queued at block B" is
answered exactly: the ops created before B whose ``block_number`` is null or
above B.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "5b2e8f0c4a61"
down_revision = "3d8a51c7e0f2"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("chain_ops") as batch:
        batch.add_column(sa.Column("block_number", sa.BigInteger(), nullable=True))
        batch.create_index("ix_chain_ops_block_number", ["block_number"])
    # Ops confirmed before this column existed: their transaction's block.
    op.execute(
        "UPDATE chain_ops SET block_number = "
        "(SELECT chain_txs.block_number FROM chain_txs WHERE chain_txs.id = chain_ops.tx_id) "
        "WHERE status = 'confirmed' AND tx_id IS NOT NULL"
    )


def downgrade() -> None:
    with op.batch_alter_table("chain_ops") as batch:
        batch.drop_index("ix_chain_ops_block_number")
        batch.drop_column("block_number")
