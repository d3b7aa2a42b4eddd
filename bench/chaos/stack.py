"""The chaos stack: the one launcher (:class:`bench.stack.Stack`) with anvil's state
persisted and interval mining, three merchants, and the gateway's three roles as
separate processes that the chaos kills and a supervisor restarts."""

from __future__ import annotations

import signal
import threading
from typing import Self

from sqlalchemy import Engine

from bench.chaos.config import MERCHANTS, ROLES, ChaosConfig, Progress
from bench.stack import Stack, wait_drained
from chain.devnet import rpc_call


class ChaosStack(Stack):
    """anvil (state persisted) + contracts + merchants + the gateway's three roles."""

    def __init__(self, config: ChaosConfig, progress: Progress) -> None:
        super().__init__(
            config.data_dir,
            merchants=[(name, currency) for name, currency, _low, _high in MERCHANTS],
            block_time=config.block_time,
            gas_limit=1_000_000_000,
            persist_state=True,
            anvil_timeout=60,
            env={
                "POINTSNET_TX_STUCK_AFTER": str(config.tx_stuck_after),
                "POINTSNET_RATE_LIMIT_PER_MINUTE": str(10**9),
            },
            keep=config.keep,
            prefix="pointsnet-chaos-",
            progress=progress,
        )
        self.config = config
        self.planned_down: set[str] = set()
        self.unplanned_exits = 0
        self.merchant_ids: list[int] = []
        self.operator = ""
        self.hub = ""
        self.token = ""
        self.start_block = 0
        self.engine: Engine | None = None
        self.lock = threading.RLock()

    def start(self) -> Self:
        """The stack, the gateway's three roles, the merchants' limits lifted."""
        from gateway.db import make_engine

        super().start()
        assert self.context is not None
        self.merchant_ids = [merchant.id for merchant in self.merchants]
        self.operator = self.context.link.new_sender().address
        self.hub = self.context.link.network.hub.address
        self.token = self.context.link.network.token.address
        self.start_block = int(rpc_call(self.rpc_url, "eth_blockNumber"), 16)
        self.close_context()
        self.engine = make_engine(self.settings.effective_database_url)
        for role in ROLES:
            self.spawn_role(role)
        self.wait_api()
        self.lift_merchant_limits(timeout=120)
        return self

    def spawn_role(self, role: str, fault: str | None = None) -> None:
        """``pointsnet serve --role ROLE`` (with a fault point where it dies, if given)."""
        self.spawn(role, "--role", role, fault=fault)

    def supervise(self) -> None:
        """Restart every role that is not running (a crash, or a fault point it reached)."""
        with self.lock:
            for role in ROLES:
                if role in self.planned_down:
                    continue
                proc = self.processes.get(role)
                if proc is None or proc.poll() is not None:
                    if proc is not None and proc.returncode != -signal.SIGKILL:
                        self.unplanned_exits += 1
                        self.progress(f"{role} exited with {proc.returncode}; restarting it")
                    self.spawn_role(role)
            if self.node is None and "anvil" not in self.planned_down:
                self.start_anvil()

    def wait_api(self, timeout: float = 90.0) -> None:
        self.wait_healthy(timeout, while_waiting=self.supervise)

    def wait_drained(self, timeout: float) -> bool:
        """Supervise until no event, op or stored transaction is in flight; False on timeout."""
        assert self.engine is not None
        return wait_drained(self.engine, timeout, poll=0.3, between=self.supervise)

    def __exit__(self, *_exc: object) -> None:
        self.stop_processes(signal.SIGTERM, timeout=20)
        if self.engine is not None:
            self.engine.dispose()
        super().__exit__()
