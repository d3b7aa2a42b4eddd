"""Settings shared by every pointsnet component.

One ``Settings`` class reads ``POINTSNET_*`` environment variables (and a ``.env``
file).  All runtime state lives under ``data_dir`` so that several instances
(tests, benchmarks, a second partner's node) can run side by side.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from functools import lru_cache
from pathlib import Path

from eth_account import Account
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from chain.errors import ConfigError, DevKeyRefused

#: Chain id of the embedded anvil devnet.  Only on this chain are anvil's
#: published development keys accepted.
DEVNET_CHAIN_ID = 31337

#: anvil's published development mnemonic.  Keys derived from it are public
#: knowledge: they are used on the devnet and refused on every other chain id.
ANVIL_MNEMONIC = "test test test test test test test test test test test junk"


@lru_cache(maxsize=16)
def anvil_dev_key(index: int) -> str:
    """The ``index``-th anvil development private key (hex, 0x-prefixed)."""
    Account.enable_unaudited_hdwallet_features()
    account = Account.from_mnemonic(ANVIL_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}")
    return "0x" + bytes(account.key).hex()


@lru_cache(maxsize=1)
def anvil_dev_addresses() -> frozenset[str]:
    """Addresses of anvil's first ten development accounts (lower-case)."""
    return frozenset(Account.from_key(anvil_dev_key(i)).address.lower() for i in range(10))


PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Every knob of pointsnet, read from ``POINTSNET_*`` variables."""

    model_config = SettingsConfigDict(
        env_prefix="POINTSNET_", env_file=".env", extra="ignore", frozen=True
    )

    data_dir: Path = Field(default=Path(".pointsnet"), description="all runtime state")

    # -- chain ---------------------------------------------------------------
    rpc_url: str = "http://127.0.0.1:8545"
    chain_id: int = DEVNET_CHAIN_ID
    operator_key: SecretStr | None = Field(
        default=None, description="hex private key; devnet default: anvil account 0"
    )
    guardian_key: SecretStr | None = Field(
        default=None, description="hex private key; devnet default: anvil account 1"
    )
    admin_key: SecretStr | None = Field(
        default=None,
        description="timelock proposer/executor (operator CLI); devnet default: anvil account 2",
    )
    confirmations: int = 0
    max_fee_gwei: float = 200.0
    priority_fee_gwei: float = 1.0
    timelock_delay: int | None = Field(
        default=None, description="seconds; default 0 on the devnet, 2 days elsewhere"
    )

    # -- devnet (anvil) ------------------------------------------------------
    devnet_host: str = "127.0.0.1"
    devnet_port: int = 8545
    devnet_block_time: float | None = None  # None: automine
    devnet_gas_limit: int = 300_000_000

    # -- gateway ---------------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str | None = Field(default=None, description="base URL printed in links")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default sqlite:///<data_dir>/gateway.db"
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description="encrypts custodial keys and webhook secrets; devnet: generated in data_dir",
    )
    batch_max_events: int = 500
    batch_max_wait: float = 0.2  # seconds an event may wait for a fuller batch
    tx_stuck_after: float = 30.0  # seconds without a receipt before a fee bump
    idempotency_ttl_hours: int = 24
    webhook_max_attempts: int = 8
    rate_limit_per_minute: int = 60_000  # per API key

    @property
    def is_devnet(self) -> bool:
        return self.chain_id == DEVNET_CHAIN_ID

    @property
    def effective_timelock_delay(self) -> int:
        if self.timelock_delay is not None:
            return self.timelock_delay
        return 0 if self.is_devnet else 2 * 24 * 3600

    @property
    def data_path(self) -> Path:
        """The data directory, absolute (created if missing)."""
        path = self.data_dir.expanduser().resolve()
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_path / 'gateway.db'}"

    @property
    def base_url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"

    @property
    def deployment_file(self) -> Path:
        return self.data_path / f"deployment-{self.chain_id}.json"

    @property
    def devnet_state_file(self) -> Path:
        return self.data_path / "devnet" / "state.json"


def get_settings() -> Settings:
    """Build settings from the environment (call again after changing it)."""
    return Settings()


_DEV_KEY_INDEX = {"operator": 0, "guardian": 1, "admin": 2}


def resolve_secret_key(settings: Settings) -> bytes:
    """The gateway's secret (32 bytes) for encrypting custodial keys and webhook secrets.

    Off the devnet it must be configured; on the devnet one is generated once and
    kept in ``<data_dir>/secret.key`` (mode 0600).
    """
    if settings.secret_key is not None:
        value = settings.secret_key.get_secret_value().strip()
        if len(value) < 32 or value.lower() in {"changeme", "change-me", "secret"}:
            raise ConfigError("POINTSNET_SECRET_KEY must be at least 32 random characters")
        return hashlib.sha256(value.encode()).digest()
    if not settings.is_devnet:
        raise ConfigError(f"POINTSNET_SECRET_KEY must be set on chain {settings.chain_id}")
    path = settings.data_path / "secret.key"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
    return hashlib.sha256(path.read_text().strip().encode()).digest()


def resolve_key(settings: Settings, which: str) -> str:
    """The hex private key for role ``which``: "operator" (the gateway's issuer key),
    "guardian" (pause, suspend) or "admin" (timelock proposals, operator CLI).

    On the devnet a missing key falls back to anvil's published development
    keys; anywhere else a key must be configured, and a published development
    key is refused.
    """
    configured: SecretStr | None = getattr(settings, f"{which}_key")
    if configured is None:
        if not settings.is_devnet:
            raise ConfigError(
                f"POINTSNET_{which.upper()}_KEY must be set on chain {settings.chain_id}"
            )
        return anvil_dev_key(_DEV_KEY_INDEX[which])
    key = configured.get_secret_value().strip()
    if not key.startswith("0x"):
        key = "0x" + key
    address = Account.from_key(key).address.lower()
    if not settings.is_devnet and address in anvil_dev_addresses():
        raise DevKeyRefused(settings.chain_id, address)
    return key
