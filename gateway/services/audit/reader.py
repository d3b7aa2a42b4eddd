"""Reading the audit history: one :class:`chain.audit.AuditLog` replay per process.

The first request reads the history from the network's first block; every later
request extends it from the block after the last one read (``eth_blockNumber``,
one block-hash check, then ``eth_getLogs`` over the new blocks only), under a lock
so that concurrent requests wait for one reader instead of reading the same blocks
twice. It stays ``confirmations`` blocks behind the head; when the last block read
changed hash (a reorg, a devnet reset) or the hub got a new admin (whose earlier
logs were never read), it reads again from the start."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace
from typing import Any

from chain.audit import (
    ZERO_WORD,
    AuditLog,
    Record,
    RoleChange,
    Rpc,
    decode_logs,
)
from gateway.services.audit.snapshot import RecordIndex, Snapshot

log = logging.getLogger("pointsnet.audit")


class HistoryReader:
    """The history of one network, read once and then extended block range by block range."""

    def __init__(
        self,
        rpc: Rpc | str,
        hub: str,
        *,
        confirmations: int = 0,
        start_block: int | None = None,
    ) -> None:
        self.rpc = Rpc(rpc) if isinstance(rpc, str) else rpc
        self.hub = hub.lower()
        self.confirmations = max(0, confirmations)
        self.start_block = start_block
        self._lock = threading.Lock()
        self._snapshot: Snapshot | None = None
        # what the reader did, for tests and logs
        self.full_reads = 0
        self.extensions = 0
        self.last_range: tuple[int, int] | None = None

    # ---------------------------------------------------------------- reading

    def snapshot(self) -> Snapshot:
        """The history up to the head minus the confirmation depth, read incrementally."""
        with self._lock:
            head = self.rpc.block_number()
            last = max(0, head - self.confirmations)
            current = self._snapshot
            if current is not None and last < current.to_block:
                log.info("chain is behind the audited block %s: reading again", current.to_block)
                current = None
            if current is not None and last == current.to_block:
                if self._hash(last) == current.block_hash:
                    return current
                current = None  # the same height, another block: a reorg
            elif current is not None:
                current = self._extend(current, last)
            if current is None:
                current = self._read_all(last)
            self._snapshot = current
            return current

    def _hash(self, block: int) -> str:
        found = self.rpc.call("eth_getBlockByNumber", [hex(block), False])
        return str(found["hash"]) if found else ""

    def _read_all(self, last: int) -> Snapshot:
        started = time.monotonic()
        block_hash = self._hash(last)
        history = AuditLog(self.rpc, self.hub, start_block=self.start_block).read(last)
        if self._hash(last) != block_hash:  # reorged while reading: once more
            block_hash = self._hash(last)
            history = AuditLog(self.rpc, self.hub, start_block=self.start_block).read(last)
        index = RecordIndex()
        index.add(history.records, 0)
        self.full_reads += 1
        self.last_range = (history.from_block, last)
        log.info(
            "audit history read: blocks %s..%s, %s logs in %.2fs",
            history.from_block,
            last,
            history.log_count,
            time.monotonic() - started,
        )
        return Snapshot(
            contracts=history.contracts,
            from_block=history.from_block,
            to_block=last,
            to_time=int(history.to_time if history.to_time is not None else 0),
            block_hash=block_hash,
            records=history.records,
            log_count=history.log_count,
            block_times=history.block_times,
            index=index,
        )

    def _extend(self, current: Snapshot, last: int) -> Snapshot | None:
        """``current`` extended to ``last``; None when it must be read again from the start."""
        previous, newest = self.rpc.batch(
            [
                ("eth_getBlockByNumber", [hex(current.to_block), False]),
                ("eth_getBlockByNumber", [hex(last), False]),
            ]
        )
        if previous is None or str(previous["hash"]) != current.block_hash:
            log.info("block %s changed (reorg): reading the history again", current.to_block)
            return None
        contracts = current.contracts
        reader = AuditLog(self.rpc, self.hub, start_block=contracts.start_block)
        added: list[Record] = []
        block_times = current.block_times  # append-only, like the index
        logs_read = 0
        for _first, _end, logs in reader.pages(contracts.addresses(), current.to_block + 1, last):
            times = self._block_times(logs)
            page = decode_logs(contracts, logs, times)
            for r in page:
                block_times[r.block] = r.time
            added.extend(page)
            logs_read += len(logs)
        if newest is None or self._hash(last) != str(newest["hash"]):
            log.info("block %s changed while reading: reading the history again", last)
            return None
        admins = dict.fromkeys(contracts.admins, True)
        for r in added:
            if isinstance(r, RoleChange) and r.contract == "hub" and r.role == ZERO_WORD:
                if r.account not in contracts.timelocks:
                    log.info("new hub admin %s: reading the history again", r.account)
                    return None
                if r.kind == "role_granted":
                    admins[r.account] = True
                else:
                    admins.pop(r.account, None)
        if tuple(admins) != contracts.admins:
            contracts = replace(contracts, admins=tuple(admins))
        size = len(current.records)
        current.index.add(added, size)
        self.extensions += 1
        self.last_range = (current.to_block + 1, last)
        return Snapshot(
            contracts=contracts,
            from_block=current.from_block,
            to_block=last,
            to_time=int(newest["timestamp"], 16),
            block_hash=str(newest["hash"]),
            records=current.records + added if added else current.records,
            log_count=current.log_count + logs_read,
            block_times=block_times,
            index=current.index,
        )

    def _block_times(self, logs: list[dict[str, Any]]) -> dict[int, int]:
        """Block -> timestamp for logs without ``blockTimestamp`` (empty when they have it)."""
        if not logs or "blockTimestamp" in logs[0]:
            return {}
        blocks = sorted({int(entry["blockNumber"], 16) for entry in logs})
        found = self.rpc.batch([("eth_getBlockByNumber", [hex(b), False]) for b in blocks])
        return {b: int(f["timestamp"], 16) for b, f in zip(blocks, found, strict=True) if f}
