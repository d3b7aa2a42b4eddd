"""Clawback: a refund event burns (up to) the points an earlier event issued.

Refunds go to the hub in batches (``clawbackBatch``); most tests here send a batch of one.
"""

from __future__ import annotations

from dataclasses import replace

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
from factories import refund_ref

from chain import merkle
from chain.errors import ChainError
from chain.merkle import IssuanceProof, IssuedChunk, find_issuance


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
        proved = find_issuance(net.network, merchant_id, original_seq)
    except ChainError:  # e.g. an unknown merchant: claim merchant 1's issuance instead
        proved = find_issuance(net.network, 1, original_seq)
    assert proved.member == who
    return forged_clawback(net, merchant_id, seq, proved, amount, sender)


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
        "eventRef": refund_ref(1),  # what a gateway recovers refunds from
        "requested": 30,
        "burned": 30,
    }
    assert only_event(net.token, "Transfer", receipt) == {
        "from": alice.address,
        "to": ZERO_ADDRESS,
        "value": 30,
    }


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


def forged_clawback(net, merchant_id, seq, proved, amount, sender=None):
    """Send a clawback claiming ``proved`` (an :class:`IssuanceProof`, genuine or not)."""
    fn = net.hub.clawback_batch(merchant_id, [proved.clawback_item(seq, refund_ref(seq), amount)])
    return (sender or net.operator).transact(fn)


def test_clawback_reverts_when_the_original_sequence_was_never_issued(net, alice):
    never = IssuanceProof(5, IssuedChunk(5, 5, (alice.address,), (100,)), [])
    with reverts("LoyaltyNetworkUnknownIssuance", merchantId=1, originalSeq=5):
        forged_clawback(net, 1, 6, never, 10)


def test_clawback_reverts_when_the_original_sequence_belongs_to_another_merchant(net, alice):
    proved = find_issuance(net.network, 1, 0)
    with reverts("LoyaltyNetworkUnknownIssuance", merchantId=2, originalSeq=0):
        forged_clawback(net, 2, 1, proved, 10)


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
    proved = find_issuance(net.network, 1, 0)  # alice's 100 points from merchant 1
    forged = replace(proved, chunk=replace(proved.chunk, members=(bob.address,), amounts=(500,)))

    with reverts("LoyaltyNetworkUnknownIssuance", merchantId=1, originalSeq=0):
        forged_clawback(net, 1, 1, forged, 500, sender=net.merchant_signers[1])
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
    assert net.hub.clawback_state(1, 0) == (True, 0)


def test_a_partly_burned_clawback_leaves_the_rest_claimable_later(net, alice):
    spent = member()
    issue(net, 1, 1, [spent.address], [100])
    proved = find_issuance(net.network, 1, 1)
    receipt = forged_clawback(net, 1, 2, proved, 60)
    assert net.hub.clawback_state(1, 1) == (False, 60)
    forged_clawback(net, 1, 3, proved, 40)
    assert net.hub.clawback_state(1, 1) == (True, 0)  # completed: the bit, the slot freed
    with reverts(
        "LoyaltyNetworkClawbackExceedsIssued",
        merchantId=1,
        originalSeq=1,
        issued=100,
        requested=101,
    ):
        forged_clawback(net, 1, 4, proved, 1)
    assert receipt["status"] == 1


# ------------------------------------------------------------------ chunked batch commitments
#
# A batch's root is a Merkle tree over chunks of ISSUE_CHUNK_SIZE items; a clawback hands
# the hub the whole chunk holding the issuance it refunds, plus the chunk's proof.


@pytest.fixture
def big_batch(net):
    """Merchant 1's batch of 20 items (chunks of 8, 8 and 4) at seqs 10..29, item i credits
    member i with 10 + i points; returns the members."""
    members = [member() for _ in range(20)]
    issue(net, 1, 10, [m.address for m in members], [10 + i for i in range(20)])
    return members


def test_the_chunk_size_is_the_hubs(net):
    assert net.hub.functions.ISSUE_CHUNK_SIZE().call() == merkle.CHUNK_SIZE == 8


@pytest.mark.parametrize("size", [1, 2, 7, 8, 9, 16, 17, 33, 100])
def test_the_batch_root_on_chain_is_the_one_the_off_chain_mirror_computes(net, size):
    members = [member().address for _ in range(size)]
    amounts = [1 + i for i in range(size)]
    issue(net, 1, 40, members, amounts)

    assert net.hub.functions.batchRoot(1, 40).call() == merkle.root(40, members, amounts)


