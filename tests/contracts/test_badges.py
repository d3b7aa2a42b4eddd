"""Badges: ERC-1155 types, at most one per member, soulbound ones never move."""

from __future__ import annotations

import pytest
from contract_kit import (
    ECO_GUARDIAN,
    FIRST_ORDER,
    ISSUER_ROLE,
    ZERO_ADDRESS,
    assert_error,
    call_revert,
    events,
    member,
    member_sender,
    only_event,
    reverts,
)

from chain.artifacts import load_artifact
from chain.decode import decode_logs, receipt_logs
from chain.records import BadgeAward, BadgeMovement

ERC165 = bytes.fromhex("01ffc9a7")
ERC1155 = bytes.fromhex("d9b67a26")
ERC1155_METADATA_URI = bytes.fromhex("0e89341c")
ERC5192 = bytes.fromhex("b45a3c0e")


def award(net, members, badge_ids, merchant_id=1, sender=None):
    fn = net.hub.award_badges(merchant_id, [m.address for m in members], badge_ids)
    return (sender or net.operator).transact(fn)


def safe_transfer(net, holder, to, badge_id, value=1):
    fn = net.badges.functions.safeTransferFrom(holder.address, to, badge_id, value, b"")
    return member_sender(net, holder).transact(fn)


def awarded(net, receipt):
    """``(merchant, member, badge id)`` of each award, as the one log decoder reads them."""
    records = decode_logs(net.network.emitters(), receipt_logs(receipt))
    return [(r.merchant, r.member, r.badge_id) for r in records if isinstance(r, BadgeAward)]


def receiver(net, accepts):
    """A contract member (BadgeReceiverMock) that accepts badges or refuses them."""
    artifact = load_artifact("BadgeReceiverMock")
    factory = net.w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    created = net.operator.sign(
        None, bytes.fromhex(factory.constructor(accepts).data_in_transaction[2:])
    )
    net.operator.broadcast(created)
    address = net.operator.wait(created.hash)["contractAddress"]
    return net.w3.eth.contract(address=address, abi=artifact["abi"])


# ------------------------------------------------------------------ types


def test_define_badge_emits_badge_defined_and_stores_the_type(net):
    receipt = net.operator.transact(
        net.hub.define_badge(7, "7-Day Streak", "ipfs://streak", 50, True)
    )

    assert only_event(net.badges, "Locked", receipt) == {"tokenId": 7}
    assert only_event(net.badges, "BadgeDefined", receipt) == {
        "id": 7,
        "name": "7-Day Streak",
        "uri": "ipfs://streak",
        "maxSupply": 50,
        "soulbound": True,
    }
    badge = net.badges.badge_type(7)
    assert (badge.name, badge.uri, badge.max_supply, badge.minted, badge.soulbound) == (
        "7-Day Streak",
        "ipfs://streak",
        50,
        0,
        True,
    )


def test_a_transferable_badge_type_is_defined_without_locked(net):
    receipt = net.operator.transact(net.hub.define_badge(8, "Swap Me", "ipfs://swap", 5, False))

    assert events(net.badges, "Locked", receipt) == []
    assert net.badges.locked(8) is False


def test_uri_and_locked_describe_each_badge_type(net):
    assert net.badges.functions.uri(FIRST_ORDER).call() == "ipfs://first"
    assert net.badges.functions.uri(ECO_GUARDIAN).call() == "ipfs://eco"
    assert net.badges.locked(FIRST_ORDER) is True
    assert net.badges.locked(ECO_GUARDIAN) is False


@pytest.mark.parametrize("interface_id", [ERC165, ERC1155, ERC1155_METADATA_URI, ERC5192])
def test_supports_interface_includes_erc5192(net, interface_id):
    assert net.badges.functions.supportsInterface(interface_id).call() is True


def test_supports_interface_rejects_unknown_ids(net):
    assert net.badges.functions.supportsInterface(b"\xff\xff\xff\xff").call() is False


def test_badge_collection_is_bound_to_its_hub(net):
    assert net.badges.functions.hub().call() == net.hub.address


# ------------------------------------------------------------------ awards


