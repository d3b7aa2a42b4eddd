"""The gateway's long-lived objects, built once per process from settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from gateway.chainlink import ChainLink
from gateway.clock import Clock, SystemClock
from gateway.crypto import SecretBox
from gateway.db import make_engine, make_session_factory
from gateway.ratelimit import RateLimiter
from gateway.rules.fx import FxTable, default_fx_table
from gateway.settings import Settings, resolve_secret_key


@dataclass
class GatewayContext:
    """Settings, database, chain, secrets and clocks: what every request and worker uses.

    ``clock`` defaults to a :class:`~gateway.clock.SystemClock` on the settings' RPC
    URL (nothing is read before the first use); tests pass a ``ManualClock``.
    """

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    link: ChainLink
    box: SecretBox
    fx: FxTable = field(default_factory=default_fx_table)
    limiter: RateLimiter = field(default_factory=RateLimiter)
    clock: Clock = field(default=cast("Clock", None))

    def __post_init__(self) -> None:
        if self.clock is None:
            self.clock = SystemClock.for_url(
                self.settings.rpc_url, self.settings.chain_clock_interval
            )

    @classmethod
    def open(
        cls, settings: Settings, *, link: ChainLink | None = None, clock: Clock | None = None
    ) -> GatewayContext:
        engine = make_engine(settings.effective_database_url)
        return cls(
            settings=settings,
            engine=engine,
            sessions=make_session_factory(engine),
            link=link or ChainLink.open(settings),
            box=SecretBox(resolve_secret_key(settings)),
            limiter=RateLimiter(settings.rate_limit_per_minute),
            clock=cast("Clock", clock),
        )
