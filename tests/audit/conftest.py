"""Fixtures for the auditor's tests: a deployment of their own and a recorded history.

``audit_net`` deploys the network once per session on the session anvil (its own
data directory, timelock delay 0) and admits two merchants. ``scenario`` builds,
once per test module and inside a snapshot reverted after the module, a history
that touches every kind of record while an ``audit_kit.Ledger`` independently books
what the audit must find. ``after_scenario`` gives a test that history inside its
own snapshot, with every sender's nonce reconciled.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from audit_kit import CAPS, NAMES, AuditNet, Scenario, build_scenario, rule_text
from factories import AnvilNode
from web3 import Web3

from chain.config import anvil_dev_key
from chain.contracts import Network
from chain.deploy import deploy, operator_sender
from chain.devnet import rpc_call
from chain.sender import TransactionSender
from gateway.settings import Settings


@pytest.fixture(scope="session")
def audit_net(anvil: AnvilNode, tmp_path_factory: pytest.TempPathFactory) -> AuditNet:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("audit"),
        rpc_url=anvil.url,
        chain_id=anvil.chain_id,
        devnet_port=anvil.port,
        timelock_delay=0,
        rule_notice_seconds=0,  # versions in effect at once, as the scenario issues them
    )
    deployment = deploy(settings, force=True)
    w3 = Web3(Web3.HTTPProvider(anvil.url, request_kwargs={"timeout": 60}))
    network = Network.at(w3, deployment.hub, deployment.timelock)
    signers = {
        1: TransactionSender(w3, anvil_dev_key(6), anvil.chain_id),
        2: TransactionSender(w3, anvil_dev_key(7), anvil.chain_id),
    }
    net = AuditNet(
        anvil,
        settings,
        w3,
        deployment,
        network,
        operator_sender(settings, w3),
        operator_sender(settings, w3, "guardian"),
        operator_sender(settings, w3, "admin"),
        signers,
    )
    net.reconcile()
    for merchant_id, signer in signers.items():
        net.admin(
            network.hub.functions.addMerchant(NAMES[merchant_id], signer.address, CAPS[merchant_id])
        )
        net.operator.transact(network.hub.publish_rule_set(merchant_id, rule_text(merchant_id, 1)))
    return net


@pytest.fixture(scope="module")
def scenario(audit_net: AuditNet, anvil: AnvilNode) -> Iterator[Scenario]:
    """The history, built once per module; the chain is reverted after the module."""
    snapshot = rpc_call(anvil.url, "evm_snapshot")
    audit_net.reconcile()
    yield build_scenario(audit_net)
    assert rpc_call(anvil.url, "evm_revert", [snapshot]) is True
    audit_net.reconcile()


@pytest.fixture
def after_scenario(scenario: Scenario, chain_snapshot: str) -> Iterator[Scenario]:
    """The module's history inside this test's own snapshot (free to add to it)."""
    scenario.net.reconcile()
    yield scenario
    # chain_snapshot reverts; reconcile for the next test
    scenario.net.reconcile()
