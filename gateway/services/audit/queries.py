"""The history search: validated filters, matching records (the index narrows the
scan), pages, CSV chunks and table rows."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from chain.audit import (
    AuditUsageError,
    Clawback,
    Issuance,
    IssuanceBatch,
    Record,
    record_dict,
    write_csv,
)
from chain.audit import parse_time as chain_parse_time
from gateway.errors import InvalidRequest
from gateway.services.audit.snapshot import ADDRESS_FIELDS, Snapshot

#: Most rows one history page returns.
MAX_PAGE = 500
#: Records per chunk of a streamed CSV.
CSV_CHUNK = 2_000


@dataclass(frozen=True)
class HistoryQuery:
    """Filters of the history search; every given filter must match."""

    address: str | None = None  # any address field (member, sender, recipient, ...)
    merchant: int | None = None
    tx_hash: str | None = None
    seq: int | None = None  # an issuance's or clawback's sequence number (or the one clawed back)
    kinds: tuple[str, ...] = ()
    from_block: int | None = None
    to_block: int | None = None
    newest_first: bool = True

    @classmethod
    def parse(
        cls,
        *,
        address: str | None = None,
        merchant: int | None = None,
        tx: str | None = None,
        seq: int | None = None,
        kind: str | None = None,
        from_block: int | None = None,
        to_block: int | None = None,
        order: str = "desc",
    ) -> HistoryQuery:
        """Validated filters from request parameters (raises :class:`InvalidRequest`)."""
        if address is not None:
            address = address.strip().lower()
            if not _is_hex(address, 40):
                raise InvalidRequest("address must be 0x and 40 hex digits", address=address)
        if tx is not None:
            tx = tx.strip().lower()
            if not _is_hex(tx, 64):
                raise InvalidRequest("tx must be a transaction hash (0x and 64 hex digits)", tx=tx)
        if order not in ("asc", "desc"):
            raise InvalidRequest("order must be asc or desc", order=order)
        if from_block is not None and to_block is not None and from_block > to_block:
            raise InvalidRequest(
                "from_block is after to_block", from_block=from_block, to_block=to_block
            )
        kinds = tuple(k.strip() for k in (kind or "").split(",") if k.strip())
        return cls(address, merchant, tx, seq, kinds, from_block, to_block, order == "desc")

    def matches(self, r: Record) -> bool:
        if self.from_block is not None and r.block < self.from_block:
            return False
        if self.to_block is not None and r.block > self.to_block:
            return False
        if self.kinds and r.kind not in self.kinds:
            return False
        if self.merchant is not None and getattr(r, "merchant", None) != self.merchant:
            return False
        if self.tx_hash is not None and r.tx_hash.lower() != self.tx_hash:
            return False
        if self.address is not None and not any(
            getattr(r, name, None) == self.address for name in ADDRESS_FIELDS
        ):
            return False
        return self.seq is None or _has_seq(r, self.seq)


def _is_hex(text: str, digits: int) -> bool:
    if len(text) != digits + 2 or not text.startswith("0x"):
        return False
    try:
        int(text[2:], 16)
    except ValueError:
        return False
    return True


def _has_seq(r: Record, seq: int) -> bool:
    if isinstance(r, Issuance):
        return r.seq == seq
    if isinstance(r, IssuanceBatch):
        return r.seq <= seq < r.seq + r.count
    if isinstance(r, Clawback):
        return seq in (r.seq, r.original_seq)
    return False


def parse_time(text: str, *, end_of_day: bool = False) -> int:
    """:func:`chain.audit.parse_time` for request parameters: InvalidRequest for what is
    not a time, a ``Z`` suffix accepted on a bare date too, and with ``end_of_day`` a
    bare date means its last second instead of its first."""
    value = text.strip()
    try:
        moment = chain_parse_time(value.replace("Z", "+00:00"))
    except AuditUsageError as exc:
        raise InvalidRequest(f"{text!r} is not an ISO 8601 date or date-time") from exc
    if end_of_day and len(value) == 10:  # YYYY-MM-DD
        moment += 86_400 - 1
    return moment


def search(
    snap: Snapshot, query: HistoryQuery, *, limit: int = 50, offset: int = 0
) -> tuple[int, list[Record]]:
    """(number of matches, the page of them at ``offset``)."""
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidRequest(f"limit must be between 1 and {MAX_PAGE}", limit=limit)
    if offset < 0:
        raise InvalidRequest("offset must not be negative", offset=offset)
    if query == HistoryQuery(newest_first=query.newest_first):  # no filter: no scan
        records = snap.records
        count = len(records)
        if query.newest_first:
            stop = max(count - offset, 0)
            return count, records[max(stop - limit, 0) : stop][::-1]
        return count, records[offset : offset + limit]
    count, page = 0, []
    for r in matching(snap, query):
        if offset <= count < offset + limit:
            page.append(r)
        count += 1
    return count, page


def matching(snap: Snapshot, query: HistoryQuery) -> Iterator[Record]:
    """Every matching record, in the query's order; the index narrows the scan."""
    index = snap.index
    narrowed = [
        snap.positions(found)
        for found in (
            index.by_tx.get(query.tx_hash, []) if query.tx_hash is not None else None,
            index.by_address.get(query.address, []) if query.address is not None else None,
            index.by_merchant.get(query.merchant, []) if query.merchant is not None else None,
        )
        if found is not None
    ]
    candidates = min(narrowed, key=len) if narrowed else None
    records = snap.records
    if candidates is not None:
        ordered = reversed(candidates) if query.newest_first else iter(candidates)
        for position in ordered:
            if query.matches(records[position]):
                yield records[position]
        return
    walk = reversed(records) if query.newest_first else iter(records)
    for r in walk:
        if query.matches(r):
            yield r


def csv_chunks(snap: Snapshot, query: HistoryQuery) -> Iterator[str]:
    """The matching records as CSV (``chain.audit.write_csv``'s columns), in chunks."""
    chunk: list[Record] = []
    first = True

    def render(records: list[Record]) -> str:
        buffer = io.StringIO()
        write_csv(records, buffer)
        text = buffer.getvalue()
        return text if first else text.split("\n", 1)[1]

    for r in matching(snap, query):
        chunk.append(r)
        if len(chunk) >= CSV_CHUNK:
            yield render(chunk)
            first, chunk = False, []
    if chunk or first:
        yield render(chunk)


def history_row(r: Record) -> dict[str, Any]:
    """A record for the history table: its fields (``record_dict``, ISO ``time``) and the
    block's unix ``timestamp``."""
    row = record_dict(r)
    row["timestamp"] = r.time
    return row
