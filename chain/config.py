"""Settings of the chain side (RPC endpoint, keys, devnet).

One ``ChainSettings`` class reads ``POINTSNET_*`` environment variables (and a ``.env``
file).  All runtime state lives under ``data_dir`` so that several instances
(tests, benchmarks, a second partner's node) can run side by side.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, model_validator
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
    from eth_account import Account  # here: processes that hold no key never load it

    Account.enable_unaudited_hdwallet_features()
    account = Account.from_mnemonic(ANVIL_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}")
    return "0x" + bytes(account.key).hex()


#: Mnemonic index of the devnet's extra signer keys: signer ``i`` (``i >= 1``) is
#: ``m/44'/60'/0'/0/(DEVNET_SIGNER_BASE + i)``, clear of anvil's ten funded accounts
#: (which tests and tools use as merchants and members); deploy funds them.
DEVNET_SIGNER_BASE = 100

#: At most this many devnet signer keys (``POINTSNET_SIGNERS``).
DEVNET_MAX_SIGNERS = 16


@lru_cache(maxsize=1)
def anvil_dev_addresses() -> frozenset[str]:
    """Addresses of every key pointsnet derives from anvil's public mnemonic (lower-case):
    the ten funded development accounts and the devnet's extra signer keys."""
    from eth_account import Account

    indexes = [*range(10), *(DEVNET_SIGNER_BASE + i for i in range(1, DEVNET_MAX_SIGNERS))]
    return frozenset(Account.from_key(anvil_dev_key(i)).address.lower() for i in indexes)


PROJECT_ROOT = Path(__file__).resolve().parent.parent

#: Default rule notice (seconds a merchant's new rule-set version waits before it takes
#: effect) deployed on the devnet, short enough to watch a change happen.
DEVNET_RULE_NOTICE_SECONDS = 60
#: Default rule notice deployed anywhere else: a week.
RULE_NOTICE_SECONDS = 7 * 24 * 3600
#: The hub refuses a longer notice (``LoyaltyNetwork.MAX_RULE_NOTICE_SECONDS``).
MAX_RULE_NOTICE_SECONDS = 365 * 24 * 3600


