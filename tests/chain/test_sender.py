"""The transaction sender's replacements: a fee bump never goes above the configured cap."""

from __future__ import annotations

import pytest
from factories import AnvilNode
from web3 import Web3

from chain.config import anvil_dev_key
from chain.errors import ReplacementOverCap
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
