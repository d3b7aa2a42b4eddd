"""Reading the network's history: discovery, paged logs with block times, decoding.

- discover the network's contracts from the hub: ``token()``, ``badges()`` and the
  timelock(s) that hold ``DEFAULT_ADMIN_ROLE`` (from the hub's ``RoleGranted`` logs),
  and the block where the history starts;
- read every log of those contracts with the paged reader (:mod:`chain.logs`),
  prefetching the next page on a thread while the current one is decoded;
- take block times from the logs (``blockTimestamp``) or, where a node leaves them out,
  from JSON-RPC batches of ``eth_getBlockByNumber`` for the blocks that have logs only;
- decode every log into a typed record with the one decoder (:mod:`chain.decode`).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from chain.abi import ROLE_GRANTED, ROLE_REVOKED, ZERO_WORD
from chain.abi import selector as abi_selector
from chain.decode import LogDecoder
from chain.errors import AuditError
from chain.jsonrpc import Rpc
from chain.logs import LogPager
from chain.records import Address, Record, checksum


@dataclass(frozen=True)
class Contracts:
    """The audited network: addresses (lower-case) and where its history starts."""

    hub: Address
    token: Address
    badges: Address
    timelocks: tuple[Address, ...]  # every account ever granted the hub's DEFAULT_ADMIN_ROLE
    admins: tuple[Address, ...]  # those holding it at the block discovery looked at
    start_block: int

    def addresses(self) -> list[Address]:
        return list(dict.fromkeys([self.hub, self.token, self.badges, *self.timelocks]))

    def labels(self) -> dict[Address, str]:
        labels = {t: "timelock" for t in self.timelocks}
        labels.update({self.hub: "hub", self.token: "token", self.badges: "badges"})
        return labels

    def to_dict(self) -> dict[str, Any]:
        return {
            "hub": checksum(self.hub),
            "token": checksum(self.token),
            "badges": checksum(self.badges),
            "timelocks": [checksum(t) for t in self.timelocks],
            "admins": [checksum(a) for a in self.admins],
            "start_block": self.start_block,
        }


def _word_address(word: bytes) -> Address:
    return "0x" + word[-20:].hex()


ProgressCallback = Callable[[int, int, int], None]
"""``progress(blocks_done, blocks_total, logs_read)``."""


@dataclass
class History:
    """Every decoded record of the network from ``from_block`` to ``to_block``."""

    contracts: Contracts
    from_block: int
    to_block: int
    records: list[Record]
    log_count: int
    block_times: dict[int, int] = field(default_factory=dict)  # blocks that have logs
    to_time: int | None = None  # timestamp of ``to_block``

    def between(self, from_block: int, to_block: int) -> list[Record]:
        return [r for r in self.records if from_block <= r.block <= to_block]


@dataclass
class _Page:
    first: int
    last: int
    logs: list[dict[str, Any]]
    times: dict[int, int]


class AuditLog:
    """Reads and decodes the network's whole log history (see the module docstring).

    ``target_logs``, ``initial_span`` and ``max_span`` size its pages
    (:class:`chain.logs.LogPager`).
    """

    def __init__(
        self,
        rpc: Rpc | str,
        hub: str,
        *,
        start_block: int | None = None,
        target_logs: int = 25_000,
        initial_span: int = 32,
        max_span: int = 500_000,
        log_timestamps: bool = True,
        progress: ProgressCallback | None = None,
    ) -> None:
        self.rpc = Rpc(rpc) if isinstance(rpc, str) else rpc
        self.hub = hub.lower()
        self.start_block = start_block
        self.pager = LogPager(
            self.rpc, target_logs=target_logs, initial_span=initial_span, max_span=max_span
        )
        #: ``(from, to, logs)`` for consecutive block ranges: :meth:`LogPager.pages`.
        self.pages = self.pager.pages
        self.log_timestamps = log_timestamps
        self.progress = progress

    # ---------------------------------------------------------------- paging

    @property
    def requests(self) -> int:
        """``eth_getLogs`` requests made, for benchmarks and tests."""
        return self.pager.requests

    def _timed_pages(self, addresses: list[str], first: int, last: int) -> Iterator[_Page]:
        for start, end, logs in self.pages(addresses, first, last):
            times: dict[int, int] = {}
            if logs and not (self.log_timestamps and "blockTimestamp" in logs[0]):
                blocks = sorted({int(log["blockNumber"], 16) for log in logs})
                found = self.rpc.batch([("eth_getBlockByNumber", [hex(b), False]) for b in blocks])
                for b, block in zip(blocks, found, strict=True):
                    if block is None:
                        raise AuditError(f"block {b} with logs not found (reorg?)")
                    times[b] = int(block["timestamp"], 16)
            yield _Page(start, end, logs, times)

    def _prefetched(self, addresses: list[str], first: int, last: int) -> Iterator[_Page]:
        """The pages, fetched one ahead on a thread while the caller decodes."""
        box: queue.Queue[_Page | BaseException | None] = queue.Queue(maxsize=2)
        stop = threading.Event()

        def offer(item: _Page | BaseException | None) -> bool:
            while not stop.is_set():
                try:
                    box.put(item, timeout=0.2)
                    return True
                except queue.Full:
                    continue
            return False

        def produce() -> None:
            try:
                for page in self._timed_pages(addresses, first, last):
                    if not offer(page):
                        return
                offer(None)
            except BaseException as exc:  # handed to the consumer, which raises it
                offer(exc)

        worker = threading.Thread(target=produce, name="audit-getlogs", daemon=True)
        worker.start()
        try:
            while True:
                item = box.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            worker.join(timeout=5)

    # ---------------------------------------------------------------- discovery

    def _call_address(self, selector: str, block: int) -> Address:
        raw = self.rpc.eth_call(self.hub, abi_selector(selector), block)
        if len(raw) != 32:
            raise AuditError(f"{self.hub} answered {selector} with {raw.hex()!r}: not the hub?")
        return _word_address(raw)

    def discover(self, to_block: int) -> Contracts:
        """The network's contracts, read from the hub, and the first block of its history."""
        if not self.rpc.get_code(self.hub, to_block):
            raise AuditError(f"no contract at {self.hub} at block {to_block}")
        token = self._call_address("token()", to_block)
        badges = self._call_address("badges()", to_block)
        first = self.start_block or 0
        admins: dict[Address, bool] = {}
        hub_start: int | None = None
        topics = [[ROLE_GRANTED, ROLE_REVOKED], ZERO_WORD]
        for _s, _e, logs in self.pages([self.hub], first, to_block, topics):
            for log in logs:
                block = int(log["blockNumber"], 16)
                hub_start = block if hub_start is None else min(hub_start, block)
                admins[_word_address(bytes.fromhex(log["topics"][2][2:]))] = (
                    log["topics"][0] == ROLE_GRANTED
                )
        if hub_start is None:
            raise AuditError(
                f"{self.hub} has no RoleGranted(DEFAULT_ADMIN_ROLE) log in blocks "
                f"{first}..{to_block}: not a pointsnet hub, or history starts earlier"
            )
        timelocks = tuple(admins)
        start = hub_start
        if self.start_block is None:
            # The timelock is deployed before the hub: start at its first log.
            for _s, _e, logs in self.pages(list(timelocks), first, hub_start, [ROLE_GRANTED]):
                if logs:
                    start = min(start, int(logs[0]["blockNumber"], 16))
                    break
        else:
            start = self.start_block
        return Contracts(
            hub=self.hub,
            token=token,
            badges=badges,
            timelocks=timelocks,
            admins=tuple(a for a, held in admins.items() if held),
            start_block=start,
        )

    # ---------------------------------------------------------------- reading

    def read(self, to_block: int | None = None) -> History:
        """Discover the network and decode its history up to ``to_block`` (default: latest)."""
        last = self.rpc.block_number() if to_block is None else to_block
        contracts = self.discover(last)
        decoder = LogDecoder(contracts)
        total = last - contracts.start_block + 1
        logs_read = 0
        if self.progress:
            self.progress(0, total, 0)
        for page in self._prefetched(contracts.addresses(), contracts.start_block, last):
            decoder.decode_page(page.logs, page.times)
            logs_read += len(page.logs)
            if self.progress:
                self.progress(page.last - contracts.start_block + 1, total, logs_read)
        to_time = decoder.block_times.get(last)
        if to_time is None:
            to_time = self.rpc.block_timestamp(last)
        return History(
            contracts=contracts,
            from_block=contracts.start_block,
            to_block=last,
            records=decoder.records,
            log_count=logs_read,
            block_times=decoder.block_times,
            to_time=to_time,
        )
