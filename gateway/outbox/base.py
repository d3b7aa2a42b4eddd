"""The outbox worker's state, shared by every layer of :mod:`gateway.outbox`.

Responsibilities:

- what one worker holds between cycles (its chain link, sender, database sessions, the
  hold-backs while the hub is paused, a merchant is at its mint cap or a rule version is
  not in effect yet, the issue batches kept for clawback proofs, the chain recovery) and
  the constants every layer uses;
- a stored ``chain_txs`` row made from a signed transaction, and back.

The worker is one class built in layers, each module one layer on the one below:
``status`` (event statuses) < ``sending`` (broadcasts, nonces) < ``receipts`` <
``replacement`` < ``reverts`` (claiming, holds) < ``packing`` (storing, issue batches) <
``clawbacks`` < ``singles`` (badges, tiers, one-op transactions) < ``worker`` (the loop,
recovery on start).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any

from eth_account.typed_transactions import TypedTransaction
from eth_utils import to_checksum_address
from hexbytes import HexBytes
from sqlalchemy.orm import Session, sessionmaker

from chain.contracts import LoyaltyNetworkClient
from chain.jsonrpc import Head
from chain.sender import SignedTx, TransactionSender
from gateway.chainlink import ChainLink
from gateway.models import ChainTx
from gateway.outbox.recovery import ChainRecovery

log = logging.getLogger("pointsnet.worker")
#: Ops that move points: if one fails, its event fails.
VALUE_KINDS = ("issue", "clawback")
#: Ops whose hub functions refuse while the network is paused: they wait for the unpause.
PAUSABLE_KINDS = ("issue", "clawback", "badge", "redeem", "transfer")
#: Seconds between two attempts at ops held back (network paused, merchant at its cap).
HOLD_RECHECK = 2.0
#: Share of the chain's steady block interval that passes after a new block is first seen
#: before receipts are asked again (a chain without a steady interval is asked each cycle).
HEAD_WAIT_SHARE = 0.8
#: Share of the chain's steady block interval, after a block is first seen, at which
#: batches not full yet go (the pack point): everything sent before the next block is
#: mined goes into it, so a batch that waits for its pack point carries every event that
#: arrived since the last one, and still makes that block.
PACK_SHARE = 0.6
#: The hub's refusal of a rule set published while the previous one is not in effect yet.
RULE_CHANGE_PENDING = "LoyaltyNetworkRuleChangePending"
#: The hub's refusal of an issue batch naming a rule version not in effect yet.
VERSION_NOT_IN_EFFECT = "LoyaltyNetworkRuleVersionNotInEffect"


@dataclass(frozen=True)
class IssuedBatch:
    """A confirmed issue batch as its refunds prove it: first sequence number, members,
    amounts and the Merkle tree's levels (built once for all its refunds)."""

    first_seq: int
    members: list[str]
    amounts: list[int]
    tree: list[list[bytes]]


@dataclass
class CapHold:
    """A merchant that reached its mint cap in cap period ``period``.

    Until that period ends its issuances go one per batch, each minted if it fits
    under the cap and otherwise waiting; none is tried before ``retry_at``
    (``time.monotonic()``).
    """

    period: int
    retry_at: float


@dataclass
class ChainTimeHold:
    """Ops that wait for the chain's clock: a rule set published over a version still in
    its notice (``RuleChangePending``), issuances naming a version not in effect yet
    (``RuleVersionNotInEffect``). Nothing is wrong with them; they go once a block's
    timestamp reaches ``until`` (the pending version's effective time), and the head is
    not read for them before ``retry_at`` (``time.monotonic()``)."""

    until: int
    retry_at: float


