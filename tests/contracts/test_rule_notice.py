"""Published rules with notice: a new rule-set version takes effect only after the notice.

A merchant's first version is in effect at once; every later one ``ruleNoticeSeconds``
after its publication (the notice at that time), and none may be published while one
waits. Issuance by the rules may name a version in effect (a superseded one too), never
the pending one. The notice is the timelock's to change. Batches carry a mint kind and a
root of their inputs, which the hub logs.

The session deployment's notice is 0; tests that need one set it through the timelock.
"""

from __future__ import annotations

import random

import pytest
from contract_kit import (
    ADMIN_ROLE,
    RULE_VERSION,
    admin,
    events,
    increase_time,
    issue,
    latest_timestamp,
    member,
    only_event,
    publish,
    ref,
    reverts,
    rpc,
    rule_text,
)
from eth_utils import keccak
from factories import refund_ref

from chain import merkle
from chain.abi import RULE_NOTICE_CHANGED, ZERO32
from chain.contracts import MAX_RULE_SET_BYTES, MintKind
from chain.decode import decode_logs, receipt_logs
from chain.logs import read_logs
from chain.records import ClawbackCommitment, ParameterChange, RuleSetPublication

NOTICE = 600
YEAR = 365 * 24 * 3600
GAS = 1_000_000  # sent without estimating, so the mined block's time decides


def set_notice(net, seconds):
    return admin(net, net.hub.set_rule_notice(seconds))


def block_time(net, receipt) -> int:
    return int(net.w3.eth.get_block(receipt["blockNumber"])["timestamp"])


def issue_at(net, timestamp, merchant_id, first_seq, version):
    """Issue one event in a block mined at ``timestamp`` exactly."""
    rpc(net, "evm_setNextBlockTimestamp", [timestamp])
    fn = net.hub.issue_batch(
        merchant_id, version, first_seq, [ref(first_seq)], [member().address], [1]
    )
    return net.operator.transact(fn, gas=GAS)


def publish_at(net, timestamp, merchant_id=1):
    """Publish merchant ``merchant_id``'s next version in a block mined at ``timestamp``."""
    text = rule_text(merchant_id, net.hub.merchant(merchant_id).rule_version + 1)
    rpc(net, "evm_setNextBlockTimestamp", [timestamp])
    return net.operator.transact(net.hub.publish_rule_set(merchant_id, text), gas=GAS)


@pytest.fixture
def pending(net):
    """Merchant 1 with version 2 published under a notice of NOTICE seconds (not in effect
    yet); returns its effective time."""
    set_notice(net, NOTICE)
    receipt = publish(net, 1)
    effective_at = block_time(net, receipt) + NOTICE
    assert only_event(net.hub, "RuleSetPublished", receipt)["effectiveAt"] == effective_at
    return effective_at


# ------------------------------------------------------------------ when versions take effect


def test_a_merchants_first_version_is_in_effect_at_once_whatever_the_notice(net):
    set_notice(net, NOTICE)
    admin(net, net.hub.functions.addMerchant("Shop Three", member().address, 10**6))

    receipt = publish(net, 3)

    now = block_time(net, receipt)
    assert only_event(net.hub, "RuleSetPublished", receipt)["effectiveAt"] == now
    merchant = net.hub.merchant(3)
    assert (merchant.rule_version, merchant.rule_effective_at) == (1, now)
    issue(net, 3, 0, [member().address], [1])


def test_a_later_version_takes_effect_a_notice_after_its_publication(net, pending):
    merchant = net.hub.merchant(1)

    assert (merchant.rule_version, merchant.rule_effective_at) == (2, pending)
    assert merchant.rule_set_hash == keccak(text=rule_text(1, 2))
    assert merchant.version_in_effect(pending - 1) == 1
    assert merchant.version_in_effect(pending) == 2


