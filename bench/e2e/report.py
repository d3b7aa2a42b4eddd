"""The e2e bench's report: the table, the ratios to both baselines (the pipelined relayer,
the naive integration), the chain's ceiling, the targets and the chart."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bench.e2e.config import TARGETS
from bench.e2e.figures import E2EReport, ModeResult, PhaseFigures


def _fmt(value: float | None, digits: int = 0, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:,.{digits}f}{unit}"


def chain_ceiling(gas_limit: int, gas_per_event: float, block_time: float | None) -> float | None:
    """Events/s the chain can confirm: block gas ÷ gas per event ÷ block time (None on
    automine, or without a gas figure)."""
    if not block_time or not gas_per_event or math.isnan(gas_per_event):
        return None
    return gas_limit / gas_per_event / block_time


def _ceiling(report: E2EReport, p: PhaseFigures) -> float | None:
    return chain_ceiling(
        int(report.config["gas_limit"]), p.gas.get("all_in_per_event", math.nan),
        report.config["block_time"],
    )  # fmt: skip


def render_table(report: E2EReport) -> Any:
    """The main table: one column per phase and baseline (relayer, naive variants)."""
    from rich.table import Table

    columns: list[PhaseFigures] = [p for m in report.modes for p in m.phases] + report.baselines
    title = "pointsnet bench e2e — " + (
        "automine" if report.config["block_time"] is None else
        f"{report.config['block_time']} s blocks"
    ) + f", {int(report.config['gas_limit']):,} gas per block, base fee 0; " + (
        gateway_layout(report.config)
    )  # fmt: skip
    table = Table(title=title, show_lines=False)
    table.add_column("figure")
    for p in columns:
        table.add_column(p.name + (" *" if p.extrapolated else ""), justify="right")
    db = {m.mode: m for m in report.modes}

    def row(label: str, get: Callable[[PhaseFigures], str]) -> None:
        table.add_row(label, *(get(p) for p in columns))

    row(
        "events sent (of planned)",
        lambda p: f"{p.events:,}" + (f" (of {p.planned:,})" if p.planned > p.events else ""),
    )
    row("offered rate (events/s)", lambda p: _fmt(p.offered_rate) if p.offered_rate else "max")
    row("accepted (202)", lambda p: f"{p.accepted:,}")
    row("events accepted/s", lambda p: _fmt(p.accepted_per_s))
    row("events confirmed/s (first send → last confirm)", lambda p: _fmt(p.confirmed_per_s))
    row("confirmed/s, best 10 s window", lambda p: _fmt(p.steady_confirmed_per_s))
    for q in ("p50", "p95", "p99"):
        table.add_row(f"accept latency {q} (ms)", *(_fmt(p.accept_ms.get(q), 1) for p in columns))
    for q in ("p50", "p95", "p99"):
        table.add_row(
            f"event→confirmed {q} (s, all events)", *(_fmt(p.confirm_s.get(q), 2) for p in columns)
        )
    row(
        "event→confirmed p50/p99 (s, polled sample)",
        lambda p: (
            f"{_fmt(p.polled_s.get('p50'), 2)} / {_fmt(p.polled_s.get('p99'), 2)} "
            f"(n={p.polled_samples})"
            if p.polled_samples
            else "—"
        ),
    )
    row("gas / event, all-in (all txs ÷ events)", lambda p: _fmt(p.gas.get("all_in_per_event")))
    row("gas / issuance, new member", lambda p: _fmt(p.gas.get("new_member")))
    row("gas / issuance, existing member", lambda p: _fmt(p.gas.get("existing_member")))
    row("issuances per issueBatch tx", lambda p: _fmt(p.gas.get("issue_ops_per_tx"), 1))
    row("chain ceiling (events/s: block gas ÷ gas/event ÷ block time)",
        lambda p: _fmt(_ceiling(report, p)))  # fmt: skip
    row("confirmed/s ÷ chain ceiling", lambda p: (
        f"{p.confirmed_per_s / c:.0%}" if (c := _ceiling(report, p)) else "—"))  # fmt: skip
    row("transactions", lambda p: ", ".join(f"{k} {v:,}" for k, v in sorted(p.txs.items())))
    row("gateway CPU (s) / ms per event", lambda p: (
        f"{_fmt(p.server_cpu_s, 1)} / {_fmt(1000 * p.server_cpu_s / max(1, p.events), 2)}"
        if not math.isnan(p.server_cpu_s) else "—"))  # fmt: skip
    row("gateway CPU ms per event, by role", lambda p: ", ".join(
        f"{role} {_fmt(1000 * cpu / p.events, 2)}" for role, cpu in p.cpu_by_role.items()
    ) if p.events and p.cpu_by_role else "—")  # fmt: skip
    row("gateway processes at the end (by role)", lambda p: ", ".join(
        f"{role} {n}" for role, n in p.processes_by_role.items()) or "—")  # fmt: skip
    row("gateway peak RSS (MiB, all its processes)", lambda p: _fmt(p.server_peak_rss_mib))
    row("confirmed txs per signer lane", lambda p: " / ".join(
        f"{n:,}" for n in p.txs_by_sender.values()) or "—")  # fmt: skip
    row("anvil CPU (s)", lambda p: _fmt(p.anvil_cpu_s, 1))
    row("base fee of the last block (wei)", lambda p: _fmt(p.last_base_fee_wei))
    if any(not math.isnan(p.database_cpu_s) for p in columns):
        row("PostgreSQL server CPU (s / ms per event) †", lambda p: (
            f"{_fmt(p.database_cpu_s, 1)} / {_fmt(1000 * p.database_cpu_s / p.events, 2)}"
            if p.events and not math.isnan(p.database_cpu_s) else "—"))  # fmt: skip
    row("load generator / integration CPU (s)", lambda p: _fmt(p.client_cpu_s, 1))

    def per_mode(p: PhaseFigures, figure: Callable[[ModeResult], str]) -> str:
        return next((figure(m) for mode, m in db.items() if p.name.startswith(mode)), "—")

    row(
        "DB size per 10k events (MiB, whole run)",
        lambda p: per_mode(p, lambda m: _fmt(m.db_bytes / max(1, m.db_events) * 10_000 / 2**20, 1)),
    )
    row(
        "SQLite WAL peak (MiB, whole run)",
        lambda p: per_mode(p, lambda m: _fmt(m.wal_peak_bytes / 2**20)),
    )

    row("non-202 / held / rejected", _other_outcomes)
    row("not confirmed at the end", lambda p: f"{p.unfinished:,}")
    return table


def gateway_layout(config: dict[str, Any]) -> str:
    """ "2 API processes, 2 signer lanes, PostgreSQL" from a report's config (reports
    written before these options were one API process and one lane)."""
    from bench.e2e.config import E2EConfig

    return E2EConfig(
        database_url=config.get("database_url"),
        api_processes=int(config.get("api_processes") or 1),
        lanes=int(config.get("lanes") or 1),
        in_process=bool(config.get("in_process")),
    ).layout


#: What the PostgreSQL row counts (printed under the table when it is shown).
POSTGRES_NOTE = (
    "† PostgreSQL server CPU: the local server's shared processes (postmaster, checkpointer, "
    "background and WAL writers, autovacuum; they serve its other databases too) and the "
    "backends connected to this run's database, sampled every 0.25 s"
)


def _other_outcomes(p: PhaseFigures) -> str:
    other = {k: v for k, v in p.outcomes.items() if k not in ("accepted", "confirmed")}
    return ", ".join(f"{k} {v}" for k, v in other.items()) or "0"


def ratios(report: E2EReport) -> list[tuple[str, float, float | None]]:
    """(what, gateway ÷ baseline confirmed/s, baseline gas ÷ gateway gas) for each gateway
    phase against each baseline of the same run (the relayer first)."""
    out: list[tuple[str, float, float | None]] = []
    for mode in report.modes:
        for phase in mode.phases:
            for base in report.baselines:
                if base.confirmed_per_s <= 0:
                    continue
                gas_gw = phase.gas.get("all_in_per_event", math.nan)
                gas_base = base.gas.get("all_in_per_event", math.nan)
                out.append(
                    (
                        f"{phase.name} ÷ {base.name}",
                        phase.confirmed_per_s / base.confirmed_per_s,
                        gas_base / gas_gw if gas_gw and not math.isnan(gas_gw) else None,
                    )
                )
    return out


def target_lines(report: E2EReport) -> list[tuple[str, str, str, bool | None]]:
    """(target, required, measured, met) — None where the run cannot judge it."""
    by_name = {p.name: p for m in report.modes for p in m.phases}
    seq = next((n for n in report.naive if "sequential" in n.name), None)
    relayer = report.relayer[0] if report.relayer else None
    lines: list[tuple[str, str, str, bool | None]] = []

    def best(mode: str) -> PhaseFigures | None:
        found = [p for n, p in by_name.items() if n.startswith(mode)]
        return max(found, key=lambda p: p.confirmed_per_s) if found else None

    for mode, key, label in (
        ("batch", "batch_confirmed_per_s", "events confirmed/s through the batch endpoint"),
        ("single", "single_confirmed_per_s", "events confirmed/s one per request"),
    ):
        phase = best(mode)
        if phase is not None:
            need = TARGETS[key]
            lines.append((label, f"≥ {need:,.0f}", _fmt(phase.confirmed_per_s),
                          phase.confirmed_per_s >= need))  # fmt: skip
    if seq is not None and seq.confirmed_per_s > 0:
        for mode in ("batch", "single"):
            phase = best(mode)
            if phase is not None:
                ratio = phase.confirmed_per_s / seq.confirmed_per_s
                lines.append((f"{mode} ÷ naive sequential (confirmed/s)", "≥ 15x",
                              f"{ratio:,.1f}x", ratio >= TARGETS["ratio_to_naive"]))  # fmt: skip
    lines += _relayer_lines(report, best("batch"), relayer)
    lines += _cost_lines(report)
    rate_single = by_name.get("single / rate")
    if rate_single is not None:
        p99 = rate_single.accept_ms.get("p99", math.nan)
        offered = rate_single.offered_rate or 0
        lines.append((f"accept p99 at {offered:,.0f} events/s offered (single)", "≤ 25 ms",
                      _fmt(p99, 1, " ms"), p99 <= 25 if offered >= 500 else None))  # fmt: skip
    block_time = report.config["block_time"]
    for name, phase in by_name.items():
        if name.endswith("rate"):
            p50 = phase.confirm_s.get("p50", math.nan)
            judged = p50 <= TARGETS["confirm_p50_s_1s_blocks"] if block_time == 1 else None
            mining = "1 s blocks" if block_time == 1 else "automine"
            lines.append((f"event→confirmed p50 ({name}, {mining})",
                          "≤ 1.5 s with 1 s blocks", _fmt(p50, 2, " s"), judged))  # fmt: skip
    return lines


def _relayer_lines(
    report: E2EReport, batch: PhaseFigures | None, relayer: PhaseFigures | None
) -> list[tuple[str, str, str, bool | None]]:
    """The issue's chain-bound targets: ratios to the relayer at 100M and 30M gas per block, and the
    share of the chain's ceiling at 30M; judged only on that chain with 1 s blocks."""
    if batch is None:
        return []
    gas_limit, block_time = int(report.config["gas_limit"]), report.config["block_time"]
    lines: list[tuple[str, str, str, bool | None]] = []
    for limit, key in (
        (100_000_000, "ratio_to_relayer_100m"),
        (30_000_000, "ratio_to_relayer_30m"),
    ):
        need = TARGETS[key]
        judged = gas_limit == limit and block_time == 1
        if relayer is not None and relayer.confirmed_per_s > 0:
            ratio = batch.confirmed_per_s / relayer.confirmed_per_s
            got = f"{ratio:,.2f}x" + ("" if judged else f" (at {gas_limit // 10**6}M)")
            lines.append((f"batch ÷ pipelined relayer, {limit // 10**6}M gas per block",
                          f"≥ {need:g}x", got, ratio >= need if judged else None))  # fmt: skip
    ceiling = _ceiling(report, batch)
    if ceiling:
        share = batch.confirmed_per_s / ceiling
        need = TARGETS["share_of_ceiling_30m"]
        judged = gas_limit == 30_000_000 and block_time == 1
        lines.append(("batch confirmed/s ÷ (block gas ÷ our gas/event), 30M gas per block",
                      f"≥ {need:.0%}", f"{share:.0%} of {ceiling:,.0f}/s",
                      share >= need if judged else None))  # fmt: skip
    return lines


