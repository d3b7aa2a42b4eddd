"""The one log decoder: raw JSON-RPC logs -> typed records (:mod:`chain.records`).

Used by the audit, the indexer, recovery after a database loss, Merkle proofs of
past issuances, the worker and the merchant service. Logs are dispatched on their
topic0 (:mod:`chain.abi` precomputes them); the hot events (``Transfer``,
``PointsIssued``, ``PointsRedeemed``, ``PointsClawedBack``, ``PointsTransferred``, the
badges' mints and ``BadgesAwarded``) are parsed by hand from their hex words, every
other one through its ABI (:mod:`chain.events`). :func:`zip_batch` is the one place a
``PointsIssued`` batch is paired with the token's ``Transfer(0, member, amount)`` mints
of its transaction (i-th item, i-th mint, in log order) into one :class:`Issuance` per
event; :meth:`LogDecoder._zip_badges` pairs a hub ``BadgesAwarded(merchant, count)``
with the last ``count`` badge mints (``TransferSingle`` from the zero address) of its
transaction into one :class:`BadgeAward` per badge, at its mint's log index.

Logs come from ``eth_getLogs`` (:mod:`chain.logs`) or from a web3 receipt
(:func:`receipt_logs`); both are the node's JSON: hex strings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from chain.abi import (
    BADGES_AWARDED,
    POINTS_CLAWED_BACK,
    POINTS_ISSUED,
    POINTS_REDEEMED,
    POINTS_TRANSFERRED,
    TRANSFER,
    TRANSFER_SINGLE,
    ZERO_ADDRESS,
    ZERO_WORD,
)
from chain.events import generic_records
from chain.records import (
    Address,
    BadgeAward,
    BadgeMovement,
    Clawback,
    Issuance,
    IssuanceBatch,
    Record,
    Redemption,
    RelayedTransfer,
    TokenMovement,
)

#: A mint not yet zipped with its batch: ``(log_index, member, amount)``.
Mint = tuple[int, Address, int]

#: The label :meth:`Emitters.labels` gives the badge collection.
BADGES_LABEL = "badges"


class Emitters(Protocol):
    """Who emitted the logs: the hub, the token, and a label for every other contract."""

    @property
    def hub(self) -> Address: ...

    @property
    def token(self) -> Address: ...

    def labels(self) -> dict[Address, str]:
        """Every known emitter's label (``"badges"`` for the collection, when known)."""
        ...


@dataclass(frozen=True)
class HubAndToken:
    """The emitters when the hub and the token (and maybe the badges) are known (lower-case
    addresses)."""

    hub: Address
    token: Address
    badges: Address = ""

    def labels(self) -> dict[Address, str]:
        labels = {self.hub: "hub", self.token: "token"}
        if self.badges:
            labels[self.badges] = BADGES_LABEL
        return labels


def chain_order(record: Record) -> tuple[int, int]:
    return record.block, record.log_index


def zip_batch(
    head: tuple[int, int, int, str], topics: Sequence[str], data_hex: str, mints: Sequence[Mint]
) -> tuple[list[Issuance], IssuanceBatch]:
    """A ``PointsIssued`` log (``head``: block, log index, time, tx hash) zipped with the
    mints of its transaction that precede it and no earlier batch took: one
    :class:`Issuance` per event, as far as there are mints, and the batch's record.

    Data words: ``firstSeq``, the offset of ``eventRefs``, ``total``, ``kind``,
    ``inputRoot``, then the refs (length and words) where the offset points."""
    block, log_index, timestamp, tx_hash = head
    data = data_hex[2:]
    merchant = int(topics[1], 16)
    version = int(topics[2], 16)
    first_seq = int(data[0:64], 16)
    offset = int(data[64:128], 16) * 2
    total = int(data[128:192], 16)
    mint_kind = int(data[192:256], 16)
    input_root = "0x" + data[256:320]
    count = int(data[offset : offset + 64], 16)
    base = offset + 64
    items: list[Issuance] = []
    minted_total = 0
    tail = (timestamp, tx_hash, "token", "issuance")
    for i in range(min(count, len(mints))):
        index, member, amount = mints[i]
        minted_total += amount
        at = base + 64 * i
        seq, ref = first_seq + i, "0x" + data[at : at + 64]
        item = Issuance(
            block, index, *tail, merchant, member, amount, seq, version, ref, log_index,
            mint_kind, input_root,
        )  # fmt: skip
        items.append(item)
    counts = (first_seq, count, total, len(items), minted_total)
    batch = IssuanceBatch(
        *head, "hub", "points_issued", merchant, version, *counts, mint_kind, input_root
    )
    return items, batch