def test_issuing_by_the_pending_version_reverts_until_its_effective_time(net, pending):
    with reverts(
        "LoyaltyNetworkRuleVersionNotInEffect", merchantId=1, ruleVersion=2, effectiveAt=pending
    ):
        issue(net, 1, 0, [member().address], [1], rule_version=2)
    with reverts(
        "LoyaltyNetworkRuleVersionNotInEffect", merchantId=1, ruleVersion=2, effectiveAt=pending
    ):
        issue_at(net, pending - 1, 1, 0, 2)

    receipt = issue_at(net, pending, 1, 0, 2)

    assert only_event(net.hub, "PointsIssued", receipt)["ruleVersion"] == 2


def test_a_superseded_version_is_still_accepted_before_and_after_the_change(net, pending):
    before = issue(net, 1, 0, [member().address], [1], rule_version=1)
    increase_time(net, NOTICE)
    after = issue(net, 1, 1, [member().address], [1], rule_version=1)

    assert only_event(net.hub, "PointsIssued", before)["ruleVersion"] == 1
    assert only_event(net.hub, "PointsIssued", after)["ruleVersion"] == 1


def test_an_unpublished_version_is_still_unknown(net, pending):
    with reverts("LoyaltyNetworkUnknownRuleVersion", merchantId=1, ruleVersion=3):
        issue(net, 1, 0, [member().address], [1], rule_version=3)
    with reverts("LoyaltyNetworkUnknownRuleVersion", merchantId=1, ruleVersion=0):
        issue(net, 1, 0, [member().address], [1], rule_version=0)


def test_publishing_over_a_pending_version_reverts_and_goes_once_it_is_in_effect(net, pending):
    with reverts(
        "LoyaltyNetworkRuleChangePending", merchantId=1, pendingVersion=2, effectiveAt=pending
    ):
        publish(net, 1)
    with reverts(
        "LoyaltyNetworkRuleChangePending", merchantId=1, pendingVersion=2, effectiveAt=pending
    ):
        publish(net, 1, sender=net.merchant_signers[1])

    increase_time(net, NOTICE)
    receipt = publish(net, 1)

    assert only_event(net.hub, "RuleSetPublished", receipt)["version"] == 3
    assert net.hub.merchant(1).rule_effective_at == block_time(net, receipt) + NOTICE


def test_another_merchant_is_not_held_by_a_pending_version(net, pending):
    receipt = publish(net, 2)

    assert only_event(net.hub, "RuleSetPublished", receipt)["version"] == 2


# ------------------------------------------------------------------ what is published


def test_the_published_event_carries_the_text_that_hashes_to_its_hash(net):
    text = rule_text(1, 2, earn_rate="1.5", tiers=["Bronze", "Silver"])

    receipt = publish(net, 1, text)

    event = only_event(net.hub, "RuleSetPublished", receipt)
    assert event["ruleSet"] == text.encode()
    assert keccak(event["ruleSet"]) == event["ruleSetHash"] == keccak(text=text)
    [record] = [
        r
        for r in decode_logs(net.network.emitters(), receipt_logs(receipt))
        if isinstance(r, RuleSetPublication)
    ]
    assert (record.merchant, record.rule_version, record.text) == (1, 2, text)
    assert record.rule_set_hash == "0x" + keccak(text=text).hex()
    assert record.effective_at == block_time(net, receipt)


def test_a_text_that_does_not_hash_to_the_given_hash_reverts(net):
    text = rule_text(1, 2).encode()
    claimed = keccak(text=rule_text(1, 3))

    with reverts("LoyaltyNetworkRuleSetHashMismatch", expected=claimed, actual=keccak(text)):
        net.operator.transact(net.hub.functions.publishRuleSet(1, claimed, text))


@pytest.mark.parametrize("size", [0, MAX_RULE_SET_BYTES + 1])
def test_an_empty_or_oversized_rule_set_reverts(net, size):
    text = b"x" * size

    with reverts("LoyaltyNetworkRuleSetSize", size=size, max=MAX_RULE_SET_BYTES):
        net.operator.transact(net.hub.functions.publishRuleSet(1, keccak(text), text))


