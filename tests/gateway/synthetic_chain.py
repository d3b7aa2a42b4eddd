"""A synthetic node for the indexer: blocks of issuance batches, tier and badge events.

:class:`SyntheticNode` answers the three JSON-RPC methods the indexer uses
(``eth_blockNumber``, ``eth_getLogs``, ``eth_getBlockByNumber`` in batches) from logs
built in memory, in the node's JSON (hex strings), and counts the requests. Each
block holds one ``issueBatch`` transaction (``batch`` token mints and their
``PointsIssued``), a ``TierChanged`` and a badge award's ERC-1155
``TransferSingle``: the mix the gateway's indexer follows under load. :meth:`reorg`
replaces the blocks above a height (new hashes, other members), as a reorg does.

No anvil: the indexer's own costs (decoding, SQL) are measured and tested alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from chain.abi import POINTS_ISSUED, TRANSFER, ZERO_WORD, event_topic
from chain.audit import Contracts

HUB = "0x" + "a1" * 20
TOKEN = "0x" + "b2" * 20
BADGES = "0x" + "c3" * 20
TIER_CHANGED = event_topic("TierChanged(address,uint8,uint8)")
TRANSFER_SINGLE = event_topic("TransferSingle(address,address,address,uint256,uint256)")
MERCHANT = 3
FIRST_BLOCK = 1


def contracts() -> Contracts:
    return Contracts(HUB, TOKEN, BADGES, (), (), FIRST_BLOCK)


def _word(value: int) -> str:
    return f"{value:064x}"


def _topic(value: int) -> str:
    return "0x" + _word(value)


class SyntheticNode:
    """``blocks`` blocks of ``batch`` issuances each (plus a tier and a badge event)."""

    def __init__(self, blocks: int, batch: int = 100, confirmations: int = 0) -> None:
        self.batch_size = batch
        self.confirmations = confirmations
        self.fork = 0  # bumped by reorg(): blocks above the fork point change
        self.fork_floor = 1 << 62
        self.head = FIRST_BLOCK + blocks - 1
        self.requests: dict[str, int] = {}
        self._logs: dict[int, list[dict[str, Any]]] = {}

    # ---------------------------------------------------------------- the chain

    def _salt(self, block: int) -> int:
        return self.fork if block > self.fork_floor else 0

    def block_hash(self, block: int) -> str:
        return _topic((block << 32) | (self._salt(block) << 8) | 0xEE)

    def member(self, block: int, item: int) -> str:
        return "0x" + f"{(block * 1_000 + item) * 7 + self._salt(block) * 10**9 + 1:040x}"

    def logs_of(self, block: int) -> list[dict[str, Any]]:
        found = self._logs.get(block)
        if found is None:
            found = self._logs[block] = self._build(block)
        return found

    def _build(self, block: int) -> list[dict[str, Any]]:
        tx = "0x" + _word((block << 16) | (self._salt(block) << 8) | 1)
        logs: list[dict[str, Any]] = []

        def add(address: str, topics: list[str], data: str, tx_hash: str = tx) -> None:
            logs.append(
                {
                    "address": address,
                    "topics": topics,
                    "data": "0x" + data,
                    "blockNumber": hex(block),
                    "transactionHash": tx_hash,
                    "logIndex": hex(len(logs)),
                    "blockHash": self.block_hash(block),
                    "removed": False,
                }
            )

        first_seq = (block - FIRST_BLOCK) * self.batch_size + 1
        amounts = [10 + (block + i) % 90 for i in range(self.batch_size)]
        for i, amount in enumerate(amounts):
            member = self.member(block, i)
            add(TOKEN, [TRANSFER, ZERO_WORD, "0x" + "00" * 12 + member[2:]], _word(amount))
        refs = "".join(_word(first_seq + i) for i in range(self.batch_size))
        data = _word(first_seq) + _word(0x60) + _word(sum(amounts)) + _word(self.batch_size) + refs
        add(HUB, [POINTS_ISSUED, _topic(MERCHANT), _topic(1)], data)
        other = "0x" + _word((block << 16) | (self._salt(block) << 8) | 2)
        holder = "0x" + "00" * 12 + self.member(block, 0)[2:]
        add(HUB, [TIER_CHANGED, holder], _word(0) + _word(1), other)
        operator = "0x" + "00" * 12 + HUB[2:]
        single = [TRANSFER_SINGLE, operator, ZERO_WORD, holder]
        add(BADGES, single, _word(block % 5) + _word(1), other)
        return logs

    def reorg(self, above: int, extend: int = 0) -> None:
        """Replace every block above ``above`` (and add ``extend`` more)."""
        self.fork += 1
        self.fork_floor = above
        self.head += extend
        self._logs = {b: logs for b, logs in self._logs.items() if b <= above}

    def issued(self) -> dict[str, int]:
        """member -> points issued, from the chain itself."""
        totals: dict[str, int] = {}
        for block in range(FIRST_BLOCK, self.head + 1):
            for entry in self.logs_of(block):
                if entry["topics"][0] == TRANSFER:
                    member = "0x" + entry["topics"][2][26:]
                    totals[member] = totals.get(member, 0) + int(entry["data"], 16)
        return totals

    # ---------------------------------------------------------------- JSON-RPC

    def _count(self, method: str, n: int = 1) -> None:
        self.requests[method] = self.requests.get(method, 0) + n

    def call(self, method: str, params: Sequence[Any] = ()) -> Any:
        self._count(method)
        if method == "eth_blockNumber":
            return hex(self.head)
        if method == "eth_getLogs":
            query = params[0]
            first, last = int(query["fromBlock"], 16), int(query["toBlock"], 16)
            return [
                entry
                for block in range(max(first, FIRST_BLOCK), min(last, self.head) + 1)
                for entry in self.logs_of(block)
            ]
        if method == "eth_getBlockByNumber":
            return self._header(int(params[0], 16))
        raise AssertionError(f"unexpected call {method}")

    def batch(self, calls: Sequence[tuple[str, Sequence[Any]]], size: int = 250) -> list[Any]:
        self._count("batch")
        results = []
        for method, params in calls:
            assert method in ("eth_getBlockByNumber", "eth_blockNumber"), method
            self._count(method)
            if method == "eth_blockNumber":
                results.append(hex(self.head))
            else:
                results.append(self._header(int(params[0], 16)))
        return results

    def _header(self, block: int) -> dict[str, Any] | None:
        if block > self.head:
            return None
        stamp = 1_700_000_000 + block
        return {"number": hex(block), "hash": self.block_hash(block), "timestamp": hex(stamp)}

    def block_number(self) -> int:
        self._count("eth_blockNumber")
        return self.head
