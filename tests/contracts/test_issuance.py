"""Issuance: ``issueBatch`` mints once per merchant sequence number (the range bitmap)."""

from __future__ import annotations

import pytest
from contract_kit import (
    ZERO_ADDRESS,
    admin,
    events,
    issue,
    member,
    only_event,
    publish,
    ref,
    reverts,
)

from chain.abi import ZERO32
from chain.contracts import pack_item, unpack_item
from chain.errors import ContractRevert

FULL_WORD = 2**256 - 1
MAX_SEQ = 2**64 - 1


def bits(low: int, high: int) -> int:
    """A bitmap word with bits ``low .. high`` (inclusive) set."""
    return ((1 << (high - low + 1)) - 1) << low


# ------------------------------------------------------------------ happy paths


def test_issue_batch_mints_each_amount_to_its_member_and_emits_points_issued(net):
    alice, bob = member(), member()
    receipt = issue(net, 1, 0, [alice.address, bob.address], [10, 20])

    assert net.token.balance_of(alice.address) == 10
    assert net.token.balance_of(bob.address) == 20
    assert net.token.total_supply() == 30
    issued = only_event(net.hub, "PointsIssued", receipt)
    assert issued == {
        "merchantId": 1,
        "ruleVersion": 1,
        "firstSeq": 0,
        "eventRefs": [ref(0), ref(1)],
        "total": 30,
        "kind": 0,
        "inputRoot": ZERO32,
    }
    mints = [dict(log["args"]) for log in events(net.token, "Transfer", receipt)]
    assert mints == [
        {"from": ZERO_ADDRESS, "to": alice.address, "value": 10},
        {"from": ZERO_ADDRESS, "to": bob.address, "value": 20},
    ]
    merchant = net.hub.merchant(1)
    assert (merchant.issued, merchant.minted_in_period, merchant.net) == (30, 30, 30)


def test_issue_batch_marks_exactly_its_sequence_range_used(net):
    issue(net, 1, 7, [member().address] * 3, [1, 1, 1])

    used = [seq for seq in range(12) if net.hub.is_sequence_used(1, seq)]
    assert used == [7, 8, 9]
    assert net.hub.functions.sequenceWord(1, 0).call() == bits(7, 9)


def test_issue_batch_by_the_merchants_own_signer_succeeds(net):
    alice = member()
    receipt = issue(net, 1, 0, [alice.address], [5], sender=net.merchant_signers[1])

    assert net.token.balance_of(alice.address) == 5
    assert only_event(net.hub, "PointsIssued", receipt)["merchantId"] == 1


def test_issue_batch_credits_a_member_named_twice_in_one_batch_twice(net):
    alice = member()
    issue(net, 1, 0, [alice.address, alice.address], [3, 4])

    assert net.token.balance_of(alice.address) == 7


def test_issue_batch_accepts_any_published_rule_version(net):
    publish(net, 1)
    alice = member()

    old = issue(net, 1, 0, [alice.address], [1], rule_version=1)
    new = issue(net, 1, 1, [alice.address], [1], rule_version=2)

    assert only_event(net.hub, "PointsIssued", old)["ruleVersion"] == 1
    assert only_event(net.hub, "PointsIssued", new)["ruleVersion"] == 2


def test_issue_batch_sequences_are_independent_per_merchant(net):
    alice = member()
    issue(net, 1, 42, [alice.address], [1])
    issue(net, 2, 42, [alice.address], [2])

    assert net.token.balance_of(alice.address) == 3
    assert net.hub.merchant(1).issued == 1
    assert net.hub.merchant(2).issued == 2


# ------------------------------------------------------------------ the range bitmap


def test_issue_batch_crossing_a_256_boundary_marks_both_words(net):
    issue(net, 1, 250, [member().address] * 10, [1] * 10)

    assert net.hub.functions.sequenceWord(1, 0).call() == bits(250, 255)
    assert net.hub.functions.sequenceWord(1, 1).call() == bits(0, 3)
    assert net.hub.is_sequence_used(1, 249) is False
    assert all(net.hub.is_sequence_used(1, seq) for seq in range(250, 260))
    assert net.hub.is_sequence_used(1, 260) is False