def test_a_rule_set_of_the_largest_size_is_published(net):
    text = b"{" + b" " * (MAX_RULE_SET_BYTES - 2) + b"}"

    receipt = publish(net, 1, text.decode())

    assert only_event(net.hub, "RuleSetPublished", receipt)["ruleSet"] == text


# ------------------------------------------------------------------ the notice


def _notice_changes(net, first=0):
    logs = read_logs(net.w3, [net.hub.address], first, topics=[RULE_NOTICE_CHANGED])
    return [
        r
        for r in decode_logs(net.network.emitters(), logs)
        if isinstance(r, ParameterChange) and r.kind == "rule_notice_changed"
    ]


def test_the_deployment_logs_its_notice(net):
    [deployed] = _notice_changes(net)

    assert deployed.value == 0 == net.hub.rule_notice_seconds()
    assert deployed.block <= net.deployment.block


def test_the_notice_changes_through_the_timelock_and_is_logged(net):
    receipt = set_notice(net, NOTICE)

    assert net.hub.rule_notice_seconds() == NOTICE
    assert only_event(net.hub, "RuleNoticeChanged", receipt) == {"noticeSeconds": NOTICE}
    assert [c.value for c in _notice_changes(net)] == [0, NOTICE]


@pytest.mark.parametrize("who", ["operator", "guardian", "outsider", "merchant signer"])
def test_nobody_but_the_timelock_sets_the_notice(net, who):
    sender = net.merchant_signers[1] if who == "merchant signer" else getattr(net, who)

    with reverts("AccessControlUnauthorizedAccount", account=sender.address, neededRole=ADMIN_ROLE):
        sender.transact(net.hub.set_rule_notice(0))
    assert net.hub.rule_notice_seconds() == 0


def test_a_notice_longer_than_a_year_reverts(net):
    set_notice(net, YEAR)
    assert net.hub.rule_notice_seconds() == YEAR

    with reverts("LoyaltyNetworkRuleNoticeTooLong", noticeSeconds=YEAR + 1, max=YEAR):
        set_notice(net, YEAR + 1)


def test_changing_the_notice_leaves_a_pending_version_where_it_was(net, pending):
    set_notice(net, 0)

    assert net.hub.merchant(1).rule_effective_at == pending
    with reverts(
        "LoyaltyNetworkRuleVersionNotInEffect", merchantId=1, ruleVersion=2, effectiveAt=pending
    ):
        issue(net, 1, 0, [member().address], [1], rule_version=2)


# ------------------------------------------------------------------ mint kinds and input roots


@pytest.mark.parametrize("kind", [4, 255])
def test_an_unknown_mint_kind_reverts(net, kind):
    with reverts("LoyaltyNetworkUnknownMintKind", kind=kind):
        issue(net, 1, 0, [member().address], [1], rule_version=0, kind=kind)


@pytest.mark.parametrize("kind", [MintKind.ADJUSTMENT, MintKind.PAYOUT, MintKind.PRIZE])
def test_a_kind_other_than_rule_names_no_version(net, kind):
    with reverts("LoyaltyNetworkRuleVersionNotExpected", kind=kind, ruleVersion=RULE_VERSION):
        issue(net, 1, 0, [member().address], [1], kind=kind)

    receipt = issue(net, 1, 0, [member().address], [5], rule_version=0, kind=kind)

    event = only_event(net.hub, "PointsIssued", receipt)
    assert (event["ruleVersion"], event["kind"], event["total"]) == (0, kind, 5)


def test_a_kind_other_than_rule_issues_while_a_version_is_pending(net, pending):
    receipt = issue(net, 1, 0, [member().address], [1], rule_version=0, kind=MintKind.PRIZE)

    assert only_event(net.hub, "PointsIssued", receipt)["kind"] == MintKind.PRIZE


