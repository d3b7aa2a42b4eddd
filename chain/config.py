"""Settings shared by every pointsnet component.

One ``Settings`` class reads ``POINTSNET_*`` environment variables (and a ``.env``
file).  All runtime state lives under ``data_dir`` so that several instances
(tests, benchmarks, a second partner's node) can run side by side.
"""

from __future__ import annotations

from functools import cached_property, lru_cache
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

    @cached_property
    def is_devnet(self) -> bool:
        return self.chain_id == DEVNET_CHAIN_ID

    @cached_property
    def effective_timelock_delay(self) -> int:
        if self.timelock_delay is not None:
            return self.timelock_delay
        return 0 if self.is_devnet else 2 * 24 * 3600

    @cached_property
    def data_path(self) -> Path:
        """The data directory, absolute and created on first use."""
        path = self.data_dir.expanduser().resolve()
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def deployment_file(self) -> Path:
        return self.data_path / f"deployment-{self.chain_id}.json"

    @property
    def devnet_state_file(self) -> Path:
        return self.data_path / "devnet" / "state.json"


def get_settings() -> Settings:
    """Build settings from the environment (call again after changing it)."""
    return Settings()


def resolve_key(settings: Settings, which: str) -> str:
    """The hex private key for role ``which`` ("operator" or "guardian").

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
        return anvil_dev_key(0 if which == "operator" else 1)
    key = configured.get_secret_value().strip()
    if not key.startswith("0x"):
        key = "0x" + key
    address = Account.from_key(key).address.lower()
    if not settings.is_devnet and address in anvil_dev_addresses():
        raise DevKeyRefused(settings.chain_id, address)
    return key
