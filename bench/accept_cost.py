"""What accepting one event costs in the service layer, as the history grows.

Usage: ``.venv/bin/python -m bench.accept_cost [--events 10000] [--step 2000]
[--batch 100] [--profile]``

Starts a throwaway anvil and gateway in process (:mod:`bench.stack`, as the gateway tests do), lifts
the merchants' velocity limits, then feeds ``bench e2e``'s event mix straight
into ``gateway.services.events.submit_many`` (no HTTP, no worker: only the accept
path) in batches, and prints milliseconds of wall and CPU time (this process: the load of a
shared machine inflates wall time more) per accepted event for
each ``--step`` events of history.  A cost that grows with the history is a
query that scans it.  ``--profile`` prints cProfile's top functions for the
last step.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--step", type=int, default=2_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args(argv)

    from bench.e2e.workload import Workload
    from bench.inprocess import InProcessGateway
    from bench.stack import TEST_SETTINGS, Stack, lift_merchant_limits
    from gateway.models import Merchant
    from gateway.schemas import EventCreate
    from gateway.services.events import submit_many

    with Stack(settings=TEST_SETTINGS) as stack:
        gw = InProcessGateway.open(stack)
        try:
            gw.settle()  # publish the first rule sets
            lift_merchant_limits(gw.client, stack.api_keys)  # as bench e2e does
            gw.settle()
            with gw.context.sessions() as session:
                merchants: list[Merchant] = []
                for m in gw.merchants:
                    merchant = session.get(Merchant, m.id)
                    assert merchant is not None
                    session.expunge(merchant)
                    merchants.append(merchant)
            workload = Workload(seed=7, tag="cost", refund_lag=50)
            out = sys.stdout
            out.write(f"{'history':>8} {'events':>7} {'wall ms/event':>14} {'CPU ms/event':>13} "
                      f"{'accepted':>9}\n")  # fmt: skip
            done = 0
            profiler = cProfile.Profile()
            while done < args.events:
                planned = workload.take(args.step, "cost")
                last = done + args.step >= args.events
                if last and args.profile:
                    profiler.enable()
                started, cpu, accepted = time.perf_counter(), time.process_time(), 0
                for start in range(0, len(planned), args.batch):
                    group = planned[start : start + args.batch]
                    by_merchant: dict[int, list[tuple[str, EventCreate]]] = {}
                    for p in group:
                        item = (p.key, EventCreate.model_validate(p.body))
                        by_merchant.setdefault(p.merchant % len(merchants), []).append(item)
                    for index, items in by_merchant.items():
                        answers = submit_many(gw.context, merchants[index], items)
                        accepted += sum(1 for status, _a in answers if status == 202)
                elapsed = time.perf_counter() - started
                cpu = time.process_time() - cpu
                if last and args.profile:
                    profiler.disable()
                out.write(f"{done:>8} {len(planned):>7} {1000 * elapsed / len(planned):>14.2f} "
                          f"{1000 * cpu / len(planned):>13.2f} {accepted:>9}\n")  # fmt: skip
                done += len(planned)
            if args.profile:
                pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(35)
        finally:
            gw.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
