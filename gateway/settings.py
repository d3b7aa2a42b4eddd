"""The gateway's settings: everything of ``chain.config.ChainSettings`` plus the
HTTP service, database, outbox worker, webhooks, metrics and readiness knobs.

One ``Settings`` class reads ``POINTSNET_*`` environment variables (and a ``.env``
file); ``.env.example`` lists every variable (a test checks it against this class).
"""

from __future__ import annotations

import hashlib
import os
import secrets

from pydantic import Field, SecretStr, model_validator

from chain.config import ChainSettings
from chain.errors import ConfigError


class Settings(ChainSettings):
    """Every knob of pointsnet, read from ``POINTSNET_*`` variables."""

    # -- gateway ---------------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str | None = Field(default=None, description="base URL printed in links")
    public_rpc_url: str | None = Field(
        default=None,
        description="a JSON-RPC endpoint of the chain members' browsers may call to verify "
        "their entries themselves (it must answer CORS requests from the wallet's origin); "
        "default: rpc_url on the devnet, none elsewhere (the wallet's Verify is then off)",
    )
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default sqlite:///<data_dir>/gateway.db"
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description="encrypts custodial keys and webhook secrets; devnet: generated in data_dir",
    )
    batch_max_events: int = 1500  # a safety bound: gas fills batches (EIP-7825: 2^24 per tx)
    # Seconds an event may wait for a fuller batch; on a chain with a steady block
    # interval batches go at each block's pack point instead (0: every batch at once).
    batch_max_wait: float = 0.2
    tx_stuck_after: float = 30.0  # seconds without a receipt before a fee bump
    webhook_max_attempts: int = 8
    webhook_allow_private: bool | None = Field(
        default=None,
        description="let webhook URLs lead to private, loopback or link-local addresses; "
        "default: yes on the devnet profile, no elsewhere",
    )
    rate_limit_per_minute: int = 60_000  # per API key
    group_commit_max_events: int = Field(
        default=64,
        ge=0,
        description="most POST /v1/events requests of one API process accepted together "
        "(gateway.api.group_commit); 0: each request in a transaction of its own",
    )
    group_commit_window_ms: float = Field(
        default=2.0,
        ge=0,
        description="while requests keep coming, how long a group may wait for more "
        "(milliseconds; a request after a quiet spell never waits)",
    )
    chain_clock_interval: float = Field(
        default=1.0,
        ge=0,
        description="seconds between reads of the chain head (rule versions switch at its "
        "block timestamp); 0: read it on every use",
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        description="bearer token GET /metrics requires (unset: open to whoever reaches it)",
    )
    metrics_max_age: float = Field(
        default=5.0,
        ge=0,
        description="seconds one computed /metrics answer is served again (each scrape "
        "reads the whole history: more scrapes than this cost nothing more)",
    )

    # -- readiness (/readyz) ------------------------------------------------------
    ready_max_worker_lag: float = Field(
        default=120.0, description="seconds the oldest pending chain op may wait"
    )
    ready_max_indexer_lag: int = Field(
        default=100, description="blocks the indexer may be behind the confirmed head"
    )

    @model_validator(mode="after")
    def _check_metrics_token(self) -> Settings:
        token = self.metrics_token
        if token is not None and len(token.get_secret_value()) < 16:
            raise ValueError("POINTSNET_METRICS_TOKEN needs at least 16 characters")
        return self

    @property
    def allows_private_webhooks(self) -> bool:
        if self.webhook_allow_private is not None:
            return self.webhook_allow_private
        return self.effective_profile == "devnet"

    @property
    def effective_public_rpc_url(self) -> str | None:
        """The RPC URL the wallet verifies entries against (None: no verification)."""
        if self.public_rpc_url:
            return self.public_rpc_url
        return self.rpc_url if self.effective_profile == "devnet" else None

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_path / 'gateway.db'}"

    @property
    def base_url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"


def get_settings() -> Settings:
    """Build settings from the environment (call again after changing it)."""
    return Settings()


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
