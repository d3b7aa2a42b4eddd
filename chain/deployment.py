"""The deployment file: which contracts were deployed where, on which chain.

``<data_dir>/deployment-<chain_id>.json`` is written by :func:`chain.deploy.deploy` and
read by every gateway process.  It lives apart from the deployer so that a process that
only reads it (the indexer role) loads neither web3 nor the deployer's dependencies.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from chain.config import ChainSettings
from chain.errors import DeploymentError
from chain.logs import JsonRpc


@dataclass(frozen=True)
class Deployment:
    """What the deployment file records."""

    chain_id: int
    hub: str
    token: str
    badges: str
    timelock: str
    block: int
    deployer: str
    guardian: str
    admin: str
    timelock_delay: int
    artifact_hashes: dict[str, str]
    deployed_at: float
    params: dict[str, Any] = field(default_factory=dict)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n")
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> Deployment:
        return cls(**json.loads(path.read_text()))


def load_deployment(settings: ChainSettings, rpc: JsonRpc | None = None) -> Deployment:
    """The recorded deployment for ``settings.chain_id``; with ``rpc``, checked to exist
    on chain (code at the recorded hub)."""
    path = settings.deployment_file
    if not path.exists():
        raise DeploymentError(
            f"no deployment for chain {settings.chain_id} ({path}); run `pointsnet deploy`"
        )
    deployment = Deployment.load(path)
    if rpc is not None and rpc.call("eth_getCode", [deployment.hub, "latest"]) in (None, "0x"):
        raise DeploymentError(f"no contract at the recorded hub {deployment.hub} (chain reset?)")
    return deployment


def check_chain_id(rpc: JsonRpc, settings: ChainSettings) -> None:
    """Raise :class:`DeploymentError` unless the node at ``settings.rpc_url`` answers
    and is chain ``settings.chain_id``."""
    try:
        chain_id = int(rpc.call("eth_chainId"), 16)
    except Exception as exc:
        raise DeploymentError(f"cannot reach {settings.rpc_url}: {exc}") from exc
    if chain_id != settings.chain_id:
        raise DeploymentError(
            f"{settings.rpc_url} is chain {chain_id}, settings say {settings.chain_id}"
        )