def _cost_lines(report: E2EReport) -> list[tuple[str, str, str, bool | None]]:
    """Gateway CPU per event (batch saturation) and peak RSS (every mode)."""
    lines: list[tuple[str, str, str, bool | None]] = []
    for mode in report.modes:
        for phase in mode.phases:
            if mode.mode == "batch" and phase.name.endswith("saturation") and phase.events:
                ms = 1000 * phase.server_cpu_s / phase.events
                need = TARGETS["cpu_ms_per_event_batch"]
                met = None if math.isnan(ms) else ms <= need
                lines.append((f"gateway CPU per event ({phase.name})", f"≤ {need} ms",
                              _fmt(ms, 2, " ms"), met))  # fmt: skip
        rss = mode.server_peak_rss_mib
        need = TARGETS["peak_rss_mib"]
        lines.append((f"gateway peak RSS ({mode.mode} run)", f"≤ {need:,.0f} MiB",
                      _fmt(rss, 0, " MiB"), None if math.isnan(rss) else rss <= need))  # fmt: skip
    return lines


def _smooth(timeline: list[int], width: int = 5) -> list[float]:
    """Trailing moving average over ``width`` seconds (batches confirm in bursts)."""
    out: list[float] = []
    for i in range(len(timeline)):
        window = timeline[max(0, i - width + 1) : i + 1]
        out.append(sum(window) / len(window))
    return out


