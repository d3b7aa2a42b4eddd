"""Indexer: the network's logs, decoded into the gateway's database, reorg-safe.

Responsibilities:

- follow the hub's, token's, badges' and timelock's logs up to the head minus
  the confirmation depth, read by the paged reader (:mod:`chain.logs`) over the
  project's raw JSON-RPC client (:class:`chain.jsonrpc.Rpc`) and decoded by the one
  decoder (:mod:`chain.decode`) into ``chain_records``;
- write each page in one short transaction: one multi-row INSERT per table
  (``indexed_blocks``, ``chain_records``), whatever the number of logs; the columns
  index what is looked up (merchant, member, sequence number, rule version, reference),
  ``data`` keeps every field of the record (a published rule set's text and effective
  time, an issue batch's mint kind and input root, a clawback batch's input root);
- remember the hash of every block it wrote records for and of the last block
  of each page; each cycle, check the newest remembered hash against the chain
  (in the same JSON-RPC batch that asks for the head) and, on a mismatch (a reorg),
  compare the newest 64, delete everything above the last block that still
  matches and read again from there;
- rebuild everything from block 0 on request.

A cycle costs a fixed number of round trips (the head and the reorg check in one
batch, ``eth_getLogs``, one batch of block headers for the blocks whose logs do not
carry their hash and time) and of SQL statements (one SELECT, two INSERTs), however
many logs its page holds. Pages are sized by log count (``target_logs``) so that a
catch-up after downtime does not hold SQLite's write lock for long, nor the memory
of a million logs.

The records feed member history and the audit views; the chain stays the
source of truth.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import fields
from typing import Any, Protocol

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session, sessionmaker

from chain.audit import AuditLog, Contracts
from chain.decode import decode_logs
from chain.jsonrpc import Rpc
from chain.logs import LogPager
from chain.records import Record, record_dict
from gateway.db import transaction
from gateway.models import ChainRecord, IndexedBlock
from gateway.settings import Settings

log = logging.getLogger("pointsnet.indexer")

#: Remembered blocks compared with the chain once the newest one no longer matches.
REORG_WINDOW = 64
#: Logs one cycle aims to read, decode and write in one transaction.
TARGET_LOGS = 2_000


class IndexerRpc(Protocol):
    """What the indexer asks of its node (:class:`chain.jsonrpc.Rpc`)."""

    def call(self, method: str, params: Sequence[Any] = ()) -> Any: ...

    def batch(self, calls: Sequence[tuple[str, Sequence[Any]]], size: int = 250) -> list[Any]: ...


class Indexer:
    """Follows the chain into ``chain_records``; one instance per database."""

    def __init__(
        self,
        settings: Settings,
        hub: str,
        sessions: sessionmaker[Session],
        page_blocks: int = 2_000,
        *,
        rpc: IndexerRpc | None = None,
        contracts: Contracts | None = None,
        target_logs: int = TARGET_LOGS,
    ) -> None:
        self.rpc: IndexerRpc = rpc if rpc is not None else Rpc(settings.rpc_url)
        self.rpc_url = settings.rpc_url
        self.hub = hub
        self.sessions = sessions
        self.confirmations = settings.confirmations
        self.page_blocks = page_blocks
        # Page spans adapt to the log density, from a few blocks up to ``page_blocks``.
        self.pager = LogPager(
            self.rpc,
            target_logs=target_logs,
            initial_span=min(16, page_blocks),
            max_span=page_blocks,
            shrink_on_transport_error=False,
        )
        self._span = self.pager.initial_span
        self._contracts = contracts  # discovered on first use when not given

    def contracts(self) -> Contracts:
        if self._contracts is None:
            rpc = self.rpc if isinstance(self.rpc, Rpc) else Rpc(self.rpc_url)
            self._contracts = AuditLog(rpc, self.hub).discover(rpc.block_number())
        return self._contracts

    def run(self, stop: threading.Event, idle_sleep: float = 0.5) -> None:
        while not stop.is_set():
            try:
                busy = self.run_once()
            except Exception as exc:  # RPC hiccups: log, wait, try again
                log.warning("indexer cycle failed (will retry): %s", exc)
                busy = False
            if not busy:
                stop.wait(idle_sleep)

    def run_once(self) -> bool:
        """Index one page of confirmed blocks; True if there was anything to read."""
        contracts = self.contracts()
        newest = self._newest()
        calls: list[tuple[str, Sequence[Any]]] = [("eth_blockNumber", [])]
        if newest is not None:
            calls.append(("eth_getBlockByNumber", [hex(newest[0]), False]))
        answers = self.rpc.batch(calls)
        if newest is not None:
            header = answers[1]
            if header is None or header["hash"] != newest[1]:
                self.check_reorg()
                newest = self._newest()
        head = int(answers[0], 16) - self.confirmations
        start = contracts.start_block if newest is None else newest[0] + 1
        if start > head:
            return False
        end = min(head, start + self._span - 1)
        logs: list[dict[str, Any]] = []
        span = end - start + 1
        for _first, _last, page in self.pager.pages(contracts.addresses(), start, end, span=span):
            logs.extend(page)
        self._span = self.pager.next_span(span, len(logs))
        hashes, times = self._blocks(logs, end)
        records = decode_logs(contracts, logs, times)
        block_rows = [
            {"number": number, "hash": hashes[number], "timestamp": times[number]}
            for number in sorted(hashes)
        ]
        with transaction(self.sessions) as session:
            connection = session.connection()
            connection.execute(insert(IndexedBlock), block_rows)
            if records:
                connection.execute(insert(ChainRecord), [_row(r) for r in records])
        return True

    def _newest(self) -> tuple[int, str] | None:
        """The newest indexed block and its hash, if any."""
        with self.sessions() as session:
            found = session.execute(
                select(IndexedBlock.number, IndexedBlock.hash)
                .order_by(IndexedBlock.number.desc())
                .limit(1)
            ).first()
        return None if found is None else (int(found[0]), str(found[1]))

    def _blocks(
        self, logs: list[dict[str, Any]], end: int
    ) -> tuple[dict[int, str], dict[int, int]]:
        """Hash and time of every block with logs, and of ``end``: from the logs
        themselves where they carry both, from block headers (one batch) otherwise."""
        hashes: dict[int, str] = {}
        times: dict[int, int] = {}
        missing: set[int] = set()
        last_hex = ""
        for entry in logs:
            if entry["blockNumber"] == last_hex:
                continue
            last_hex = entry["blockNumber"]
            number = int(last_hex, 16)
            block_hash, stamp = entry.get("blockHash"), entry.get("blockTimestamp")
            if block_hash is None or stamp is None:
                missing.add(number)
            else:
                hashes[number], times[number] = str(block_hash), int(str(stamp), 16)
        if end not in hashes:
            missing.add(end)
        wanted = sorted(missing)
        headers = self.rpc.batch([("eth_getBlockByNumber", [hex(b), False]) for b in wanted])
        for number, header in zip(wanted, headers, strict=True):
            if header is None:
                raise RuntimeError(f"block {number} is not on the node (yet)")
            hashes[number], times[number] = str(header["hash"]), int(header["timestamp"], 16)
        return hashes, times

    def check_reorg(self) -> int | None:
        """Roll back past a reorg; returns the block indexing resumes after, if any rolled back."""
        with self.sessions() as session:
            recent = session.execute(
                select(IndexedBlock.number, IndexedBlock.hash)
                .order_by(IndexedBlock.number.desc())
                .limit(REORG_WINDOW)
            ).all()
        if not recent:
            return None
        chain = self.rpc.batch([("eth_getBlockByNumber", [hex(n), False]) for n, _h in recent])
        keep: int | None = None
        for (number, block_hash), header in zip(recent, chain, strict=True):
            if header is not None and header["hash"] == block_hash:
                keep = number
                break
        if keep == recent[0][0]:
            return None
        # Everything above ``keep`` (or everything, if no remembered block matches) goes.
        floor = -1 if keep is None else keep
        with transaction(self.sessions) as session:
            session.execute(delete(ChainRecord).where(ChainRecord.block_number > floor))
            session.execute(delete(IndexedBlock).where(IndexedBlock.number > floor))
        log.warning("reorg: rolled back records above block %s", floor)
        return floor

    def rebuild(self) -> None:
        """Forget everything and index again from the first block."""
        with transaction(self.sessions) as session:
            session.execute(delete(ChainRecord))
            session.execute(delete(IndexedBlock))


#: Per record type, which of the row's optional columns it carries.
_CARRIES: dict[type[Record], frozenset[str]] = {}


def _row(record: Record) -> dict[str, Any]:
    """The ``chain_records`` row of one record."""
    carries = _CARRIES.get(type(record))
    if carries is None:
        carries = _CARRIES[type(record)] = frozenset(f.name for f in fields(record))
    member = record.member if "member" in carries else None  # type: ignore[attr-defined]
    if not member:
        member = record.sender if "sender" in carries else None  # type: ignore[attr-defined]
    amount = record.amount if "amount" in carries else 0  # type: ignore[attr-defined]
    return {
        "block_number": record.block,
        "block_time": record.time,
        "tx_hash": record.tx_hash,
        "log_index": record.log_index,
        "item": 0,
        "kind": record.kind,
        "merchant_id": record.merchant if "merchant" in carries else None,  # type: ignore[attr-defined]
        "member": member,
        "counterparty": record.recipient if "recipient" in carries else None,  # type: ignore[attr-defined]
        "amount": int(amount or 0),
        "seq": record.seq if "seq" in carries else None,  # type: ignore[attr-defined]
        "rule_version": record.rule_version if "rule_version" in carries else None,  # type: ignore[attr-defined]
        "ref": record.ref if "ref" in carries else None,  # type: ignore[attr-defined]
        "data": record_dict(record),
    }
