"""Render a ``pointsnet bench e2e`` JSON report as the Markdown of docs/BENCHMARKS.md: the
table (gateway phases, the pipelined relayer, the naive variants) and the ratios of each
gateway phase to each baseline of the same run.

Usage: ``.venv/bin/python -m bench.e2e_markdown docs/bench/e2e-automine.json``
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

from bench.e2e.report import gateway_layout


def _f(value: Any, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:,.{digits}f}"


def _number(value: Any) -> bool:
    """A figure was measured: a number, not NaN (JSON's NaN) or missing."""
    return isinstance(value, int | float) and not math.isnan(value)


def table(report: dict[str, Any]) -> str:
    phases = [(m, p) for m in report["modes"] for p in m["phases"]]
    baselines = [(None, p) for p in report.get("relayer", []) + report["naive"]]
    columns = phases + baselines
    gas_limit = int(report["config"].get("gas_limit") or 0)
    block_time = report["config"].get("block_time")

    def ceiling(p: dict[str, Any]) -> float | None:
        gas = p["gas"].get("all_in_per_event")
        if not block_time or not gas or gas != gas:
            return None
        return float(gas_limit / gas / float(block_time))

    head = ["figure"] + [p["name"] + (" *" if p.get("extrapolated") else "") for _m, p in columns]
    rows: list[list[str]] = []

    def row(label: str, cell: Any) -> None:
        rows.append([label] + [cell(m, p) for m, p in columns])

    row("events sent (planned)", lambda m, p: f"{p['events']:,}" + (
        f" ({p['planned']:,})" if p.get("planned", 0) > p["events"] else ""))  # fmt: skip
    row("offered events/s", lambda m, p: _f(p["offered_rate"]) if p["offered_rate"] else "max")
    row("**accepted events/s**", lambda m, p: _f(p["accepted_per_s"]))
    row("**confirmed events/s**", lambda m, p: _f(p["confirmed_per_s"]))
    row("confirmed/s, best 10 s", lambda m, p: _f(p["steady_confirmed_per_s"]))
    row("accept p50 / p95 / p99 (ms)", lambda m, p: " / ".join(
        _f(p["accept_ms"].get(q), 0) for q in ("p50", "p95", "p99")))  # fmt: skip
    row("event→confirmed p50 / p95 / p99 (s)", lambda m, p: " / ".join(
        _f(p["confirm_s"].get(q), 2) for q in ("p50", "p95", "p99")))  # fmt: skip
    row("polled sample p50 / p99 (s)", lambda m, p: (
        f"{_f(p['polled_s'].get('p50'), 2)} / {_f(p['polled_s'].get('p99'), 2)} "
        f"(n={p['polled_samples']})") if p["polled_samples"] else "—")  # fmt: skip
    row("gas/event all-in", lambda m, p: _f(p["gas"].get("all_in_per_event")))
    row("gas/issuance new / existing", lambda m, p: (
        f"{_f(p['gas'].get('new_member'))} / {_f(p['gas'].get('existing_member'))}"))  # fmt: skip
    row("issuances per issueBatch", lambda m, p: _f(p["gas"].get("issue_ops_per_tx"), 1))
    row("chain ceiling events/s (block gas ÷ gas/event ÷ block time)",
        lambda m, p: _f(ceiling(p)))  # fmt: skip
    row("txs", lambda m, p: ", ".join(f"{k} {v:,}" for k, v in sorted(p["txs"].items())))
    row("gateway CPU ms/event", lambda m, p: _f(1000 * p["server_cpu_s"] / max(1, p["events"]), 1)
        if p["server_cpu_s"] == p["server_cpu_s"] else "—")  # fmt: skip
    row("gateway CPU ms/event by role", lambda m, p: ", ".join(
        f"{role} {_f(1000 * cpu / max(1, p['events']), 2)}"
        for role, cpu in p.get("cpu_by_role", {}).items()) or "—")  # fmt: skip
    if any(_number(p.get("database_cpu_s")) for _m, p in phases):
        row("PostgreSQL server CPU ms/event", lambda m, p: _f(
            1000 * p["database_cpu_s"] / max(1, p["events"]), 1) if m else "—")  # fmt: skip
    row("gateway peak RSS (MiB)", lambda m, p: _f(p["server_peak_rss_mib"]))
    if any(len(p.get("txs_by_sender", {})) > 1 for _m, p in phases):
        row("confirmed txs per signer lane", lambda m, p: " / ".join(
            f"{n:,}" for n in p.get("txs_by_sender", {}).values()) or "—")  # fmt: skip
    row("anvil CPU (s)", lambda m, p: _f(p["anvil_cpu_s"], 1))
    row("client CPU (s)", lambda m, p: _f(p["client_cpu_s"], 1))
    row("base fee of the last block (wei)", lambda m, p: _f(p.get("last_base_fee_wei")))
    row("DB MiB per 10k events", lambda m, p: _f(
        m["db_bytes"] / max(1, m["db_events"]) * 10_000 / 2**20, 1) if m else "—")  # fmt: skip
    row("SQLite WAL peak (MiB)", lambda m, p: _f(m.get("wal_peak_bytes", 0) / 2**20) if m else "—")
    row("errors (non-202)", lambda m, p: ", ".join(
        f"{k} {v}" for k, v in p["outcomes"].items() if k not in ("accepted", "confirmed"))
        or "0")  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|---" + "|---:" * (len(head) - 1) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    notes = [f"* {p['name']}: {p['note']}" for _m, p in columns if p.get("note")]
    notes.insert(0, f"Gateway: {gateway_layout(report['config'])}.")
    ratios = ratio_rows(report)
    if ratios:
        notes += ["", "| gateway ÷ baseline (same run) | confirmed/s | gas (baseline ÷ ours) |",
                  "|---|---:|---:|", *ratios]  # fmt: skip
    return "\n".join([*lines, "", *notes])


def ratio_rows(report: dict[str, Any]) -> list[str]:
    """Markdown rows: each gateway phase's confirmed/s and gas against each baseline."""
    rows = []
    for mode in report["modes"]:
        for p in mode["phases"]:
            for base in report.get("relayer", []) + report["naive"]:
                if not base["confirmed_per_s"]:
                    continue
                ours, theirs = p["gas"].get("all_in_per_event"), base["gas"].get("all_in_per_event")
                gas = f"{theirs / ours:,.2f}x" if ours and theirs and ours == ours else "—"
                speed = p["confirmed_per_s"] / base["confirmed_per_s"]
                rows.append(f"| {p['name']} ÷ {base['name']} | {speed:,.2f}x | {gas} |")
    return rows


def main(argv: list[str]) -> int:
    for name in argv:
        sys.stdout.write(table(json.loads(Path(name).read_text())) + "\n\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
