"""Redemption: a merchant burns a member's points with the member's EIP-712 consent."""

from __future__ import annotations

import pytest
from contract_kit import (
    ZERO_ADDRESS,
    events,
    issue,
    latest_timestamp,
    member,
    only_event,
    redemption,
    reverts,
    transfer_request,
)
from eth_abi import encode
from eth_utils import keccak

from chain import signing

REWARD = b"\x07" * 32


@pytest.fixture
def alice(net):
    """A member holding 100 points earned at merchant 1."""
    who = member()
    issue(net, 1, 0, [who.address], [100])
    return who


def redeem(net, message, signature, sender=None):
    return (sender or net.operator).transact(net.hub.redeem(message, signature))


# ------------------------------------------------------------------ happy paths


def test_redeem_burns_points_at_another_partner_and_emits_points_redeemed(net, alice):
    message, signature = redemption(net, alice, 2, 40, reward=REWARD)
    receipt = redeem(net, message, signature)

    assert net.token.balance_of(alice.address) == 60
    assert net.token.total_supply() == 60
    assert net.hub.merchant(2).redeemed == 40
    assert net.hub.merchant(1).redeemed == 0
    assert net.hub.nonce_of(alice.address) == 1
    assert only_event(net.hub, "PointsRedeemed", receipt) == {
        "merchantId": 2,
        "member": alice.address,
        "amount": 40,
        "ref": REWARD,
        "nonce": 0,
    }
    assert only_event(net.token, "Transfer", receipt) == {
        "from": alice.address,
        "to": ZERO_ADDRESS,
        "value": 40,
    }


def test_redeem_by_the_merchants_own_signer_succeeds(net, alice):
    message, signature = redemption(net, alice, 1, 10)
    receipt = redeem(net, message, signature, sender=net.merchant_signers[1])

    assert net.token.balance_of(alice.address) == 90
    assert only_event(net.hub, "PointsRedeemed", receipt)["merchantId"] == 1


def test_redeem_of_the_whole_balance_leaves_zero(net, alice):
    redeem(net, *redemption(net, alice, 1, 100))

    assert net.token.balance_of(alice.address) == 0
    assert net.hub.merchant(1).net == 0


def test_redeem_uses_consecutive_nonces(net, alice):
    first = redemption(net, alice, 1, 10, nonce=0)
    second = redemption(net, alice, 1, 10, nonce=1)

    redeem(net, *first)
    receipt = redeem(net, *second)

    assert only_event(net.hub, "PointsRedeemed", receipt)["nonce"] == 1
    assert net.hub.nonce_of(alice.address) == 2


def test_redeem_shares_the_nonce_sequence_with_signed_transfers(net, alice):
    net.outsider.transact(
        net.hub.transfer_with_signature(*transfer_request(net, alice, member().address, 5))
    )

    with reverts("LoyaltyNetworkInvalidNonce", member=alice.address, expected=1, actual=0):
        redeem(net, *redemption(net, alice, 1, 10, nonce=0))
    redeem(net, *redemption(net, alice, 1, 10, nonce=1))


def test_domain_separator_binds_the_chain_id_and_the_hub(net):
    domain_type = (
        "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
    )
    expected = keccak(
        encode(
            ["bytes32", "bytes32", "bytes32", "uint256", "address"],
            [
                keccak(text=domain_type),
                keccak(text=signing.DOMAIN_NAME),
                keccak(text=signing.DOMAIN_VERSION),
                net.chain_id,
                net.hub.address,
            ],
        )
    )
    assert net.hub.functions.domainSeparator().call() == expected


def test_redemption_typehash_matches_the_signed_struct(net):
    fields = ",".join(f"{f['type']} {f['name']}" for f in signing.REDEMPTION_TYPES["Redemption"])
    expected = keccak(text=f"Redemption({fields})")
    assert net.hub.functions.REDEMPTION_TYPEHASH().call() == expected


# ------------------------------------------------------------------ consent refused


def test_redeem_reverts_when_signed_by_someone_else(net, alice):
    message, signature = redemption(net, alice, 1, 10, signer_key=member().key)

    with reverts("LoyaltyNetworkInvalidSignature", expectedSigner=alice.address):
        redeem(net, message, signature)


def test_redeem_reverts_when_the_signature_is_replayed(net, alice):
    message, signature = redemption(net, alice, 1, 10)
    redeem(net, message, signature)

    with reverts("LoyaltyNetworkInvalidNonce", member=alice.address, expected=1, actual=0):
        redeem(net, message, signature)
    assert net.token.balance_of(alice.address) == 90