class OutboxState:
    """What every layer of the worker reads and writes; one instance owns one key's nonces."""

    def __init__(
        self,
        link: ChainLink,
        sessions: sessionmaker[Session],
        *,
        sender: TransactionSender | None = None,
        defines_badges: bool = True,
    ) -> None:
        """``defines_badges``: whether this worker defines the badge catalogue on chain on
        recovery. With several signer lanes only one does (see :mod:`gateway.runtime.lanes`); the
        others award no badge until the catalogue is on chain."""
        self.link = link
        self.defines_badges = defines_badges
        self._badges_defined = False
        self.sessions = sessions
        self.sender = sender or link.new_sender()
        self.hub: LoyaltyNetworkClient = link.network.hub
        self.settings = link.settings
        self._recovered = False
        self._issued_batches: dict[int, IssuedBatch] = {}
        self._paused_until = 0.0  # time.monotonic() before which pausable ops wait for an unpause
        self._cap_holds: dict[int, CapHold] = {}
        #: merchant -> id of the last clawback op that goes alone (after a batch would revert)
        self._clawbacks_alone: dict[int, int] = {}
        #: rule op id -> its wait for the merchant's pending version to take effect
        self._rule_holds: dict[int, ChainTimeHold] = {}
        #: (merchant, rule version) -> its issuances' wait for that version to take effect
        self._version_holds: dict[tuple[int, int], ChainTimeHold] = {}
        #: Effective times of published rule versions the chain's clock has not reached
        #: yet (a devnet that only mines on demand is nudged past them, see the worker).
        self._effective_due: set[int] = set()
        #: time.monotonic() before which the devnet's clock is not looked at again.
        self._devnet_clock_at = 0.0
        self.chain_recovery: ChainRecovery | None = None
        #: The latest block as this cycle read it (fees and the receipts' depth come from
        #: it); None until the cycle first needs it, so an idle cycle asks the node nothing.
        self._head: Head | None = None
        #: The head at which receipts were last asked for, and the transactions asked at
        #: it: none is asked again before a new block.
        self._receipts_asked_at = -1
        #: The latest block seen (number, chain time), the chain-time gaps between the last
        #: consecutive blocks seen, and the time.monotonic() before which no new block is
        #: expected (receipts are not asked before it).
        self._seen_block, self._seen_time = -1, 0
        self._seen_at = 0.0  # time.monotonic() when the latest block was first seen
        self._block_gaps: list[int] = []
        self._next_block_at = 0.0
        self._receipts_asked: set[int] = set()
        #: The block gas limit, read once from the latest block (bounds the batches).
        self._block_gas_limit: int | None = None
        #: time.monotonic() of the next scan for stuck transactions.
        self._stuck_scan_at = 0.0
        #: Kinds whose next batch is priced by eth_estimateGas: one ran out of gas on chain.
        self._estimate_next: set[str] = set()
        #: Gas the next block still has for this sender's transactions: the block gas limit
        #: less the gas limits of those signed or sent and not mined yet (set each time the
        #: worker packs, lowered by each transaction it stores; None: not known yet).
        self._room: int | None = None
        #: The gas limits of this sender's transactions in flight, as the cycle's probe read
        #: them (None: not read, or changed since).
        self._in_flight: int | None = None
        #: The gas limit of the last transaction of each kind: a badge or tier batch waits
        #: for the next block without being planned when one like it would not fit.
        self._last_gas: dict[str, int] = {}
        #: time.monotonic() before which no issue batch is due: the last plan found its
        #: batch neither full nor due, so none is planned again before its time.
        self._issues_due_at = 0.0
        #: The same for badge and tier batches, by kind.
        self._small_due_at: dict[str, float] = {}

    def _read_head(self) -> Head:
        """Read the latest block (once a cycle: its base fee prices every transaction the
        cycle signs), and note when the next one is due (``_next_block_at``)."""
        head = self._head = self.sender.head()
        if head.number != self._seen_block:
            if head.number == self._seen_block + 1:
                self._block_gaps = [*self._block_gaps[-3:], head.timestamp - self._seen_time]
            self._seen_block, self._seen_time = head.number, head.timestamp
            self._seen_at = time.monotonic()
            # Blocks at a steady interval (the chain's clock, whole seconds): the next one
            # is not out before that interval has passed since this one was first seen.
            steady = min(self._block_gaps) if len(self._block_gaps) == 4 else 0
            self._next_block_at = self._seen_at + HEAD_WAIT_SHARE * steady
        return head

    def _steady_gap(self) -> int:
        """The chain's block interval in seconds when its last four blocks came at that
        same interval (interval mining, a real chain's slots), else 0 (an automining node,
        a chain not watched long enough)."""
        gaps = self._block_gaps
        return gaps[0] if len(gaps) == 4 and gaps[0] > 0 and len(set(gaps)) == 1 else 0

    def _fill_wait(self, age: float) -> float:
        """Seconds a batch not full yet, whose oldest event is ``age`` seconds old, still
        waits for more (0 or less: it is due).

        ``batch_max_wait`` 0 sends every batch at once. On a chain with a steady block
        interval a batch goes at the first pack point (``PACK_SHARE`` of the interval
        after a block is first seen) after its oldest event arrived: one batch per block
        and merchant instead of one per ``batch_max_wait``, and no later block for the
        events (an event arriving after a pack point would miss little: the rest of the
        window is what the transaction needs to reach the node before the block is
        cut). Elsewhere a batch waits ``batch_max_wait`` after its oldest event."""
        max_wait = self.settings.batch_max_wait
        if max_wait <= 0:
            return 0.0
        if not self._steady_gap():
            return max_wait - age
        if self._head is None:
            self._read_head()  # a block first seen since the cycle began moves the pack point
        gap = self._steady_gap()
        if not gap:
            return max_wait - age
        now = time.monotonic()
        pack_at = self._seen_at + PACK_SHARE * gap
        arrived = now - age
        due = pack_at + math.ceil((arrived - pack_at) / gap) * gap
        return due - now

    def _fees(self) -> tuple[int, int]:
        """(maxFeePerGas, maxPriorityFeePerGas) for a transaction signed now, from the
        cycle's head (read when there is none yet)."""
        head = self._head or self._read_head()
        return self.sender.fees_for(head.base_fee)

    def _hold_while_paused(self, kind: str) -> None:
        if time.monotonic() >= self._paused_until:
            log.warning("%s ops held back while the network is paused", kind)
        self._paused_until = time.monotonic() + HOLD_RECHECK

    def _held_while_paused(self, kind: str) -> bool:
        """Whether ops of ``kind`` wait now: the hub was paused when last tried."""
        return kind in PAUSABLE_KINDS and time.monotonic() < self._paused_until

    def _hold_until(self, until: int) -> ChainTimeHold:
        """A new wait for the chain's clock to reach ``until``."""
        self._effective_due.add(until)
        return ChainTimeHold(until, time.monotonic() + HOLD_RECHECK)

    def _still_holding(self, hold: ChainTimeHold | None) -> bool:
        """Whether ``hold`` still applies: checked against the latest block's timestamp at
        most every ``HOLD_RECHECK`` seconds (the cycle's head, read if none yet)."""
        if hold is None:
            return False
        now = time.monotonic()
        if now < hold.retry_at:
            return True
        if (self._head or self._read_head()).timestamp < hold.until:
            hold.retry_at = now + HOLD_RECHECK
            return True
        return False

    def _clawbacks_one_at_a_time(self, merchant_id: int, op_ids: list[int], reason: str) -> None:
        """A batch of the pending clawbacks ``op_ids`` would revert (or did, on chain):
        the merchant's clawbacks up to the last of them go one per batch."""
        self._clawbacks_alone[merchant_id] = max(op_ids)
        log.warning(
            "a clawback batch of merchant %s reverts (%s): its %d clawbacks go one at a time",
            merchant_id, reason, len(op_ids),
        )  # fmt: skip


