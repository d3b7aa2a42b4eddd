"""Rule changes through the timelock: schedule, wait out the delay, execute.

Every rule parameter of the hub (merchant admission and caps, point value,
transfer policy, cap period, sunset, roles) belongs to the timelock, so an
operator schedules a call, members see it on chain for at least the published
delay, and then anyone allowed executes it.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, replace

from eth_abi import decode as abi_decode
from eth_utils import keccak, to_checksum_address
from hexbytes import HexBytes
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.types import TxReceipt

from chain.abi import RULE_NOTICE_CHANGED, ZERO32, selector
from chain.contracts import Network
from chain.decode import decode_logs
from chain.errors import ContractRevert
from chain.logs import read_logs
from chain.records import OtherEvent, TimelockCall, TimelockCancel
from chain.sender import TransactionSender

__all__ = [
    "ZERO32",
    "PendingCall",
    "ScheduledChange",
    "apply",
    "change_rule_notice",
    "ensure",
    "execute",
    "execute_ready",
    "pending_calls",
    "schedule",
]

#: ``setRuleNotice(uint64)``'s selector, as timelock calls carry it.
SET_RULE_NOTICE = selector("setRuleNotice(uint64)")


@dataclass(frozen=True)
class ScheduledChange:
    """A timelock operation: its id, target call and the earliest execution time."""

    operation_id: bytes
    target: str
    data: bytes
    salt: bytes
    ready_at: int
    schedule_tx: str


def schedule(
    timelock: Contract, sender: TransactionSender, call: ContractFunction, salt: bytes | None = None
) -> ScheduledChange:
    """Schedule ``call`` with the timelock's minimum delay."""
    salt = salt or os.urandom(32)
    data = HexBytes(call._encode_transaction_data())
    delay = int(timelock.functions.getMinDelay().call())
    op_id = bytes(timelock.functions.hashOperation(call.address, 0, data, ZERO32, salt).call())
    receipt = sender.transact(
        timelock.functions.schedule(call.address, 0, data, ZERO32, salt, delay)
    )
    ready_at = int(timelock.functions.getTimestamp(op_id).call())
    return ScheduledChange(
        op_id,
        str(call.address),
        bytes(data),
        salt,
        ready_at,
        "0x" + bytes(receipt["transactionHash"]).hex(),
    )


def execute(timelock: Contract, sender: TransactionSender, change: ScheduledChange) -> TxReceipt:
    """Execute a scheduled change that is ready (reverts with the timelock's error if not)."""
    return sender.transact(
        timelock.functions.execute(change.target, 0, change.data, ZERO32, change.salt)
    )


def apply(
    timelock: Contract, sender: TransactionSender, call: ContractFunction, max_wait: float = 30.0
) -> TxReceipt | ScheduledChange:
    """Schedule ``call`` and, when the delay is at most ``max_wait`` seconds, execute it.

    Returns the execution receipt, or the scheduled change when it must wait longer
    (run ``execute`` once it is ready).
    """
    change = schedule(timelock, sender, call)
    latest = int(sender.w3.eth.get_block("latest")["timestamp"])
    wait = change.ready_at - latest
    if wait > max_wait:
        return change
    if wait > 0:
        time.sleep(wait + 1)
    return execute(timelock, sender, change)


def ensure(
    timelock: Contract,
    sender: TransactionSender,
    call: ContractFunction,
    salt: bytes,
    max_wait: float = 30.0,
) -> tuple[ScheduledChange, bool]:
    """The timelock operation of ``call`` under a fixed ``salt``: scheduled unless it already
    is, and executed once its delay has passed (waiting for it when that is at most
    ``max_wait`` seconds away). Running it again later finds the same operation, so a change
    with a long delay needs no record kept off chain. Returns the operation and whether it
    is done."""
    data = bytes(HexBytes(call._encode_transaction_data()))
    op_id = bytes(timelock.functions.hashOperation(call.address, 0, data, ZERO32, salt).call())
    if timelock.functions.isOperationDone(op_id).call():
        return ScheduledChange(op_id, str(call.address), data, salt, 0, ""), True
    ready_at = int(timelock.functions.getTimestamp(op_id).call())
    if ready_at == 0:  # not scheduled yet
        change = schedule(timelock, sender, call, salt)
    else:
        change = ScheduledChange(op_id, str(call.address), data, salt, ready_at, "")
    now = int(sender.w3.eth.get_block("latest")["timestamp"])
    if change.ready_at - now > max_wait:
        return change, False
    if change.ready_at > now:
        time.sleep(change.ready_at - now + 1)
    execute(timelock, sender, change)
    return change, True


