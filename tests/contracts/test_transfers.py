"""Member-to-member transfers: signed and relayed (gasless), or direct ERC-20 calls."""

from __future__ import annotations

import pytest
from contract_kit import (
    ZERO_ADDRESS,
    admin,
    issue,
    latest_timestamp,
    member,
    member_sender,
    only_event,
    redemption,
    reverts,
    transfer_request,
)
from eth_utils import keccak

from chain import signing


@pytest.fixture
def alice(net):
    """A member holding 100 points."""
    who = member()
    issue(net, 1, 0, [who.address], [100])
    return who


def relay(net, message, signature, sender=None):
    """Anyone may relay a signed transfer; the outsider (no role) does by default."""
    return (sender or net.outsider).transact(net.hub.transfer_with_signature(message, signature))


# ------------------------------------------------------------------ signed transfers


def test_transfer_with_signature_relayed_by_anyone_moves_points(net, alice):
    bob = member()
    receipt = relay(net, *transfer_request(net, alice, bob.address, 30))

    assert net.token.balance_of(alice.address) == 70
    assert net.token.balance_of(bob.address) == 30
    assert net.token.total_supply() == 100
    assert net.hub.nonce_of(alice.address) == 1
    assert only_event(net.hub, "PointsTransferred", receipt) == {
        "from": alice.address,
        "to": bob.address,
        "amount": 30,
        "nonce": 0,
    }
    assert only_event(net.token, "Transfer", receipt) == {
        "from": alice.address,
        "to": bob.address,
        "value": 30,
    }


def test_transfer_with_signature_leaves_settlement_accounting_untouched(net, alice):
    relay(net, *transfer_request(net, alice, member().address, 30))

    merchant = net.hub.merchant(1)
    assert (merchant.issued, merchant.redeemed, merchant.clawed_back) == (100, 0, 0)


def test_transferred_points_can_be_redeemed_by_the_recipient(net, alice):
    bob = member()
    relay(net, *transfer_request(net, alice, bob.address, 30))

    net.operator.transact(net.hub.redeem(*redemption(net, bob, 2, 30)))
    assert net.token.balance_of(bob.address) == 0


def test_transfer_typehash_matches_the_signed_struct(net):
    fields = ",".join(f"{f['type']} {f['name']}" for f in signing.TRANSFER_TYPES["TransferRequest"])
    expected = keccak(text=f"TransferRequest({fields})")
    assert net.hub.functions.TRANSFER_TYPEHASH().call() == expected


def test_transfer_with_signature_reverts_when_signed_by_someone_else(net, alice):
    message, signature = transfer_request(net, alice, member().address, 30, signer_key=member().key)

    with reverts("LoyaltyNetworkInvalidSignature", expectedSigner=alice.address):
        relay(net, message, signature)


def test_transfer_with_signature_reverts_when_the_signature_is_replayed(net, alice):
    message, signature = transfer_request(net, alice, member().address, 30)
    relay(net, message, signature)

    with reverts("LoyaltyNetworkInvalidNonce", member=alice.address, expected=1, actual=0):
        relay(net, message, signature)
    assert net.token.balance_of(alice.address) == 70


def test_transfer_with_signature_reverts_after_the_deadline(net, alice):
    deadline = latest_timestamp(net.w3) - 1

    with reverts("LoyaltyNetworkSignatureExpired", deadline=deadline):
        relay(net, *transfer_request(net, alice, member().address, 30, deadline=deadline))


def test_transfer_with_signature_reverts_when_signed_for_another_chain_id(net, alice):
    message, signature = transfer_request(
        net, alice, member().address, 30, chain_id=net.chain_id + 1
    )

    with reverts("LoyaltyNetworkInvalidSignature", expectedSigner=alice.address):
        relay(net, message, signature)


def test_transfer_with_signature_reverts_when_signed_for_another_contract(net, alice):
    message, signature = transfer_request(
        net, alice, member().address, 30, verifying_contract=net.badges.address
    )

    with reverts("LoyaltyNetworkInvalidSignature", expectedSigner=alice.address):
        relay(net, message, signature)


