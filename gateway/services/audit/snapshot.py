"""What one audit request works on: the records up to one block, indexed by
address, transaction and merchant."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from chain.audit import (
    ZERO_ADDRESS,
    Contracts,
    History,
    Record,
)

#: Fields of a record that hold an account address (searched by "address").
ADDRESS_FIELDS = ("member", "sender", "recipient", "account", "signer", "operator")


class RecordIndex:
    """Positions of records by address, transaction and merchant; append-only, shared by
    the snapshots of one replay (a snapshot ignores positions past its own length)."""

    def __init__(self) -> None:
        self.by_address: defaultdict[str, list[int]] = defaultdict(list)
        self.by_tx: defaultdict[str, list[int]] = defaultdict(list)
        self.by_merchant: defaultdict[int, list[int]] = defaultdict(list)

    def add(self, records: Sequence[Record], start: int) -> None:
        for position, record in enumerate(records, start):
            self.by_tx[record.tx_hash].append(position)
            merchant = getattr(record, "merchant", None)
            if isinstance(merchant, int):
                self.by_merchant[merchant].append(position)
            seen: set[str] = set()
            for name in ADDRESS_FIELDS:
                value = getattr(record, name, None)
                if isinstance(value, str) and value != ZERO_ADDRESS and value not in seen:
                    seen.add(value)
                    self.by_address[value].append(position)


@dataclass(frozen=True)
class Snapshot:
    """The history up to ``to_block``: what one request works on."""

    contracts: Contracts
    from_block: int
    to_block: int
    to_time: int
    block_hash: str
    records: list[Record]  # never mutated: an extension makes a new list
    log_count: int
    block_times: dict[int, int]
    index: RecordIndex = field(repr=False, compare=False)

    def history(self) -> History:
        return History(
            self.contracts,
            self.from_block,
            self.to_block,
            self.records,
            self.log_count,
            self.block_times,
            self.to_time,
        )

    def positions(self, found: list[int]) -> list[int]:
        """Index positions that belong to this snapshot (the index may have grown since)."""
        size = len(self.records)
        end = len(found)
        while end and found[end - 1] >= size:
            end -= 1
        return found[:end]
