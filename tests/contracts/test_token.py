"""PointsToken: a 0-decimals ERC-20 with ERC-2612 permit, minted and burned by the hub only."""

from __future__ import annotations

import pytest
from contract_kit import (
    ZERO_ADDRESS,
    assert_error,
    call_revert,
    deadline_from_now,
    issue,
    latest_timestamp,
    member,
    member_sender,
    only_event,
    reverts,
)
from eth_account import Account
from eth_account.messages import encode_typed_data

from chain.contracts import pack_item
from chain.errors import ContractRevert


@pytest.fixture
def alice(net):
    """A member holding 100 points."""
    who = member()
    issue(net, 1, 0, [who.address], [100])
    return who


def permit_signature(net, owner, spender, value, deadline, *, key=None, nonce=None):
    """An ERC-2612 permit signed by ``owner`` (or by ``key``)."""
    token = net.token.functions
    typed = {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "Permit": [
                {"name": "owner", "type": "address"},
                {"name": "spender", "type": "address"},
                {"name": "value", "type": "uint256"},
                {"name": "nonce", "type": "uint256"},
                {"name": "deadline", "type": "uint256"},
            ],
        },
        "primaryType": "Permit",
        "domain": {
            "name": token.name().call(),
            "version": "1",
            "chainId": net.chain_id,
            "verifyingContract": net.token.address,
        },
        "message": {
            "owner": owner.address,
            "spender": spender,
            "value": value,
            "nonce": token.nonces(owner.address).call() if nonce is None else nonce,
            "deadline": deadline,
        },
    }
    signed = Account.sign_message(encode_typed_data(full_message=typed), key or owner.key)
    return signed.v, signed.r.to_bytes(32, "big"), signed.s.to_bytes(32, "big")


def permit(net, owner, spender, value, deadline, v, r, s):
    fn = net.token.functions.permit(owner.address, spender, value, deadline, v, r, s)
    return net.outsider.transact(fn)  # anyone may submit a permit


# ------------------------------------------------------------------ metadata


def test_token_has_zero_decimals_and_its_published_name(net):
    token = net.token.functions
    assert token.decimals().call() == 0
    assert token.name().call() == "Pointsnet Points"
    assert token.symbol().call() == "PTS"
    assert token.hub().call() == net.hub.address


def test_eip712_domain_of_the_token_binds_chain_and_address(net):
    _fields, name, version, chain_id, contract, _salt, _ext = (
        net.token.functions.eip712Domain().call()
    )
    assert (name, version, chain_id, contract) == (
        "Pointsnet Points",
        "1",
        net.chain_id,
        net.token.address,
    )


# ------------------------------------------------------------------ ERC-20


def test_approve_and_transfer_from_move_points_between_members(net, alice):
    spender, bob = member(), member()
    receipt = member_sender(net, alice).transact(net.token.functions.approve(spender.address, 40))
    assert only_event(net.token, "Approval", receipt) == {
        "owner": alice.address,
        "spender": spender.address,
        "value": 40,
    }

    member_sender(net, spender).transact(
        net.token.functions.transferFrom(alice.address, bob.address, 40)
    )
    assert net.token.balance_of(bob.address) == 40
    assert net.token.functions.allowance(alice.address, spender.address).call() == 0


def test_transfer_from_beyond_the_allowance_reverts(net, alice):
    spender = member()
    member_sender(net, alice).transact(net.token.functions.approve(spender.address, 10))

    with reverts("ERC20InsufficientAllowance", spender=spender.address, allowance=10, needed=11):
        member_sender(net, spender).transact(
            net.token.functions.transferFrom(alice.address, spender.address, 11)
        )


# ------------------------------------------------------------------ ERC-2612 permit


def test_permit_sets_an_allowance_from_a_signature_alone(net, alice):
    spender, bob = member(), member()
    deadline = deadline_from_now(net.w3)
    receipt = permit(
        net,
        alice,
        spender.address,
        60,
        deadline,
        *permit_signature(net, alice, spender.address, 60, deadline),
    )

    assert only_event(net.token, "Approval", receipt)["value"] == 60
    assert net.token.functions.allowance(alice.address, spender.address).call() == 60
    assert net.token.functions.nonces(alice.address).call() == 1
    member_sender(net, spender).transact(
        net.token.functions.transferFrom(alice.address, bob.address, 60)
    )
    assert net.token.balance_of(bob.address) == 60


