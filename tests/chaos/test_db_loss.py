"""Database loss: the gateway's SQLite database is backed up, processing goes on, and the old
backup is restored while merchants retry their events with the same Idempotency-Keys.

Events the backup had accepted but not issued, and events it never heard of, were issued
on chain after the backup. The hub refuses reused sequence numbers, but that alone does not
stop a resynced counter from minting them again: the restarted worker must recover them
from the chain (their eventRefs in PointsIssued) and confirm them, never issue them twice.
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from chaos_kit import Stack
from sqlalchemy import select

from gateway.models import Merchant

AMOUNTS = {
    **{f"before-{i}": f"{40 + i}.00" for i in range(4)},
    **{f"in-flight-{i}": f"{50 + i}.00" for i in range(3)},
    **{f"after-{i}": f"{60 + i}.00" for i in range(5)},
}


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    built = Stack.build(tmp_path, tx_stuck_after=3600.0)
    yield built
    built.shutdown()


def backup(database: Path, copy: Path) -> None:
    """An online copy (SQLite's backup API: consistent even with the WAL in use)."""
    with sqlite3.connect(database) as source, sqlite3.connect(copy) as target:
        source.backup(target)


def restore(copy: Path, database: Path) -> None:
    for suffix in ("-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(copy, database)


def test_restored_backup_recovers_from_chain_and_mints_nothing_twice(stack: Stack) -> None:
    database = stack.data_dir / "gateway.db"
    saved = stack.data_dir / "backup.db"
    stack.open()
    before = [f"before-{i}" for i in range(4)]
    for i, key in enumerate(before):
        stack.post(key, f"loss-customer-{i}", AMOUNTS[key])
    stack.wait_final()

    # Accepted, not yet issued when the backup is taken (the worker is stopped).
    running = stack.running
    assert running is not None
    running.stop.set()
    running.thread.join(30)
    in_flight = [f"in-flight-{i}" for i in range(3)]
    for i, key in enumerate(in_flight):
        stack.post(key, f"loss-customer-{i}", AMOUNTS[key])
    backup(database, saved)
    stack.close()

    # Processing goes on: the in-flight events and new ones are issued.
    stack.open()
    after = [f"after-{i}" for i in range(5)]
    for i, key in enumerate(after):
        stack.post(key, f"loss-customer-{i % 3}", AMOUNTS[key])
    stack.wait_final()
    promised = dict(stack.answers)
    with stack.running.context.sessions() as session:  # type: ignore[union-attr]
        next_seq = session.scalars(select(Merchant.next_seq)).one()
    stack.close()

    # The database is lost; the backup comes back; merchants retry everything.
    restore(saved, database)
    stack.open()
    for key, answer in promised.items():
        stack.post(key, answer["customer_id"], AMOUNTS[key])  # the same request again
    stack.wait_final()
    # A new event after the recovery gets a fresh sequence number and is issued once.
    stack.post("after-recovery", "loss-customer-0", "70.00")
    stack.wait_final()

    issued = stack.issued_refs()
    for key in stack.answers:
        assert issued[stack.ref(key)] == 1, f"{key} issued {issued[stack.ref(key)]} times"
    for key, answer in promised.items():  # the retried events kept their points
        assert stack.answers[key]["points"] == answer["points"], key
    for address, points in stack.expected_balances().items():
        assert stack.balance(address) == points, address
    with stack.running.context.sessions() as session:  # type: ignore[union-attr]
        assert session.scalars(select(Merchant.next_seq)).one() == next_seq + 1


def test_restored_backup_claws_back_nothing_twice(stack: Stack) -> None:
    """Refunds clawed back after the backup: when merchants retry them on the restored
    database, the worker finds them on chain (their eventRefs in PointsClawedBack)
    instead of burning the points again (a partial refund) or failing the retry (a whole
    one, which the hub would refuse as more than the purchase issued)."""
    database = stack.data_dir / "gateway.db"
    saved = stack.data_dir / "backup.db"
    refunds = {  # key: (customer, the purchase refunded, amount)
        "refund-in-flight": ("refund-customer-0", "order-0", "20.00"),
        "refund-after-1": ("refund-customer-1", "order-1", "20.00"),
        "refund-after-2": ("refund-customer-2", "order-2", "30.00"),
        "refund-after-3": ("refund-customer-3", "order-3", "80.00"),  # the whole order
    }
    stack.open()
    for i in range(4):
        stack.post(f"order-{i}", f"refund-customer-{i}", "80.00")
    stack.wait_final()

    # Accepted, not yet clawed back when the backup is taken (the worker is stopped).
    running = stack.running
    assert running is not None
    running.stop.set()
    running.thread.join(30)
    stack.post_refund("refund-in-flight", *refunds["refund-in-flight"])
    backup(database, saved)
    stack.close()

    # Processing goes on: that refund and two new ones are clawed back.
    stack.open()
    stack.post_refund("refund-after-1", *refunds["refund-after-1"])
    stack.post_refund("refund-after-2", *refunds["refund-after-2"])
    stack.post_refund("refund-after-3", *refunds["refund-after-3"])
    stack.wait_final()
    assert all(stack.answers[key]["clawback"] > 0 for key in refunds)
    balances = stack.expected_balances()
    promised = {key: stack.answers[key]["clawback"] for key in refunds}
    stack.close()

    # The database is lost; the backup comes back; merchants retry the refunds.
    restore(saved, database)
    stack.open()
    for key, refund in refunds.items():
        stack.post_refund(key, *refund)
    stack.wait_final()

    for address, points in balances.items():
        assert stack.balance(address) == points, address
    assert {key: stack.answers[key]["clawback"] for key in refunds} == promised
    clawed = stack.clawed_back_refs()
    for key in refunds:
        assert clawed[stack.ref(key, "clawback")] == 1, f"{key}: {clawed}"
