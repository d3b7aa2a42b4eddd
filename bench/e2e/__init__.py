"""``pointsnet bench e2e``: the gateway end to end, beside two mint-per-event integrations.

A benchmark, not a test: every figure comes from the run that prints it.

1. For each mode (``single``: one event per ``POST /v1/events``; ``batch``:
   ``POST /v1/events/batch`` with ``batch_size`` events per request; ``none``: the
   baselines only) a fresh stack: its own anvil (automine, or interval mining with
   ``--block-time``; ``--gas-limit`` gas per block, 30M by default; base fee 0 so that
   EIP-1559 fee growth under full blocks does not decide the comparison),
   the contracts deployed, four merchants admitted, and the gateway as a real
   ``pointsnet serve`` process (role ``all``: the API in that process, the outbox
   worker with the webhook dispatcher and the indexer as its child processes; with
   ``--in-process`` all of them as threads of one process) on a fresh database in a
   temporary data dir.
2. Each merchant raises its merchant-wide velocity limits through
   ``PUT /v1/rules`` (the seed programme holds events beyond 1,000 a minute per
   merchant for review) and the bench waits until that rule set is on chain.
3. Two phases per mode: ``rate`` (open loop at ``--rate`` events/s; latency is
   counted from each request's *scheduled* time, so a backlog shows instead of
   hiding) and ``saturation`` (``--clients`` closed-loop clients back to back).
   After each phase the bench waits until the outbox is drained.
4. Confirmation times come from the database (``events.updated_at`` of a
   confirmed event is the worker's confirming commit) against each event's
   client send time, for every event; a sample of events is also polled through
   ``GET /v1/events/{id}`` as a client would.
5. The baselines, each on its own anvil with the same chain settings, time-boxed:
   the pipelined relayer (:mod:`~bench.e2e.relayer`: a plain OpenZeppelin ERC-20
   ``mint`` per event, signed locally with consecutive nonces, sent in JSON-RPC
   batches without waiting, receipts collected in batches) and the naive
   integration (the same mint with web3.py: build, sign, send, wait for the
   receipt; sequential, then several threads each with its own key and token).
   Every ratio is printed against both, with the chain's ceiling (block gas ÷ gas
   per event ÷ block time) and the base fee of the last block.

``--api-processes N`` serves the API from N uvicorn processes (``serve --workers N``),
``--lanes N`` gives the outbox worker N signer keys, one nonce lane each; the report's
header names both, with the database.

Gateway CPU and peak RSS count every process of the gateway: each role's process and
all the processes below it (uvicorn's workers, the supervised worker and indexer),
sampled with psutil every 0.25 s (:mod:`~bench.e2e.procstats`); gateway CPU per event is
their CPU over the phase ÷ its events. On PostgreSQL a local server's CPU is counted
beside it: its shared processes and the backends of the run's database. The load
generator runs on the same machine and its CPU is reported beside it.

The modules, in the order a run goes through them: :mod:`~bench.e2e.config` (the
options, the event mix), :mod:`~bench.e2e.workload` (the events),
:mod:`~bench.e2e.stack` (the gateway under test, on :mod:`bench.stack`),
:mod:`~bench.e2e.load` (sending), :mod:`~bench.e2e.procstats` and
:mod:`~bench.e2e.profiling` (what the processes spend), :mod:`~bench.e2e.figures`
(reading the results back), :mod:`~bench.e2e.relayer` and :mod:`~bench.e2e.naive`
(the baselines),
:mod:`~bench.e2e.run` (the whole run) and :mod:`~bench.e2e.report` (the output).
"""

from bench.e2e.config import E2EConfig
from bench.e2e.report import print_report
from bench.e2e.run import run_e2e_bench

__all__ = ["E2EConfig", "print_report", "run_e2e_bench"]
