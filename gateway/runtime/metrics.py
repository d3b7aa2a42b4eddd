"""Prometheus metrics, computed from the database when scraped.

Responsibilities:

- a custom collector that reads the shared state at scrape time, so every
  process of a deployment (``--role api`` behind uvicorn workers, several
  worker processes) reports the same, complete figures and no process has to
  count anything itself:

  ========================================  =========  ================================
  metric                                    type       from
  ========================================  =========  ================================
  ``pointsnet_events{status}``              gauge      events by status
  ``pointsnet_chain_ops{kind,status}``      gauge      the outbox
  ``pointsnet_chain_txs{kind,status}``      gauge      stored transactions
  ``pointsnet_issue_batch_size``            histogram  issuances per mined issue tx
  ``pointsnet_tx_latency_seconds``          histogram  sent → confirmed (see below)
  ``pointsnet_gas_used_total{kind}``        counter    gas of every mined tx
  ``pointsnet_worker_lag_seconds{stage}``   gauge      oldest event waiting to be sent
                                                       (pending) or mined (in_flight)
  ``pointsnet_indexer_lag_blocks``          gauge      confirmed head - indexed block
  ``pointsnet_chain_head_block``            gauge      the RPC endpoint's head
  ``pointsnet_signer_balance_wei{signer}``  gauge      each signer key's balance
  ``pointsnet_database_up``, ``_rpc_up``    gauge      whether the sources answered
  ========================================  =========  ================================

- tx latency is from the worker's broadcast (``chain_txs.sent_at``) to the
  worker's confirming commit (the earliest ``updated_at`` of the events the
  transaction confirmed), for transactions that carry events (issuances and
  clawbacks); it includes the confirmation depth.

The histograms and the gas counter are recomputed from every stored row on
each scrape: cumulative and monotonic as Prometheus expects, at a cost that
grows with the history (see docs/PRODUCTION.md).  So one computed answer is
served for ``metrics_max_age`` seconds, and concurrent scrapes wait for the one
computation in progress rather than each starting their own: however often
``/metrics`` is called, the database reads the history at most once per
period.  With ``metrics_token`` set, ``/metrics`` answers only that bearer
token.
"""

from __future__ import annotations

import hmac
import threading
import time
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Sequence

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString
from sqlalchemy import func, select

from gateway.context import GatewayContext
from gateway.errors import Unauthorized
from gateway.models import ChainOp, ChainTx, Event
from gateway.runtime.health import Observation, ReadinessProbe
from gateway.timeutil import aware as _aware

#: Buckets of the issue batch size histogram (issuances per issueBatch transaction).
BATCH_BUCKETS: tuple[float, ...] = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
#: Buckets of the tx latency histogram (seconds).
LATENCY_BUCKETS: tuple[float, ...] = (0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600)


