"""Member tiers set by the gateway, and merchants' published rule-set versions."""

from __future__ import annotations

from contract_kit import (
    ISSUER_ROLE,
    events,
    issue,
    latest_timestamp,
    member,
    only_event,
    reverts,
    rule_text,
)
from eth_utils import keccak

RULES_V2 = rule_text(1, 2, earn_rate=2)
RULES_V2_HASH = keccak(text=RULES_V2)


def set_tiers(net, members, tiers, sender=None):
    return (sender or net.operator).transact(net.hub.set_tiers(members, tiers))


# ------------------------------------------------------------------ tiers


def test_set_tiers_records_each_tier_and_emits_tier_changed(net):
    alice, bob = member(), member()
    receipt = set_tiers(net, [alice.address, bob.address], [2, 4])

    assert net.hub.tier_of(alice.address) == 2
    assert net.hub.tier_of(bob.address) == 4
    changes = [dict(e["args"]) for e in events(net.hub, "TierChanged", receipt)]
    assert changes == [
        {"member": alice.address, "oldTier": 0, "newTier": 2},
        {"member": bob.address, "oldTier": 0, "newTier": 4},
    ]


def test_set_tiers_downgrades_report_the_old_tier(net):
    alice = member()
    set_tiers(net, [alice.address], [3])
    receipt = set_tiers(net, [alice.address], [1])

    assert only_event(net.hub, "TierChanged", receipt) == {
        "member": alice.address,
        "oldTier": 3,
        "newTier": 1,
    }


def test_set_tiers_emits_nothing_for_an_unchanged_tier(net):
    alice = member()
    set_tiers(net, [alice.address], [2])
    receipt = set_tiers(net, [alice.address], [2])

    assert events(net.hub, "TierChanged", receipt) == []


def test_a_new_member_starts_at_bronze(net):
    assert net.hub.tier_of(member().address) == 0


def test_set_tiers_reverts_above_black(net):
    with reverts("LoyaltyNetworkInvalidTier", tier=5):
        set_tiers(net, [member().address, member().address], [4, 5])


def test_set_tiers_reverts_when_lengths_differ(net):
    with reverts("LoyaltyNetworkLengthMismatch", expected=2, actual=1):
        set_tiers(net, [member().address, member().address], [1])


def test_set_tiers_is_for_issuers_only_not_merchant_signers(net):
    signer = net.merchant_signers[1]

    with reverts(
        "AccessControlUnauthorizedAccount", account=signer.address, neededRole=ISSUER_ROLE
    ):
        set_tiers(net, [member().address], [1], sender=signer)


# ------------------------------------------------------------------ rule sets


def test_publish_rule_set_bumps_the_version_and_emits_rule_set_published(net):
    receipt = net.operator.transact(net.hub.publish_rule_set(1, RULES_V2))

    now = latest_timestamp(net.w3)
    assert only_event(net.hub, "RuleSetPublished", receipt) == {
        "merchantId": 1,
        "version": 2,
        "ruleSetHash": RULES_V2_HASH,
        "effectiveAt": now,  # the session deployment's notice is 0
        "ruleSet": RULES_V2.encode(),
    }
    merchant = net.hub.merchant(1)
    assert (merchant.rule_version, merchant.rule_set_hash) == (2, RULES_V2_HASH)
    assert merchant.rule_effective_at == now
    assert net.hub.merchant(2).rule_version == 1


def test_publish_rule_set_by_the_merchants_own_signer_succeeds(net):
    net.merchant_signers[2].transact(net.hub.publish_rule_set(2, RULES_V2))

    assert net.hub.merchant(2).rule_version == 2
    issue(net, 2, 0, [member().address], [1], rule_version=2)


def test_publish_rule_set_reverts_for_another_merchants_signer(net):
    other = net.merchant_signers[2]

    with reverts("LoyaltyNetworkUnauthorizedIssuer", caller=other.address, merchantId=1):
        other.transact(net.hub.publish_rule_set(1, RULES_V2))


def test_publish_rule_set_reverts_for_an_unknown_merchant(net):
    with reverts("LoyaltyNetworkUnknownMerchant", merchantId=99):
        net.operator.transact(net.hub.publish_rule_set(99, RULES_V2))