def test_award_badges_mints_one_badge_and_emits_badges_awarded(net):
    alice = member()
    receipt = award(net, [alice], [FIRST_ORDER])

    assert net.badges.holds(alice.address, FIRST_ORDER) is True
    assert net.badges.badge_type(FIRST_ORDER).minted == 1
    assert only_event(net.hub, "BadgesAwarded", receipt) == {"merchantId": 1, "count": 1}
    assert events(net.badges, "Locked", receipt) == []  # locked once, at definition
    assert awarded(net, receipt) == [(1, alice.address.lower(), FIRST_ORDER)]
    assert only_event(net.badges, "TransferSingle", receipt) == {
        "operator": net.hub.address,
        "from": ZERO_ADDRESS,
        "to": alice.address,
        "id": FIRST_ORDER,
        "value": 1,
    }


def test_award_badges_by_the_merchants_own_signer_succeeds(net):
    alice = member()
    award(net, [alice], [ECO_GUARDIAN], merchant_id=2, sender=net.merchant_signers[2])

    assert net.badges.holds(alice.address, ECO_GUARDIAN) is True


def test_award_badges_gives_a_member_at_most_one_of_each_badge(net):
    alice = member()
    award(net, [alice], [FIRST_ORDER])
    receipt = award(net, [alice, alice], [FIRST_ORDER, FIRST_ORDER])

    assert events(net.hub, "BadgesAwarded", receipt) == []
    assert events(net.badges, "TransferSingle", receipt) == []
    assert net.badges.functions.balanceOf(alice.address, FIRST_ORDER).call() == 1
    assert net.badges.badge_type(FIRST_ORDER).minted == 1


def test_award_badges_handles_several_members_and_badges_in_one_call(net):
    alice, bob = member(), member()
    receipt = award(net, [alice, bob, alice], [FIRST_ORDER, FIRST_ORDER, ECO_GUARDIAN])

    assert only_event(net.hub, "BadgesAwarded", receipt) == {"merchantId": 1, "count": 3}
    assert awarded(net, receipt) == [
        (1, alice.address.lower(), FIRST_ORDER),
        (1, bob.address.lower(), FIRST_ORDER),
        (1, alice.address.lower(), ECO_GUARDIAN),
    ]
    holders = [alice.address, bob.address, alice.address, bob.address]
    balances = net.badges.functions.balanceOfBatch(
        holders, [FIRST_ORDER, FIRST_ORDER, ECO_GUARDIAN, ECO_GUARDIAN]
    ).call()
    assert balances == [1, 1, 1, 0]


def test_one_decoded_award_per_badge_minted_skipping_those_already_held(net):
    alice, bob = member(), member()
    award(net, [alice], [FIRST_ORDER])

    receipt = award(net, [alice, bob], [FIRST_ORDER, FIRST_ORDER], merchant_id=2)

    records = decode_logs(net.network.emitters(), receipt_logs(receipt))
    assert [type(r) for r in records] == [BadgeAward]  # the mint became the award
    assert awarded(net, receipt) == [(2, bob.address.lower(), FIRST_ORDER)]
    mint = only_event(net.badges, "TransferSingle", receipt)
    assert mint["to"] == bob.address
    assert records[0].log_index == events(net.badges, "TransferSingle", receipt)[0]["logIndex"]


def test_badge_types_share_a_members_bitmap_word_without_mixing(net):
    for badge_id in (255, 256):
        net.operator.transact(
            net.hub.define_badge(badge_id, f"B{badge_id}", "ipfs://b", 10, badge_id == 255)
        )
    alice = member()

    award(net, [alice, alice], [255, 256])

    holds = [net.badges.holds(alice.address, b) for b in (FIRST_ORDER, 255, 256, 257)]
    assert holds == [False, True, True, False]


def test_a_contract_member_that_accepts_receives_its_badge_after_it_is_recorded(net):
    wallet = receiver(net, accepts=True)

    receipt = award(net, [wallet, member()], [FIRST_ORDER, FIRST_ORDER])

    assert net.badges.holds(wallet.address, FIRST_ORDER) is True
    assert wallet.functions.received().call() == 1
    assert wallet.functions.balanceSeen().call() == 1  # state written before the hook
    assert only_event(net.hub, "BadgesAwarded", receipt)["count"] == 2


