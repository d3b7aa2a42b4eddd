"""published rule texts, effective times and issuance inputs

Revision ID: c3f1a9d27e40
Revises: 9e4d2a7b1c58
Create Date: 2026-12-05 12:00:00.000000

``rule_sets`` keeps the exact canonical text it publishes (``canonical``), the
time the version takes effect on chain (``effective_at``, unix seconds) and the
block that published it (``published_block``).  Versions already published were
applied without notice: they get ``effective_at = 0``; the text is backfilled
from the stored content, whose re-dump must hash to the stored hash (anything
else is a corrupt row and stops the upgrade).

``chain_ops.input_hash`` and ``chain_txs.input_root`` carry the keccak of each
issue or clawback op's canonical input and the root its batch commits to;
``issuance_inputs`` holds the inputs themselves (deleted when a member's data is
erased, the salted hashes stay), ``erasures`` records each erasure.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op
from eth_utils import keccak

revision = "c3f1a9d27e40"
down_revision = "9e4d2a7b1c58"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("rule_sets") as batch:
        batch.add_column(sa.Column("canonical", sa.Text(), nullable=True))
        batch.add_column(sa.Column("effective_at", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("published_block", sa.BigInteger(), nullable=True))
    _backfill_rule_sets(op.get_bind())
    with op.batch_alter_table("rule_sets") as batch:
        batch.alter_column("canonical", existing_type=sa.Text(), nullable=False)
    with op.batch_alter_table("chain_ops") as batch:
        batch.add_column(sa.Column("input_hash", sa.String(length=66), nullable=True))
    with op.batch_alter_table("chain_txs") as batch:
        batch.add_column(sa.Column("input_root", sa.String(length=66), nullable=True))
    op.create_table(
        "issuance_inputs",
        sa.Column("ref", sa.String(length=66), nullable=False),
        sa.Column("event_id", sa.String(length=32), nullable=False),
        sa.Column("member_id", sa.String(length=32), nullable=False),
        sa.Column("merchant_id", sa.Integer(), nullable=False),
        sa.Column("part", sa.String(length=24), nullable=False),
        sa.Column("format", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("input_hash", sa.String(length=66), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["event_id"], ["events.id"]),
        sa.PrimaryKeyConstraint("ref"),
    )
    op.create_index("ix_issuance_inputs_event_id", "issuance_inputs", ["event_id"])
    op.create_index("ix_issuance_inputs_member_id", "issuance_inputs", ["member_id"])
    op.create_table(
        "erasures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("member_address", sa.String(length=42), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_erasures_member_address", "erasures", ["member_address"])


def _backfill_rule_sets(conn: sa.Connection) -> None:
    """Each stored version's canonical text; ``effective_at = 0`` for the published ones."""
    rows = conn.execute(
        sa.text(
            "SELECT rule_sets.id, rule_sets.version, rule_sets.content, rule_sets.hash,"
            " merchants.rule_version FROM rule_sets"
            " JOIN merchants ON merchants.id = rule_sets.merchant_id"
        )
    ).all()
    updates: list[dict[str, Any]] = []
    for row_id, version, content, digest, published in rows:
        if isinstance(content, str):
            content = json.loads(content)
        text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        if "0x" + keccak(text=text).hex() != digest:
            raise RuntimeError(
                f"rule_sets row {row_id}: the stored content does not hash to {digest};"
                " restore it before upgrading"
            )
        on_chain = version <= (published or 0)
        updates.append({"_id": row_id, "_canonical": text, "_effective": 0 if on_chain else None})
    if updates:
        conn.execute(
            sa.text(
                "UPDATE rule_sets SET canonical = :_canonical, effective_at = :_effective"
                " WHERE id = :_id"
            ),
            updates,
        )


def downgrade() -> None:
    op.drop_index("ix_erasures_member_address", table_name="erasures")
    op.drop_table("erasures")
    op.drop_index("ix_issuance_inputs_member_id", table_name="issuance_inputs")
    op.drop_index("ix_issuance_inputs_event_id", table_name="issuance_inputs")
    op.drop_table("issuance_inputs")
    with op.batch_alter_table("chain_txs") as batch:
        batch.drop_column("input_root")
    with op.batch_alter_table("chain_ops") as batch:
        batch.drop_column("input_hash")
    with op.batch_alter_table("rule_sets") as batch:
        batch.drop_column("published_block")
        batch.drop_column("effective_at")
        batch.drop_column("canonical")
