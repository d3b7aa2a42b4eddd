"""Multi-process gateway on PostgreSQL beside the single process on SQLite, same event mix.

Usage::

    .venv/bin/python -m bench.multiprocess --events 4000 \\
        --database-url postgresql://postgres@127.0.0.1:5432/test

For each setup a fresh stack (its own anvil with a 1e9 gas limit, the
contracts, the four merchants of ``pointsnet bench e2e`` with their
merchant-wide velocity limits lifted) takes the same deterministic event mix
(``bench.e2e.workload.Workload``: new and returning customers' purchases,
refunds, check-ins, reviews) through ``POST /v1/events/batch`` from
``--clients`` concurrent HTTP clients, as fast as it answers; the clock stops
when the outbox is drained.  Setups:

- ``sqlite x1``: ``pointsnet serve --role all --in-process`` (one process, one signer key);
- ``postgres x1``: the same on PostgreSQL;
- ``postgres multi``: ``serve --role api --workers A`` behind one port,
  ``--worker-processes`` times ``serve --role worker --signer-index i`` (one key
  each) and ``serve --role indexer``.

Prints a table (and ``--json``) of accepted and confirmed events per second,
event→confirmed latency, issuances per issueBatch and transactions per key.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from bench.e2e.config import E2EConfig
from bench.e2e.load import Request, build_requests, parse_answer
from bench.e2e.stack import GatewayStack
from bench.e2e.workload import Workload
from chain.deploy import deploy
from gateway.models import ChainOp, ChainTx, Event


@dataclass
class Setup:
    label: str
    database_url: str | None  # None: SQLite
    api_workers: int = 1  # uvicorn processes of the API role (split only)
    worker_processes: int = 0  # 0: one `serve --role all` process


@dataclass
class Figures:
    setup: str
    processes: str
    events: int
    accepted: int
    accept_seconds: float
    drain_seconds: float
    confirmed: int
    other_outcomes: dict[str, int]
    latency_p50: float
    latency_p95: float
    issuances_per_issue_tx: float
    txs_per_signer: list[int] = field(default_factory=list)

    @property
    def accepted_per_s(self) -> float:
        return self.accepted / self.accept_seconds

    @property
    def confirmed_per_s(self) -> float:
        return self.confirmed / self.drain_seconds


class Stack(GatewayStack):
    """The e2e bench's stack with the roles spread over several processes and signer keys."""

    def __init__(self, config: E2EConfig, setup: Setup) -> None:
        super().__init__(config, setup.label.replace(" ", "-"), lambda _m: None)
        self.setup = setup
        self.signers = max(1, setup.worker_processes)
        self.env["POINTSNET_SIGNERS"] = str(self.signers)

    def _start_server(self) -> None:
        if self.signers > 1:  # give the extra signer keys the issuer role and gas
            deploy(self.settings.model_copy(update={"signers": self.signers}))
        if self.setup.worker_processes == 0:
            self.spawn("all", "--role", "all", "--in-process")
        else:
            self.spawn("api", "--role", "api", "--workers", str(self.setup.api_workers))
            for i in range(self.setup.worker_processes):
                self.spawn(f"worker-{i}", "--role", "worker", f"--signer-index={i}")
            self.spawn("indexer", "--role", "indexer")
        self.wait_healthy(timeout=90)


async def send_all(stack: Stack, requests: list[Request], clients: int) -> Counter[str]:
    """Send every request from ``clients`` concurrent clients; count the event outcomes."""
    queue: asyncio.Queue[Request] = asyncio.Queue()
    for request in requests:
        queue.put_nowait(request)
    outcomes: Counter[str] = Counter()
    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(
        base_url=stack.url, timeout=600, trust_env=False, limits=limits
    ) as http:

        async def client() -> None:
            while not queue.empty():
                request = queue.get_nowait()
                headers = {**stack.headers(request.merchant), "Content-Type": "application/json"}
                try:
                    response = await http.post(request.path, content=request.body, headers=headers)
                except httpx.HTTPError as exc:  # the server dropped the connection
                    outcomes[f"transport_{type(exc).__name__}"] += len(request.keys)
                    continue
                _accepted, counted = parse_answer(request, response)
                outcomes.update(counted)

        await asyncio.gather(*(client() for _ in range(clients)))
    return outcomes


