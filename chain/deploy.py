"""Deploy the network's contracts, idempotently.

A deployment file per chain id (``<data_dir>/deployment-<chain_id>.json``,
:mod:`chain.deployment`) records the addresses, the block, the deployer and the hash
of every artifact deployed.  ``deploy`` reuses a recorded deployment when its contracts are on
chain and built from the same artifacts, and deploys afresh otherwise.

Every key of the signer pool (:mod:`chain.signers`) gets the hub's issuer
role: in the constructor on a fresh deployment, through the timelock when
keys are added to an existing one.  On the devnet, signer keys without gas
money are funded.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

from eth_account import Account
from eth_utils import keccak
from web3 import Web3

from chain.artifacts import DEPLOYED_CONTRACTS, load_artifact
from chain.config import ChainSettings
from chain.contracts import LoyaltyNetworkClient, Network
from chain.deployment import Deployment, check_chain_id
from chain.devnet import rpc_call
from chain.errors import DeploymentError
from chain.governance import ScheduledChange, ensure
from chain.logs import Web3Rpc
from chain.sender import GWEI, TransactionSender
from chain.signers import resolve_key, signer_addresses

#: On the devnet, signer keys holding less than this are topped up to DEVNET_SIGNER_FUNDS.
DEVNET_SIGNER_MIN_WEI = 100 * 10**18
DEVNET_SIGNER_FUNDS = 10_000 * 10**18


@dataclass(frozen=True)
class NetworkParams:
    """Parameters fixed at deployment (all changeable later only through the timelock)."""

    point_value_micros: int = 10_000  # USD 0.01
    value_currency: str = "USD"
    transfers_allowed: bool = True
    cap_period_seconds: int = 24 * 3600
    token_name: str = "Pointsnet Points"
    token_symbol: str = "PTS"
    #: Seconds a merchant's new rule-set version waits; None: the settings' (see
    #: ``ChainSettings.effective_rule_notice``).
    rule_notice_seconds: int | None = None


def artifact_hashes() -> dict[str, str]:
    """sha256 of each deployed contract's creation bytecode, as committed."""
    return {
        name: hashlib.sha256(load_artifact(name)["bytecode"].encode()).hexdigest()
        for name in DEPLOYED_CONTRACTS
    }


def connect(settings: ChainSettings) -> Web3:
    """A web3 connection to ``settings.rpc_url`` whose chain id is checked."""
    w3 = Web3(Web3.HTTPProvider(settings.rpc_url, request_kwargs={"timeout": 30}))
    check_chain_id(Web3Rpc(w3), settings)
    # web3's validation middleware asks the node for its chain id again before every
    # eth_call and eth_estimateGas (a round trip each, a tenth of the outbox worker's
    # time): checked once here, and every transaction is signed for this chain id, so
    # a node on another chain refuses it anyway.
    w3.middleware_onion.remove("validation")
    return w3


def operator_sender(
    settings: ChainSettings, w3: Web3, which: str = "operator"
) -> TransactionSender:
    """A sender for the operator (or "guardian", "admin") key with the configured fee caps."""
    return TransactionSender(
        w3,
        resolve_key(settings, which),
        settings.chain_id,
        max_fee_cap_wei=int(settings.max_fee_gwei * GWEI),
        priority_fee_wei=int(settings.priority_fee_gwei * GWEI),
    )


def deploy(
    settings: ChainSettings,
    params: NetworkParams | None = None,
    *,
    force: bool = False,
    progress: Callable[[str], None] | None = None,
) -> Deployment:
    """Deploy (or reuse) timelock + hub (+ token + badges) and record the deployment."""
    say = progress or (lambda _msg: None)
    params = params or NetworkParams()
    if params.rule_notice_seconds is None:
        params = replace(params, rule_notice_seconds=settings.effective_rule_notice)
    w3 = connect(settings)
    hashes = artifact_hashes()
    path = settings.deployment_file
    if path.exists() and not force:
        existing = Deployment.load(path)
        on_chain = bool(w3.eth.get_code(Web3.to_checksum_address(existing.hub)))
        if on_chain and existing.artifact_hashes == hashes:
            say(f"reusing deployment at block {existing.block}")
            _say_rule_notice(w3, existing, params, say)
            fund_signers(settings, w3, say)
            ensure_issuers(settings, w3, existing, say)
            return existing
        say("recorded deployment is stale (chain reset or contracts changed): deploying anew")

    sender = operator_sender(settings, w3)
    guardian = Account.from_key(resolve_key(settings, "guardian")).address
    admin = Account.from_key(resolve_key(settings, "admin")).address
    delay = settings.effective_timelock_delay
    issuers = list(dict.fromkeys([sender.address, *signer_addresses(settings)]))
    fund_signers(settings, w3, say)

    say(f"deploying NetworkTimelock (delay {delay}s, proposer {admin})")
    timelock = _deploy(w3, sender, "NetworkTimelock", delay, [admin], [admin])
    say(
        "deploying LoyaltyNetwork (creates PointsToken and BadgeCollection; "
        f"rule notice {params.rule_notice_seconds}s)"
    )
    config = (
        timelock,
        guardian,
        issuers,
        params.point_value_micros,
        params.value_currency,
        params.transfers_allowed,
        params.cap_period_seconds,
        params.rule_notice_seconds,
        params.token_name,
        params.token_symbol,
    )
    hub = _deploy(w3, sender, "LoyaltyNetwork", config)
    network = Network.at(w3, hub, timelock)
    deployment = Deployment(
        chain_id=settings.chain_id,
        hub=hub,
        token=network.token.address,
        badges=network.badges.address,
        timelock=timelock,
        block=w3.eth.block_number,
        deployer=sender.address,
        guardian=guardian,
        admin=admin,
        timelock_delay=delay,
        artifact_hashes=hashes,
        deployed_at=time.time(),
        params=asdict(params),
    )
    deployment.save(path)
    say(f"hub {hub} token {deployment.token} badges {deployment.badges} timelock {timelock}")
    return deployment