def test_transfer_with_signature_reverts_when_the_recipient_is_swapped(net, alice):
    message, signature = transfer_request(net, alice, member().address, 30)

    with reverts("LoyaltyNetworkInvalidSignature", expectedSigner=alice.address):
        relay(net, {**message, "to": net.outsider.address}, signature)


def test_transfer_with_signature_reverts_for_zero_points(net, alice):
    with reverts("LoyaltyNetworkZeroAmount"):
        relay(net, *transfer_request(net, alice, member().address, 0))


def test_transfer_with_signature_reverts_when_the_sender_holds_too_few_points(net, alice):
    with reverts("ERC20InsufficientBalance", sender=alice.address, balance=100, needed=101):
        relay(net, *transfer_request(net, alice, member().address, 101))


def test_transfer_with_signature_reverts_for_the_zero_address_as_recipient(net, alice):
    with reverts("ERC20InvalidReceiver", receiver=ZERO_ADDRESS):
        relay(net, *transfer_request(net, alice, ZERO_ADDRESS, 10))


def test_transfer_with_signature_reverts_when_transfers_are_disabled(net, alice):
    receipt = admin(net, net.hub.functions.setTransfersAllowed(False))
    assert only_event(net.hub, "TransferPolicyChanged", receipt) == {"allowed": False}

    with reverts("LoyaltyNetworkTransfersDisabled"):
        relay(net, *transfer_request(net, alice, member().address, 10))


def test_transfer_with_signature_reverts_while_paused(net, alice):
    net.guardian.transact(net.hub.functions.pause())

    with reverts("EnforcedPause"):
        relay(net, *transfer_request(net, alice, member().address, 10))


# ------------------------------------------------------------------ direct ERC-20 transfers


def test_direct_erc20_transfer_between_members_is_allowed_by_default(net, alice):
    bob = member()
    receipt = member_sender(net, alice).transact(net.token.transfer(bob.address, 25))

    assert net.token.balance_of(bob.address) == 25
    assert only_event(net.token, "Transfer", receipt) == {
        "from": alice.address,
        "to": bob.address,
        "value": 25,
    }
    assert net.hub.functions.transfersOpen().call() is True


def test_direct_erc20_transfer_reverts_when_transfers_are_disabled(net, alice):
    bob = member()
    admin(net, net.hub.functions.setTransfersAllowed(False))

    assert net.hub.functions.transfersOpen().call() is False
    with reverts("PointsTokenTransfersClosed", **{"from": alice.address, "to": bob.address}):
        member_sender(net, alice).transact(net.token.transfer(bob.address, 25))


def test_direct_erc20_transfer_works_again_once_transfers_are_re_enabled(net, alice):
    bob = member()
    admin(net, net.hub.functions.setTransfersAllowed(False))
    admin(net, net.hub.functions.setTransfersAllowed(True))

    member_sender(net, alice).transact(net.token.transfer(bob.address, 25))
    assert net.token.balance_of(bob.address) == 25


def test_direct_erc20_transfer_reverts_when_the_sender_holds_too_few_points(net, alice):
    bob = member()

    with reverts("ERC20InsufficientBalance", sender=alice.address, balance=100, needed=101):
        member_sender(net, alice).transact(net.token.transfer(bob.address, 101))


def test_transfer_from_with_an_allowance_follows_the_transfer_policy(net, alice):
    spender, bob = member(), member()
    member_sender(net, alice).transact(net.token.functions.approve(spender.address, 50))
    admin(net, net.hub.functions.setTransfersAllowed(False))
    spend = member_sender(net, spender)
    transfer_from = net.token.functions.transferFrom(alice.address, bob.address, 50)

    with reverts("PointsTokenTransfersClosed", **{"from": alice.address, "to": bob.address}):
        spend.transact(transfer_from)
    admin(net, net.hub.functions.setTransfersAllowed(True))
    spend.transact(transfer_from)
    assert net.token.balance_of(bob.address) == 50
