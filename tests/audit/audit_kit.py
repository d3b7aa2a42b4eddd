"""Helpers for the auditor's tests: a deployment with named actors, a ledger that books
what a test does independently of the code under test, and the recorded history.

Imported by this folder's tests and its ``conftest.py`` (which holds the fixtures).
"""

from __future__ import annotations

import copy
import os
import time
from dataclasses import dataclass, field
from typing import Any

from factories import AnvilNode, new_member, refund_ref
from web3 import Web3

from chain import governance, merkle, signing
from chain.contracts import Network
from chain.deploy import Deployment
from chain.devnet import rpc_call
from chain.sender import TransactionSender
from gateway.settings import Settings

CAPS = {1: 10_000, 2: 5_000}
NAMES = {1: "Shop One", 2: "Shop Two"}
START_VALUE = 10_000  # USD 0.01, the deployment default
NEW_VALUE = 20_000  # set through the timelock during the scenario
VALUE_DELAY = 3_600  # the delay that change is scheduled with
PENDING_DELAY = 86_400


def rule_text(merchant_id: int, version: int) -> str:
    """The rule-set text merchant ``merchant_id`` publishes as ``version`` in these tests
    (JSON, canonical: sorted keys, no spaces); its hash is ``keccak(text=...)``."""
    return f'{{"merchant":{merchant_id},"version":{version}}}'


@dataclass
class AuditNet:
    """A deployment on the session anvil with named actors."""

    anvil: AnvilNode
    settings: Settings
    w3: Web3
    deployment: Deployment
    network: Network
    operator: TransactionSender  # ISSUER_ROLE
    guardian: TransactionSender  # GUARDIAN_ROLE
    timelock_admin: TransactionSender  # timelock proposer/executor
    merchant_signers: dict[int, TransactionSender]

    @property
    def url(self) -> str:
        return self.anvil.url

    @property
    def hub(self) -> str:
        return self.network.hub.address

    def senders(self) -> list[TransactionSender]:
        return [
            self.operator,
            self.guardian,
            self.timelock_admin,
            *self.merchant_signers.values(),
        ]

    def reconcile(self) -> None:
        for sender in self.senders():
            sender.reconcile_nonce()

    def admin(self, call: Any) -> None:
        """Apply a rule change through the timelock (minimum delay 0)."""
        governance.apply(self.network.timelock, self.timelock_admin, call)

    def latest(self) -> tuple[int, int]:
        """(block number, timestamp) of the latest block."""
        block = self.w3.eth.get_block("latest")
        return int(block["number"]), int(block["timestamp"])

    def travel(self, seconds: int) -> None:
        rpc_call(self.url, "evm_increaseTime", [seconds])
        rpc_call(self.url, "evm_mine")


# ---------------------------------------------------------------- the ledger


@dataclass(frozen=True)
class Member:
    address: str
    key: str

    @property
    def lower(self) -> str:
        return self.address.lower()


def member() -> Member:
    address, key = new_member()
    return Member(address, key)


@dataclass(frozen=True)
class IssuedItem:
    merchant: int
    seq: int
    member: str  # lower-case
    amount: int
    ref: str
    rule_version: int
    tx_hash: str


