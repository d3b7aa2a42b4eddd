"""Indexer: the network's logs, decoded into the gateway's database, reorg-safe.

Responsibilities:

- follow the hub's, token's, badges' and timelock's logs up to the head minus
  the confirmation depth, read by the paged reader (:mod:`chain.logs`) and decoded
  by the one decoder (:mod:`chain.decode`) into ``chain_records``;
- remember the hash of every block it wrote records for and of the last block
  of each page; before going on, check the newest remembered hashes against
  the chain and, on a mismatch (a reorg), delete everything above the last
  block that still matches and read again from there;
- rebuild everything from block 0 on request.

The records feed member history and the audit views; the chain stays the
source of truth.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from chain.audit import AuditLog, Contracts, Rpc
from chain.decode import decode_logs
from chain.logs import LogPager
from chain.records import Record, record_dict
from gateway.db import transaction
from gateway.models import ChainRecord, IndexedBlock
from gateway.settings import Settings

log = logging.getLogger("pointsnet.indexer")


class Indexer:
    """Follows the chain into ``chain_records``; one instance per database."""

    def __init__(
        self,
        settings: Settings,
        hub: str,
        sessions: sessionmaker[Session],
        page_blocks: int = 2_000,
    ) -> None:
        self.rpc = Rpc(settings.rpc_url)
        self.hub = hub
        self.sessions = sessions
        self.confirmations = settings.confirmations
        self.page_blocks = page_blocks
        self._contracts: Contracts | None = None

    def contracts(self) -> Contracts:
        if self._contracts is None:
            self._contracts = AuditLog(self.rpc, self.hub).discover(self.rpc.block_number())
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
        self.check_reorg()
        head = self.rpc.block_number() - self.confirmations
        with self.sessions() as session:
            last = session.scalar(select(func.max(IndexedBlock.number)))
        start = contracts.start_block if last is None else int(last) + 1
        if start > head:
            return False
        end = min(head, start + self.page_blocks - 1)
        pager = LogPager(self.rpc, initial_span=self.page_blocks, shrink_on_transport_error=False)
        logs = pager.read(contracts.addresses(), start, end)
        blocks = sorted({int(entry["blockNumber"], 16) for entry in logs} | {end})
        headers = self.rpc.batch([("eth_getBlockByNumber", [hex(b), False]) for b in blocks])
        times = {b: int(h["timestamp"], 16) for b, h in zip(blocks, headers, strict=True)}
        hashes = {b: str(h["hash"]) for b, h in zip(blocks, headers, strict=True)}
        records = decode_logs(contracts, logs, times)
        with transaction(self.sessions) as session:
            for number in blocks:
                session.merge(
                    IndexedBlock(number=number, hash=hashes[number], timestamp=times[number])
                )
            session.add_all(_row(record) for record in records)
        return True

    def check_reorg(self) -> int | None:
        """Roll back past a reorg; returns the block indexing resumes after, if any rolled back."""
        with self.sessions() as session:
            recent = session.scalars(
                select(IndexedBlock).order_by(IndexedBlock.number.desc()).limit(64)
            ).all()
        if not recent:
            return None
        chain = self.rpc.batch([("eth_getBlockByNumber", [hex(b.number), False]) for b in recent])
        keep: int | None = None
        for block, header in zip(recent, chain, strict=True):
            if header is not None and header["hash"] == block.hash:
                keep = block.number
                break
        if keep == recent[0].number:
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


def _row(record: Record) -> ChainRecord:
    data: dict[str, Any] = record_dict(record)
    member = getattr(record, "member", None) or getattr(record, "sender", None)
    return ChainRecord(
        block_number=record.block,
        block_time=record.time,
        tx_hash=record.tx_hash,
        log_index=record.log_index,
        item=0,
        kind=record.kind,
        merchant_id=getattr(record, "merchant", None),
        member=member,
        counterparty=getattr(record, "recipient", None),
        amount=int(getattr(record, "amount", 0) or 0),
        seq=getattr(record, "seq", None),
        rule_version=getattr(record, "rule_version", None),
        ref=getattr(record, "ref", None),
        data=data,
    )