def test_redeem_reverts_for_a_nonce_from_the_future(net, alice):
    with reverts("LoyaltyNetworkInvalidNonce", member=alice.address, expected=0, actual=1):
        redeem(net, *redemption(net, alice, 1, 10, nonce=1))


def test_redeem_reverts_after_the_deadline(net, alice):
    deadline = latest_timestamp(net.w3) - 1

    with reverts("LoyaltyNetworkSignatureExpired", deadline=deadline):
        redeem(net, *redemption(net, alice, 1, 10, deadline=deadline))


def test_redeem_reverts_when_signed_for_another_chain_id(net, alice):
    message, signature = redemption(net, alice, 1, 10, chain_id=net.chain_id + 1)

    with reverts("LoyaltyNetworkInvalidSignature", expectedSigner=alice.address):
        redeem(net, message, signature)


def test_redeem_reverts_when_signed_for_another_contract(net, alice):
    message, signature = redemption(net, alice, 1, 10, verifying_contract=net.token.address)

    with reverts("LoyaltyNetworkInvalidSignature", expectedSigner=alice.address):
        redeem(net, message, signature)


def test_redeem_reverts_when_the_amount_differs_from_the_signed_one(net, alice):
    message, signature = redemption(net, alice, 1, 10)

    with reverts("LoyaltyNetworkInvalidSignature", expectedSigner=alice.address):
        redeem(net, {**message, "amount": 90}, signature)


def test_redeem_reverts_when_submitted_at_another_merchant_than_signed(net, alice):
    message, signature = redemption(net, alice, 1, 10)

    with reverts("LoyaltyNetworkInvalidSignature", expectedSigner=alice.address):
        redeem(net, {**message, "merchantId": 2}, signature)


def test_redeem_reverts_for_a_transfer_signature(net, alice):
    transfer, signature = transfer_request(net, alice, net.outsider.address, 10)
    message, _ = redemption(net, alice, 1, 10, deadline=transfer["deadline"])

    with reverts("LoyaltyNetworkInvalidSignature", expectedSigner=alice.address):
        redeem(net, message, signature)


# ------------------------------------------------------------------ other errors


def test_redeem_reverts_for_a_caller_who_is_not_an_issuer(net, alice):
    message, signature = redemption(net, alice, 1, 10)

    with reverts("LoyaltyNetworkUnauthorizedIssuer", caller=net.outsider.address, merchantId=1):
        redeem(net, message, signature, sender=net.outsider)


def test_redeem_reverts_when_another_merchants_signer_submits_it(net, alice):
    message, signature = redemption(net, alice, 1, 10)
    other = net.merchant_signers[2]

    with reverts("LoyaltyNetworkUnauthorizedIssuer", caller=other.address, merchantId=1):
        redeem(net, message, signature, sender=other)


def test_redeem_reverts_for_zero_points(net, alice):
    with reverts("LoyaltyNetworkZeroAmount"):
        redeem(net, *redemption(net, alice, 1, 0))


def test_redeem_reverts_for_an_unknown_merchant(net, alice):
    with reverts("LoyaltyNetworkUnknownMerchant", merchantId=99):
        redeem(net, *redemption(net, alice, 99, 10))


def test_redeem_reverts_at_a_suspended_merchant(net, alice):
    net.guardian.transact(net.hub.functions.suspendMerchant(2))

    with reverts("LoyaltyNetworkMerchantNotActive", merchantId=2, status=2):
        redeem(net, *redemption(net, alice, 2, 10))


def test_redeem_reverts_when_the_member_holds_too_few_points(net, alice):
    with reverts("ERC20InsufficientBalance", sender=alice.address, balance=100, needed=101):
        redeem(net, *redemption(net, alice, 1, 101))
    assert net.hub.nonce_of(alice.address) == 0


def test_redeem_reverts_while_paused(net, alice):
    net.guardian.transact(net.hub.functions.pause())

    with reverts("EnforcedPause"):
        redeem(net, *redemption(net, alice, 1, 10))


def test_redeem_emits_exactly_one_burn_and_one_points_redeemed(net, alice):
    receipt = redeem(net, *redemption(net, alice, 1, 10))

    assert len(receipt["logs"]) == 2
    assert len(events(net.token, "Transfer", receipt)) == 1
    assert len(events(net.hub, "PointsRedeemed", receipt)) == 1
