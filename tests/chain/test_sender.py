"""The transaction sender: replacements never bump fees above the configured cap; send errors
are classified by type and code (by message only where nodes give no code)."""

from __future__ import annotations

import pytest
from factories import AnvilNode
from web3 import Web3

from chain.config import anvil_dev_key
from chain.errors import (
    ReplacementOverCap,
    RpcError,
    RpcTransportError,
    TransactionError,
    TransientTransactionError,
)
from chain.jsonrpc import classify
from chain.sender import GWEI, TransactionSender

BOB = "0x000000000000000000000000000000000000b0b0"


def _sender(anvil: AnvilNode, cap_wei: int) -> TransactionSender:
    w3 = Web3(Web3.HTTPProvider(anvil.url))
    return TransactionSender(
        w3, anvil_dev_key(7), anvil.chain_id, max_fee_cap_wei=cap_wei, priority_fee_wei=GWEI
    )


def test_replacement_raises_fees_by_at_least_ten_percent_under_the_cap(anvil: AnvilNode) -> None:
    sender = _sender(anvil, 1_000 * GWEI)
    tx = sender.sign(BOB, b"", gas=21_000, fees=(10 * GWEI, GWEI))
    newer = sender.replacement(tx)
    assert newer.nonce == tx.nonce and newer.hash != tx.hash
    assert newer.max_fee_per_gas >= tx.max_fee_per_gas * 1.1
    assert newer.max_priority_fee_per_gas >= tx.max_priority_fee_per_gas * 1.1
    assert newer.max_fee_per_gas <= sender.max_fee_cap_wei


def test_replacement_refuses_a_bump_above_the_fee_cap(anvil: AnvilNode) -> None:
    sender = _sender(anvil, 10 * GWEI)
    tx = sender.sign(BOB, b"", gas=21_000, fees=(10 * GWEI, GWEI))
    with pytest.raises(ReplacementOverCap) as caught:
        sender.replacement(tx)
    assert caught.value.tx_hash == tx.hash
    assert caught.value.cap_wei == 10 * GWEI
    assert caught.value.required_wei > 10 * GWEI


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (RpcTransportError("connection refused"), True),
        (RpcError("eth_sendRawTransaction", -32602, "Failed to decode transaction"), False),
        (RpcError("eth_sendRawTransaction", -32005, "limit exceeded"), True),
        # Catch-all codes: the message tells (anvil -32003, geth -32000).
        (RpcError("eth_sendRawTransaction", -32003, "transaction type not supported"), False),
        (RpcError("eth_sendRawTransaction", -32003, "Insufficient funds for gas"), True),
        (RpcError("eth_sendRawTransaction", -32000, "intrinsic gas too low"), False),
        (
            RpcError("eth_sendRawTransaction", -32000, "max fee per gas less than block base fee"),
            True,
        ),
    ],
)
def test_send_errors_are_classified_by_type_and_code_then_message(
    error: Exception, transient: bool
) -> None:
    classified = classify(error)
    assert isinstance(classified, TransientTransactionError) is transient


def test_a_refused_broadcast_says_why_and_a_known_one_is_success(anvil: AnvilNode) -> None:
    sender = _sender(anvil, 1_000 * GWEI)
    tx = sender.sign(BOB, b"", gas=21_000, fees=sender.fees_for(sender.head().base_fee))
    assert sender.broadcast(tx) == tx.hash
    assert sender.broadcast(tx) == tx.hash  # the node has it: success again
    assert sender.receipts([tx.hash, "0x" + "00" * 32])[1] is None
    short = sender.sign(BOB, b"", gas=20_000, fees=(10 * GWEI, GWEI))  # below intrinsic gas
    with pytest.raises(TransactionError) as refused:
        sender.broadcast(short)
    assert not isinstance(refused.value, TransientTransactionError)
    sender.release_nonce(short.nonce)
