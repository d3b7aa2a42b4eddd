"""``pointsnet bench …`` and ``pointsnet chaos``: the harnesses' commands.

The harnesses themselves live in the top-level ``bench`` package, which the
product never imports: this module is the one exception, and it loads them only
inside the command bodies, when one of these commands runs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from chain.cli import app, console

bench_app = typer.Typer(help="Benchmarks (not tests): gas, throughput.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")


# ---------------------------------------------------------------- bench gas


@bench_app.command("gas")
def bench_gas(
    json_out: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
) -> None:
    """Gas per operation, beside a plain ERC-20 mint per event, on a fresh devnet."""
    from bench.gas import render_table, run_gas_bench

    rows = run_gas_bench(progress=None if json_out else console)
    if json_out:
        sys.stdout.write(json.dumps([row.__dict__ for row in rows], indent=2) + "\n")
    else:
        console.print(render_table(rows))


# ---------------------------------------------------------------- bench e2e


@bench_app.command("e2e")
def bench_e2e(
    events: Annotated[int, typer.Option(help="events per mode (rate phase + saturation)")] = 20_000,
    clients: Annotated[int, typer.Option(help="concurrent HTTP clients")] = 8,
    rate: Annotated[float, typer.Option(help="offered events/s in the rate phase")] = 500.0,
    block_time: Annotated[
        float | None, typer.Option(help="anvil interval mining (s); default automine")
    ] = None,
    database_url: Annotated[
        str | None, typer.Option(help="PostgreSQL server URL (a fresh database is made on it)")
    ] = None,
    mode: Annotated[
        str, typer.Option(help="single | batch | both | none (the baselines only)")
    ] = "both",
    gas_limit: Annotated[
        int, typer.Option(help="block gas limit of every devnet (all start at base fee 0)")
    ] = 30_000_000,
    batch_size: Annotated[int, typer.Option(help="events per batch request")] = 100,
    naive_threads: Annotated[int, typer.Option(help="threads of the naive variant")] = 4,
    naive_seconds: Annotated[
        float, typer.Option(help="time box of each naive variant (0: no naive column)")
    ] = 20.0,
    relayer_seconds: Annotated[
        float, typer.Option(help="time box of the pipelined relayer's sending (0: none)")
    ] = 30.0,
    relayer_signers: Annotated[
        int, typer.Option(help="relayer signing threads beside the sending one (0 or 1)")
    ] = 0,
    relayer_sign: Annotated[
        str, typer.Option(help="relayer signing: rlp (hash signed) | dict (sign_transaction)")
    ] = "rlp",
    rate_share: Annotated[
        float, typer.Option(help="share of the events sent in the rate phase (0: saturation only)")
    ] = 0.4,
    rate_seconds: Annotated[float, typer.Option(help="time box of each rate phase")] = 60.0,
    saturation_seconds: Annotated[
        float, typer.Option(help="time box of each saturation phase")
    ] = 120.0,
    profile: Annotated[bool, typer.Option(help="py-spy the gateway during saturation")] = False,
    in_process: Annotated[
        bool,
        typer.Option(
            "--in-process", help="serve --in-process: API, worker and indexer in one process"
        ),
    ] = False,
    api_processes: Annotated[
        int, typer.Option(help="processes serving the API (uvicorn workers: serve --workers)")
    ] = 1,
    lanes: Annotated[
        int, typer.Option(help="signer lanes of the outbox worker (devnet signer keys)")
    ] = 1,
    keep: Annotated[bool, typer.Option(help="keep each stack's data dir and logs")] = False,
    instrument: Annotated[
        bool, typer.Option(help="serve via bench/instrumented_serve.py (SQL, lock times)")
    ] = False,
    out: Annotated[str, typer.Option(help="directory for JSON, chart, profiles")] = "docs/bench",
    json_out: Annotated[bool, typer.Option("--json", help="print the JSON report")] = False,
) -> None:
    """End to end: HTTP in, events confirmed on chain out, beside a pipelined relayer and a
    naive integration (an ERC-20 mint per event), every devnet on the same chain settings."""
    from bench.e2e import E2EConfig, print_report, run_e2e_bench

    config = E2EConfig(
        events=events, clients=clients, rate=rate, block_time=block_time,
        database_url=database_url, mode=mode, batch_size=batch_size,
        naive_threads=naive_threads, naive_seconds=naive_seconds, profile=profile,
        gas_limit=gas_limit, relayer_seconds=relayer_seconds, relayer_signers=relayer_signers,
        relayer_sign=relayer_sign,
        in_process=in_process, api_processes=api_processes, lanes=lanes, keep=keep,
        instrument=instrument,
        rate_share=rate_share, rate_seconds=rate_seconds, saturation_seconds=saturation_seconds,
        out_dir=Path(out) if out else None,
    )  # fmt: skip
    try:
        config.check()
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    if relayer_sign not in ("rlp", "dict") or relayer_signers not in (0, 1):
        raise typer.BadParameter("--relayer-sign is rlp or dict; --relayer-signers is 0 or 1")
    report = run_e2e_bench(config, progress=None if json_out else console.log)
    if json_out:
        sys.stdout.write(report.to_json() + "\n")
        return
    print_report(report, console)


# ---------------------------------------------------------------- chaos


@app.command("chaos")
def chaos(
    cycles: Annotated[int, typer.Option(help="kill cycles (API, worker, indexer, anvil)")] = 100,
    events: Annotated[int, typer.Option(help="merchant events to drive through the API")] = 3_000,
    seed: Annotated[int, typer.Option(help="seed of the workload and of the kills")] = 1,
    data_dir: Annotated[
        str | None, typer.Option(help="keep the stack here (default: a temporary dir)")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="print the JSON report")] = False,
) -> None:
    """SIGKILL the gateway's processes and restart anvil under load; exit 1 on any loss."""
    from bench.chaos import ChaosConfig, print_report, run_chaos

    config = ChaosConfig(
        cycles=cycles, events=events, seed=seed, data_dir=Path(data_dir) if data_dir else None
    )
    report = run_chaos(config, progress=None if json_out else console.log)
    if json_out:
        sys.stdout.write(json.dumps(report.to_dict()) + "\n")
    else:
        print_report(report, console)
    if not report.ok:
        raise typer.Exit(1)