@pytest.mark.parametrize("seq", [10, 17, 18, 25, 26, 29])
def test_any_item_of_a_multi_chunk_batch_can_be_clawed_back(net, big_batch, seq):
    who = big_batch[seq - 10]
    proved = find_issuance(net.network, 1, seq)
    assert (proved.member, proved.amount) == (who.address, seq)
    assert len(proved.chunk.members) == (4 if seq >= 26 else 8)

    receipt = forged_clawback(net, 1, 30, proved, 3)

    assert net.token.balance_of(who.address) == seq - 3
    clawed = only_event(net.hub, "PointsClawedBack", receipt)
    assert (clawed["member"], clawed["originalSeq"], clawed["burned"]) == (who.address, seq, 3)
    assert net.hub.clawback_state(1, seq) == (False, 3)


def test_clawback_reverts_when_another_amount_of_the_chunk_was_tampered_with(net, big_batch):
    proved = find_issuance(net.network, 1, 12)
    amounts = list(proved.chunk.amounts)
    amounts[5] += 1  # not even the claimed item
    forged = replace(proved, chunk=replace(proved.chunk, amounts=tuple(amounts)))

    with reverts("LoyaltyNetworkUnknownIssuance", merchantId=1, originalSeq=12):
        forged_clawback(net, 1, 30, forged, 1)


def test_clawback_reverts_when_the_claimed_items_amount_was_raised(net, big_batch):
    proved = find_issuance(net.network, 1, 12)
    amounts = list(proved.chunk.amounts)
    amounts[2] = 10**6
    forged = replace(proved, chunk=replace(proved.chunk, amounts=tuple(amounts)))

    with reverts("LoyaltyNetworkUnknownIssuance", merchantId=1, originalSeq=12):
        forged_clawback(net, 1, 30, forged, 10**6)
    assert net.token.balance_of(big_batch[2].address) == 12


def test_clawback_reverts_when_the_chunk_names_another_member(net, big_batch):
    victim = member()
    issue(net, 2, 0, [victim.address], [500])
    proved = find_issuance(net.network, 1, 12)
    members = list(proved.chunk.members)
    members[2] = victim.address
    forged = replace(proved, chunk=replace(proved.chunk, members=tuple(members)))

    with reverts("LoyaltyNetworkUnknownIssuance", merchantId=1, originalSeq=12):
        forged_clawback(net, 1, 30, forged, 12)
    assert net.token.balance_of(victim.address) == 500


def test_clawback_reverts_when_the_chunk_is_cut_short(net, big_batch):
    proved = find_issuance(net.network, 1, 12)
    chunk = proved.chunk
    forged = replace(
        proved, chunk=replace(chunk, members=chunk.members[:3], amounts=chunk.amounts[:3])
    )

    with reverts("LoyaltyNetworkUnknownIssuance", merchantId=1, originalSeq=12):
        forged_clawback(net, 1, 30, forged, 1)


def test_clawback_reverts_for_an_empty_chunk(net, big_batch):
    proved = find_issuance(net.network, 1, 12)
    forged = replace(proved, chunk=replace(proved.chunk, members=(), amounts=()))

    with reverts("LoyaltyNetworkUnknownIssuance", merchantId=1, originalSeq=12):
        forged_clawback(net, 1, 30, forged, 1)


@pytest.mark.parametrize("claimed", [9, 18, 29])
def test_clawback_reverts_when_the_chunk_does_not_hold_the_claimed_sequence(
    net, big_batch, claimed
):
    genuine = find_issuance(net.network, 1, 12)  # the chunk of seqs 10..17, with its valid proof
    forged = replace(genuine, seq=claimed)

    with reverts("LoyaltyNetworkUnknownIssuance", merchantId=1, originalSeq=claimed):
        forged_clawback(net, 1, 30, forged, 1)


def test_clawback_reverts_when_a_chunk_is_moved_to_another_position(net, big_batch):
    # The first chunk's items claimed at the second chunk's sequence numbers.
    genuine = find_issuance(net.network, 1, 12)
    forged = IssuanceProof(20, replace(genuine.chunk, first_seq=18), genuine.proof)

    with reverts("LoyaltyNetworkUnknownIssuance", merchantId=1, originalSeq=20):
        forged_clawback(net, 1, 30, forged, 1)


def test_clawback_reverts_with_the_proof_of_another_chunk(net, big_batch):
    proved = find_issuance(net.network, 1, 12)
    other = find_issuance(net.network, 1, 27)
    forged = replace(proved, proof=other.proof)

    with reverts("LoyaltyNetworkUnknownIssuance", merchantId=1, originalSeq=12):
        forged_clawback(net, 1, 30, forged, 1)


