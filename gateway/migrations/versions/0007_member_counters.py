"""per-member counter buckets and derived custodial keys

Revision ID: 9e4d2a7b1c58
Revises: 5b2e8f0c4a61
Create Date: 2026-12-04 21:00:00.000000

``member_counters`` holds each member's activity per (merchant, programme day);
the accept path reads the rules' windows from it instead of scanning events.
It is backfilled here from the events already stored, each on the programme day
of its merchant's latest rule set.  ``members.key_merchant_id`` and
``key_customer_id`` name the first link a derived custodial key comes from
(members created before keep their stored ``key_enc``).
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "9e4d2a7b1c58"
down_revision = "5b2e8f0c4a61"
branch_labels = None
depends_on = None

_LIVE = ("accepted", "submitted", "confirmed")
_COUNTED_TYPES = {"check_in": "check_ins", "share": "shares", "review": "reviews"}


def upgrade() -> None:
    # Plain ADD COLUMN (nullable): a batch copy of ``members`` would have to drop a
    # table other tables' rows refer to.
    op.add_column("members", sa.Column("key_merchant_id", sa.Integer(), nullable=True))
    op.add_column("members", sa.Column("key_customer_id", sa.String(length=200), nullable=True))
    counters = op.create_table(
        "member_counters",
        sa.Column("member_id", sa.String(length=32), nullable=False),
        sa.Column("merchant_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.Column("orders_held", sa.Integer(), nullable=False),
        sa.Column("spend", sa.Numeric(precision=38, scale=6), nullable=False),
        sa.Column("refunds", sa.Integer(), nullable=False),
        sa.Column("check_ins", sa.Integer(), nullable=False),
        sa.Column("shares", sa.Integer(), nullable=False),
        sa.Column("reviews", sa.Integer(), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("last_order_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("member_id", "merchant_id", "day"),
    )
    assert counters is not None
    rows = _backfill(op.get_bind())
    for start in range(0, len(rows), 1000):
        op.bulk_insert(counters, rows[start : start + 1000])


def _backfill(conn: sa.Connection) -> list[dict[str, Any]]:
    """The buckets of the events already stored (one pass over them)."""
    offsets: dict[int, int] = {}
    for merchant_id, content in conn.execute(
        sa.text("SELECT merchant_id, content FROM rule_sets ORDER BY merchant_id, version")
    ):
        if isinstance(content, str):
            content = json.loads(content)
        offsets[merchant_id] = int((content or {}).get("utc_offset_minutes", 0) or 0)
    buckets: dict[tuple[str, int, date], dict[str, Any]] = defaultdict(_empty)
    events = conn.execute(
        sa.text(
            "SELECT member_id, merchant_id, type, status, occurred_at, network_amount, points"
            " FROM events WHERE status IN ('accepted', 'submitted', 'confirmed', 'held')"
        )
    )
    for member_id, merchant_id, kind, status, occurred, amount, points in events:
        when = _aware(occurred)
        offset = timezone(timedelta(minutes=offsets.get(merchant_id, 0)))
        bucket = buckets[(member_id, merchant_id, when.astimezone(offset).date())]
        if status not in _LIVE:
            bucket["orders_held"] += kind == "purchase"
            continue
        bucket["points"] += int(points or 0)
        if kind == "purchase":
            bucket["orders"] += 1
            bucket["spend"] += Decimal(str(amount or 0))
            last = bucket["last_order_at"]
            bucket["last_order_at"] = when if last is None or when > last else last
        elif kind == "refund":
            bucket["refunds"] += 1
        elif kind in _COUNTED_TYPES:
            bucket[_COUNTED_TYPES[kind]] += 1
    return [
        {"member_id": member, "merchant_id": merchant, "day": day, **values}
        for (member, merchant, day), values in buckets.items()
    ]


def _empty() -> dict[str, Any]:
    return {
        "orders": 0, "orders_held": 0, "spend": Decimal(0), "refunds": 0, "check_ins": 0,
        "shares": 0, "reviews": 0, "points": 0, "last_order_at": None,
    }  # fmt: skip


def _aware(value: datetime | str) -> datetime:
    when = datetime.fromisoformat(value) if isinstance(value, str) else value
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def downgrade() -> None:
    op.drop_table("member_counters")
    op.drop_column("members", "key_customer_id")  # SQLite >= 3.35 drops columns in place
    op.drop_column("members", "key_merchant_id")
