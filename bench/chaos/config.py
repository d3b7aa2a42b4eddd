"""``pointsnet chaos``: its options, its report, and its workload."""

from __future__ import annotations

import random
import threading
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.stack import Progress as Progress  # the harnesses' progress callback

#: What a kill cycle can hit.
TARGETS = ("api", "worker", "indexer", "anvil")
#: Gateway roles, each its own process.
ROLES = ("api", "worker", "indexer")
#: (name, currency, smallest order, largest order) of the chaos merchants.
MERCHANTS: tuple[tuple[str, str, int, int], ...] = (
    ("Lumière Paris", "EUR", 20, 300),
    ("Sakura Goods", "JPY", 2_000, 40_000),
    ("Maple & Co", "USD", 15, 250),
)
#: Worker fault points (see gateway.faults) a restarted worker may be given.
FAULTS = ("after_store", "after_broadcast", "before_receipt")
#: HTTP answers a merchant retries with the same Idempotency-Key.
RETRY_STATUS = frozenset({409, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class ChaosConfig:
    """What to run; the CLI's options."""

    cycles: int = 100
    events: int = 3_000
    seed: int = 1
    data_dir: Path | None = None  # default: a temporary directory, removed unless keep
    clients: int = 4
    block_time: float = 1.0
    rate: float | None = None  # events/s offered; default: spread over the kill cycles
    pause: tuple[float, float] = (0.5, 2.5)  # seconds between two kill cycles
    down: tuple[float, float] = (0.0, 1.5)  # seconds a victim stays down
    fault_share: float = 0.3  # share of worker restarts given a fault point
    tx_stuck_after: float = 5.0  # the worker's fee-bump delay (anvil restarts drop its mempool)
    drain_timeout: float = 300.0
    keep: bool = False


@dataclass
class ChaosReport:
    """The figures of one run; ``ok`` when nothing was lost, doubled or drifted."""

    seed: int
    cycles_planned: int
    cycles_survived: int = 0
    kills: dict[str, int] = field(default_factory=dict)
    faults: dict[str, int] = field(default_factory=dict)
    unplanned_exits: int = 0
    events_planned: int = 0
    events_sent: int = 0
    requests: int = 0
    retries: int = 0
    accepted: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    confirmed: int = 0
    lost: int = 0
    doubled: int = 0
    unconfirmed: int = 0
    balance_mismatches: int = 0
    points_expected: int = 0
    points_on_chain: int = 0
    seq_reused: int = 0
    nonce_drift: int = 0
    nonce_unrecorded: int = 0
    nonce_duplicates: int = 0
    unfinished_txs: int = 0
    drained: bool = False
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)
    data_dir: str = ""

    @property
    def ok(self) -> bool:
        return (
            self.drained
            and self.cycles_survived == self.cycles_planned
            and self.events_sent == self.events_planned
            and not (self.lost or self.doubled or self.unconfirmed or self.balance_mismatches)
            and not (self.seq_reused or self.nonce_drift or self.nonce_unrecorded)
            and not (self.nonce_duplicates or self.unfinished_txs)
            and self.points_expected == self.points_on_chain
        )

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


# ---------------------------------------------------------------- workload


@dataclass(frozen=True)
class ChaosEvent:
    """One merchant event to send."""

    merchant: int
    key: str
    body: dict[str, Any]


def workload(config: ChaosConfig) -> list[ChaosEvent]:
    """Purchases (new and returning customers) and check-ins, deterministic per seed.

    A customer's successive events fall on successive past days, so daily caps
    never zero them and the points the answer promises are the points issued.
    """
    rng = random.Random(config.seed)
    start = datetime.now(UTC).replace(hour=10, minute=0, second=0, microsecond=0)
    start -= timedelta(days=400)
    customers: list[list[str]] = [[] for _ in MERCHANTS]
    days: Counter[str] = Counter()
    run = f"s{config.seed}"
    out: list[ChaosEvent] = []
    for index in range(config.events):
        merchant = rng.randrange(len(MERCHANTS))
        pool = customers[merchant]
        roll = rng.random()
        if not pool or roll < 0.35:
            customer = f"{run}-m{merchant}-c{len(pool)}"
            pool.append(customer)
        else:
            customer = rng.choice(pool)
        when = start + timedelta(days=days[customer], minutes=rng.randrange(600))
        days[customer] += 1
        body: dict[str, Any] = {
            "customer_id": customer,
            "occurred_at": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "device_id": f"dev-{customer}",
        }
        if roll > 0.85:
            body["type"] = "check_in"
        else:
            _name, currency, low, high = MERCHANTS[merchant]
            amount = rng.randint(low, high)
            body["type"] = "purchase"
            body["order"] = {
                "id": f"{run}-o{index}",
                "amount": f"{amount}.00",
                "currency": currency,
                "items": [{"sku": f"sku-{rng.randrange(100)}", "category": "apparel",
                           "amount": f"{amount}.00", "eco": rng.random() < 0.1}],
            }  # fmt: skip
        out.append(ChaosEvent(merchant, f"chaos-{run}-{index}", body))
    return out


@dataclass
class Answers:
    """What the merchants were told, by idempotency key."""

    accepted: dict[str, dict[str, Any]] = field(default_factory=dict)
    refused: Counter[str] = field(default_factory=Counter)
    sent: int = 0
    requests: int = 0
    retries: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
