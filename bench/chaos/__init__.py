"""``pointsnet chaos``: see :mod:`bench.chaos.run`."""

from bench.chaos.run import TARGETS, ChaosConfig, print_report, run_chaos

__all__ = ["TARGETS", "ChaosConfig", "print_report", "run_chaos"]
