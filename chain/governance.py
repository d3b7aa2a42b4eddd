"""Rule changes through the timelock: schedule, wait out the delay, execute.

Every rule parameter of the hub (merchant admission and caps, point value,
transfer policy, cap period, sunset, roles) belongs to the timelock, so an
operator schedules a call, members see it on chain for at least the published
delay, and then anyone allowed executes it.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from hexbytes import HexBytes
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.types import TxReceipt

from chain.sender import TransactionSender

ZERO32 = b"\x00" * 32


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