def chain_tx_values(
    kind: str, merchant_id: int | None, signed: SignedTx, input_root: str | None = None
) -> dict[str, Any]:
    """The columns of a newly signed transaction's ``chain_txs`` row (``input_root``: the
    root over the inputs an issue or clawback batch commits to, 0x-hex)."""
    return {
        "kind": kind,
        "merchant_id": merchant_id,
        "sender": signed.sender,
        "nonce": signed.nonce,
        "tx_hash": signed.hash,
        "raw": signed.raw,
        "max_fee_per_gas": signed.max_fee_per_gas,
        "max_priority_fee_per_gas": signed.max_priority_fee_per_gas,
        "gas": signed.gas,
        "status": "signed",
        "input_root": input_root,
    }


def chain_tx_row(
    kind: str, merchant_id: int | None, signed: SignedTx, input_root: str | None = None
) -> ChainTx:
    return ChainTx(**chain_tx_values(kind, merchant_id, signed, input_root))


def signed_of(tx: ChainTx) -> SignedTx:
    """The stored transaction as the sender's SignedTx (to resend or replace it)."""
    decoded = TypedTransaction.from_bytes(HexBytes(tx.raw)).as_dict()
    return SignedTx(
        raw=bytes(tx.raw),
        hash=tx.tx_hash,
        sender=to_checksum_address(tx.sender),
        nonce=int(tx.nonce),
        to=to_checksum_address(decoded["to"]) if decoded.get("to") else None,
        data=bytes(HexBytes(decoded.get("data", b""))),
        gas=int(tx.gas),
        max_fee_per_gas=int(tx.max_fee_per_gas),
        max_priority_fee_per_gas=int(tx.max_priority_fee_per_gas),
        value=int(decoded.get("value", 0)),
    )
