"""Migration 0008: rule sets keep their published text and effective time; inputs tables."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from factories import database_for
from sqlalchemy import create_engine, inspect, text

from gateway.migrate import alembic_config
from gateway.rules.model import canonical_json, default_rule_set, rule_set_hash

BEFORE = "9e4d2a7b1c58"  # 0007


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database_for(request.param) as found:
        yield found or f"sqlite:///{tmp_path / 'gateway.db'}"


def _merchant(conn: object, merchant_id: int, published: int) -> None:
    conn.execute(  # type: ignore[attr-defined]
        text(
            "INSERT INTO merchants (id, name, currency, status, api_key_hash, api_key_prefix,"
            " cap_per_period, next_seq, rule_version, signer_address, created_at) VALUES"
            " (:id, 'm', 'EUR', 'active', :key, 'p', 1, 0, :published, '0x0', '2026-11-01')"
        ),
        {"id": merchant_id, "key": f"h{merchant_id}", "published": published},
    )


def _rule_set(conn: object, merchant_id: int, version: int, content: str, digest: str) -> None:
    conn.execute(  # type: ignore[attr-defined]
        text(
            "INSERT INTO rule_sets (merchant_id, version, content, hash, created_at)"
            " VALUES (:merchant, :version, :content, :hash, '2026-11-01')"
        ),
        {"merchant": merchant_id, "version": version, "content": content, "hash": digest},
    )


def test_0008_backfills_the_text_and_marks_published_versions_in_effect(url: str) -> None:
    command.upgrade(alembic_config(url), BEFORE)
    rules = default_rule_set("EUR")
    canonical, digest = canonical_json(rules), "0x" + rule_set_hash(rules).hex()
    doubled = rules.model_copy(update={"earn_rate": 2})
    doubled_text, doubled_hash = canonical_json(doubled), "0x" + rule_set_hash(doubled).hex()
    engine = create_engine(url)
    with engine.begin() as conn:
        _merchant(conn, 1, published=1)
        _rule_set(conn, 1, 1, canonical, digest)
        _rule_set(conn, 1, 2, doubled_text, doubled_hash)  # queued, not yet on chain
    command.upgrade(alembic_config(url), "head")
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT version, canonical, effective_at, published_block FROM rule_sets"
                " ORDER BY version"
            )
        ).all()
        columns = {
            table: {c["name"] for c in inspect(conn).get_columns(table)}
            for table in ("chain_ops", "chain_txs", "issuance_inputs", "erasures")
        }
    assert [(r.version, r.canonical, r.effective_at, r.published_block) for r in rows] == [
        (1, canonical, 0, None),
        (2, doubled_text, None, None),
    ]
    assert "input_hash" in columns["chain_ops"] and "input_root" in columns["chain_txs"]
    assert {"ref", "event_id", "member_id", "part", "format", "body", "input_hash"} <= columns[
        "issuance_inputs"
    ]
    assert {"member_address", "requested_at", "counts"} <= columns["erasures"]
    command.downgrade(alembic_config(url), BEFORE)
    with engine.connect() as conn:
        assert "canonical" not in {c["name"] for c in inspect(conn).get_columns("rule_sets")}
    engine.dispose()


def test_0008_refuses_a_rule_set_whose_content_does_not_hash_to_its_hash(url: str) -> None:
    command.upgrade(alembic_config(url), BEFORE)
    engine = create_engine(url)
    with engine.begin() as conn:
        _merchant(conn, 1, published=1)
        _rule_set(conn, 1, 1, json.dumps({"earn_rate": "1"}), "0x" + "00" * 32)
    with pytest.raises(RuntimeError, match="does not hash to"):
        command.upgrade(alembic_config(url), "head")
    engine.dispose()
