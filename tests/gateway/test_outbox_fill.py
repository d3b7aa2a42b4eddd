"""When a batch that is not full yet goes: at once, after ``batch_max_wait``, or on a chain
with a steady block interval at the block's pack point (``PACK_SHARE`` of the interval
after the block was first seen), so each block gets one fuller batch per merchant.

The worker's state is driven by hand here: a fake sender serves the heads and
``time.monotonic`` is pinned, so every wait is exact."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from chain.jsonrpc import Head
from gateway.outbox import base
from gateway.outbox.base import PACK_SHARE, OutboxState


class FakeSender:
    """Serves the head it is told; counts the reads."""

    def __init__(self) -> None:
        self.head_now = Head(number=0, base_fee=1, gas_limit=30_000_000, timestamp=1_000)
        self.reads = 0

    def head(self) -> Head:
        self.reads += 1
        return self.head_now


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    pinned = Clock()
    monkeypatch.setattr(base.time, "monotonic", pinned)
    return pinned


def state(max_wait: float = 0.2) -> tuple[OutboxState, FakeSender]:
    """The part of a worker's state the fill decision reads (no chain, no database)."""
    sender = FakeSender()
    outbox = OutboxState.__new__(OutboxState)
    outbox.settings = SimpleNamespace(batch_max_wait=max_wait)  # type: ignore[assignment]
    outbox.sender = sender  # type: ignore[assignment]
    outbox._head = None
    outbox._seen_block, outbox._seen_time, outbox._seen_at = -1, 0, 0.0
    outbox._block_gaps, outbox._next_block_at = [], 0.0
    return outbox, sender


def mine(outbox: OutboxState, sender: FakeSender, clock: Clock, gap: int, at: float) -> None:
    """A block ``gap`` chain seconds after the last, first seen by the worker at ``at``."""
    clock.now = at
    last = sender.head_now
    sender.head_now = Head(last.number + 1, 1, last.gas_limit, last.timestamp + gap)
    outbox._head = None
    outbox._read_head()
    outbox._head = None  # a new cycle


def steady(outbox: OutboxState, sender: FakeSender, clock: Clock, blocks: int = 5) -> None:
    """Blocks every second, the last first seen at 100.0."""
    for i in range(blocks):
        mine(outbox, sender, clock, 1, 100.0 - (blocks - 1 - i))


def test_a_wait_of_zero_sends_every_batch_at_once(clock: Clock) -> None:
    outbox, sender = state(max_wait=0.0)
    steady(outbox, sender, clock)
    reads = sender.reads
    assert outbox._fill_wait(0.0) == 0.0
    assert sender.reads == reads  # nothing to read: the batch goes


def test_without_a_steady_interval_a_batch_waits_batch_max_wait(clock: Clock) -> None:
    outbox, sender = state(max_wait=0.2)
    for gap, at in ((1, 97.0), (3, 98.0), (1, 99.0), (2, 100.0), (1, 100.5)):  # automine
        mine(outbox, sender, clock, gap, at)
    assert outbox._steady_gap() == 0
    reads = sender.reads
    assert outbox._fill_wait(0.05) == pytest.approx(0.15)
    assert outbox._fill_wait(0.3) == pytest.approx(-0.1)
    assert sender.reads == reads  # no steady interval known: the head is not read for it


def test_on_a_steady_chain_a_batch_goes_at_the_blocks_pack_point(clock: Clock) -> None:
    outbox, sender = state(max_wait=0.2)
    steady(outbox, sender, clock)
    assert outbox._steady_gap() == 1
    clock.now = 100.2  # an event arrived just now, 0.2 s after the block was seen
    assert outbox._fill_wait(0.0) == pytest.approx(PACK_SHARE - 0.2)
    clock.now = 100.5  # it has waited 0.3 s: 0.1 s to go, beyond batch_max_wait
    assert outbox._fill_wait(0.3) == pytest.approx(0.1)
    clock.now = 100.6
    assert outbox._fill_wait(0.4) == pytest.approx(0.0)


def test_an_event_after_the_pack_point_waits_for_the_next_blocks(clock: Clock) -> None:
    outbox, sender = state(max_wait=0.2)
    steady(outbox, sender, clock)
    clock.now = 100.7  # the pack point passed 0.1 s ago
    assert outbox._fill_wait(0.0) == pytest.approx(0.9)
    # The next block is seen a little late: its pack point counts from then.
    mine(outbox, sender, clock, 1, 101.05)
    clock.now = 101.3
    assert outbox._fill_wait(0.6) == pytest.approx(0.35)


def test_an_event_from_before_a_pack_point_is_due_whenever_the_worker_looks(clock: Clock) -> None:
    outbox, sender = state(max_wait=0.2)
    steady(outbox, sender, clock)
    clock.now = 100.1  # it arrived at 99.5, before the previous block's pack point (99.6)
    assert outbox._fill_wait(0.6) <= 0.0


def test_a_block_first_seen_during_the_wait_is_read_and_moves_the_pack_point(
    clock: Clock,
) -> None:
    outbox, sender = state(max_wait=0.2)
    steady(outbox, sender, clock)
    last = sender.head_now
    sender.head_now = Head(last.number + 1, 1, last.gas_limit, last.timestamp + 1)
    clock.now = 101.0  # the cycle has not read the head yet: the wait does
    reads = sender.reads
    assert outbox._fill_wait(0.0) == pytest.approx(PACK_SHARE)
    assert sender.reads == reads + 1
    assert outbox._fill_wait(0.0) == pytest.approx(PACK_SHARE)  # read once per cycle
    assert sender.reads == reads + 1


def test_a_chain_whose_interval_changes_falls_back_to_batch_max_wait(clock: Clock) -> None:
    outbox, sender = state(max_wait=0.2)
    steady(outbox, sender, clock)
    mine(outbox, sender, clock, 2, 102.0)  # one gap of two seconds in the last four
    clock.now = 102.1
    assert outbox._fill_wait(0.05) == pytest.approx(0.15)