class GatewayCollector(Collector):
    """Reads the database (and, through the readiness probe, the chain) at scrape time."""

    def __init__(self, context: GatewayContext, probe: ReadinessProbe) -> None:
        self.context = context
        self.probe = probe

    def collect(self) -> Iterator[Metric]:
        seen = self.probe.observe()
        yield _gauge("pointsnet_database_up", "1 if the database answered", seen.database_ok)
        yield _gauge("pointsnet_rpc_up", "1 if the RPC endpoint answered", seen.rpc_ok)
        if seen.database_ok:
            try:
                yield from self._from_database(seen)
            except Exception:  # the database went away mid-scrape: report what we have
                yield _gauge("pointsnet_database_scrape_failed", "1 if a query failed", 1)
        if seen.rpc_ok:
            yield from self._from_chain(seen)

    # ------------------------------------------------------------------ database

    def _from_database(self, seen: Observation) -> Iterator[Metric]:
        with self.context.sessions() as session:
            events = session.execute(select(Event.status, func.count()).group_by(Event.status))
            ops = session.execute(
                select(ChainOp.kind, ChainOp.status, func.count()).group_by(
                    ChainOp.kind, ChainOp.status
                )
            )
            txs = session.execute(
                select(ChainTx.kind, ChainTx.status, func.count()).group_by(
                    ChainTx.kind, ChainTx.status
                )
            )
            gas = session.execute(
                select(ChainTx.kind, func.sum(ChainTx.gas_used))
                .where(ChainTx.gas_used.is_not(None))
                .group_by(ChainTx.kind)
            )
            sizes = session.scalars(
                select(func.count(ChainOp.id))
                .join(ChainTx, ChainTx.id == ChainOp.tx_id)
                .where(
                    ChainTx.kind == "issue",
                    ChainTx.status.in_(("confirmed", "failed")),
                    ChainTx.block_number.is_not(None),
                )
                .group_by(ChainTx.id)
            )
            latencies = session.execute(
                select(ChainTx.sent_at, func.min(Event.updated_at))
                .join(Event, Event.tx_hash == ChainTx.tx_hash)
                .where(ChainTx.status == "confirmed", ChainTx.sent_at.is_not(None))
                .group_by(ChainTx.id, ChainTx.sent_at)
            )
            event_counts = [((status,), count) for status, count in events]
            op_counts = [((kind, status), count) for kind, status, count in ops]
            tx_counts = [((kind, status), count) for kind, status, count in txs]
            gas_totals = [((kind,), int(total or 0)) for kind, total in gas]
            batch_sizes = [float(n) for n in sizes]
            latency_values = [
                max(0.0, (_aware(done) - _aware(sent)).total_seconds())
                for sent, done in latencies
                if sent is not None and done is not None
            ]
        yield _labelled(GaugeMetricFamily, "pointsnet_events", "Events by status.",
                        ("status",), event_counts)  # fmt: skip
        yield _labelled(GaugeMetricFamily, "pointsnet_chain_ops", "Outbox ops by kind and status.",
                        ("kind", "status"), op_counts)  # fmt: skip
        yield _labelled(GaugeMetricFamily, "pointsnet_chain_txs",
                        "Stored transactions by kind and status.", ("kind", "status"),
                        tx_counts)  # fmt: skip
        yield _labelled(CounterMetricFamily, "pointsnet_gas_used",
                        "Gas used by mined transactions, by kind.", ("kind",),
                        gas_totals)  # fmt: skip
        yield _histogram(
            "pointsnet_issue_batch_size",
            "Issuances per mined issueBatch transaction.",
            BATCH_BUCKETS,
            batch_sizes,
        )
        yield _histogram(
            "pointsnet_tx_latency_seconds",
            "Seconds from broadcast to the worker's confirming commit (txs carrying events).",
            LATENCY_BUCKETS,
            latency_values,
        )
        lag = GaugeMetricFamily(
            "pointsnet_worker_lag_seconds",
            "Age of the oldest event waiting to be sent (pending) or mined (in_flight).",
            labels=["stage"],
        )
        lag.add_metric(["pending"], seen.oldest_pending_age or 0.0)
        lag.add_metric(["in_flight"], seen.oldest_in_flight_age or 0.0)
        yield lag

    # ------------------------------------------------------------------ chain

    def _from_chain(self, seen: Observation) -> Iterator[Metric]:
        if seen.head is not None:
            yield _gauge("pointsnet_chain_head_block", "Head block of the RPC endpoint.", seen.head)
        lag = self.probe.indexer_lag(seen)
        if lag is not None and seen.database_ok:
            yield _gauge("pointsnet_indexer_lag_blocks", "Confirmed blocks not yet indexed.", lag)
        balances = GaugeMetricFamily(
            "pointsnet_signer_balance_wei", "Balance of each signer key.", labels=["signer"]
        )
        for address, balance in seen.balances.items():
            balances.add_metric([address], float(balance))
        yield balances


class GatewayMetrics:
    """A registry holding the gateway's collector (one per app, not the global one)."""

    def __init__(self, context: GatewayContext, probe: ReadinessProbe) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(GatewayCollector(context, probe))
        settings = context.settings
        self.max_age = settings.metrics_max_age
        token = settings.metrics_token
        self._token = token.get_secret_value().encode() if token is not None else None
        self._lock = threading.Lock()
        self._computed: tuple[float, bytes] | None = None  # (monotonic time, exposition)

    def authorize(self, authorization: str | None) -> None:
        """Refuse a scrape without the configured bearer token (when one is set)."""
        if self._token is None:
            return
        scheme, _, given = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), self._token):
            raise Unauthorized("/metrics needs the metrics bearer token")

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type, computed at most once per ``max_age``."""
        with self._lock:
            now = time.monotonic()
            if self._computed is None or now - self._computed[0] >= self.max_age:
                self._computed = (now, generate_latest(self.registry))
            return self._computed[1], CONTENT_TYPE_LATEST


# ---------------------------------------------------------------------- helpers


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=float(value))


def _labelled(
    family: type[GaugeMetricFamily] | type[CounterMetricFamily],
    name: str,
    documentation: str,
    labels: Sequence[str],
    rows: Iterable[tuple[tuple[str, ...], float]],
) -> Metric:
    metric = family(name, documentation, labels=list(labels))
    for values, number in rows:
        metric.add_metric(list(values), float(number))
    return metric


def _histogram(
    name: str, documentation: str, bounds: Sequence[float], values: Sequence[float]
) -> HistogramMetricFamily:
    """A cumulative histogram of ``values`` over ``bounds`` (plus +Inf)."""
    ordered = sorted(values)
    buckets = [(floatToGoString(b), float(bisect_right(ordered, b))) for b in bounds]
    buckets.append(("+Inf", float(len(ordered))))
    return HistogramMetricFamily(name, documentation, buckets=buckets, sum_value=sum(ordered))