def test_issue_batch_of_exactly_256_aligned_fills_one_word(net):
    alice = member()
    issue(net, 1, 256, [alice.address] * 256, [1] * 256)

    assert net.hub.functions.sequenceWord(1, 0).call() == 0
    assert net.hub.functions.sequenceWord(1, 1).call() == FULL_WORD
    assert net.hub.functions.sequenceWord(1, 2).call() == 0
    assert net.token.balance_of(alice.address) == 256


def test_issue_batch_spanning_three_words_fills_the_middle_one(net):
    issue(net, 1, 200, [member().address] * 401, [1] * 401)

    assert net.hub.functions.sequenceWord(1, 0).call() == bits(200, 255)
    assert net.hub.functions.sequenceWord(1, 1).call() == FULL_WORD
    assert net.hub.functions.sequenceWord(1, 2).call() == bits(0, 88)


def test_issue_batch_reverts_when_sequence_reused(net):
    alice = member()
    issue(net, 1, 5, [alice.address], [10])

    with reverts("LoyaltyNetworkSequenceUsed", merchantId=1, seq=5):
        issue(net, 1, 5, [alice.address], [10])
    assert net.token.balance_of(alice.address) == 10


def test_issue_batch_reverts_naming_the_first_reused_sequence_of_a_partial_overlap(net):
    alice = member()
    issue(net, 1, 10, [alice.address] * 10, [1] * 10)  # 10 .. 19

    with reverts("LoyaltyNetworkSequenceUsed", merchantId=1, seq=10):
        issue(net, 1, 5, [alice.address] * 10, [1] * 10)  # 5 .. 14
    with reverts("LoyaltyNetworkSequenceUsed", merchantId=1, seq=15):
        issue(net, 1, 15, [alice.address] * 10, [1] * 10)  # 15 .. 24


def test_issue_batch_reverts_naming_the_lowest_of_several_reused_sequences(net):
    alice = member()
    for seq in (300, 252, 3):
        issue(net, 1, seq, [alice.address], [1])

    with reverts("LoyaltyNetworkSequenceUsed", merchantId=1, seq=252):
        issue(net, 1, 240, [alice.address] * 80, [1] * 80)  # 240 .. 319
    with reverts("LoyaltyNetworkSequenceUsed", merchantId=1, seq=3):
        issue(net, 1, 0, [alice.address] * 8, [1] * 8)


def test_issue_batch_reverts_when_reused_sequence_lies_in_a_later_word(net):
    alice = member()
    issue(net, 1, 300, [alice.address], [1])

    with reverts("LoyaltyNetworkSequenceUsed", merchantId=1, seq=300):
        issue(net, 1, 250, [alice.address] * 61, [1] * 61)  # 250 .. 310


def test_issue_batch_that_reverts_marks_no_sequence_and_mints_nothing(net):
    alice = member()
    issue(net, 1, 10, [alice.address], [1])

    with pytest.raises(ContractRevert):
        issue(net, 1, 8, [alice.address] * 4, [50] * 4)  # 8 .. 11, 10 reused

    assert net.hub.functions.sequenceWord(1, 0).call() == bits(10, 10)
    assert net.token.balance_of(alice.address) == 1
    assert net.hub.merchant(1).issued == 1


def test_issue_batch_mined_with_a_reused_sequence_reverts_with_the_decoded_error(net):
    alice = member()
    issue(net, 1, 0, [alice.address], [1])
    fn = net.hub.issue_batch(1, 1, 0, [ref(0)], [alice.address], [1])

    with reverts("LoyaltyNetworkSequenceUsed", merchantId=1, seq=0):
        net.operator.transact(fn, gas=300_000)  # no estimate: the revert is mined
    assert net.token.balance_of(alice.address) == 1


def test_is_sequence_used_handles_the_largest_sequence_number(net):
    issue(net, 1, MAX_SEQ, [member().address], [1])

    assert net.hub.is_sequence_used(1, MAX_SEQ) is True
    assert net.hub.is_sequence_used(1, MAX_SEQ - 1) is False
    assert net.hub.functions.sequenceWord(1, MAX_SEQ >> 8).call() == 1 << 255


def test_issue_batch_reverts_when_its_range_runs_past_the_largest_sequence_number(net):
    with reverts("LoyaltyNetworkSequenceOutOfRange", firstSeq=MAX_SEQ, count=2):
        issue(net, 1, MAX_SEQ, [member().address] * 2, [1, 1])