@dataclass
class Ledger:
    """What the test did, booked independently of the code under test."""

    value: int = START_VALUE
    issued: dict[int, int] = field(default_factory=lambda: {1: 0, 2: 0})
    redeemed: dict[int, int] = field(default_factory=lambda: {1: 0, 2: 0})
    clawed: dict[int, int] = field(default_factory=lambda: {1: 0, 2: 0})
    issued_value: dict[int, int] = field(default_factory=lambda: {1: 0, 2: 0})
    redeemed_value: dict[int, int] = field(default_factory=lambda: {1: 0, 2: 0})
    clawed_value: dict[int, int] = field(default_factory=lambda: {1: 0, 2: 0})
    balances: dict[str, int] = field(default_factory=dict)
    items: list[IssuedItem] = field(default_factory=list)
    batches: list[tuple[int, int, list[str], list[int]]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def count(self, kind: str, n: int = 1) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + n

    def move(self, who: str, delta: int) -> None:
        self.balances[who] = self.balances.get(who, 0) + delta

    @property
    def supply(self) -> int:
        return sum(self.balances.values())

    def net(self, merchant: int) -> int:
        return self.issued[merchant] - self.redeemed[merchant] - self.clawed[merchant]

    def since(self, earlier: Ledger) -> Ledger:
        """What was booked after ``earlier`` (a copy of this ledger taken then)."""
        later = Ledger(value=self.value)
        for name in (
            "issued",
            "redeemed",
            "clawed",
            "issued_value",
            "redeemed_value",
            "clawed_value",
        ):
            now, then = getattr(self, name), getattr(earlier, name)
            setattr(later, name, {m: now[m] - then[m] for m in now})
        later.items = self.items[len(earlier.items) :]
        return later

    def net_value(self, merchant: int) -> int:
        return (
            self.issued_value[merchant]
            - self.redeemed_value[merchant]
            - self.clawed_value[merchant]
        )


class Actions:
    """Performs member and merchant actions on chain and books them in a ledger."""

    def __init__(self, net: AuditNet, ledger: Ledger) -> None:
        self.net = net
        self.ledger = ledger
        self.hub = net.network.hub

    def issue(
        self,
        merchant: int,
        first_seq: int,
        grants: list[tuple[Member, int]],
        rule_version: int = 1,
        sender: TransactionSender | None = None,
    ) -> str:
        refs = [os.urandom(32) for _ in grants]
        receipt = (sender or self.net.operator).transact(
            self.hub.issue_batch(
                merchant,
                rule_version,
                first_seq,
                refs,
                [m.address for m, _ in grants],
                [a for _, a in grants],
            )
        )
        tx_hash = "0x" + bytes(receipt["transactionHash"]).hex()
        book = self.ledger
        for i, ((who, amount), ref) in enumerate(zip(grants, refs, strict=True)):
            book.items.append(
                IssuedItem(
                    merchant,
                    first_seq + i,
                    who.lower,
                    amount,
                    "0x" + ref.hex(),
                    rule_version,
                    tx_hash,
                )
            )
            book.issued[merchant] += amount
            book.issued_value[merchant] += amount * book.value
            book.move(who.lower, amount)
        book.batches.append(
            (merchant, first_seq, [m.address for m, _ in grants], [a for _, a in grants])
        )
        book.count("points_issued")
        book.count("issuance", len(grants))
        return tx_hash

    def redeem(self, who: Member, merchant: int, amount: int) -> None:
        message = {
            "member": who.address,
            "merchantId": merchant,
            "amount": amount,
            "ref": os.urandom(32),
            "nonce": self.hub.nonce_of(who.address),
            "deadline": int(time.time()) + 10 * 86_400,
        }
        signature = signing.sign(
            who.key, "Redemption", self.net.anvil.chain_id, self.hub.address, message
        )
        self.net.operator.transact(self.hub.redeem(message, signature))
        book = self.ledger
        book.redeemed[merchant] += amount
        book.redeemed_value[merchant] += amount * book.value
        book.move(who.lower, -amount)
        book.count("redemption")
        book.count("token_burn")

    def clawback(
        self, merchant: int, seq: int, original_seq: int, who: Member, amount: int
    ) -> None:
        """Refund event ``seq`` claws back ``amount`` of what event ``original_seq`` gave."""
        self.net.operator.transact(self._clawback_call(merchant, seq, original_seq, who, amount))
        book = self.ledger
        burned = min(amount, book.balances.get(who.lower, 0))
        book.clawed[merchant] += burned
        book.clawed_value[merchant] += burned * book.value
        book.move(who.lower, -burned)
        book.count("clawback")
        book.count("token_burn")

    def _clawback_call(
        self, merchant: int, seq: int, original_seq: int, who: Member, amount: int
    ) -> Any:
        """The hub's ``clawbackBatch`` call of this one refund, proving the original issuance's
        chunk against its batch's Merkle root (built here from what this ledger booked)."""
        for batch_merchant, first, members, amounts in self.ledger.batches:
            if batch_merchant == merchant and 0 <= original_seq - first < len(members):
                proved = merkle.prove(first, members, amounts, original_seq)
                assert proved.member == who.address
                return self.hub.clawback_batch(
                    merchant, [proved.clawback_item(seq, refund_ref(seq), amount)]
                )
        raise AssertionError(f"merchant {merchant} never issued {original_seq} here")

    def relay_transfer(self, sender: Member, recipient: Member, amount: int) -> None:
        message = {
            "from": sender.address,
            "to": recipient.address,
            "amount": amount,
            "nonce": self.hub.nonce_of(sender.address),
            "deadline": int(time.time()) + 10 * 86_400,
        }
        signature = signing.sign(
            sender.key, "TransferRequest", self.net.anvil.chain_id, self.hub.address, message
        )
        self.net.operator.transact(self.hub.transfer_with_signature(message, signature))
        self.ledger.move(sender.lower, -amount)
        self.ledger.move(recipient.lower, amount)
        self.ledger.count("relayed_transfer")
        self.ledger.count("token_transfer")


# ---------------------------------------------------------------- the scenario


@dataclass
class Scenario:
    """The module's history and what the test booked about it."""

    net: AuditNet
    ledger: Ledger
    members: dict[str, Member]
    checkpoint_block: int  # after the first three batches
    checkpoint: Ledger
    value_changed_block: int  # setPointValue executed here ...
    value_changed_time: int  # ... at this time
    after_value_change: Ledger  # only what happened from then on
    value_schedule_time: int
    pending_operation: str
    cancelled_operation: str
    paused_block: int
    unpaused_block: int
    next_seq: dict[int, int]
    start_block: int
    end_block: int


def schedule(net: AuditNet, call: Any, delay: int) -> tuple[str, bytes, bytes, int]:
    """Schedule ``call`` on the timelock with ``delay``: (operation id, data, salt, block)."""
    timelock = net.network.timelock
    data = bytes.fromhex(call._encode_transaction_data()[2:])
    salt = os.urandom(32)
    target = call.address
    receipt = net.timelock_admin.transact(
        timelock.functions.schedule(target, 0, data, b"\x00" * 32, salt, delay)
    )
    op_id = bytes(timelock.functions.hashOperation(target, 0, data, b"\x00" * 32, salt).call())
    return "0x" + op_id.hex(), data, salt, int(receipt["blockNumber"])


def build_scenario(net: AuditNet) -> Scenario:
    """Two merchants, several batches, a cross-merchant redemption, a clawback, a relayed
    transfer, a point-value change through the timelock after its delay, a pending and
    a cancelled operation, a suspension, a new rule set, a pause and an unpause."""
    start_block, _ = net.latest()
    ledger = Ledger()
    act = Actions(net, ledger)
    hub = net.network.hub
    timelock = net.network.timelock
    alice, bob, carol = member(), member(), member()

    act.issue(1, 0, [(alice, 100), (bob, 50), (carol, 25)])
    act.issue(1, 3, [(alice, 10), (bob, 20)], sender=net.merchant_signers[1])
    act.issue(2, 0, [(carol, 300), (alice, 5)])
    checkpoint_block, _ = net.latest()
    checkpoint = copy.deepcopy(ledger)

    act.redeem(alice, 2, 60)  # points merchant 1 issued, spent at merchant 2
    act.clawback(1, 5, 1, bob, 30)  # refund of bob's event seq 1
    act.relay_transfer(carol, bob, 40)

    # A change scheduled and cancelled, then the point value changed after a real delay.
    cancelled, *_ = schedule(net, hub.functions.setPointValue(1), 0)
    net.timelock_admin.transact(timelock.functions.cancel(bytes.fromhex(cancelled[2:])))
    _op, data, salt, block = schedule(net, hub.functions.setPointValue(NEW_VALUE), VALUE_DELAY)
    value_schedule_time = int(net.w3.eth.get_block(block)["timestamp"])
    net.travel(VALUE_DELAY)
    receipt = net.timelock_admin.transact(
        timelock.functions.execute(hub.address, 0, data, b"\x00" * 32, salt)
    )
    value_changed_block = int(receipt["blockNumber"])
    value_changed_time = int(net.w3.eth.get_block(value_changed_block)["timestamp"])
    ledger.value = NEW_VALUE
    at_change = copy.deepcopy(ledger)
    # A change that stays pending: its delay outlasts the test.
    pending, *_ = schedule(net, hub.functions.setMerchantCap(2, 1), PENDING_DELAY)

    act.issue(2, 2, [(bob, 7)])
    act.redeem(bob, 1, 12)
    net.guardian.transact(hub.functions.suspendMerchant(2))
    net.admin(hub.functions.reinstateMerchant(2))
    net.operator.transact(hub.publish_rule_set(1, rule_text(1, 2)))
    act.issue(1, 6, [(carol, 8)], rule_version=2)

    receipt = net.guardian.transact(hub.functions.pause())
    paused_block = int(receipt["blockNumber"])
    receipt = net.guardian.transact(hub.functions.unpause())
    unpaused_block = int(receipt["blockNumber"])
    end_block, _ = net.latest()
    return Scenario(
        net=net,
        ledger=ledger,
        members={"alice": alice, "bob": bob, "carol": carol},
        checkpoint_block=checkpoint_block,
        checkpoint=checkpoint,
        value_changed_block=value_changed_block,
        value_changed_time=value_changed_time,
        after_value_change=ledger.since(at_change),
        value_schedule_time=value_schedule_time,
        pending_operation=pending,
        cancelled_operation=cancelled,
        paused_block=paused_block,
        unpaused_block=unpaused_block,
        next_seq={1: 7, 2: 3},
        start_block=start_block,
        end_block=end_block,
    )