@dataclass(frozen=True)
class PendingCall:
    """A timelock operation scheduled and neither executed nor cancelled: its call (the
    first of a batch, ``calls`` in all), salt (zero when none was logged) and predecessor."""

    operation_id: str
    target: str
    data: bytes
    ready_at: int
    salt: bytes = ZERO32
    predecessor: bytes = ZERO32
    calls: int = 1
    value: int = 0


def pending_calls(network: Network, first_block: int = 0) -> list[PendingCall]:
    """The timelock's operations still waiting, oldest first, rebuilt from its
    ``CallScheduled``, ``CallSalt``, ``CallExecuted`` and ``Cancelled`` logs from
    ``first_block`` (nothing kept off chain)."""
    w3 = network.hub.w3
    records = decode_logs(
        network.emitters(), read_logs(w3, [network.timelock.address], first_block)
    )
    scheduled: dict[str, PendingCall] = {}
    salts: dict[str, bytes] = {}
    finished: set[str] = set()
    for r in records:
        if isinstance(r, TimelockCall) and r.kind == "call_scheduled":
            found = scheduled.get(r.operation_id)
            if found is not None:  # another call of a batch
                scheduled[r.operation_id] = replace(found, calls=found.calls + 1)
                continue
            ready_at = r.time + int(r.delay or 0)
            data = bytes.fromhex(r.data[2:])
            predecessor = bytes.fromhex((r.predecessor or "0x" + "00" * 32)[2:])
            scheduled[r.operation_id] = PendingCall(
                r.operation_id, r.target, data, ready_at, predecessor=predecessor, value=r.value
            )
        elif isinstance(r, TimelockCall | TimelockCancel):
            finished.add(r.operation_id)
        elif isinstance(r, OtherEvent) and r.event == "CallSalt":
            salts[str(r.args["id"])] = bytes.fromhex(str(r.args["salt"])[2:])
    return [
        replace(call, salt=salts.get(op, ZERO32))
        for op, call in scheduled.items()
        if op not in finished
    ]


def execute_ready(
    network: Network, sender: TransactionSender, first_block: int = 0
) -> list[tuple[PendingCall, str]]:
    """Execute every waiting single-call operation whose delay has passed; returns each
    one tried with ``"executed"`` or the reason it was not (a batch, or the timelock's or
    the target's revert)."""
    now = int(sender.w3.eth.get_block("latest")["timestamp"])
    done: list[tuple[PendingCall, str]] = []
    for call in pending_calls(network, first_block):
        if call.ready_at > now:
            continue
        if call.calls > 1:
            done.append((call, f"a batch of {call.calls} calls: execute it with executeBatch"))
            continue
        target = to_checksum_address(call.target)
        execution = network.timelock.functions.execute(
            target, call.value, call.data, call.predecessor, call.salt
        )
        try:
            sender.transact(execution, value=call.value)
        except ContractRevert as revert:
            done.append((call, str(revert)))
            continue
        done.append((call, "executed"))
    return done


def pending_rule_notices(network: Network, first_block: int = 0) -> list[tuple[int, int]]:
    """``(seconds, ready_at)`` of every ``setRuleNotice`` waiting in the timelock."""
    return [
        (int(abi_decode(["uint64"], call.data[4:])[0]), call.ready_at)
        for call in pending_calls(network, first_block)
        if call.data[:4] == SET_RULE_NOTICE and call.target.lower() == network.hub.address.lower()
    ]


def change_rule_notice(
    network: Network,
    sender: TransactionSender,
    seconds: int,
    first_block: int = 0,
    max_wait: float = 30.0,
) -> tuple[ScheduledChange, bool]:
    """Schedule ``setRuleNotice(seconds)`` through the timelock, or execute it once due.

    The salt names the value and how many notice changes the hub has logged so far
    (``RuleNoticeChanged``, its deployment's included), so asking for the same value again
    finds the operation scheduled before and executes it when its delay has passed, and a
    value set, changed and asked for again is a new operation. Returns the operation and
    whether it is done (see :func:`ensure`)."""
    hub = network.hub
    changes = len(read_logs(hub.w3, [hub.address], first_block, topics=[RULE_NOTICE_CHANGED]))
    salt = keccak(
        b"pointsnet:rule-notice:" + seconds.to_bytes(8, "big") + changes.to_bytes(8, "big")
    )
    return ensure(network.timelock, sender, hub.set_rule_notice(seconds), salt, max_wait)
