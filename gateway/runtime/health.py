"""Readiness: can this deployment take events and get them on chain?

Responsibilities:

- read the figures readiness and metrics share, from the database (worker
  lag, indexed block) and the RPC endpoint (head, chain id, signer
  balances), with a short RPC timeout so a dead node answers fast;
- judge them against the ``POINTSNET_READY_*`` thresholds: database
  reachable, RPC reachable on the configured chain id, every signer key
  above the minimum balance, the oldest unconfirmed event younger than the
  worker-lag limit, the indexer within its block-lag limit.

Every figure comes from shared state (database, chain), so any process of a
deployment gives the same answer whichever role it runs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, text
from web3 import Web3

from chain.signers import signer_addresses
from gateway.context import GatewayContext
from gateway.models import Event, IndexedBlock, Redemption

#: Seconds an RPC call of a probe may take.
RPC_TIMEOUT = 2.0

#: Event statuses that wait for the outbox worker (accepted) or the chain (submitted).
UNCONFIRMED_EVENTS = ("accepted", "submitted")


@dataclass
class Observation:
    """What a probe saw; ``None`` where the source could not be read."""

    database_ok: bool = False
    database_error: str | None = None
    oldest_pending_age: float | None = None  # seconds; 0 when nothing waits
    oldest_in_flight_age: float | None = None
    indexed_block: int | None = None
    rpc_ok: bool = False
    rpc_error: str | None = None
    chain_id: int | None = None
    head: int | None = None
    balances: dict[str, int] = field(default_factory=dict)
    signers_error: str | None = None

    @property
    def worker_lag(self) -> float | None:
        """Age of the oldest event not yet confirmed on chain (seconds)."""
        ages = [a for a in (self.oldest_pending_age, self.oldest_in_flight_age) if a is not None]
        return max(ages) if ages else None


class ReadinessProbe:
    """Reads the shared state and judges readiness; one per process."""

    def __init__(self, context: GatewayContext) -> None:
        self.context = context
        self.settings = context.settings
        self.w3 = Web3(
            Web3.HTTPProvider(self.settings.rpc_url, request_kwargs={"timeout": RPC_TIMEOUT})
        )
        self._addresses: list[str] | None = None
        self._start_block = int(context.link.deployment.block)

    def signers(self) -> list[str]:
        if self._addresses is None:
            self._addresses = signer_addresses(self.settings)
        return self._addresses

    # ------------------------------------------------------------------ reading

    def observe(self) -> Observation:
        seen = Observation()
        self._observe_database(seen)
        self._observe_chain(seen)
        return seen

    def _observe_database(self, seen: Observation) -> None:
        now = datetime.now(UTC)
        try:
            with self.context.sessions() as session:
                session.execute(text("SELECT 1"))
                ages = {}
                for status in UNCONFIRMED_EVENTS:
                    oldest = session.scalar(
                        select(func.min(Event.created_at)).where(Event.status == status)
                    )
                    ages[status] = _age(now, oldest)
                oldest_redemption = session.scalar(
                    select(func.min(Redemption.created_at)).where(Redemption.status == "submitted")
                )
                seen.indexed_block = session.scalar(select(func.max(IndexedBlock.number)))
        except Exception as exc:  # any failure means "not reachable" to a probe
            seen.database_error = f"{type(exc).__name__}: {str(exc)[:200]}"
            return
        seen.database_ok = True
        seen.oldest_pending_age = ages["accepted"]
        seen.oldest_in_flight_age = max(ages["submitted"], _age(now, oldest_redemption))

    def _observe_chain(self, seen: Observation) -> None:
        try:
            addresses = self.signers()
        except Exception as exc:  # an unreadable keystore file, say
            seen.signers_error = f"{type(exc).__name__}: {str(exc)[:200]}"
            addresses = []
        try:
            seen.chain_id = int(self.w3.eth.chain_id)
            seen.head = int(self.w3.eth.block_number)
            for address in addresses:
                seen.balances[address] = int(
                    self.w3.eth.get_balance(Web3.to_checksum_address(address))
                )
        except Exception as exc:  # connection refused, timeout, bad answer
            seen.rpc_error = f"{type(exc).__name__}: {str(exc)[:200]}"
            return
        seen.rpc_ok = True

    def indexer_lag(self, seen: Observation) -> int | None:
        """Confirmed blocks the indexer has not read yet."""
        if seen.head is None:
            return None
        confirmed = seen.head - self.settings.confirmations
        indexed = seen.indexed_block if seen.indexed_block is not None else self._start_block - 1
        return max(0, confirmed - indexed)

    # ------------------------------------------------------------------ judging

    def check(self) -> dict[str, Any]:
        """``{"ready": bool, "failing": [names], "checks": {name: {"ok": bool, ...}}}``."""
        started = time.monotonic()
        seen = self.observe()
        settings = self.settings
        checks: dict[str, dict[str, Any]] = {}
        checks["database"] = {"ok": seen.database_ok}
        if seen.database_error:
            checks["database"]["error"] = seen.database_error
        rpc: dict[str, Any] = {"ok": seen.rpc_ok, "expected_chain_id": settings.chain_id}
        if seen.rpc_error:
            rpc["error"] = seen.rpc_error
        if seen.chain_id is not None:
            rpc["chain_id"] = seen.chain_id
            if seen.chain_id != settings.chain_id:
                rpc["ok"] = False
                rpc["error"] = f"the RPC endpoint serves chain {seen.chain_id}"
        checks["rpc"] = rpc
        minimum = int(settings.ready_min_signer_balance_eth * 10**18)
        low = {a: b for a, b in seen.balances.items() if b < minimum}
        checks["signers"] = {
            "ok": seen.rpc_ok and not low and seen.signers_error is None,
            "minimum_wei": minimum,
            "balances_wei": {a: str(b) for a, b in seen.balances.items()},
        }
        if low:
            checks["signers"]["below_minimum"] = sorted(low)
        if seen.signers_error:
            checks["signers"]["error"] = seen.signers_error
        lag = seen.worker_lag
        checks["worker_lag"] = {
            "ok": lag is not None and lag <= settings.ready_max_worker_lag,
            "seconds": None if lag is None else round(lag, 3),
            "limit_seconds": settings.ready_max_worker_lag,
        }
        indexer_lag = self.indexer_lag(seen)
        checks["indexer_lag"] = {
            "ok": indexer_lag is not None and indexer_lag <= settings.ready_max_indexer_lag,
            "blocks": indexer_lag,
            "limit_blocks": settings.ready_max_indexer_lag,
        }
        failing = [name for name, check in checks.items() if not check["ok"]]
        return {
            "ready": not failing,
            "failing": failing,
            "checks": checks,
            "took_ms": round((time.monotonic() - started) * 1000, 1),
        }


def _age(now: datetime, moment: datetime | None) -> float:
    if moment is None:
        return 0.0
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return max(0.0, (now - aware).total_seconds())