# ------------------------------------------------------------------ one test per error


def test_issue_batch_reverts_with_zero_amount_for_an_empty_batch(net):
    with reverts("LoyaltyNetworkZeroAmount"):
        issue(net, 1, 0, [], [])


def test_issue_batch_reverts_when_an_item_has_zero_points(net):
    alice, bob = member(), member()

    with reverts("PointsTokenZeroAmount", member=bob.address):
        issue(net, 1, 0, [alice.address, bob.address], [5, 0])


def test_issue_batch_reverts_when_items_and_refs_differ_in_length(net):
    items = [pack_item(member().address, 1)]
    fn = net.hub.functions.issueBatch((1, 1, 0, ZERO32, 0), [ref(0), ref(1)], items)

    with reverts("LoyaltyNetworkLengthMismatch", expected=2, actual=1):
        net.operator.transact(fn)


def test_issue_batch_reverts_when_there_are_more_items_than_refs(net):
    items = [pack_item(member().address, 1)] * 3
    fn = net.hub.functions.issueBatch((1, 1, 0, ZERO32, 0), [ref(0), ref(1)], items)

    with reverts("LoyaltyNetworkLengthMismatch", expected=2, actual=3):
        net.operator.transact(fn)


def test_issue_batch_client_refuses_members_and_amounts_of_different_lengths(net):
    with pytest.raises(ValueError):
        net.hub.issue_batch(1, 1, 0, [ref(0)], [member().address], [1, 1])


def test_issue_batch_client_refuses_an_amount_that_does_not_fit_in_96_bits(net):
    with pytest.raises(ValueError, match="96 bits"):
        net.hub.issue_batch(1, 1, 0, [ref(0)], [member().address], [2**96])


def test_issue_batch_items_pack_the_member_above_the_amount(net):
    alice, bob = member(), member()
    issue(net, 1, 0, [alice.address, bob.address], [7, 2**39])

    assert net.token.balance_of(alice.address) == 7
    assert net.token.balance_of(bob.address) == 2**39
    assert unpack_item(pack_item(bob.address, 2**39)) == (bob.address, 2**39)


@pytest.mark.parametrize("version", [0, 2])
def test_issue_batch_reverts_for_an_unpublished_rule_version(net, version):
    with reverts("LoyaltyNetworkUnknownRuleVersion", merchantId=1, ruleVersion=version):
        issue(net, 1, 0, [member().address], [1], rule_version=version)


def test_issue_batch_reverts_for_an_unknown_merchant(net):
    with reverts("LoyaltyNetworkUnknownMerchant", merchantId=99):
        issue(net, 99, 0, [member().address], [1])


def test_issue_batch_reverts_for_a_suspended_merchant(net):
    net.guardian.transact(net.hub.functions.suspendMerchant(1))

    with reverts("LoyaltyNetworkMerchantNotActive", merchantId=1, status=2):
        issue(net, 1, 0, [member().address], [1])


def test_issue_batch_reverts_for_a_caller_without_issuer_role(net):
    with reverts("LoyaltyNetworkUnauthorizedIssuer", caller=net.outsider.address, merchantId=1):
        issue(net, 1, 0, [member().address], [1], sender=net.outsider)


def test_issue_batch_reverts_when_a_merchant_signer_issues_for_another_merchant(net):
    other = net.merchant_signers[2]

    with reverts("LoyaltyNetworkUnauthorizedIssuer", caller=other.address, merchantId=1):
        issue(net, 1, 0, [member().address], [1], sender=other)


def test_issue_batch_reverts_for_an_outsider_naming_an_unknown_merchant(net):
    with reverts("LoyaltyNetworkUnauthorizedIssuer", caller=net.outsider.address, merchantId=99):
        issue(net, 99, 0, [member().address], [1], sender=net.outsider)


def test_issue_batch_reverts_after_the_signer_was_rotated_away(net):
    old = net.merchant_signers[1]
    admin(net, net.hub.functions.setMerchantSigner(1, net.outsider.address))

    with reverts("LoyaltyNetworkUnauthorizedIssuer", caller=old.address, merchantId=1):
        issue(net, 1, 0, [member().address], [1], sender=old)
    issue(net, 1, 0, [member().address], [1], sender=net.outsider)
