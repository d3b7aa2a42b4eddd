#!/usr/bin/env bash
# The experiments behind docs/BENCHMARKS.md "End-to-end": short `pointsnet bench e2e`
# runs that isolate one cause each (about 25 minutes on 2 cores).  Output:
# docs/bench/experiments/<name>/ (JSON, chart) and <name>.txt (the printed report).
#
# E2E_WHATIF (see bench/instrumented_serve.py) measures a proposed fix without
# changing the gateway: "mutex" queues writers on a process-wide lock instead of
# SQLite's sleeping busy handler; "pool" sizes the connection pool at 64 + 64.
set -euo pipefail
cd "$(dirname "$0")/.."
out=docs/bench/experiments
mkdir -p "$out"
bench() {
    local name=$1
    shift
    # Round 1 ran role all as one process: --in-process keeps these runs comparable.
    echo "== $name: pointsnet bench e2e $*" | tee "$out/$name.txt"
    COLUMNS=220 .venv/bin/pointsnet bench e2e --naive-seconds 5 --naive-threads 1 \
        --out "$out/$name" --in-process "$@" 2>&1 | grep -v '^\[' | tee -a "$out/$name.txt"
}
short=(--mode single --rate-share 0 --events 20000 --saturation-seconds 60)

# Latency at a load the gateway sustains, with 1 s blocks.
bench latency-20rps-1s-blocks --block-time 1 --mode single --rate 20 --rate-share 1 \
    --events 1200 --rate-seconds 60
# Where the SQLite write lock goes (instrumented, otherwise unchanged).
bench lock-single "${short[@]}" --instrument
bench lock-batch --mode batch --rate-share 0 --events 20000 --saturation-seconds 60 --instrument
# Proposed fix: writers queue on a mutex, not on SQLite's busy handler.
E2E_WHATIF=mutex bench whatif-mutex-single "${short[@]}" --instrument
# API, worker and indexer as separate processes (serve's default since round 3: the
# bench then starts the three roles itself under the instrumentation).
COLUMNS=220 .venv/bin/pointsnet bench e2e --naive-seconds 5 --naive-threads 1 \
    --out "$out/split-roles-single" "${short[@]}" --instrument 2>&1 | grep -v '^\[' \
    | tee "$out/split-roles-single.txt"
# 16 concurrent clients: more than the 15 pooled connections (5 + 10 overflow).
bench clients16-single "${short[@]}" --clients 16 --instrument
E2E_WHATIF=pool bench whatif-pool-clients16 "${short[@]}" --clients 16 --instrument
E2E_WHATIF=pool,mutex bench whatif-pool-mutex-clients16 "${short[@]}" --clients 16 --instrument
# PostgreSQL instead of SQLite (a fresh database on the server at $PG_URL), if one answers.
PG_URL=${PG_URL:-postgresql://postgres@127.0.0.1:5432/test}
if .venv/bin/python -c "import psycopg,sys; psycopg.connect(sys.argv[1], connect_timeout=2)" \
    "$PG_URL" 2>/dev/null; then
    bench postgres-both --database-url "$PG_URL" --events 20000 --rate-seconds 30 \
        --saturation-seconds 60
fi
