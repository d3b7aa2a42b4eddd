"""Emergency brakes: the guardian's pause and suspension, and the timelocked sunset."""

from __future__ import annotations

import pytest
from contract_kit import (
    ECO_GUARDIAN,
    admin,
    issue,
    member,
    member_sender,
    only_event,
    publish,
    redemption,
    reverts,
    transfer_request,
)
from factories import refund_ref

from chain.contracts import MerchantStatus
from chain.merkle import find_issuance


@pytest.fixture
def alice(net):
    """A member holding 100 points from merchant 1's event 0."""
    who = member()
    issue(net, 1, 0, [who.address], [100])
    return who


def pause(net):
    return net.guardian.transact(net.hub.functions.pause())


# ------------------------------------------------------------------ pause


def test_guardian_pause_emits_paused_and_closes_transfers(net):
    receipt = pause(net)

    assert only_event(net.hub, "Paused", receipt) == {"account": net.guardian.address}
    assert net.hub.paused() is True
    assert net.hub.functions.transfersOpen().call() is False


def test_pause_blocks_issuance(net):
    pause(net)
    with reverts("EnforcedPause"):
        issue(net, 1, 0, [member().address], [1])


def test_pause_blocks_redemption_clawback_and_signed_transfers(net, alice):
    pause(net)

    with reverts("EnforcedPause"):
        net.operator.transact(net.hub.redeem(*redemption(net, alice, 1, 10)))
    with reverts("EnforcedPause"):
        proved = find_issuance(net.network, 1, 0)
        net.operator.transact(
            net.hub.clawback_batch(1, [proved.clawback_item(1, refund_ref(1), 10)])
        )
    with reverts("EnforcedPause"):
        net.outsider.transact(
            net.hub.transfer_with_signature(*transfer_request(net, alice, member().address, 10))
        )


def test_pause_blocks_badge_awards(net):
    pause(net)
    with reverts("EnforcedPause"):
        net.operator.transact(net.hub.award_badges(1, [member().address], [ECO_GUARDIAN]))


def test_pause_blocks_direct_erc20_transfers_between_members(net, alice):
    bob = member()
    alice_sends = member_sender(net, alice)
    pause(net)

    with reverts("PointsTokenTransfersClosed", **{"from": alice.address, "to": bob.address}):
        alice_sends.transact(net.token.transfer(bob.address, 10))


def test_unpause_restores_every_operation(net, alice):
    bob = member()
    pause(net)
    receipt = net.guardian.transact(net.hub.functions.unpause())

    assert only_event(net.hub, "Unpaused", receipt) == {"account": net.guardian.address}
    assert net.hub.functions.transfersOpen().call() is True
    issue(net, 1, 1, [alice.address], [10])
    net.operator.transact(net.hub.redeem(*redemption(net, alice, 1, 10)))
    proved = find_issuance(net.network, 1, 0)
    net.operator.transact(net.hub.clawback_batch(1, [proved.clawback_item(2, refund_ref(2), 10)]))
    net.outsider.transact(
        net.hub.transfer_with_signature(*transfer_request(net, alice, bob.address, 10))
    )
    member_sender(net, alice).transact(net.token.transfer(bob.address, 10))
    assert net.token.balance_of(alice.address) == 70
    assert net.token.balance_of(bob.address) == 20


def test_pause_reverts_when_already_paused(net):
    pause(net)
    with reverts("EnforcedPause"):
        pause(net)


def test_unpause_reverts_when_not_paused(net):
    with reverts("ExpectedPause"):
        net.guardian.transact(net.hub.functions.unpause())


# ------------------------------------------------------------------ suspension


def test_guardian_suspends_a_merchant_at_once(net):
    receipt = net.guardian.transact(net.hub.functions.suspendMerchant(1))

    assert only_event(net.hub, "MerchantStatusChanged", receipt) == {
        "merchantId": 1,
        "status": MerchantStatus.SUSPENDED,
    }
    assert net.hub.merchant(1).status is MerchantStatus.SUSPENDED


def test_a_suspended_merchant_cannot_issue_award_or_publish_rules(net):
    net.guardian.transact(net.hub.functions.suspendMerchant(1))
    signer = net.merchant_signers[1]

    with reverts("LoyaltyNetworkMerchantNotActive", merchantId=1, status=2):
        issue(net, 1, 0, [member().address], [1], sender=signer)
    with reverts("LoyaltyNetworkMerchantNotActive", merchantId=1, status=2):
        net.operator.transact(net.hub.award_badges(1, [member().address], [ECO_GUARDIAN]))
    with reverts("LoyaltyNetworkMerchantNotActive", merchantId=1, status=2):
        publish(net, 1, sender=signer)


def test_suspending_one_merchant_leaves_the_others_issuing(net):
    net.guardian.transact(net.hub.functions.suspendMerchant(1))

    issue(net, 2, 0, [member().address], [1])
    assert net.hub.merchant(2).issued == 1


def test_suspend_merchant_reverts_for_an_unknown_merchant(net):
    with reverts("LoyaltyNetworkUnknownMerchant", merchantId=99):
        net.guardian.transact(net.hub.functions.suspendMerchant(99))


def test_guardian_cannot_reinstate_without_the_timelock(net):
    net.guardian.transact(net.hub.functions.suspendMerchant(1))

    with reverts(
        "AccessControlUnauthorizedAccount",
        account=net.guardian.address,
        neededRole=b"\x00" * 32,
    ):
        net.guardian.transact(net.hub.functions.reinstateMerchant(1))


def test_reinstate_through_the_timelock_lets_the_merchant_issue_again(net):
    net.guardian.transact(net.hub.functions.suspendMerchant(1))
    receipt = admin(net, net.hub.functions.reinstateMerchant(1))

    assert only_event(net.hub, "MerchantStatusChanged", receipt) == {
        "merchantId": 1,
        "status": MerchantStatus.ACTIVE,
    }
    issue(net, 1, 0, [member().address], [5])
    assert net.hub.merchant(1).issued == 5


# ------------------------------------------------------------------ sunset


def test_sunset_through_the_timelock_emits_sunset_with_its_time(net):
    receipt = admin(net, net.hub.functions.sunset())

    block = net.w3.eth.get_block(receipt["blockNumber"])
    assert only_event(net.hub, "Sunset", receipt) == {"timestamp": block["timestamp"]}
    assert net.hub.functions.sunsetActive().call() is True


def test_sunset_stops_issuance(net):
    admin(net, net.hub.functions.sunset())

    with reverts("LoyaltyNetworkSunset"):
        issue(net, 1, 0, [member().address], [1])


def test_sunset_stops_badge_awards(net):
    admin(net, net.hub.functions.sunset())

    with reverts("LoyaltyNetworkSunset"):
        net.operator.transact(net.hub.award_badges(1, [member().address], [ECO_GUARDIAN]))


def test_after_sunset_points_stay_redeemable_and_transferable(net, alice):
    bob = member()
    admin(net, net.hub.functions.sunset())

    net.operator.transact(net.hub.redeem(*redemption(net, alice, 2, 10)))
    net.outsider.transact(
        net.hub.transfer_with_signature(*transfer_request(net, alice, bob.address, 20))
    )
    member_sender(net, alice).transact(net.token.transfer(bob.address, 30))

    assert net.token.balance_of(alice.address) == 40
    assert net.token.balance_of(bob.address) == 50
    assert net.hub.functions.transfersOpen().call() is True