def write_chart(report: E2EReport, path: Path) -> None:
    """Confirmed events per second (5 s average) and cumulative confirmed events over time,
    for each gateway phase and each naive variant."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = [(p.name, p.timeline, "-" if "saturation" in p.name else "--")
              for m in report.modes for p in m.phases]  # fmt: skip
    series += [(n.name, n.timeline, ":") for n in report.baselines]
    fig, (rate_ax, total_ax) = plt.subplots(2, 1, figsize=(10, 8), dpi=110, sharex=True)
    for name, timeline, style in series:
        if not timeline:
            continue
        xs = list(range(1, len(timeline) + 1))
        rate_ax.plot(xs, _smooth(timeline), style, label=name, linewidth=1.8)
        cumulative, running = [], 0
        for count in timeline:
            running += count
            cumulative.append(running)
        total_ax.plot(xs, cumulative, style, label=name, linewidth=1.8)
    block = report.config["block_time"]
    mining = "automine" if block is None else f"{block} s blocks"
    m = report.machine
    rate_ax.set_title(
        "pointsnet bench e2e: events confirmed on chain — gateway vs an ERC-20 mint per event\n"
        f"({mining}; {int(report.config['gas_limit']):,} gas per block; {m.get('nproc')} cores "
        f"{m.get('cpu')}; revision {m.get('revision', '?')})",
        fontsize=9,
    )
    rate_ax.set_ylabel("events confirmed / s (5 s average)")
    total_ax.set_ylabel("events confirmed (cumulative)")
    total_ax.set_xlabel("seconds since the phase's first request (baselines: time-boxed)")
    for ax in (rate_ax, total_ax):
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def iter_profile_lines(report: E2EReport) -> Iterator[str]:
    for mode in report.modes:
        for role, summary in mode.profile.items():
            if not summary:
                continue
            yield (
                f"where the GIL goes in the gateway ({role}) during {mode.mode} / saturation "
                f"({summary['samples']:,} py-spy --gil samples):"
            )
            for name, share in summary["buckets"].items():
                yield f"  {share:6.1%}  {name}"


def iter_instrument_lines(report: E2EReport) -> Iterator[str]:
    """The SQLite write lock: who held it, how long, who waited (with --instrument)."""
    for mode in report.modes:
        for role, data in mode.instrument.items():
            wall = float(data["seconds"])
            statements = data["statements"]
            yield (
                f"write lock in the {mode.mode} run ({role} process, {wall:.0f} s incl. setup): "
                + ", ".join(f"{k} {v['count']:,} statements" for k, v in statements.items())
            )
            rows = sorted(data["transactions"].items(), key=lambda kv: -kv[1]["hold_s"])
            held = sum(e["hold_s"] for _k, e in rows)
            yield f"  lock held {held:.1f} s = {held / wall:.0%} of the process's life"
            for key, e in rows[:12]:
                yield (
                    f"  {key:42s} n={e['count']:6,d}  held {e['hold_s']:6.1f} s "
                    f"(p50 {e['hold_p50_ms']:5.1f} ms, p99 {e['hold_p99_ms']:6.1f} ms)  "
                    f"waited {e['wait_s']:7.1f} s"
                )


def print_report(report: E2EReport, console: Any) -> None:
    """Table, ratios to both baselines, targets, notes and profile shares."""
    from rich.table import Table

    columns = sum(len(m.phases) for m in report.modes) + len(report.baselines)
    console.width = max(console.width, 52 + 26 * columns)
    console.print(render_table(report))
    for p in [p for m in report.modes for p in m.phases] + report.baselines:
        if p.note:
            console.print(f"* {p.name}: {p.note}")
    if any(not math.isnan(p.database_cpu_s) for m in report.modes for p in m.phases):
        console.print(POSTGRES_NOTE)
    ratio_table = Table(title="gateway ÷ baselines (same run, same chain settings)")
    for column in ("phases", "confirmed/s ratio", "gas ratio (baseline ÷ gateway, all-in)"):
        ratio_table.add_column(column, justify="right" if column != "phases" else "left")
    for what, speed, gas in ratios(report):
        ratio_table.add_row(what, f"{speed:,.{2 if speed < 10 else 1}f}x",
                            f"{gas:,.2f}x" if gas else "—")  # fmt: skip
    if ratio_table.row_count:
        console.print(ratio_table)
    target_table = Table(title="targets")
    for column in ("target", "required", "measured", "met"):
        target_table.add_column(column)
    for what, need, got, met in target_lines(report):
        verdict = "n/a" if met is None else ("[green]yes[/green]" if met else "[red]no[/red]")
        target_table.add_row(what, need, got, verdict)
    if target_table.row_count:
        console.print(target_table)
    for line in iter_profile_lines(report):
        console.print(line, markup=False, highlight=False)
    for line in iter_instrument_lines(report):
        console.print(line, markup=False, highlight=False)
    m = report.machine
    console.print(
        f"machine: {m['nproc']} cores ({m['cpu']}), {m['memory']}, Python {m['python']}, "
        f"{m['anvil']}, SQLite {m['sqlite']}; Python speed {m.get('python_ms', '?')} ms per "
        f"million loop steps (lower is faster); run took {report.seconds:.0f} s"
    )
    if report.config.get("out_dir"):
        console.print(f"raw figures and chart in {report.config['out_dir']}/")