class ChainSettings(BaseSettings):
    """The chain side's knobs (RPC, keys, devnet), read from ``POINTSNET_*`` variables.

    The gateway's ``Settings`` (``gateway/settings.py``) extends this class.
    """

    model_config = SettingsConfigDict(
        env_prefix="POINTSNET_", env_file=".env", extra="ignore", frozen=True
    )

    data_dir: Path = Field(default=Path(".pointsnet"), description="all runtime state")

    # -- chain ---------------------------------------------------------------
    profile: Literal["devnet", "testnet"] | None = Field(
        default=None,
        description="devnet (local anvil, chain 31337) or testnet (any EVM RPC); "
        "default: devnet on chain 31337, testnet elsewhere",
    )
    rpc_url: str = "http://127.0.0.1:8545"
    chain_id: int = DEVNET_CHAIN_ID
    operator_key: SecretStr | None = Field(
        default=None, description="hex private key; devnet default: anvil account 0"
    )
    operator_keys: SecretStr | None = Field(
        default=None,
        description="the signer pool: comma-separated hex private keys, one nonce lane each",
    )
    operator_keystores: str | None = Field(
        default=None,
        description="the signer pool: comma-separated paths of encrypted JSON keystores",
    )
    keystore_password: SecretStr | None = Field(
        default=None, description="password of the operator keystores"
    )
    keystore_password_file: Path | None = Field(
        default=None, description="file holding the keystore password (first line)"
    )
    signers: int = Field(
        default=1,
        ge=1,
        le=DEVNET_MAX_SIGNERS,
        description="devnet: how many signer keys to derive from anvil's mnemonic",
    )
    guardian_key: SecretStr | None = Field(
        default=None, description="hex private key; devnet default: anvil account 1"
    )
    admin_key: SecretStr | None = Field(
        default=None,
        description="timelock proposer/executor (operator CLI); devnet default: anvil account 2",
    )
    confirmations: int = Field(default=0, description="default 0 on the devnet, 3 on a testnet")
    max_fee_gwei: float = 200.0
    priority_fee_gwei: float = 1.0
    timelock_delay: int | None = Field(
        default=None, description="seconds; default 0 on the devnet, 2 days elsewhere"
    )
    rule_notice_seconds: int | None = Field(
        default=None,
        ge=0,
        le=MAX_RULE_NOTICE_SECONDS,
        description="seconds a new rule-set version waits before it takes effect, set at "
        "deployment (later only through the timelock); default 60 on the devnet, 7 days elsewhere",
    )

    # -- devnet (anvil) ------------------------------------------------------
    devnet_host: str = "127.0.0.1"
    devnet_port: int = 8545
    devnet_block_time: float | None = None  # None: automine
    devnet_gas_limit: int = 300_000_000

    # -- signer funding ---------------------------------------------------------
    ready_min_signer_balance_eth: float = Field(
        default=0.01, description="a signer key below this balance makes /readyz fail"
    )

    @model_validator(mode="before")
    @classmethod
    def _profile_defaults(cls, data: Any) -> Any:
        """A testnet waits for 3 confirmations unless told otherwise."""
        if isinstance(data, dict) and "confirmations" not in data:
            chain_id = int(data.get("chain_id", DEVNET_CHAIN_ID))
            default = "devnet" if chain_id == DEVNET_CHAIN_ID else "testnet"
            if (data.get("profile") or default) == "testnet":
                data = {**data, "confirmations": 3}
        return data

    @model_validator(mode="after")
    def _check_profile(self) -> ChainSettings:
        if self.profile == "devnet" and self.chain_id != DEVNET_CHAIN_ID:
            raise ValueError(
                f"POINTSNET_PROFILE=devnet is the local anvil (chain id {DEVNET_CHAIN_ID}), "
                f"not chain {self.chain_id}"
            )
        if self.profile == "testnet" and self.chain_id == DEVNET_CHAIN_ID:
            raise ValueError(
                "POINTSNET_PROFILE=testnet needs the testnet's POINTSNET_CHAIN_ID "
                f"(not the devnet's {DEVNET_CHAIN_ID}) and POINTSNET_RPC_URL"
            )
        return self

    @property
    def is_devnet(self) -> bool:
        return self.chain_id == DEVNET_CHAIN_ID

    @property
    def effective_profile(self) -> str:
        return self.profile or ("devnet" if self.is_devnet else "testnet")

    @property
    def effective_timelock_delay(self) -> int:
        if self.timelock_delay is not None:
            return self.timelock_delay
        return 0 if self.is_devnet else 2 * 24 * 3600

    @property
    def effective_rule_notice(self) -> int:
        """The rule notice a deployment starts with (``rule_notice_seconds`` or the profile's)."""
        if self.rule_notice_seconds is not None:
            return self.rule_notice_seconds
        return DEVNET_RULE_NOTICE_SECONDS if self.is_devnet else RULE_NOTICE_SECONDS

    @property
    def data_path(self) -> Path:
        """The data directory, absolute (created if missing)."""
        path = self.data_dir.expanduser().resolve()
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def deployment_file(self) -> Path:
        return self.data_path / f"deployment-{self.chain_id}.json"

    @property
    def devnet_state_file(self) -> Path:
        return self.data_path / "devnet" / "state.json"


def get_chain_settings() -> ChainSettings:
    """Build chain settings from the environment (call again after changing it)."""
    return ChainSettings()


def checked_key(settings: ChainSettings, value: str) -> str:
    """``value`` as a 0x-prefixed hex private key; a published development key is
    refused off the devnet."""
    from eth_account import Account

    key = value.strip()
    if not key.startswith("0x"):
        key = "0x" + key
    try:
        address = Account.from_key(key).address.lower()
    except (ValueError, TypeError) as exc:  # never echo the value: it may be a key
        raise ConfigError("a configured private key is not a 32-byte hex key") from exc
    if not settings.is_devnet and address in anvil_dev_addresses():
        raise DevKeyRefused(settings.chain_id, address)
    return key
