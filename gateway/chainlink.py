"""The gateway's handle on the chain: web3, the deployed contracts, the operator key."""

from __future__ import annotations

from dataclasses import dataclass

from web3 import Web3

from chain.contracts import Network
from chain.deploy import connect, operator_sender
from chain.deployment import Deployment, load_deployment
from chain.logs import Web3Rpc
from chain.sender import TransactionSender
from gateway.settings import Settings


@dataclass
class ChainLink:
    """Everything the gateway needs to read from and write to the network."""

    settings: Settings
    w3: Web3
    deployment: Deployment
    network: Network
    sender: TransactionSender

    @classmethod
    def open(cls, settings: Settings) -> ChainLink:
        w3 = connect(settings)
        deployment = load_deployment(settings, Web3Rpc(w3))
        network = Network.at(w3, deployment.hub, deployment.timelock)
        return cls(settings, w3, deployment, network, operator_sender(settings, w3))

    @property
    def chain_id(self) -> int:
        return self.settings.chain_id

    def new_sender(self) -> TransactionSender:
        """A separate sender for the same key (its own nonce state), e.g. for a worker."""
        return operator_sender(self.settings, self.w3)