#: The hub's events :func:`hub_record` parses by hand.
HUB_HOT_TOPICS = frozenset({POINTS_REDEEMED, POINTS_CLAWED_BACK, POINTS_TRANSFERRED})


def _address(topic: str) -> Address:
    return "0x" + topic[26:].lower()


def badge_mint(
    topics: Sequence[str], data_hex: str, head: tuple[int, int, int, str]
) -> BadgeMovement:
    """A badges ``TransferSingle(operator, 0, to, id, value)`` log (``head``: block, log
    index, time, tx hash), parsed from its hex words."""
    data = data_hex[2:]
    operator, recipient = _address(topics[1]), _address(topics[3])
    badge, value = int(data[0:64], 16), int(data[64:128], 16)
    at = (*head, BADGES_LABEL, "badge_transfer")
    return BadgeMovement(*at, operator, ZERO_ADDRESS, recipient, badge, value)


def hub_record(
    topic0: str, topics: Sequence[str], data_hex: str, head: tuple[int, int, int, str]
) -> Record:
    """A hub's ``PointsRedeemed``, ``PointsClawedBack`` or ``PointsTransferred`` log
    (``head``: block, log index, time, tx hash), parsed from its hex words."""
    data = data_hex[2:]
    words = [data[i : i + 64] for i in range(0, len(data), 64)]
    n = [int(w, 16) for w in words]
    at = (*head, "hub")
    if topic0 == POINTS_TRANSFERRED:
        sender, recipient = _address(topics[1]), _address(topics[2])
        return RelayedTransfer(*at, "relayed_transfer", sender, recipient, n[0], n[1])
    merchant, member = int(topics[1], 16), _address(topics[2])
    if topic0 == POINTS_REDEEMED:
        return Redemption(*at, "redemption", merchant, member, n[0], "0x" + words[1], n[2])
    ref = "0x" + words[2]
    return Clawback(*at, "clawback", merchant, member, n[0], n[1], ref, n[3], n[4])