def test_a_contract_member_that_refuses_makes_the_award_revert(net):
    wallet = receiver(net, accepts=False)
    alice = member()

    with reverts("ERC1155InvalidReceiver", receiver=wallet.address):
        award(net, [alice, wallet], [FIRST_ORDER, FIRST_ORDER])
    assert net.badges.holds(alice.address, FIRST_ORDER) is False
    assert net.badges.badge_type(FIRST_ORDER).minted == 0


def test_award_badges_reverts_when_max_supply_is_reached(net):
    award(net, [member(), member()], [ECO_GUARDIAN, ECO_GUARDIAN])

    with reverts("BadgeCollectionMaxSupplyReached", id=ECO_GUARDIAN, maxSupply=2):
        award(net, [member()], [ECO_GUARDIAN])


def test_award_to_a_holder_is_skipped_even_when_supply_is_exhausted(net):
    alice = member()
    award(net, [alice, member()], [ECO_GUARDIAN, ECO_GUARDIAN])

    receipt = award(net, [alice], [ECO_GUARDIAN])
    assert events(net.hub, "BadgesAwarded", receipt) == []


def test_award_badges_reverts_for_an_unknown_badge(net):
    with reverts("BadgeCollectionUnknownBadge", id=99):
        award(net, [member()], [99])


def test_award_badges_reverts_when_lengths_differ(net):
    fn = net.hub.award_badges(1, [member().address, member().address], [FIRST_ORDER])

    with reverts("LoyaltyNetworkLengthMismatch", expected=2, actual=1):
        net.operator.transact(fn)


def test_award_badges_reverts_for_a_caller_who_is_not_an_issuer(net):
    with reverts("LoyaltyNetworkUnauthorizedIssuer", caller=net.outsider.address, merchantId=1):
        award(net, [member()], [FIRST_ORDER], sender=net.outsider)


# ------------------------------------------------------------------ moving badges


def test_a_soulbound_badge_never_moves(net):
    alice, bob = member(), member()
    award(net, [alice], [FIRST_ORDER])

    with reverts("BadgeCollectionSoulbound", id=FIRST_ORDER):
        safe_transfer(net, alice, bob.address, FIRST_ORDER)
    assert net.badges.holds(alice.address, FIRST_ORDER) is True


def test_a_soulbound_badge_does_not_move_through_an_approved_operator_either(net):
    alice, spender = member(), member()
    award(net, [alice], [FIRST_ORDER])
    member_sender(net, alice).transact(
        net.badges.functions.setApprovalForAll(spender.address, True)
    )
    fn = net.badges.functions.safeTransferFrom(alice.address, spender.address, FIRST_ORDER, 1, b"")

    with reverts("BadgeCollectionSoulbound", id=FIRST_ORDER):
        member_sender(net, spender).transact(fn)


def test_a_transferable_badge_moves_to_a_member_without_one(net):
    alice, bob = member(), member()
    award(net, [alice], [ECO_GUARDIAN])

    receipt = safe_transfer(net, alice, bob.address, ECO_GUARDIAN)

    assert net.badges.holds(alice.address, ECO_GUARDIAN) is False
    assert net.badges.holds(bob.address, ECO_GUARDIAN) is True
    assert only_event(net.badges, "TransferSingle", receipt)["to"] == bob.address


def test_a_transferred_badge_is_decoded_as_a_movement_not_an_award(net):
    alice, bob = member(), member()
    award(net, [alice], [ECO_GUARDIAN])

    receipt = safe_transfer(net, alice, bob.address, ECO_GUARDIAN)

    records = decode_logs(net.network.emitters(), receipt_logs(receipt))
    moves = [(r.sender, r.recipient, r.badge_id) for r in records if isinstance(r, BadgeMovement)]
    assert moves == [(alice.address.lower(), bob.address.lower(), ECO_GUARDIAN)]
    assert awarded(net, receipt) == []


def test_a_zero_value_transfer_moves_nothing(net):
    alice, bob = member(), member()
    award(net, [alice], [ECO_GUARDIAN])

    safe_transfer(net, alice, bob.address, ECO_GUARDIAN, value=0)

    assert net.badges.holds(alice.address, ECO_GUARDIAN) is True
    assert net.badges.holds(bob.address, ECO_GUARDIAN) is False