def run(
    setup: Setup, events: int, clients: int, batch: int, say: Any, keep: bool = False
) -> Figures:
    config = E2EConfig(events=events, database_url=setup.database_url, gas_limit=10**9, keep=keep)
    stack = Stack(config, setup)
    with stack:
        say(f"{setup.label}: stack up in {stack.data_dir}")
        planned = Workload(seed=20261123, tag=stack.label, refund_lag=200).take(events, "sat")
        requests = build_requests(planned, "batch", batch)
        started = time.monotonic()
        outcomes = asyncio.run(send_all(stack, requests, clients))
        accept_seconds = time.monotonic() - started
        say(f"{setup.label}: {sum(outcomes.values())} events answered in {accept_seconds:.1f} s")
        if not stack.wait_drained(1800):
            raise RuntimeError(f"{setup.label}: the outbox did not drain in 30 minutes")
        drain_seconds = time.monotonic() - started
        assert stack.engine is not None
        with stack.engine.connect() as conn:
            rows = conn.execute(
                select(Event.created_at, Event.updated_at).where(Event.status == "confirmed")
            ).all()
            latencies = sorted((u - c).total_seconds() for c, u in rows)
            per_tx = conn.execute(
                select(func.count(ChainOp.id))
                .join(ChainTx, ChainTx.id == ChainOp.tx_id)
                .where(ChainTx.kind == "issue", ChainTx.status == "confirmed")
                .group_by(ChainTx.id)
            ).all()
            by_sender = conn.execute(
                select(ChainTx.sender, func.count(ChainTx.id)).group_by(ChainTx.sender)
            ).all()
        if setup.worker_processes:
            processes = (
                f"api x{setup.api_workers} (uvicorn workers), "
                f"{setup.worker_processes} worker processes (1 key each), indexer"
            )
        else:
            processes = "1 (serve --role all, 1 key)"
        quantiles = statistics.quantiles(latencies, n=20) if len(latencies) > 1 else [0.0] * 19
        return Figures(
            setup=setup.label,
            processes=processes,
            events=events,
            accepted=sum(v for k, v in outcomes.items() if k in ("accepted", "confirmed")),
            accept_seconds=accept_seconds,
            drain_seconds=drain_seconds,
            confirmed=len(latencies),
            other_outcomes={k: v for k, v in outcomes.items() if k not in ("accepted",)},
            latency_p50=statistics.median(latencies) if latencies else 0.0,
            latency_p95=quantiles[18],
            issuances_per_issue_tx=(sum(n for (n,) in per_tx) / len(per_tx) if per_tx else 0.0),
            txs_per_signer=sorted((int(n) for _s, n in by_sender), reverse=True),
        )


def table(figures: list[Figures]) -> str:
    rows = [
        ("processes", [f.processes for f in figures]),
        ("events sent", [f"{f.events:,}" for f in figures]),
        ("accepted (202)", [f"{f.accepted:,}" for f in figures]),
        ("**accepted events/s**", [f"{f.accepted_per_s:.0f}" for f in figures]),
        ("confirmed", [f"{f.confirmed:,}" for f in figures]),
        ("**confirmed events/s** (first request → outbox drained)",
         [f"{f.confirmed_per_s:.0f}" for f in figures]),
        ("accept / drain time (s)",
         [f"{f.accept_seconds:.0f} / {f.drain_seconds:.0f}" for f in figures]),
        ("event→confirmed p50 / p95 (s)",
         [f"{f.latency_p50:.1f} / {f.latency_p95:.1f}" for f in figures]),
        ("issuances per issueBatch", [f"{f.issuances_per_issue_tx:.1f}" for f in figures]),
        ("txs per signer key", [", ".join(map(str, f.txs_per_signer)) for f in figures]),
        ("other outcomes", [", ".join(f"{k} {v}" for k, v in sorted(f.other_outcomes.items()))
                            or "-" for f in figures]),
    ]  # fmt: skip
    lines = ["| figure | " + " | ".join(f.setup for f in figures) + " |"]
    lines.append("|---|" + "---:|" * len(figures))
    lines += [f"| {name} | " + " | ".join(values) + " |" for name, values in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=4000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--api-workers", type=int, default=2)
    parser.add_argument("--worker-processes", type=int, default=2)
    parser.add_argument(
        "--setups", default="sqlite-x1,postgres-x1,postgres-multi", help="comma-separated"
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--keep", action="store_true", help="keep each stack's logs")
    args = parser.parse_args()

    def say(message: str) -> None:
        sys.stderr.write(f"[{time.strftime('%H:%M:%S')}] {message}\n")

    catalogue = {
        "sqlite-x1": Setup("sqlite x1", None),
        "postgres-x1": Setup("postgres x1", args.database_url),
        "postgres-multi": Setup(
            "postgres multi", args.database_url, args.api_workers, args.worker_processes
        ),
    }
    figures = []
    for name in args.setups.split(","):
        setup = catalogue[name]
        figures.append(run(setup, args.events, args.clients, args.batch_size, say, args.keep))
        say(f"{name}: {figures[-1].confirmed_per_s:.0f} confirmed events/s")
    sys.stdout.write(table(figures) + "\n")
    if args.json:
        args.json.write_text(json.dumps([asdict(f) for f in figures], indent=2) + "\n")


if __name__ == "__main__":
    main()
