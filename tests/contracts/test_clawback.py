"""Clawback: a refund event burns (up to) the points an earlier event issued."""

from __future__ import annotations

import pytest
from contract_kit import (
    ZERO_ADDRESS,
    admin,
    events,
    issue,
    member,
    only_event,
    redemption,
    reverts,
)

from chain.errors import ChainError
from chain.merkle import IssuedItem, find_issuance


@pytest.fixture
def alice(net):
    """A member holding 100 points from merchant 1's event 0."""
    who = member()
    issue(net, 1, 0, [who.address], [100])
    return who


def clawback(net, merchant_id, seq, original_seq, who, amount, sender=None):
    """Claw back from issuance ``original_seq``, proving it from the chain's logs.

    ``who`` must be the member that issuance credited (the proof binds it)."""
    try:
        item, proof = find_issuance(net.network, merchant_id, original_seq)
    except ChainError:  # e.g. an unknown merchant: claim merchant 1's issuance instead
        item, proof = find_issuance(net.network, 1, original_seq)
    assert item.member == who
    fn = net.hub.clawback(merchant_id, seq, item.as_tuple(), proof, amount)
    return (sender or net.operator).transact(fn)


def test_clawback_burns_the_requested_points_and_emits_points_clawed_back(net, alice):
    receipt = clawback(net, 1, 1, 0, alice.address, 30)

    assert net.token.balance_of(alice.address) == 70
    assert net.token.total_supply() == 70
    assert net.hub.merchant(1).clawed_back == 30
    assert net.hub.merchant(1).net == 70
    assert net.hub.is_sequence_used(1, 1) is True
    assert only_event(net.hub, "PointsClawedBack", receipt) == {
        "merchantId": 1,
        "member": alice.address,
        "seq": 1,
        "originalSeq": 0,
        "requested": 30,
        "burned": 30,
    }
    assert only_event(net.token, "Transfer", receipt) == {
        "from": alice.address,
        "to": ZERO_ADDRESS,
        "value": 30,
    }


def test_clawback_returns_the_points_it_burned(net, alice):
    item, proof = find_issuance(net.network, 1, 0)
    fn = net.hub.clawback(1, 1, item.as_tuple(), proof, 30)
    assert fn.call({"from": net.operator.address}) == 30


def test_clawback_burns_only_what_is_left_when_the_member_spent_the_points(net, alice):
    net.operator.transact(net.hub.redeem(*redemption(net, alice, 2, 80)))
    receipt = clawback(net, 1, 1, 0, alice.address, 100)

    assert net.token.balance_of(alice.address) == 0
    assert net.hub.merchant(1).clawed_back == 20
    clawed = only_event(net.hub, "PointsClawedBack", receipt)
    assert (clawed["requested"], clawed["burned"]) == (100, 20)


def test_clawback_of_an_empty_balance_burns_nothing_but_uses_the_refund_sequence(net, alice):
    net.operator.transact(net.hub.redeem(*redemption(net, alice, 1, 100)))
    receipt = clawback(net, 1, 1, 0, alice.address, 50)

    clawed = only_event(net.hub, "PointsClawedBack", receipt)
    assert (clawed["requested"], clawed["burned"]) == (50, 0)
    assert events(net.token, "Transfer", receipt) == []
    assert net.hub.merchant(1).clawed_back == 0
    assert net.hub.is_sequence_used(1, 1) is True


def test_clawback_by_the_merchants_own_signer_succeeds(net, alice):
    clawback(net, 1, 1, 0, alice.address, 10, sender=net.merchant_signers[1])

    assert net.token.balance_of(alice.address) == 90


def test_clawback_works_after_sunset(net, alice):
    admin(net, net.hub.functions.sunset())

    clawback(net, 1, 1, 0, alice.address, 10)
    assert net.token.balance_of(alice.address) == 90


def test_clawback_still_works_for_a_suspended_merchant(net, alice):
    # Refunds keep flowing while a merchant cannot issue: only existence is required.
    net.guardian.transact(net.hub.functions.suspendMerchant(1))

    clawback(net, 1, 1, 0, alice.address, 10)
    assert net.token.balance_of(alice.address) == 90


def forged_clawback(net, merchant_id, seq, item, proof, amount, sender=None):
    fn = net.hub.clawback(merchant_id, seq, item.as_tuple(), proof, amount)
    return (sender or net.operator).transact(fn)


