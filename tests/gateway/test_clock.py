"""The gateway's clocks: a manual one for tests, the system one caching the chain head."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chain.errors import ChainError, RpcTransportError
from chain.jsonrpc import Rpc
from gateway.clock import ChainTime, ManualClock, SystemClock

START = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


class FakeNode(Rpc):
    """Answers ``eth_getBlockByNumber("latest")`` with the block it is told; counts calls."""

    def __init__(self, block: int = 10, timestamp: int = 1_000) -> None:
        super().__init__("http://fake.invalid")
        self.block, self.timestamp = block, timestamp
        self.calls = 0
        self.down = False
        self.lock = threading.Lock()

    def call(self, method: str, params: Sequence[Any] = ()) -> Any:
        assert (method, list(params)) == ("eth_getBlockByNumber", ["latest", False])
        with self.lock:
            self.calls += 1
            if self.down:
                raise RpcTransportError("eth_getBlockByNumber: connection refused")
            return {"number": hex(self.block), "timestamp": hex(self.timestamp)}

    def mine(self, seconds: int = 1) -> None:
        with self.lock:
            self.block, self.timestamp = self.block + 1, self.timestamp + seconds


def test_a_manual_clock_moves_only_when_told() -> None:
    clock = ManualClock(START)
    head = clock.chain_head()
    assert clock.now() == START and head == ChainTime(1, int(START.timestamp()))

    clock.advance(30)
    assert clock.now() == START + timedelta(seconds=30) and clock.chain_head() == head
    clock.advance(90, blocks=2)
    assert clock.chain_head() == ChainTime(3, int(START.timestamp()) + 120)
    assert clock.chain_head().at == START + timedelta(seconds=120)

    clock.set_head(7, int(START.timestamp()) + 500)
    assert clock.chain_head().block == 7
    with pytest.raises(ValueError, match="does not go back"):
        clock.set_head(6, int(START.timestamp()) + 600)
    with pytest.raises(ValueError, match="does not go back"):
        clock.advance(-1)
    with pytest.raises(ValueError, match="aware"):
        ManualClock(datetime(2026, 12, 5))


def test_the_system_clock_reads_the_head_once_then_serves_it_from_its_cache() -> None:
    node = FakeNode()
    clock = SystemClock(node, interval=3600)
    try:
        assert clock.chain_head() == ChainTime(10, 1_000)
        node.mine()
        assert clock.chain_head() == ChainTime(10, 1_000)  # cached: a real block, one second old
        assert node.calls == 1
        assert clock.refresh() == ChainTime(11, 1_001)
        assert clock.chain_head() == ChainTime(11, 1_001)
        assert abs(clock.now() - datetime.now(UTC)) < timedelta(seconds=5)
    finally:
        clock.close()


def test_an_interval_of_zero_reads_the_head_on_every_use() -> None:
    node = FakeNode()
    clock = SystemClock(node, interval=0)
    clock.chain_head()
    node.mine(12)
    assert clock.chain_head() == ChainTime(11, 1_012) and node.calls == 2


def test_the_background_refresh_moves_the_head_and_a_failure_keeps_the_last_one() -> None:
    node = FakeNode()
    clock = SystemClock(node, interval=0.02)
    try:
        assert clock.chain_head() == ChainTime(10, 1_000)
        node.mine(2)
        deadline = time.monotonic() + 5
        while clock.chain_head() != ChainTime(11, 1_002) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert clock.chain_head() == ChainTime(11, 1_002)
        node.down = True
        before = node.calls
        while node.calls < before + 3 and time.monotonic() < deadline:
            assert clock.chain_head() == ChainTime(11, 1_002)  # still a real block
            time.sleep(0.01)
        assert node.calls >= before + 3
    finally:
        clock.close()


def test_the_refresh_stops_when_nobody_reads_the_head_and_a_read_starts_it_again() -> None:
    node = FakeNode()
    clock = SystemClock(node, interval=0.02)
    try:
        clock.chain_head()
        deadline = time.monotonic() + 5
        while clock._thread is not None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert clock._thread is None  # three idle intervals: the thread ended
        calls = node.calls
        time.sleep(0.1)
        assert node.calls == calls  # an idle gateway asks the node nothing
        node.mine(5)
        # The cache went stale while nobody read it: the next read asks the node at once.
        assert clock.chain_head() == ChainTime(11, 1_005)
        assert clock._thread is not None and clock._thread.is_alive()
    finally:
        clock.close()


def test_the_first_read_fails_as_a_chain_error_when_the_node_is_down() -> None:
    node = FakeNode()
    node.down = True
    clock = SystemClock(node, interval=1.0)
    with pytest.raises(ChainError):
        clock.chain_head()


def test_a_block_seen_elsewhere_moves_the_head_forward_only() -> None:
    clock = SystemClock(FakeNode(), interval=3600)
    try:
        clock.chain_head()
        assert clock.observe(ChainTime(12, 1_030)) == ChainTime(12, 1_030)
        assert clock.observe(ChainTime(11, 1_010)) == ChainTime(12, 1_030)
        assert clock.chain_head() == ChainTime(12, 1_030)
    finally:
        clock.close()
