"""The indexer's pages on a synthetic chain: every row right, a fixed cost per page,
reorgs rolled back (see synthetic_chain for the node)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from factories import database_for
from sqlalchemy import Engine, event, func, select, text
from sqlalchemy.orm import Session, sessionmaker
from synthetic_chain import HUB, SyntheticNode, contracts

from chain.decode import decode_logs
from chain.records import record_dict
from gateway.db import make_engine, make_session_factory
from gateway.indexer import Indexer
from gateway.migrate import upgrade
from gateway.models import ChainRecord, IndexedBlock
from gateway.settings import Settings


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    with database_for(request.param) as url:
        engine = make_engine(url or f"sqlite:///{tmp_path / 'gateway.db'}")
        upgrade(engine)
        with engine.begin() as connection:  # a database shared with other tests' modules
            connection.execute(text("DELETE FROM chain_records"))
            connection.execute(text("DELETE FROM indexed_blocks"))
        yield engine
        engine.dispose()


def indexer(engine: Engine, node: SyntheticNode, tmp_path: Path, **kw: Any) -> Indexer:
    settings = Settings(data_dir=tmp_path, confirmations=node.confirmations)
    sessions = make_session_factory(engine)
    return Indexer(settings, HUB, sessions, rpc=node, contracts=contracts(), **kw)


def drain(ix: Indexer) -> int:
    for cycles in range(1_000):
        if not ix.run_once():
            return cycles
    raise AssertionError("indexer never caught up")


def expected_row(record: Any) -> dict[str, Any]:
    """A record's row as the indexer wrote it one ORM object at a time."""
    return {
        "block_number": record.block,
        "block_time": record.time,
        "tx_hash": record.tx_hash,
        "log_index": record.log_index,
        "item": 0,
        "kind": record.kind,
        "merchant_id": getattr(record, "merchant", None),
        "member": getattr(record, "member", None) or getattr(record, "sender", None),
        "counterparty": getattr(record, "recipient", None),
        "amount": int(getattr(record, "amount", 0) or 0),
        "seq": getattr(record, "seq", None),
        "rule_version": getattr(record, "rule_version", None),
        "ref": getattr(record, "ref", None),
        "data": record_dict(record),
    }


def stored_rows(sessions: sessionmaker[Session]) -> list[dict[str, Any]]:
    columns = [c for c in ChainRecord.__table__.columns if c.name != "id"]
    with sessions() as session:
        found = session.execute(select(*columns).order_by(ChainRecord.id)).all()
    return [{**row._asdict(), "amount": int(row.amount)} for row in found]


def issued(sessions: sessionmaker[Session]) -> dict[str, int]:
    with sessions() as session:
        found = session.execute(
            select(ChainRecord.member, func.sum(ChainRecord.amount))
            .where(ChainRecord.kind == "issuance")
            .group_by(ChainRecord.member)
        ).all()
    return {str(member): int(total) for member, total in found}


def test_every_row_is_the_decoders_record_in_chain_order(engine: Engine, tmp_path: Path) -> None:
    node = SyntheticNode(blocks=60, batch=25)
    ix = indexer(engine, node, tmp_path)
    assert drain(ix) > 1  # several pages (the first ones are small)
    logs = [entry for block in range(1, node.head + 1) for entry in node.logs_of(block)]
    times = {block: 1_700_000_000 + block for block in range(1, node.head + 1)}
    records = decode_logs(contracts(), logs, times)
    kinds = {r.kind for r in records}
    assert {"issuance", "points_issued", "tier_changed", "badge_transfer"} <= kinds
    assert stored_rows(ix.sessions) == [expected_row(r) for r in records]
    with ix.sessions() as session:
        indexed = session.execute(select(IndexedBlock.number, IndexedBlock.hash)).all()
    assert sorted(indexed) == [(b, node.block_hash(b)) for b in range(1, node.head + 1)]


def test_a_page_costs_the_same_statements_and_round_trips_however_many_logs(
    engine: Engine, tmp_path: Path
) -> None:
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        if not sql.startswith(("BEGIN", "COMMIT")):
            statements.append(sql)

    event.listen(engine, "before_cursor_execute", count)
    try:
        costs = []
        for batch in (2, 100):  # 32 and 824 records
            node = SyntheticNode(blocks=8, batch=batch)
            ix = indexer(engine, node, tmp_path, page_blocks=8)
            ix.rebuild()
            ix._span = 8  # one page for the eight blocks
            statements.clear()
            assert ix.run_once()
            costs.append((len(statements), dict(node.requests)))
            assert not ix.run_once()
    finally:
        event.remove(engine, "before_cursor_execute", count)
    (small, small_rpc), (large, large_rpc) = costs
    assert small == large <= 3  # the newest block, then one INSERT per table
    # The head and the reorg check in one batch, one eth_getLogs, one batch of headers.
    assert small_rpc == large_rpc
    assert large_rpc["eth_getLogs"] == 1 and large_rpc["batch"] == 2


def test_a_reorg_is_found_by_the_newest_hash_and_rolled_back(
    engine: Engine, tmp_path: Path
) -> None:
    node = SyntheticNode(blocks=30, batch=10)
    ix = indexer(engine, node, tmp_path)
    drain(ix)
    assert issued(ix.sessions) == node.issued()
    node.reorg(above=22, extend=3)  # blocks 23.. replaced, with other members
    node.requests.clear()
    drain(ix)
    assert issued(ix.sessions) == node.issued()
    assert node.requests["eth_getBlockByNumber"] >= 8  # the remembered blocks compared
    with ix.sessions() as session:
        newest = session.scalar(select(func.max(IndexedBlock.number)))
        hashes = dict(session.execute(select(IndexedBlock.number, IndexedBlock.hash)).all())
    assert newest == node.head
    assert all(hashes[b] == node.block_hash(b) for b in hashes)
    assert stored_rows(ix.sessions) == [
        expected_row(r)
        for r in decode_logs(
            contracts(),
            [e for b in range(1, node.head + 1) for e in node.logs_of(b)],
            {b: 1_700_000_000 + b for b in range(1, node.head + 1)},
        )
    ]


def test_a_rebuild_gives_the_same_history(engine: Engine, tmp_path: Path) -> None:
    node = SyntheticNode(blocks=12, batch=5)
    ix = indexer(engine, node, tmp_path)
    drain(ix)
    before = stored_rows(ix.sessions)
    ix.rebuild()
    drain(ix)
    assert stored_rows(ix.sessions) == before