def test_issue_batch_logs_its_input_root(net):
    members = [member().address for _ in range(3)]
    pairs = [(ref(i), keccak(text=f"input {i}")) for i in range(3)]
    root = merkle.input_root(pairs)

    receipt = issue(net, 1, 0, members, [1, 2, 3], input_root=root)

    event = only_event(net.hub, "PointsIssued", receipt)
    assert (event["kind"], event["inputRoot"]) == (MintKind.RULE, root)
    records = decode_logs(net.network.emitters(), receipt_logs(receipt))
    assert {(r.kind, r.mint_kind, r.input_root) for r in records} == {
        ("issuance", 0, "0x" + root.hex()),
        ("points_issued", 0, "0x" + root.hex()),
    }
    for i, (event_ref, digest) in enumerate(pairs):
        proof = merkle.input_proof(pairs, i)
        assert merkle.verify(merkle.input_leaf(event_ref, digest), proof, event["inputRoot"])


def test_clawback_batch_logs_its_input_root_after_its_clawbacks(net):
    alice = member()
    issue(net, 1, 0, [alice.address, alice.address], [10, 20])
    items = [
        merkle.find_issuance(net.network, 1, original).clawback_item(seq, refund_ref(seq), 5)
        for seq, original in ((2, 0), (3, 1))
    ]
    root = merkle.input_root([(refund_ref(2), ZERO32), (refund_ref(3), keccak(b"refund 3"))])

    receipt = net.operator.transact(net.hub.clawback_batch(1, items, input_root=root))

    committed = only_event(net.hub, "ClawbackInputsCommitted", receipt)
    assert committed == {"merchantId": 1, "count": 2, "inputRoot": root}
    clawed = events(net.hub, "PointsClawedBack", receipt)
    [commitment] = events(net.hub, "ClawbackInputsCommitted", receipt)
    assert max(log["logIndex"] for log in clawed) < commitment["logIndex"]
    records = decode_logs(net.network.emitters(), receipt_logs(receipt))
    [record] = [r for r in records if isinstance(r, ClawbackCommitment)]
    assert (record.kind, record.merchant, record.count) == ("clawback_inputs", 1, 2)
    assert record.input_root == "0x" + root.hex()


# ------------------------------------------------------------------ the invariant


def test_random_publications_waits_and_issues_follow_the_model(net):
    """At most one pending version, the pending one refused, every earlier one accepted: a
    seeded walk of publications, clock moves and issues against a model of the rules."""
    set_notice(net, NOTICE)
    rng = random.Random(15)
    effective = {1: net.hub.merchant(1).rule_effective_at}  # version -> effective time
    seq = 0
    for _ in range(40):
        action = rng.choice(("publish", "wait", "issue", "issue"))
        latest = max(effective)
        if action == "wait":
            increase_time(net, rng.choice((1, NOTICE // 3, NOTICE)))
        elif action == "publish":
            at = latest_timestamp(net.w3) + 1
            if at < effective[latest]:  # the model: a version is pending
                with reverts(
                    "LoyaltyNetworkRuleChangePending",
                    merchantId=1,
                    pendingVersion=latest,
                    effectiveAt=effective[latest],
                ):
                    publish_at(net, at)
            else:
                publish_at(net, at)
                effective[latest + 1] = at + NOTICE
        else:
            version = rng.randint(1, latest)
            at = latest_timestamp(net.w3) + 1
            if version == latest and at < effective[latest]:
                with reverts(
                    "LoyaltyNetworkRuleVersionNotInEffect",
                    merchantId=1,
                    ruleVersion=version,
                    effectiveAt=effective[latest],
                ):
                    issue_at(net, at, 1, seq, version)
            else:
                issue_at(net, at, 1, seq, version)
                seq += 1
        merchant = net.hub.merchant(1)
        assert (merchant.rule_version, merchant.rule_effective_at) == (
            max(effective),
            effective[max(effective)],
        )
    assert max(effective) > 2 and seq > 5  # the walk published and issued