class LogDecoder:
    """Turns raw logs (in chain order) into records; zips each transaction's mints."""

    def __init__(self, emitters: Emitters) -> None:
        self.labels = emitters.labels()
        self.token = emitters.token
        self.hub = emitters.hub
        self.badges = next((a for a, label in self.labels.items() if label == BADGES_LABEL), "")
        self.records: list[Record] = []
        self.block_times: dict[int, int] = {}
        self.holders: dict[str, Address] = {}
        self._late = False  # records of this page appended after their log's place

    def decode_page(self, logs: list[dict[str, Any]], times: dict[int, int]) -> None:
        """Decode one page (whole blocks). Nodes return logs in chain order; if one did
        not, the page is sorted and decoded again."""
        start = len(self.records)
        self._late = False
        if not self._decode(logs, times, check_order=True):
            del self.records[start:]
            self._late = False
            ordered = sorted(
                logs, key=lambda g: (int(g["blockNumber"], 16), int(g["logIndex"], 16))
            )
            self._decode(ordered, times, check_order=False)
        if self._late:  # batch items or unattributed mints were appended after their log
            page = self.records[start:]
            page.sort(key=chain_order)
            self.records[start:] = page

    def _decode(
        self, logs: list[dict[str, Any]], times: dict[int, int], *, check_order: bool
    ) -> bool:
        append = self.records.append
        labels = self.labels
        token = self.token
        hub = self.hub
        badges = self.badges
        block_times = self.block_times
        zero_topic = ZERO_WORD
        last_block_hex = ""
        block = timestamp = -1
        previous_index = -1
        tx_hash = ""
        tx_block = tx_time = 0
        pending: list[Mint] = []  # this tx's mints not yet zipped
        badge_mints: list[BadgeMovement] = []  # this tx's badge mints not yet zipped
        holders = self.holders  # topic -> address: one string per holder, not per log
        taken = 0
        for log in logs:
            if log.get("removed"):
                continue
            log_index = int(log["logIndex"], 16)
            if log["blockNumber"] != last_block_hex:
                last_block_hex = log["blockNumber"]
                number = int(last_block_hex, 16)
                if check_order and number < block:
                    return False
                block = number
                if times:
                    timestamp = times[block]
                else:  # receipts' logs carry no block time: 0
                    stamp = log.get("blockTimestamp")
                    timestamp = 0 if stamp is None else int(str(stamp), 16)
                block_times[block] = timestamp
            elif check_order and log_index <= previous_index:
                return False
            previous_index = log_index
            if log["transactionHash"] != tx_hash:
                if taken < len(pending):
                    self._unattributed(pending[taken:], tx_block, tx_time, tx_hash)
                self._unattributed_badges(badge_mints)
                pending, taken, badge_mints = [], 0, []
                tx_hash, tx_block, tx_time = log["transactionHash"], block, timestamp
            topics = log["topics"]
            topic0 = topics[0] if topics else ""
            address = log["address"].lower()
            if topic0 == TRANSFER and address == token:
                recipient = holders.get(topics[2])
                if recipient is None:
                    recipient = holders[topics[2]] = "0x" + topics[2][26:].lower()
                amount = int(log["data"], 16)
                if topics[1] == zero_topic:
                    pending.append((log_index, recipient, amount))
                    continue
                sender = holders.get(topics[1])
                if sender is None:
                    sender = holders[topics[1]] = "0x" + topics[1][26:].lower()
                kind = "token_burn" if topics[2] == zero_topic else "token_transfer"
                movement = (block, log_index, timestamp, tx_hash, "token", kind)
                append(TokenMovement(*movement, sender, recipient, amount))
            elif topic0 == POINTS_ISSUED and address == hub:
                head = (block, log_index, timestamp, tx_hash)
                items, batch = zip_batch(head, topics, log["data"], pending[taken:])
                for item in items:
                    append(item)
                append(batch)
                self._late = True
                taken += len(items)
            elif topic0 in HUB_HOT_TOPICS and address == hub:
                append(
                    hub_record(topic0, topics, log["data"], (block, log_index, timestamp, tx_hash))
                )
            elif topic0 == TRANSFER_SINGLE and address == badges and topics[2] == zero_topic:
                badge_mints.append(
                    badge_mint(topics, log["data"], (block, log_index, timestamp, tx_hash))
                )
            elif topic0 == BADGES_AWARDED and address == hub:
                self._zip_badges(int(topics[1], 16), int(log["data"], 16), badge_mints)
            else:
                contract = labels.get(address, address)
                for record in generic_records(log, block, log_index, timestamp, tx_hash, contract):
                    append(record)
        if taken < len(pending):
            self._unattributed(pending[taken:], tx_block, tx_time, tx_hash)
        self._unattributed_badges(badge_mints)
        return True

    def _unattributed_badges(self, mints: list[BadgeMovement]) -> None:
        """Badge mints of a transaction that no ``BadgesAwarded`` accounts for."""
        if mints:
            self.records.extend(mints)
            self._late = True

    def _zip_badges(self, merchant: int, count: int, mints: list[BadgeMovement]) -> None:
        """A hub ``BadgesAwarded(merchant, count)``: its awards are the last ``count`` badge
        mints of the transaction no later batch took (the last ones, so an award nested in a
        receiver's callback takes its own), one :class:`BadgeAward` each at its mint's log
        index; they leave ``mints``."""
        taken = mints[len(mints) - min(count, len(mints)) :]
        del mints[len(mints) - len(taken) :]
        self._late = self._late or bool(taken)
        for m in taken:
            head = (m.block, m.log_index, m.time, m.tx_hash)
            self.records.append(
                BadgeAward(*head, "hub", "badge_awarded", merchant, m.recipient, m.badge_id)
            )

    def _unattributed(
        self, mints: Sequence[Mint], block: int, timestamp: int, tx_hash: str
    ) -> None:
        """Mints of a transaction that no ``PointsIssued`` accounts for."""
        self._late = True
        tail = (timestamp, tx_hash, "token", "token_mint", ZERO_ADDRESS)
        for log_index, member, amount in mints:
            self.records.append(TokenMovement(block, log_index, *tail, member, amount))


def decode_logs(
    emitters: Emitters, logs: list[dict[str, Any]], times: Mapping[int, int] | None = None
) -> list[Record]:
    """Decode raw ``eth_getLogs`` results of whole blocks (``times``: block -> timestamp,
    needed when the logs carry no ``blockTimestamp``)."""
    decoder = LogDecoder(emitters)
    decoder.decode_page(logs, dict(times or {}))
    return decoder.records


def _hex(value: Any) -> str:
    return value if isinstance(value, str) else "0x" + bytes(value).hex()


def receipt_logs(receipt: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A web3 receipt's logs as the node sends them (hex strings), for :func:`decode_logs`."""
    return [
        {
            "address": str(entry["address"]),
            "topics": [_hex(t) for t in entry["topics"]],
            "data": _hex(entry["data"]),
            "blockNumber": hex(int(entry["blockNumber"])),
            "transactionHash": _hex(entry["transactionHash"]),
            "logIndex": hex(int(entry["logIndex"])),
            "removed": bool(entry.get("removed", False)),
        }
        for entry in receipt["logs"]
    ]