def test_clawback_reverts_for_an_item_of_another_batch_proved_against_this_one(net, big_batch):
    bob = member()
    issue(net, 1, 30, [bob.address] * 3, [100, 200, 300])  # another batch at 30..32
    proved = find_issuance(net.network, 1, 12)
    forged = replace(proved, chunk=replace(proved.chunk, batch_first_seq=30))

    with reverts("LoyaltyNetworkUnknownIssuance", merchantId=1, originalSeq=12):
        forged_clawback(net, 1, 33, forged, 1)


def test_clawback_reverts_for_a_chunk_proved_against_another_merchants_batch(net):
    # Same seqs and member at merchant 2, other amounts: merchant 1's chunk and proof do not
    # reach merchant 2's root, nor does merchant 2's chunk with merchant 1's proof.
    alice = member()
    issue(net, 1, 0, [alice.address] * 9, [5] * 9)
    issue(net, 2, 0, [alice.address] * 9, [6] * 9)
    proved = find_issuance(net.network, 1, 8)
    mixed = replace(proved, chunk=replace(proved.chunk, amounts=(6,)))

    with reverts("LoyaltyNetworkUnknownIssuance", merchantId=2, originalSeq=8):
        forged_clawback(net, 2, 9, proved, 5)
    with reverts("LoyaltyNetworkUnknownIssuance", merchantId=2, originalSeq=8):
        forged_clawback(net, 2, 9, mixed, 6)
    forged_clawback(net, 2, 9, find_issuance(net.network, 2, 8), 6)


def test_over_clawback_of_one_item_is_bounded_by_what_it_issued(net, big_batch):
    proved = find_issuance(net.network, 1, 15)  # 15 points to member 5
    forged_clawback(net, 1, 30, proved, 10)

    with reverts(
        "LoyaltyNetworkClawbackExceedsIssued",
        merchantId=1,
        originalSeq=15,
        issued=15,
        requested=16,
    ):
        forged_clawback(net, 1, 31, proved, 6)
    forged_clawback(net, 1, 31, proved, 5)
    assert net.hub.clawback_state(1, 15) == (True, 0)
    with reverts(
        "LoyaltyNetworkClawbackExceedsIssued",
        merchantId=1,
        originalSeq=15,
        issued=15,
        requested=16,
    ):
        forged_clawback(net, 1, 32, proved, 1)


def test_clawing_back_one_item_leaves_its_chunk_neighbours_allowance_intact(net, big_batch):
    first = find_issuance(net.network, 1, 10)
    neighbour = find_issuance(net.network, 1, 11)
    assert first.chunk == neighbour.chunk
    forged_clawback(net, 1, 30, first, 10)

    forged_clawback(net, 1, 31, neighbour, 11)

    assert net.hub.clawback_state(1, 10) == (True, 0)
    assert net.hub.clawback_state(1, 11) == (True, 0)
    assert net.token.balance_of(big_batch[1].address) == 0


# ------------------------------------------------------------------ several refunds in one batch


def batch(net, merchant_id, refunds, sender=None):
    """Send one ``clawbackBatch`` of ``refunds``: (refund seq, original seq, amount) each,
    every issuance proved from the chain's logs."""
    items = [
        find_issuance(net.network, merchant_id, original).clawback_item(
            seq, refund_ref(seq), amount
        )
        for seq, original, amount in refunds
    ]
    return (sender or net.operator).transact(net.hub.clawback_batch(merchant_id, items))


def test_clawback_batch_claws_back_every_item_and_emits_one_points_clawed_back_each(net, big_batch):
    carol = member()
    issue(net, 1, 30, [carol.address], [500])  # another batch
    refunds = [(31, 12, 12), (32, 27, 5), (33, 30, 200), (34, 18, 1)]

    receipt = batch(net, 1, refunds)

    clawed = events(net.hub, "PointsClawedBack", receipt)
    assert [
        (c["args"]["seq"], c["args"]["originalSeq"], c["args"]["requested"], c["args"]["burned"])
        for c in clawed
    ] == [(seq, original, amount, amount) for seq, original, amount in refunds]
    assert [c["args"]["member"] for c in clawed] == [
        big_batch[2].address,
        big_batch[17].address,
        carol.address,
        big_batch[8].address,
    ]
    assert net.token.balance_of(big_batch[2].address) == 0
    assert net.token.balance_of(big_batch[17].address) == 22
    assert net.token.balance_of(carol.address) == 300
    assert net.token.balance_of(big_batch[8].address) == 17
    assert net.hub.merchant(1).clawed_back == 12 + 5 + 200 + 1
    assert net.token.total_supply() == sum(10 + i for i in range(20)) + 500 - 218
    assert all(net.hub.is_sequence_used(1, seq) for seq in (31, 32, 33, 34))


