"""The figures of one phase, read from the load result and the gateway's database."""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import select

from bench.e2e.config import IN_FLIGHT
from bench.e2e.load import LoadResult
from bench.e2e.stack import GatewayStack
from gateway.timeutil import aware


def pct(values: list[float], q: float) -> float:
    """The ``q``-th percentile (nearest rank) of ``values``; NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[rank]


@dataclass
class PhaseFigures:
    """Everything the table shows for one phase (or one naive variant)."""

    name: str
    events: int
    offered_rate: float | None
    planned: int = 0
    accepted: int = 0
    confirmed: int = 0
    on_chain: int = 0  # confirmed events that carried at least one on-chain op
    unfinished: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    mix: dict[str, int] = field(default_factory=dict)
    send_seconds: float = 0.0
    confirm_seconds: float = 0.0
    accepted_per_s: float = 0.0
    confirmed_per_s: float = 0.0
    steady_confirmed_per_s: float = 0.0  # best 10-s window
    accept_ms: dict[str, float] = field(default_factory=dict)
    confirm_s: dict[str, float] = field(default_factory=dict)  # all events, DB timestamps
    polled_s: dict[str, float] = field(default_factory=dict)  # sampled, client polling
    polled_samples: int = 0
    gas: dict[str, float] = field(default_factory=dict)
    txs: dict[str, int] = field(default_factory=dict)
    server_cpu_s: float = math.nan
    server_peak_rss_mib: float = math.nan
    anvil_cpu_s: float = math.nan
    database_cpu_s: float = math.nan  # a local PostgreSQL server's processes, if used
    client_cpu_s: float = math.nan
    cpu_by_role: dict[str, float] = field(default_factory=dict)  # gateway process trees
    processes_by_role: dict[str, int] = field(default_factory=dict)  # live at the phase's end
    txs_by_sender: dict[str, int] = field(default_factory=dict)  # confirmed, per signer lane
    last_base_fee_wei: float = math.nan  # the chain's latest block at the end of the phase
    timeline: list[int] = field(default_factory=list)  # confirmed per second from phase start
    note: str = ""
    extrapolated: bool = False

    def ms(self, values: list[float]) -> dict[str, float]:
        return {f"p{q}": pct(values, q) * 1000 for q in (50, 95, 99)}


def quantiles_s(values: list[float]) -> dict[str, float]:
    return {f"p{q}": pct(values, q) for q in (50, 95, 99)}


def per_second(t0: float, moments: list[float]) -> list[int]:
    if not moments:
        return []
    bins = [0] * (int(max(moments) - t0) + 1)
    for moment in moments:
        bins[max(0, int(moment - t0))] += 1
    return bins


def best_window(timeline: list[int], width: int = 10) -> float:
    if not timeline:
        return 0.0
    width = min(width, len(timeline))
    return max(sum(timeline[i : i + width]) for i in range(len(timeline) - width + 1)) / width


def read_phase(stack: GatewayStack, figures: PhaseFigures, load: LoadResult, prefix: str) -> None:
    """Fill ``figures`` from the load result and the gateway's database."""
    from gateway.models import ChainOp, ChainTx, Event

    assert stack.engine is not None
    send_wall: dict[str, float] = {}
    outcomes: Counter[str] = Counter()
    accept_latency: list[float] = []
    for s in load.sent:
        outcomes.update(s.outcomes)
        accept_latency.extend([s.end - s.scheduled] * s.n_events)
        for key in s.accepted:
            send_wall[key] = s.wall_start
    figures.outcomes = dict(outcomes)
    figures.accepted = sum(len(s.accepted) for s in load.sent)
    figures.send_seconds = load.t1_wall - load.t0_wall
    figures.accepted_per_s = figures.accepted / figures.send_seconds
    figures.accept_ms = figures.ms(accept_latency)
    figures.polled_s = quantiles_s(load.polled)
    figures.polled_samples = len(load.polled)
    figures.client_cpu_s = load.client_cpu
    with stack.engine.connect() as conn:
        rows = conn.execute(
            select(
                Event.idempotency_key, Event.status, Event.updated_at, Event.tx_hash,
                Event.points, Event.clawback,
            ).where(Event.idempotency_key.like(prefix + "%"))
        ).all()  # fmt: skip
        tx_rows = conn.execute(
            select(ChainTx.id, ChainTx.kind, ChainTx.gas_used, ChainTx.status, ChainTx.sender)
            .where(
                ChainTx.id.in_(
                    select(ChainOp.tx_id)
                    .join(Event, Event.id == ChainOp.event_id)
                    .where(Event.idempotency_key.like(prefix + "%"))
                )
            )
            .order_by(ChainTx.id)
        ).all()
        tx_ids = [r.id for r in tx_rows]
        op_rows = conn.execute(
            select(ChainOp.tx_id, ChainOp.kind, ChainOp.member_address, ChainOp.id)
            .where(ChainOp.tx_id.in_(tx_ids), ChainOp.status == "confirmed")
            .order_by(ChainOp.id)
        ).all()
        seen_before = {
            r[0]
            for r in conn.execute(
                select(ChainOp.member_address).where(
                    ChainOp.kind == "issue",
                    ChainOp.status == "confirmed",
                    ChainOp.tx_id.not_in(tx_ids or [-1]),
                    ChainOp.id < (min(r.id for r in op_rows) if op_rows else 0),
                )
            )
        }
    confirm_moments: list[float] = []
    confirm_latency: list[float] = []
    for row in rows:
        if row.status == "confirmed":
            figures.confirmed += 1
            figures.on_chain += 1 if row.tx_hash else 0
            moment = aware(row.updated_at).timestamp()
            confirm_moments.append(moment)
            if row.idempotency_key in send_wall:
                confirm_latency.append(moment - send_wall[row.idempotency_key])
        elif row.status in IN_FLIGHT:
            figures.unfinished += 1
    figures.confirm_s = quantiles_s(confirm_latency)
    if confirm_moments:
        figures.confirm_seconds = max(confirm_moments) - load.t0_wall
        figures.confirmed_per_s = figures.confirmed / figures.confirm_seconds
    figures.timeline = per_second(load.t0_wall, confirm_moments)
    figures.steady_confirmed_per_s = best_window(figures.timeline)
    _gas_figures(figures, tx_rows, op_rows, seen_before)