def _say_rule_notice(
    w3: Web3, deployment: Deployment, params: NetworkParams, say: Callable[[str], None]
) -> None:
    """A reused deployment keeps its hub's rule notice: say so when another was asked for."""
    on_chain = LoyaltyNetworkClient(w3, deployment.hub).rule_notice_seconds()
    if params.rule_notice_seconds != on_chain:
        say(
            f"the hub's rule notice is {on_chain}s, not the {params.rule_notice_seconds}s "
            "configured: change it with `pointsnet network rule-notice SECONDS` (timelock)"
        )


def fund_signers(settings: ChainSettings, w3: Web3, say: Callable[[str], None]) -> None:
    """Give every signer key gas money (devnet only: anvil_setBalance); elsewhere say
    which keys hold less than the readiness threshold (fund them from a faucet)."""
    threshold = (
        DEVNET_SIGNER_MIN_WEI
        if settings.is_devnet
        else int(settings.ready_min_signer_balance_eth * 10**18)
    )
    for address in signer_addresses(settings):
        balance = int(w3.eth.get_balance(Web3.to_checksum_address(address)))
        if balance >= threshold:
            continue
        if settings.is_devnet:
            rpc_call(settings.rpc_url, "anvil_setBalance", [address, hex(DEVNET_SIGNER_FUNDS)])
            say(f"funded devnet signer {address}")
        else:
            say(f"signer {address} holds {balance / 10**18:.4f} ETH: fund it before serving")


def issuer_grant_salt(address: str) -> bytes:
    """The timelock salt of the issuer-role grant to ``address`` (fixed, so a later run
    finds the operation it scheduled and executes it once the delay has passed)."""
    return keccak(b"pointsnet:grant-issuer:" + bytes.fromhex(address.lower().removeprefix("0x")))


def ensure_issuers(
    settings: ChainSettings,
    w3: Web3,
    deployment: Deployment,
    say: Callable[[str], None],
    max_wait: float = 30.0,
) -> list[ScheduledChange]:
    """Grant the issuer role to every signer key that lacks it, through the timelock.

    With a delay of at most ``max_wait`` seconds (the devnet's is 0) the grant is
    executed at once; otherwise it is scheduled, and running ``deploy`` again once
    the delay has passed executes it.  Returns the grants still waiting.
    """
    network = Network.at(w3, deployment.hub, deployment.timelock)
    hub, timelock = network.hub, network.timelock
    role = hub.role("ISSUER_ROLE")
    missing = [
        address
        for address in signer_addresses(settings)
        if not hub.functions.hasRole(role, Web3.to_checksum_address(address)).call()
    ]
    if not missing:
        return []
    admin = operator_sender(settings, w3, "admin")
    waiting: list[ScheduledChange] = []
    for address in missing:
        call = hub.functions.grantRole(role, Web3.to_checksum_address(address))
        change, done = ensure(timelock, admin, call, issuer_grant_salt(address), max_wait)
        if not done:
            say(f"issuer role for {address} can be executed after {change.ready_at} (unix time):"
                " run `pointsnet deploy` again then")  # fmt: skip
            waiting.append(change)
            continue
        if not hub.functions.hasRole(role, Web3.to_checksum_address(address)).call():
            raise DeploymentError(
                f"the timelock operation granting {address} the issuer role is done, but the "
                "role is not held (revoked since?): grant it with a new timelock operation"
            )
        say(f"issuer role granted to signer {address}")
    return waiting


def _deploy(w3: Web3, sender: TransactionSender, name: str, *args: Any) -> str:
    artifact = load_artifact(name)
    factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    data = bytes.fromhex(factory.constructor(*args).data_in_transaction[2:])
    tx = sender.sign(None, data)
    sender.broadcast(tx)
    receipt = sender.wait(tx.hash)
    address = receipt.get("contractAddress")
    if not address:
        raise DeploymentError(f"{name} deployment {tx.hash} created no contract")
    return str(address)
