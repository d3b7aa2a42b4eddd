"""The gateway's two clocks: the wall clock and the chain's head.

:meth:`Clock.now` is wall time (``created_at``, velocity windows, programme
days).  :meth:`Clock.chain_head` is the latest block the gateway has seen, with
its timestamp: rule versions take effect at a block timestamp, so the accept path
picks the version in effect at the head, and stamps each input with that block.
A head read a second ago is still a real block: every choice made with it is
consistent with the chain (later blocks only have later timestamps).

:class:`SystemClock` serves the head from a cache that a daemon thread refreshes
every ``POINTSNET_CHAIN_CLOCK_INTERVAL`` seconds while the head is being read (one
``eth_getBlockByNumber`` per process per interval, none when nobody asks: the thread
ends after a few intervals without a read, and the next read starts it again), so
reads rarely wait for the node: only the first read does, and one after a pause long
enough for the cache to go stale.  A first read raises a
:class:`~chain.errors.ChainError` (503 ``chain_unavailable``) when the node cannot be
reached; a stale head is still served while the node is down.  An interval of 0
reads the head on every call (tests that must see a block the moment it is mined).
:class:`ManualClock` is set and advanced by hand (tests, a scheduler).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from chain.errors import RpcError
from chain.jsonrpc import Rpc

log = logging.getLogger(__name__)

#: Intervals without a read after which the background refresh stops.
IDLE_INTERVALS = 3


@dataclass(frozen=True, order=True)
class ChainTime:
    """A block and its timestamp (unix seconds, the chain's clock)."""

    block: int
    timestamp: int

    @property
    def at(self) -> datetime:
        """The block timestamp as an aware UTC datetime."""
        return datetime.fromtimestamp(self.timestamp, UTC)


class Clock(Protocol):
    """Wall time and chain time, as the gateway reads them."""

    def now(self) -> datetime:
        """The current wall time, aware, in UTC."""
        ...

    def chain_head(self) -> ChainTime:
        """The latest block seen (never older than one seen before)."""
        ...


class ManualClock:
    """A clock that moves only when told: ``now`` and the chain head are set by hand."""

    def __init__(self, now: datetime, head: ChainTime | None = None) -> None:
        if now.tzinfo is None:
            raise ValueError("ManualClock needs an aware datetime")
        self._now = now.astimezone(UTC)
        self._head = head if head is not None else ChainTime(1, int(self._now.timestamp()))

    def now(self) -> datetime:
        return self._now

    def chain_head(self) -> ChainTime:
        return self._head

    def advance(self, seconds: float = 0.0, *, blocks: int = 0) -> None:
        """Move wall time by ``seconds``; mine ``blocks`` (the last one at the new time)."""
        if seconds < 0 or blocks < 0:
            raise ValueError("a clock does not go back")
        self._now += timedelta(seconds=seconds)
        if blocks:
            timestamp = max(self._head.timestamp, int(self._now.timestamp()))
            self._head = ChainTime(self._head.block + blocks, timestamp)

    def set_head(self, block: int, timestamp: int) -> None:
        """The chain head is ``block`` at ``timestamp`` (it must not go back)."""
        head = ChainTime(block, timestamp)
        if head < self._head:
            raise ValueError(f"the chain head does not go back: {head} < {self._head}")
        self._head = head


class SystemClock:
    """The wall clock and the node's head, cached and refreshed in the background."""

    def __init__(self, rpc: Rpc, interval: float = 1.0) -> None:
        self.rpc = rpc
        self.interval = interval
        self._head: ChainTime | None = None
        self._read_at = 0.0  # time.monotonic() of the last successful read
        self._wanted = False  # the head was read since the last background refresh
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = 0

    @classmethod
    def for_url(cls, url: str, interval: float = 1.0) -> SystemClock:
        """A clock reading the head from the node at ``url`` (a short timeout: the first
        read answers a request, the later ones run in the background)."""
        return cls(Rpc(url, timeout=5.0, retries=1), interval)

    def now(self) -> datetime:
        return datetime.now(UTC)

    def chain_head(self) -> ChainTime:
        head = self._head
        if self.interval <= 0 or head is None:
            return self.refresh()
        if time.monotonic() - self._read_at > 2 * self.interval:  # the refresh had paused
            try:
                head = self.refresh()
            except Exception as exc:  # the cached head is still a real block
                log.warning("chain clock: reading the head failed: %s", exc)
        self._wanted = True
        if self._pid != os.getpid():  # no refresh running in this process (or after a fork)
            self._start()
        return head

    def refresh(self) -> ChainTime:
        """Read the head now and keep it (a block older than the kept one is ignored)."""
        found = self.rpc.call("eth_getBlockByNumber", ["latest", False])
        if not isinstance(found, dict):
            raise RpcError("eth_getBlockByNumber", None, "the node returned no latest block")
        self._read_at = time.monotonic()
        return self.observe(ChainTime(int(found["number"], 16), int(found["timestamp"], 16)))

    def observe(self, head: ChainTime) -> ChainTime:
        """A block seen elsewhere (a receipt): the head moves to it if it is newer."""
        with self._lock:
            if self._head is None or head > self._head:
                self._head = head
            return self._head

    def close(self) -> None:
        """Stop the background refresh (the cached head stays)."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread.is_alive():
            thread.join(timeout=self.interval + 1.0)

    def _start(self) -> None:
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
            self._stop = threading.Event()
            self._thread = threading.Thread(
                target=self._run, name="chain-clock", daemon=True, args=(self._stop,)
            )
            self._thread.start()

    def _run(self, stop: threading.Event) -> None:
        idle = 0
        while idle < IDLE_INTERVALS and not stop.wait(self.interval):
            if not self._wanted:
                idle += 1
                continue
            self._wanted, idle = False, 0
            try:
                self.refresh()
            except Exception as exc:  # the cached head stays valid: it is a real block
                log.warning("chain clock: reading the head failed: %s", exc)
        with self._lock:  # nobody reads the head: the next read starts a new refresh
            if self._thread is threading.current_thread():
                self._thread, self._pid = None, 0