@pytest.mark.parametrize("value", [2, 1])
def test_a_transfer_of_more_than_the_member_holds_reverts(net, value):
    alice, bob = member(), member()
    if value == 2:
        award(net, [alice], [ECO_GUARDIAN])

    with reverts(
        "ERC1155InsufficientBalance",
        sender=alice.address,
        balance=value - 1,
        needed=value,
        tokenId=ECO_GUARDIAN,
    ):
        safe_transfer(net, alice, bob.address, ECO_GUARDIAN, value=value)


def test_a_transferable_badge_cannot_go_to_someone_already_holding_it(net):
    alice, bob = member(), member()
    award(net, [alice, bob], [ECO_GUARDIAN, ECO_GUARDIAN])

    with reverts("BadgeCollectionAlreadyHeld", member=bob.address, id=ECO_GUARDIAN):
        safe_transfer(net, alice, bob.address, ECO_GUARDIAN)


def test_a_batch_transfer_of_transferable_badges_moves_them(net):
    net.operator.transact(net.hub.define_badge(3, "Top Referrer", "ipfs://top", 10, False))
    alice, bob = member(), member()
    award(net, [alice, alice], [ECO_GUARDIAN, 3])
    fn = net.badges.functions.safeBatchTransferFrom(
        alice.address, bob.address, [ECO_GUARDIAN, 3], [1, 1], b""
    )

    receipt = member_sender(net, alice).transact(fn)

    assert only_event(net.badges, "TransferBatch", receipt)["ids"] == [ECO_GUARDIAN, 3]
    assert net.badges.holds(bob.address, ECO_GUARDIAN) and net.badges.holds(bob.address, 3)


def test_a_batch_transfer_of_a_soulbound_badge_reverts(net):
    alice, bob = member(), member()
    award(net, [alice, alice], [FIRST_ORDER, ECO_GUARDIAN])
    fn = net.badges.functions.safeBatchTransferFrom(
        alice.address, bob.address, [ECO_GUARDIAN, FIRST_ORDER], [1, 1], b""
    )

    with reverts("BadgeCollectionSoulbound", id=FIRST_ORDER):
        member_sender(net, alice).transact(fn)
    assert net.badges.holds(alice.address, ECO_GUARDIAN) is True


# ------------------------------------------------------------------ errors of the collection


def test_define_badge_reverts_for_an_existing_id(net):
    with reverts("BadgeCollectionBadgeExists", id=FIRST_ORDER):
        net.operator.transact(net.hub.define_badge(FIRST_ORDER, "Again", "ipfs://x", 1, False))


def test_define_badge_reverts_for_a_zero_max_supply(net):
    with reverts("BadgeCollectionZeroSupply", id=5):
        net.operator.transact(net.hub.define_badge(5, "Nobody", "ipfs://x", 0, False))


def test_define_badge_through_the_hub_needs_the_issuer_role(net):
    signer = net.merchant_signers[1]

    with reverts(
        "AccessControlUnauthorizedAccount", account=signer.address, neededRole=ISSUER_ROLE
    ):
        signer.transact(net.hub.define_badge(5, "Mine", "ipfs://x", 1, False))


@pytest.mark.parametrize("function", ["defineBadge", "awardBatch"])
def test_badge_collection_refuses_callers_other_than_the_hub(net, function):
    badges = net.badges.functions
    fn = {
        "defineBadge": badges.defineBadge(5, "Fake", "ipfs://fake", 1, False),
        "awardBatch": badges.awardBatch([net.outsider.address], [ECO_GUARDIAN]),
    }[function]

    with reverts("BadgeCollectionUnauthorized", caller=net.operator.address):
        net.operator.transact(fn)


@pytest.mark.parametrize("view", ["uri", "locked", "badgeType"])
def test_badge_views_revert_for_an_unknown_badge(net, view):
    error = call_revert(getattr(net.badges.functions, view)(99))

    assert_error(error, "BadgeCollectionUnknownBadge", id=99)