def test_clawback_batch_reverts_as_a_whole_when_one_item_was_tampered_with(net, big_batch):
    genuine = [find_issuance(net.network, 1, seq) for seq in (10, 12, 27)]
    amounts = list(genuine[1].chunk.amounts)
    amounts[2] = 10**6
    forged = replace(genuine[1], chunk=replace(genuine[1].chunk, amounts=tuple(amounts)))
    items = [
        genuine[0].clawback_item(30, refund_ref(30), 10),
        forged.clawback_item(31, refund_ref(31), 10**6),
        genuine[2].clawback_item(32, refund_ref(32), 27),
    ]

    with reverts("LoyaltyNetworkUnknownIssuance", merchantId=1, originalSeq=12):
        net.operator.transact(net.hub.clawback_batch(1, items))
    assert [net.token.balance_of(big_batch[i].address) for i in (0, 2, 17)] == [10, 12, 27]
    assert net.hub.merchant(1).clawed_back == 0
    assert not any(net.hub.is_sequence_used(1, seq) for seq in (30, 31, 32))


def test_clawback_batch_items_refunding_one_issuance_count_together_against_what_it_issued(
    net, big_batch
):
    # Issuance 15 gave 15 points: 10 + 6 in one batch is one too many.
    with reverts(
        "LoyaltyNetworkClawbackExceedsIssued",
        merchantId=1,
        originalSeq=15,
        issued=15,
        requested=16,
    ):
        batch(net, 1, [(30, 15, 10), (31, 11, 1), (32, 15, 6)])
    assert net.hub.clawback_state(1, 15) == (False, 0)

    batch(net, 1, [(30, 15, 10), (31, 11, 1), (32, 15, 5)])

    assert net.hub.clawback_state(1, 15) == (True, 0)
    assert net.token.balance_of(big_batch[5].address) == 0


def test_clawback_batch_counts_only_what_was_burned_when_the_member_spent_the_points(net, alice):
    net.operator.transact(net.hub.redeem(*redemption(net, alice, 1, 80)))  # 20 left

    receipt = batch(net, 1, [(1, 0, 50), (2, 0, 50)])

    clawed = events(net.hub, "PointsClawedBack", receipt)
    assert [(c["args"]["requested"], c["args"]["burned"]) for c in clawed] == [(50, 20), (50, 0)]
    assert net.hub.clawback_state(1, 0) == (False, 20)
    assert net.hub.merchant(1).clawed_back == 20


def test_clawback_batch_reverts_when_two_items_use_one_refund_sequence(net, big_batch):
    with reverts("LoyaltyNetworkSequenceUsed", merchantId=1, seq=30):
        batch(net, 1, [(30, 10, 1), (31, 11, 1), (30, 12, 1)])
    assert not net.hub.is_sequence_used(1, 30)


def test_clawback_batch_reverts_when_a_refund_sequence_was_used_before(net, big_batch):
    batch(net, 1, [(30, 10, 1)])

    with reverts("LoyaltyNetworkSequenceUsed", merchantId=1, seq=30):
        batch(net, 1, [(31, 11, 1), (30, 12, 1)])
    with reverts("LoyaltyNetworkSequenceUsed", merchantId=1, seq=10):
        batch(net, 1, [(10, 12, 1)])  # an issuance's sequence number
    assert not net.hub.is_sequence_used(1, 31)
    assert net.hub.clawback_state(1, 12) == (False, 0)


def test_clawback_batch_reverts_when_empty(net, alice):
    with reverts("LoyaltyNetworkZeroAmount"):
        net.operator.transact(net.hub.clawback_batch(1, []))


def test_clawback_batch_reverts_for_a_zero_amount_item(net, big_batch):
    with reverts("LoyaltyNetworkZeroAmount"):
        batch(net, 1, [(30, 10, 1), (31, 11, 0)])


def test_clawback_batch_by_another_merchants_signer_reverts(net, big_batch):
    signer = net.merchant_signers[2]
    with reverts("LoyaltyNetworkUnauthorizedIssuer", caller=signer.address, merchantId=1):
        batch(net, 1, [(30, 10, 1)], sender=signer)
