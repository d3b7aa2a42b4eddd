"""What accepting one event costs in the service layer, as the history grows.

Usage: ``.venv/bin/python scripts/accept_cost.py [--events 10000] [--step 2000]
[--batch 100] [--profile]``

Starts a throwaway anvil and gateway in process (as the gateway tests do), lifts
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
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "gateway"))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--step", type=int, default=2_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args(argv)

    from gateway_kit import start_gateway

    from bench.e2e.run import Workload
    from gateway.models import Merchant
    from gateway.schemas import EventCreate
    from gateway.services.events import submit_many

    with tempfile.TemporaryDirectory() as tmp:
        gen = start_gateway(Path(tmp))
        gw = next(gen)
        try:
            for index in range(len(gw.merchants)):  # as bench e2e does
                headers = gw.headers(index)
                rules = gw.client.get("/v1/rules", headers=headers).json()["rules"]
                rules["velocity"].update(
                    merchant_events_per_minute=None, merchant_points_per_day=None
                )
                gw.client.put("/v1/rules", json=rules, headers=headers).raise_for_status()
            gw.settle()
            with gw.context.sessions() as session:
                merchants = [session.get(Merchant, m.id) for m in gw.merchants]
                for merchant in merchants:
                    session.expunge(merchant)
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
            gen.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