def _gas_figures(
    figures: PhaseFigures, tx_rows: Sequence[Any], op_rows: Sequence[Any], seen_before: set[str]
) -> None:
    """Gas per event from ``chain_txs.gas_used``: all-in, and per issuance (new / existing)."""
    ops_by_tx: dict[int, list[Any]] = {}
    for op in op_rows:
        ops_by_tx.setdefault(op.tx_id, []).append(op)
    kinds: Counter[str] = Counter()
    senders: Counter[str] = Counter()
    total = 0
    samples: list[tuple[int, int, int]] = []  # (gas, new members, existing members)
    seen = set(seen_before)
    for tx in tx_rows:
        if tx.status != "confirmed" or tx.gas_used is None:
            continue
        kinds[tx.kind] += 1
        senders[tx.sender] += 1
        total += int(tx.gas_used)
        if tx.kind == "issue":
            new = existing = 0
            for op in ops_by_tx.get(tx.id, []):
                if op.member_address in seen:
                    existing += 1
                else:
                    new += 1
                    seen.add(op.member_address)
            if new + existing:
                samples.append((int(tx.gas_used), new, existing))
    figures.txs = dict(kinds)
    figures.txs_by_sender = dict(senders.most_common())
    figures.gas["all_in_per_event"] = total / figures.events if figures.events else math.nan
    issued = sum(n + e for _g, n, e in samples)
    figures.gas["issue_per_op"] = sum(g for g, _n, _e in samples) / issued if issued else math.nan
    figures.gas["issue_ops_per_tx"] = issued / len(samples) if samples else math.nan
    fit = _fit_new_existing(samples)
    if fit is not None:
        figures.gas["fixed_per_tx"], figures.gas["new_member"], figures.gas["existing_member"] = fit


def _fit_new_existing(samples: list[tuple[int, int, int]]) -> tuple[float, float, float] | None:
    """Least squares ``gas = a + b*new + c*existing`` over issueBatch transactions.

    None when the batches do not vary enough in their mix to tell b from c.
    """
    if len(samples) < 6:
        return None
    xs = [(1.0, float(n), float(e)) for _g, n, e in samples]
    ys = [float(g) for g, _n, _e in samples]
    ata = [[sum(x[i] * x[j] for x in xs) for j in range(3)] for i in range(3)]
    aty = [sum(x[i] * y for x, y in zip(xs, ys, strict=True)) for i in range(3)]

    def det(m: list[list[float]]) -> float:
        return (
            m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
            - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
            + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
        )

    d = det(ata)
    scale = max(abs(v) for row in ata for v in row) ** 3
    if scale == 0 or abs(d) / scale < 1e-12:
        return None
    solution = []
    for k in range(3):
        m = [row[:] for row in ata]
        for i in range(3):
            m[i][k] = aty[i]
        solution.append(det(m) / d)
    a, b, c = solution
    if b <= 0 or c <= 0:
        return None
    return a, b, c


@dataclass
class ModeResult:
    mode: str
    phases: list[PhaseFigures]
    db_bytes: int  # with the gateway stopped, after a full checkpoint
    db_events: int
    server_peak_rss_mib: float
    wal_peak_bytes: int  # SQLite: the largest the write-ahead log grew during the run
    profile: dict[str, Any] = field(default_factory=dict)
    #: With --instrument: SQL statements and write-lock waits/holds by role and caller.
    instrument: dict[str, Any] = field(default_factory=dict)


@dataclass
class E2EReport:
    config: dict[str, Any]
    machine: dict[str, str]
    modes: list[ModeResult]
    naive: list[PhaseFigures]
    started: str
    seconds: float
    relayer: list[PhaseFigures] = field(default_factory=list)

    @property
    def baselines(self) -> list[PhaseFigures]:
        """The baseline columns: the pipelined relayer, then the naive variants."""
        return self.relayer + self.naive

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, default=str)
