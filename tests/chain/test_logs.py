"""The paged eth_getLogs reader: when it asks for less, and when it gives up."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from chain.errors import RpcError, RpcTransportError
from chain.logs import LogPager


class DownNode:
    """A node that answers every request with a transport failure."""

    def __init__(self) -> None:
        self.calls = 0

    def call(self, method: str, params: Sequence[Any] = ()) -> Any:
        self.calls += 1
        raise RpcTransportError("connection refused")


class CappedNode:
    """A node that refuses ranges wider than ``cap`` blocks, as hosted providers do."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.spans: list[int] = []

    def call(self, method: str, params: Sequence[Any] = ()) -> Any:
        query = params[0]
        span = int(query["toBlock"], 16) - int(query["fromBlock"], 16) + 1
        self.spans.append(span)
        if span > self.cap:
            raise RpcError(method, -32005, "query returned more than 10000 results")
        return []


def test_a_reader_that_polls_its_node_fails_a_page_at_once_when_the_node_is_down() -> None:
    node = DownNode()
    with pytest.raises(RpcTransportError):
        list(
            LogPager(node, initial_span=2000, shrink_on_transport_error=False).pages(
                ["0x1"], 0, 1999
            )
        )
    assert node.calls == 1


def test_the_audit_reader_halves_its_range_on_transport_failures() -> None:
    node = DownNode()
    with pytest.raises(RpcTransportError):
        list(LogPager(node, initial_span=2000).pages(["0x1"], 0, 1999))
    assert node.calls == 12  # 2000, 1000, 500, ... 1 block, then it gives up


def test_a_provider_limit_shrinks_the_range_whether_or_not_transport_errors_do() -> None:
    for shrink in (True, False):
        node = CappedNode(cap=100)
        pager = LogPager(node, initial_span=1000, shrink_on_transport_error=shrink)
        pages = list(pager.pages(["0x1"], 0, 999))
        assert pages[-1][1] == 999
        assert max(end - start + 1 for start, end, _ in pages) <= 100


class CountingNode:
    """A node with ``per_block`` logs in every block; records the spans asked for."""

    def __init__(self, per_block: int) -> None:
        self.per_block = per_block
        self.spans: list[int] = []

    def call(self, method: str, params: Sequence[Any] = ()) -> Any:
        query = params[0]
        first, last = int(query["fromBlock"], 16), int(query["toBlock"], 16)
        self.spans.append(last - first + 1)
        return [
            {"blockNumber": hex(b)} for b in range(first, last + 1) for _ in range(self.per_block)
        ]


def test_pages_start_at_the_span_asked_for_and_scale_it_to_the_target() -> None:
    node = CountingNode(per_block=10)
    pager = LogPager(node, target_logs=100, initial_span=4, max_span=64)
    pages = list(pager.pages(["0x1"], 0, 99, span=50))
    assert node.spans[0] == 50  # not initial_span
    assert node.spans[1:3] == [10, 10]  # 500 logs > 100: scaled down to 100 logs a page
    assert sum(end - start + 1 for start, end, _ in pages) == 100
    assert pager.next_span(10, 0) == 64  # nothing there: grow (eightfold, at most max_span)
    assert pager.next_span(4, 10) == 32  # sparse: grow at most eightfold
    assert pager.next_span(8, 70) == 8  # near the target: keep
    assert pager.next_span(8, 1_000) == 1  # dense: at least one block