def test_clawback_reverts_when_the_original_sequence_was_never_issued(net, alice):
    never = IssuedItem(batch_first_seq=5, seq=5, member=alice.address, amount=100)
    with reverts("LoyaltyNetworkUnknownIssuance", merchantId=1, originalSeq=5):
        forged_clawback(net, 1, 6, never, [], 10)


def test_clawback_reverts_when_the_original_sequence_belongs_to_another_merchant(net, alice):
    item, proof = find_issuance(net.network, 1, 0)
    with reverts("LoyaltyNetworkUnknownIssuance", merchantId=2, originalSeq=0):
        forged_clawback(net, 2, 1, item, proof, 10)


def test_clawback_reverts_when_the_refund_sequence_was_used(net, alice):
    clawback(net, 1, 1, 0, alice.address, 10)

    with reverts("LoyaltyNetworkSequenceUsed", merchantId=1, seq=1):
        clawback(net, 1, 1, 0, alice.address, 10)
    with reverts("LoyaltyNetworkSequenceUsed", merchantId=1, seq=0):
        clawback(net, 1, 0, 0, alice.address, 10)
    assert net.token.balance_of(alice.address) == 90


def test_a_refund_sequence_cannot_be_reused_for_issuance(net, alice):
    clawback(net, 1, 1, 0, alice.address, 10)

    with reverts("LoyaltyNetworkSequenceUsed", merchantId=1, seq=1):
        issue(net, 1, 1, [alice.address], [10])


def test_clawback_reverts_for_zero_points(net, alice):
    with reverts("LoyaltyNetworkZeroAmount"):
        clawback(net, 1, 1, 0, alice.address, 0)


def test_clawback_reverts_for_an_unknown_merchant(net, alice):
    with reverts("LoyaltyNetworkUnknownMerchant", merchantId=99):
        clawback(net, 99, 1, 0, alice.address, 10)


def test_clawback_reverts_for_a_caller_who_is_not_an_issuer(net, alice):
    with reverts("LoyaltyNetworkUnauthorizedIssuer", caller=net.outsider.address, merchantId=1):
        clawback(net, 1, 1, 0, alice.address, 10, sender=net.outsider)


def test_clawback_reverts_while_paused(net, alice):
    net.guardian.transact(net.hub.functions.pause())

    with reverts("EnforcedPause"):
        clawback(net, 1, 1, 0, alice.address, 10)


def test_clawback_reverts_for_a_member_the_original_event_did_not_credit(net, alice):
    bob = member()
    issue(net, 2, 0, [bob.address], [500])
    item, proof = find_issuance(net.network, 1, 0)  # alice's 100 points from merchant 1
    forged = IssuedItem(item.batch_first_seq, item.seq, bob.address, 500)

    with reverts("LoyaltyNetworkUnknownIssuance", merchantId=1, originalSeq=0):
        forged_clawback(net, 1, 1, forged, proof, 500, sender=net.merchant_signers[1])
    assert net.token.balance_of(bob.address) == 500


def test_clawback_reverts_when_refunds_exceed_what_the_original_event_issued(net, alice):
    issue(net, 1, 1, [alice.address], [400])  # alice now holds 500
    clawback(net, 1, 2, 0, alice.address, 100)

    with reverts(
        "LoyaltyNetworkClawbackExceedsIssued",
        merchantId=1,
        originalSeq=0,
        issued=100,
        requested=200,
    ):
        clawback(net, 1, 3, 0, alice.address, 100)
    assert net.hub.functions.clawedBackOf(1, 0).call() == 100


def test_a_partly_burned_clawback_leaves_the_rest_claimable_later(net, alice):
    spent = member()
    issue(net, 1, 1, [spent.address], [100])
    item, proof = find_issuance(net.network, 1, 1)
    receipt = forged_clawback(net, 1, 2, item, proof, 60)
    assert net.hub.functions.clawedBackOf(1, 1).call() == 60
    forged_clawback(net, 1, 3, item, proof, 40)
    with reverts(
        "LoyaltyNetworkClawbackExceedsIssued",
        merchantId=1,
        originalSeq=1,
        issued=100,
        requested=101,
    ):
        forged_clawback(net, 1, 4, item, proof, 1)
    assert receipt["status"] == 1
