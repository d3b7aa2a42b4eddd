"""Migration 0007 backfills the counter buckets from the events already stored."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

from alembic import command
from sqlalchemy import create_engine, text

from gateway.migrate import alembic_config


def _insert_event(conn: object, n: int, kind: str, status: str, at: str, **values: object) -> None:
    row = {
        "id": f"e{n}", "merchant_id": 1, "idempotency_key": f"k{n}", "type": kind,
        "customer_id": "c1", "member_id": "m1", "occurred_at": at, "order_id": None,
        "network_amount": 0, "payload": "{}", "status": status, "reason": None, "points": 0,
        "clawback": 0, "breakdown": "[]", "badges": "[]", "rule_version": 1,
        "created_at": at, "updated_at": at, **values,
    }  # fmt: skip
    columns = ", ".join(row)
    conn.execute(  # type: ignore[attr-defined]
        text(f"INSERT INTO events ({columns}) VALUES ({', '.join(':' + c for c in row)})"), row
    )


def test_0007_backfills_buckets_on_each_merchants_programme_day(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'gateway.db'}"
    command.upgrade(alembic_config(url), "5b2e8f0c4a61")
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO merchants (id, name, currency, status, api_key_hash, api_key_prefix,"
            " cap_per_period, next_seq, rule_version, signer_address, created_at) VALUES"
            " (1, 'm', 'EUR', 'active', 'h', 'p', 1, 0, 1, '0x0', '2026-11-01')"
        ))  # fmt: skip
        conn.execute(
            text(
                "INSERT INTO rule_sets (merchant_id, version, content, hash, created_at)"
                " VALUES (1, 1, :content, '0x', '2026-11-01')"
            ),
            {"content": json.dumps({"utc_offset_minutes": 120})},
        )
        conn.execute(text(
            "INSERT INTO members (id, address, custodial, frozen, tier, created_at)"
            " VALUES ('m1', '0x1', 1, 0, 0, '2026-11-01')"
        ))  # fmt: skip
        # 23:00 UTC is the next day at UTC+2.
        _insert_event(conn, 1, "purchase", "confirmed", "2026-11-20 23:00:00.000000",
                      network_amount="12.5", points=12)  # fmt: skip
        _insert_event(conn, 2, "purchase", "accepted", "2026-11-21 08:00:00.000000",
                      network_amount="7.5", points=7)  # fmt: skip
        _insert_event(conn, 3, "purchase", "held", "2026-11-21 09:00:00.000000", points=5)
        _insert_event(conn, 4, "purchase", "rejected", "2026-11-21 09:30:00.000000", points=5)
        _insert_event(conn, 5, "check_in", "confirmed", "2026-11-21 10:00:00.000000", points=2)
        _insert_event(conn, 6, "refund", "accepted", "2026-11-21 11:00:00.000000")
        _insert_event(conn, 7, "share", "confirmed", "2026-11-20 10:00:00.000000", points=1)
    # 0007 itself: 0008 checks each stored rule set against its hash, which '0x' is not.
    command.upgrade(alembic_config(url), "9e4d2a7b1c58")
    with engine.connect() as conn:
        rows = {
            row.day: row for row in conn.execute(text("SELECT * FROM member_counters ORDER BY day"))
        }
    assert set(rows) == {"2026-11-20", "2026-11-21"} or set(rows) == {
        date(2026, 11, 20),
        date(2026, 11, 21),
    }
    day20, day21 = (rows[k] for k in sorted(rows))
    assert (day20.orders, day20.shares, day20.points) == (0, 1, 1)
    assert (day21.orders, day21.orders_held, day21.refunds, day21.check_ins) == (2, 1, 1, 1)
    assert Decimal(str(day21.spend)) == Decimal("20")
    assert day21.points == 12 + 7 + 2
    assert str(day21.last_order_at).startswith("2026-11-21 08:00:00")
    command.downgrade(alembic_config(url), "5b2e8f0c4a61")  # and back
