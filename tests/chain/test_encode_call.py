"""``encode_call`` writes the same calldata as web3 for every batch call the worker sends."""

from __future__ import annotations

import os

from eth_utils import keccak
from factories import refund_ref
from hypothesis import given, settings
from hypothesis import strategies as st
from web3 import Web3
from web3.contract.contract import ContractFunction

from chain import merkle
from chain.contracts import LoyaltyNetworkClient, encode_call

HUB = LoyaltyNetworkClient(Web3(), "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed")
members = st.lists(st.binary(min_size=20, max_size=20).map(lambda b: Web3.to_checksum_address(b)),
                   min_size=1, max_size=40)  # fmt: skip


def same(call: ContractFunction) -> None:
    assert encode_call(call) == bytes.fromhex(call._encode_transaction_data()[2:])


@settings(max_examples=25, deadline=None)
@given(members, st.integers(0, 2**32 - 1), st.integers(0, 2**64 - 100))
def test_issue_batch(addresses: list[str], merchant: int, first_seq: int) -> None:
    refs = [os.urandom(32) for _ in addresses]
    amounts = [i * 7 + 1 for i in range(len(addresses))]
    same(HUB.issue_batch(merchant, 3, first_seq, refs, addresses, amounts))
    same(
        HUB.issue_batch(
            merchant, 0, first_seq, refs, addresses, amounts, kind=2, input_root=os.urandom(32)
        )
    )


@settings(max_examples=25, deadline=None)
@given(members)
def test_badges_and_tiers(addresses: list[str]) -> None:
    same(HUB.award_badges(2, addresses, [1 + i % 4 for i in range(len(addresses))]))
    same(HUB.set_tiers(addresses, [i % 5 for i in range(len(addresses))]))


@settings(max_examples=25, deadline=None)
@given(members)
def test_clawback_batch(addresses: list[str]) -> None:
    amounts = [100 + i for i in range(len(addresses))]
    tree = merkle.levels(40, addresses, amounts)
    items = [
        merkle.prove(40, addresses, amounts, 40 + index, tree).clawback_item(
            90 + index, refund_ref(90 + index), 5
        )
        for index in range(len(addresses))
    ]
    same(HUB.clawback_batch(7, items))
    same(HUB.clawback_batch(7, items, input_root=os.urandom(32)))


@settings(max_examples=25, deadline=None)
@given(st.text(min_size=1, max_size=2_000))
def test_publish_rule_set(text: str) -> None:
    call = HUB.publish_rule_set(4, text)

    same(call)
    assert call.args[1] == keccak(text.encode()) and call.args[2] == text.encode()
