"""Mint caps: each merchant may issue at most ``capPerPeriod`` points per cap period."""

from __future__ import annotations

from contract_kit import (
    DAY,
    admin,
    align_to_period_start,
    increase_time,
    issue,
    member,
    only_event,
    reverts,
)
from factories import refund_ref

from chain.merkle import find_issuance


def set_cap(net, merchant_id: int, cap: int) -> None:
    admin(net, net.hub.functions.setMerchantCap(merchant_id, cap))


def test_cap_period_defaults_to_one_day(net):
    assert net.hub.functions.capPeriodSeconds().call() == DAY


def test_issue_batch_reverts_when_a_single_batch_exceeds_the_cap(net):
    set_cap(net, 1, 100)

    with reverts("LoyaltyNetworkMintCapExceeded", merchantId=1, cap=100, requested=101):
        issue(net, 1, 0, [member().address] * 2, [50, 51])


def test_issue_batch_reverts_when_the_period_total_would_exceed_the_cap(net):
    set_cap(net, 1, 100)
    align_to_period_start(net)
    alice = member()
    issue(net, 1, 0, [alice.address], [60])

    # `requested` is what the period would total, this batch included.
    with reverts("LoyaltyNetworkMintCapExceeded", merchantId=1, cap=100, requested=110):
        issue(net, 1, 1, [alice.address], [50])
    issue(net, 1, 1, [alice.address], [40])  # exactly the cap
    assert net.hub.merchant(1).minted_in_period == 100


def test_mint_cap_resets_in_the_next_period(net):
    set_cap(net, 1, 100)
    period = align_to_period_start(net)
    alice = member()
    issue(net, 1, 0, [alice.address], [100])
    with reverts("LoyaltyNetworkMintCapExceeded", merchantId=1, cap=100, requested=101):
        issue(net, 1, 1, [alice.address], [1])

    increase_time(net, DAY)
    issue(net, 1, 1, [alice.address], [100])

    merchant = net.hub.merchant(1)
    assert (merchant.period, merchant.minted_in_period, merchant.issued) == (period + 1, 100, 200)


def test_mint_caps_are_counted_per_merchant(net):
    set_cap(net, 1, 10)
    align_to_period_start(net)
    alice = member()
    issue(net, 1, 0, [alice.address], [10])

    issue(net, 2, 0, [alice.address], [1000])
    assert net.hub.merchant(2).minted_in_period == 1000


def test_a_zero_cap_forbids_any_issuance(net):
    set_cap(net, 1, 0)

    with reverts("LoyaltyNetworkMintCapExceeded", merchantId=1, cap=0, requested=1):
        issue(net, 1, 0, [member().address], [1])


def test_raising_the_cap_applies_within_the_current_period(net):
    set_cap(net, 1, 100)
    align_to_period_start(net)
    alice = member()
    issue(net, 1, 0, [alice.address], [100])

    set_cap(net, 1, 150)
    issue(net, 1, 1, [alice.address], [50])
    with reverts("LoyaltyNetworkMintCapExceeded", merchantId=1, cap=150, requested=151):
        issue(net, 1, 2, [alice.address], [1])


def test_clawback_does_not_give_back_cap_room(net):
    set_cap(net, 1, 100)
    align_to_period_start(net)
    alice = member()
    issue(net, 1, 0, [alice.address], [100])
    proved = find_issuance(net.network, 1, 0)
    net.operator.transact(net.hub.clawback_batch(1, [proved.clawback_item(1, refund_ref(1), 50)]))

    with reverts("LoyaltyNetworkMintCapExceeded", merchantId=1, cap=100, requested=101):
        issue(net, 1, 2, [alice.address], [1])


def test_set_cap_period_through_the_timelock_shortens_the_window(net):
    receipt = admin(net, net.hub.functions.setCapPeriod(3600))
    assert only_event(net.hub, "CapPeriodChanged", receipt) == {"secondsPerPeriod": 3600}
    set_cap(net, 1, 100)
    align_to_period_start(net, period=3600)
    alice = member()
    issue(net, 1, 0, [alice.address], [100])

    increase_time(net, 3600)
    issue(net, 1, 1, [alice.address], [100])
    assert net.hub.merchant(1).issued == 200
