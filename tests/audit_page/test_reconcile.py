"""``reconcile`` and ``pointsnet audit reconcile``: the gateway's database against the chain,
entry by entry. Each tampering test changes one row, then puts it back."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from audit_page_kit import Book
from sqlalchemy import inspect, select
from typer.testing import CliRunner

from gateway.cli import app
from gateway.db import transaction
from gateway.models import ChainOp, ChainTx, Event
from gateway.services.reconcile import ReconcileReport, reconcile
from tests.gateway.gateway_kit import purchase

runner = CliRunner()


def issue_op(book: Book, event_id: str) -> ChainOp:
    with book.gateway.context.sessions() as session:
        op = session.scalars(
            select(ChainOp).where(ChainOp.event_id == event_id, ChainOp.kind == "issue")
        ).one()
        session.expunge(op)
        return op


@contextmanager
def tampered(book: Book, model: type[Any], key: Any, **changes: Any) -> Iterator[None]:
    """Change columns of one row for the duration of the block."""
    sessions = book.gateway.context.sessions
    with transaction(sessions) as session:
        row = session.get(model, key)
        assert row is not None
        original = {name: getattr(row, name) for name in changes}
        for name, value in changes.items():
            setattr(row, name, value)
    try:
        yield
    finally:
        with transaction(sessions) as session:
            row = session.get(model, key)
            for name, value in original.items():
                setattr(row, name, value)


@contextmanager
def deleted(book: Book, model: type[Any], key: Any) -> Iterator[None]:
    """Delete one row for the duration of the block (re-inserted as it was)."""
    sessions = book.gateway.context.sessions
    with transaction(sessions) as session:
        row = session.get(model, key)
        assert row is not None
        columns = {c.key: getattr(row, c.key) for c in inspect(model).column_attrs}
        session.delete(row)
    try:
        yield
    finally:
        with transaction(sessions) as session:
            session.add(model(**columns))


def codes(report: ReconcileReport) -> list[tuple[str, str | None]]:
    return [(d.code, d.field) for d in report.differences]


def test_reconcile_finds_no_difference_after_the_gateway_settled(book: Book) -> None:
    report = reconcile(book.gateway.context)

    relayed = [r for r in book.redemptions if r.relayed_by_gateway]
    assert report.ok, [d.to_dict() for d in report.differences]
    assert report.differences == [] and report.in_flight == []
    assert len(report.foreign) == len(book.redemptions) - len(relayed)
    confirmed = [e for e in book.events if e.status == "confirmed"]
    assert report.checked["issue"] == sum(1 for e in confirmed if e.points > 0)
    assert report.checked["clawback"] == sum(1 for e in confirmed if e.clawback > 0) == 1
    assert report.checked["redeem"] == report.checked["redemption"] == len(relayed)
    assert report.checked["event"] == len(confirmed)
    assert report.checked["transfer"] == len(book.transfers) == 1
    assert report.checked["rule"] == 2 and report.checked["merchant"] == 2
    totals = {t.merchant: t for t in report.totals}
    for merchant_id in book.merchant_ids():
        assert totals[merchant_id].counters == {
            "issued": book.issued(merchant_id),
            "redeemed": book.redeemed(merchant_id),
            "clawed_back": book.clawed_back(merchant_id),
        }
        assert totals[merchant_id].ok


def test_reconcile_names_a_confirmed_issue_op_whose_amount_was_changed(book: Book) -> None:
    event = next(e for e in book.events if e.points > 0)
    op = issue_op(book, event.id)

    with tampered(book, ChainOp, op.id, amount=op.amount + 5):
        report = reconcile(book.gateway.context)

    assert not report.ok
    mismatch = next(d for d in report.differences if d.code == "field_mismatch")
    assert mismatch.field == "amount"
    assert (mismatch.database, mismatch.chain) == (op.amount + 5, op.amount)
    assert mismatch.subject.startswith(f"issue op {op.id} (merchant {op.merchant_id}, seq {op.seq}")
    assert mismatch.tx_hash == event.tx_hash
    total = next(d for d in report.differences if d.code == "total_mismatch")
    assert (total.merchant, total.field) == (op.merchant_id, "issued")
    assert (total.database, total.chain) == (
        book.issued(op.merchant_id) + 5,
        book.issued(op.merchant_id),
    )
    assert sorted(codes(report)) == [("field_mismatch", "amount"), ("total_mismatch", "issued")]
    assert reconcile(book.gateway.context).ok  # put back: agrees again


def test_reconcile_names_the_on_chain_issuance_whose_op_was_deleted(book: Book) -> None:
    merchant_id = book.merchant_ids()[1]
    event = next(e for e in book.events if e.merchant_id == merchant_id and e.points > 0)
    op = issue_op(book, event.id)

    with deleted(book, ChainOp, op.id):
        report = reconcile(book.gateway.context)

    missing = [d for d in report.differences if d.code == "missing_in_db"]
    assert len(missing) == 1
    assert missing[0].subject == f"issue merchant {merchant_id} seq {op.seq}"
    assert missing[0].tx_hash == event.tx_hash
    assert missing[0].chain["amount"] == event.points
    assert ("event_mismatch", "points") in codes(report)  # the event lost its issuance
    assert ("total_mismatch", "issued") in codes(report)
    assert reconcile(book.gateway.context).ok


def test_reconcile_names_a_transaction_recorded_in_another_block(book: Book) -> None:
    refund = next(e for e in book.events if e.clawback > 0)
    with book.gateway.context.sessions() as session:
        tx = session.scalars(select(ChainTx).where(ChainTx.tx_hash == refund.tx_hash)).one()
        tx_id, block = tx.id, tx.block_number

    with tampered(book, ChainTx, tx_id, block_number=(block or 0) - 1):
        report = reconcile(book.gateway.context)

    mismatches = [d for d in report.differences if d.code == "block_mismatch"]
    assert {d.subject.split(" (")[0] for d in mismatches} >= {f"tx {tx_id}"}
    assert all((d.database, d.chain) == ((block or 0) - 1, block) for d in mismatches)


def test_reconcile_names_an_event_marked_confirmed_whose_issuance_failed(book: Book) -> None:
    event = next(e for e in book.events if e.points > 0)
    op = issue_op(book, event.id)

    with tampered(book, ChainOp, op.id, status="failed"):
        report = reconcile(book.gateway.context)

    assert ("status_mismatch", "status") in codes(report)
    assert ("event_mismatch", "status") in codes(report)
    event_row = next(d for d in report.differences if d.code == "event_mismatch")
    assert event_row.subject == f"event {event.id}"


def cli(book: Book, *args: str) -> Any:
    settings = book.gateway.context.settings
    env = {
        "POINTSNET_DATA_DIR": str(settings.data_dir),
        "POINTSNET_RPC_URL": settings.rpc_url,
        "POINTSNET_DEVNET_PORT": str(settings.devnet_port),
        "COLUMNS": "200",
    }
    return runner.invoke(app, ["audit", "reconcile", *args], env=env)


def test_reconcile_command_prints_json_and_exits_1_on_a_difference(book: Book) -> None:
    clean = cli(book, "--json")
    refund = next(e for e in book.events if e.clawback > 0)
    with tampered(book, Event, refund.id, clawback=refund.clawback + 1):
        dirty = cli(book, "--json")
        table = cli(book)

    assert clean.exit_code == 0, clean.output
    assert json.loads(clean.stdout)["ok"] is True
    assert dirty.exit_code == 1, dirty.output
    differences = json.loads(dirty.stdout)["differences"]
    assert [(d["code"], d["field"], d["database"], d["chain"]) for d in differences] == [
        ("event_mismatch", "clawback", refund.clawback + 1, refund.clawback)
    ]
    assert table.exit_code == 1
    assert "reconcile FAILED" in table.stdout and f"event {refund.id}" in table.stdout


def issue_sent(book: Book, event_id: str) -> bool:
    with book.gateway.context.sessions() as session:
        status = session.scalar(
            select(ChainOp.status).where(ChainOp.event_id == event_id, ChainOp.kind == "issue")
        )
    return status == "sent"


def test_reconcile_lists_ops_mined_but_not_yet_confirmed_as_in_flight(book: Book) -> None:
    event_id = book.post(1, purchase("frank", "F-1", "5000", currency="JPY"))
    # Signed, stored, broadcast (and mined), receipts not followed. An issue batch that is
    # neither full nor due (batch_max_wait) or finds the next block's gas taken waits a
    # cycle: pack until it went.
    deadline = time.monotonic() + 30
    while not issue_sent(book, event_id):
        assert time.monotonic() < deadline, "the issuance was never packed"
        book.gateway.worker.pack_and_send()
        time.sleep(0.05)

    report = reconcile(book.gateway.context)
    book.settle()

    assert report.ok, [d.to_dict() for d in report.differences]
    in_flight = [d for d in report.in_flight if "issue op" in d.subject]
    assert len(in_flight) == 1 and f"event {event_id}" in in_flight[0].subject
    merchant_id = book.merchant_ids()[1]
    totals = {t.merchant: t for t in report.totals}[merchant_id]
    event = next(e for e in book.events if e.id == event_id)
    assert totals.in_flight["issued"] == event.points
    assert reconcile(book.gateway.context).in_flight == []


def test_reconcile_lists_a_redemption_relayed_by_someone_else_as_foreign_not_a_difference(
    book: Book,
) -> None:
    member = next(e.member for e in book.events if e.points > 100)
    checksummed = book.gateway.context.link.w3.to_checksum_address(member)
    tx_hash = book.redeem_elsewhere(0, checksummed, 7)

    report = reconcile(book.gateway.context)

    assert report.ok, [d.to_dict() for d in report.differences]
    foreign = [d for d in report.foreign if d.tx_hash == tx_hash]
    assert len(foreign) == 1 and foreign[0].subject.startswith("redeem merchant")
    totals = {t.merchant: t for t in report.totals}[book.merchant_ids()[0]]
    assert totals.foreign["redeemed"] == 7
    assert totals.counters["redeemed"] == book.redeemed(book.merchant_ids()[0])
