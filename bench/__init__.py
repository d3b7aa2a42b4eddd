"""Programs about the product, not part of it: benchmarks, chaos and fault injection.

``chain`` and ``gateway`` never import this package (import-linter checks it); the
``pointsnet bench …`` and ``pointsnet chaos`` commands load it lazily
(:mod:`gateway.cli.harness`). Every module runs with ``python -m bench.<name>``.

- :mod:`bench.stack`: the one stack launcher (anvil, contracts, merchants, gateway
  processes, teardown) that the benchmarks, chaos and every test kit start, and
  :mod:`bench.inprocess`, the gateway in process on such a stack;
- :mod:`bench.e2e`: ``pointsnet bench e2e``, HTTP in, confirmed on chain out;
- :mod:`bench.gas`: ``pointsnet bench gas``, gas per operation;
- :mod:`bench.chaos`: ``pointsnet chaos``, SIGKILLs and node restarts under load;
- :mod:`bench.faultproxy`: a JSON-RPC proxy that injects node faults (tests/chaos);
- :mod:`bench.instrumented_serve`: ``pointsnet serve`` with SQL and write-lock counters
  (``pointsnet bench e2e --instrument``);
- scripts: :mod:`bench.audit_replay` (the audit over a long history) and
  :mod:`bench.e2e_markdown` (an e2e JSON report as the tables of docs/BENCHMARKS.md).
"""
