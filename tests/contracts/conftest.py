"""Fixtures for contract tests: one deployment on the session anvil.

``deployed`` deploys once per session (timelock delay 0) and admits two
merchants; ``net`` gives each test that deployment inside an ``evm_snapshot``
and reconciles every sender's nonce with the reverted chain.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from contract_kit import rule_text
from factories import AnvilNode
from web3 import Web3

from chain import governance
from chain.config import anvil_dev_key
from chain.contracts import Network
from chain.deploy import Deployment, deploy, operator_sender
from chain.sender import TransactionSender

FIRST_ORDER = 1
ECO_GUARDIAN = 2
MERCHANT_CAP = 10**12


@dataclass
class Deployed:
    """A deployment with named actors."""

    w3: Web3
    deployment: Deployment
    network: Network
    operator: TransactionSender  # ISSUER_ROLE (the gateway's hot key)
    guardian: TransactionSender  # GUARDIAN_ROLE
    timelock_admin: TransactionSender  # timelock proposer/executor
    merchant_signers: dict[int, TransactionSender]  # merchant id -> its own signer
    outsider: TransactionSender  # no role at all
    chain_id: int

    @property
    def hub(self):
        return self.network.hub

    @property
    def token(self):
        return self.network.token

    @property
    def badges(self):
        return self.network.badges

    def senders(self) -> list[TransactionSender]:
        return [
            self.operator,
            self.guardian,
            self.timelock_admin,
            self.outsider,
            *self.merchant_signers.values(),
        ]

    def admin(self, call: object) -> None:
        """Apply a rule change through the timelock (delay 0 here)."""
        governance.apply(self.network.timelock, self.timelock_admin, call)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def deployed(anvil: AnvilNode) -> Deployed:
    # A rule notice of 0: a new version is in effect at once, as every test here but
    # test_rule_notice's (which sets its own through the timelock) assumes.
    settings = anvil.settings.model_copy(update={"timelock_delay": 0, "rule_notice_seconds": 0})
    deployment = deploy(settings)
    w3 = Web3(Web3.HTTPProvider(anvil.url, request_kwargs={"timeout": 60}))
    network = Network.at(w3, deployment.hub, deployment.timelock)
    operator = operator_sender(settings, w3)
    guardian = operator_sender(settings, w3, "guardian")
    timelock_admin = operator_sender(settings, w3, "admin")
    signers = {
        1: TransactionSender(w3, anvil_dev_key(3), anvil.chain_id),
        2: TransactionSender(w3, anvil_dev_key(4), anvil.chain_id),
    }
    outsider = TransactionSender(w3, anvil_dev_key(5), anvil.chain_id)
    d = Deployed(
        w3,
        deployment,
        network,
        operator,
        guardian,
        timelock_admin,
        signers,
        outsider,
        anvil.chain_id,
    )
    for merchant_id, signer in signers.items():
        d.admin(
            network.hub.functions.addMerchant(
                f"merchant {merchant_id}", signer.address, MERCHANT_CAP
            )
        )
        operator.transact(network.hub.publish_rule_set(merchant_id, rule_text(merchant_id, 1)))
    operator.transact(
        network.hub.define_badge(FIRST_ORDER, "First Order", "ipfs://first", 1000, True)
    )
    operator.transact(
        network.hub.define_badge(ECO_GUARDIAN, "Eco Guardian", "ipfs://eco", 2, False)
    )
    return d


@pytest.fixture
def net(deployed: Deployed, chain_snapshot: str) -> Iterator[Deployed]:
    for sender in deployed.senders():
        sender.reconcile_nonce()
    yield deployed
    # chain_snapshot reverts after this; the next test reconciles again.