def test_permit_reverts_after_its_deadline(net, alice):
    deadline = latest_timestamp(net.w3) - 1
    signature = permit_signature(net, alice, net.outsider.address, 1, deadline)

    with reverts("ERC2612ExpiredSignature", deadline=deadline):
        permit(net, alice, net.outsider.address, 1, deadline, *signature)


def test_permit_reverts_when_signed_by_someone_else(net, alice):
    mallory = member()
    deadline = deadline_from_now(net.w3)
    signature = permit_signature(net, alice, mallory.address, 1, deadline, key=mallory.key)

    with reverts("ERC2612InvalidSigner", signer=mallory.address, owner=alice.address):
        permit(net, alice, mallory.address, 1, deadline, *signature)


def test_permit_cannot_be_replayed(net, alice):
    deadline = deadline_from_now(net.w3)
    signature = permit_signature(net, alice, net.outsider.address, 5, deadline)
    permit(net, alice, net.outsider.address, 5, deadline, *signature)

    with pytest.raises(ContractRevert) as info:  # the nonce moved on: another signer recovers
        permit(net, alice, net.outsider.address, 5, deadline, *signature)
    recovered = info.value.args_by_name["signer"]
    assert_error(info.value, "ERC2612InvalidSigner", signer=recovered, owner=alice.address)


# ------------------------------------------------------------------ hub-only functions


def _hub_only_calls(net, who: str):
    token = net.token.functions
    return {
        "mintBatch": token.mintBatch([pack_item(who, 1)]),
        "burn": token.burn(who, 1),
        "burnUpTo": token.burnUpTo(who, 1),
        "hubTransfer": token.hubTransfer(who, net.outsider.address, 1),
    }


@pytest.mark.parametrize("function", ["mintBatch", "burn", "burnUpTo", "hubTransfer"])
def test_hub_only_functions_refuse_every_other_caller(net, alice, function):
    fn = _hub_only_calls(net, alice.address)[function]

    with reverts("PointsTokenUnauthorized", caller=net.outsider.address):
        net.outsider.transact(fn)
    with reverts("PointsTokenUnauthorized", caller=net.operator.address):
        net.operator.transact(fn)
    assert net.token.balance_of(alice.address) == 100


def test_mint_batch_from_the_hub_returns_the_total(net):
    items = [pack_item(member().address, 3), pack_item(member().address, 4)]
    fn = net.token.functions.mintBatch(items)
    assert fn.call({"from": net.hub.address}) == 7


def test_mint_batch_reads_the_amount_from_an_items_low_96_bits(net):
    items = [pack_item(member().address, 2**96 - 1), pack_item(member().address, 1)]
    assert net.token.functions.mintBatch(items).call({"from": net.hub.address}) == 2**96


def test_mint_batch_from_the_hub_reverts_for_a_zero_amount(net):
    who = member().address
    error = call_revert(net.token.functions.mintBatch([pack_item(who, 0)]), sender=net.hub.address)

    assert_error(error, "PointsTokenZeroAmount", member=who)


def test_burn_up_to_from_the_hub_burns_at_most_the_balance(net, alice):
    burn_up_to = net.token.functions.burnUpTo
    assert burn_up_to(alice.address, 30).call({"from": net.hub.address}) == 30
    assert burn_up_to(alice.address, 500).call({"from": net.hub.address}) == 100
    assert burn_up_to(member().address, 5).call({"from": net.hub.address}) == 0


def test_burn_from_the_hub_reverts_beyond_the_balance(net, alice):
    error = call_revert(net.token.functions.burn(alice.address, 101), sender=net.hub.address)

    assert_error(error, "ERC20InsufficientBalance", sender=alice.address, balance=100, needed=101)


def test_hub_transfer_ignores_the_transfer_policy(net, alice):
    net.guardian.transact(net.hub.functions.pause())
    fn = net.token.functions.hubTransfer(alice.address, member().address, 10)

    fn.call({"from": net.hub.address})  # does not revert: the hub checked consent itself


def test_issued_points_appear_as_mints_from_the_zero_address(net):
    who = member()
    receipt = issue(net, 1, 0, [who.address], [9])

    assert only_event(net.token, "Transfer", receipt) == {
        "from": ZERO_ADDRESS,
        "to": who.address,
        "value": 9,
    }
