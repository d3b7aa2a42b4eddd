"""``pointsnet bench e2e``: see :mod:`bench.e2e.run`."""

from bench.e2e.run import E2EConfig, print_report, run_e2e_bench

__all__ = ["E2EConfig", "print_report", "run_e2e_bench"]
