"""The gateway's long-lived objects, built once per process from settings."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from gateway.chainlink import ChainLink
from gateway.crypto import SecretBox
from gateway.db import make_engine, make_session_factory
from gateway.ratelimit import RateLimiter
from gateway.rules.fx import FxTable, default_fx_table
from gateway.settings import Settings, resolve_secret_key


@dataclass
class GatewayContext:
    """Settings, database, chain and secrets: what every request and worker uses."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    link: ChainLink
    box: SecretBox
    fx: FxTable = field(default_factory=default_fx_table)
    limiter: RateLimiter = field(default_factory=RateLimiter)

    @classmethod
    def open(cls, settings: Settings, *, link: ChainLink | None = None) -> GatewayContext:
        engine = make_engine(settings.effective_database_url)
        return cls(
            settings=settings,
            engine=engine,
            sessions=make_session_factory(engine),
            link=link or ChainLink.open(settings),
            box=SecretBox(resolve_secret_key(settings)),
            limiter=RateLimiter(settings.rate_limit_per_minute),
        )
