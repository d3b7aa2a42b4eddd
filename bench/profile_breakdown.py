"""Break a ``py-spy record --format raw`` profile down by thread and by function.

Usage: ``python -m bench.profile_breakdown PROFILE.txt[.gz] [--thread NAME] [--match TEXT ...]``

Prints the share of samples per thread name, then the inclusive share of the
most frequent frames (``file:function``, line numbers dropped) and of any frame
matching ``--match``.  Used to read the profiles ``pointsnet bench e2e
--profile`` writes to ``docs/bench/``.
"""

from __future__ import annotations

import argparse
import gzip
import re
import sys
from collections import Counter
from pathlib import Path

_LINE = re.compile(r" \(([^)]*?)(?::\d+)?\)$")


def frames_of(stack: str) -> tuple[str, list[str]]:
    parts = stack.split(";")
    thread = re.sub(r"thread \(\d+\): ", "", parts[0])
    thread = re.sub(r"\d+$", "", thread).strip()
    frames = [_LINE.sub(lambda m: f" ({m.group(1)})", f) for f in parts[1:]]
    return thread, frames


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile", type=Path)
    parser.add_argument("--thread", help="only threads whose name contains this")
    parser.add_argument(
        "--match",
        nargs="*",
        default=[],
        help="report stacks with a frame containing this ('a&b': both)",
    )
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args(argv)
    total = 0
    threads: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    matched: Counter[str] = Counter()
    opener = gzip.open if args.profile.suffix == ".gz" else open
    with opener(args.profile, "rt") as handle:
        lines = handle.read().splitlines()
    for line in lines:
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        thread, frames = frames_of(stack)
        threads[thread] += count
        if args.thread and args.thread not in thread:
            continue
        total += count
        for frame in set(frames):
            inclusive[frame] += count
        if frames:
            leaves[frames[-1]] += count
        for needle in args.match:
            # "a&b": the stack has a frame containing a and one containing b.
            if all(any(part in f for f in frames) for part in needle.split("&")):
                matched[needle] += count
    grand = sum(threads.values())
    out = sys.stdout
    out.write(f"{grand} samples; by thread:\n")
    for name, n in threads.most_common():
        out.write(f"  {n / grand:6.1%}  {name}\n")
    out.write(f"\n{total} samples selected; inclusive share of frames:\n")
    for frame, n in inclusive.most_common(args.top):
        out.write(f"  {n / total:6.1%}  {frame}\n")
    out.write("\nself (leaf) share:\n")
    for frame, n in leaves.most_common(args.top // 2):
        out.write(f"  {n / total:6.1%}  {frame}\n")
    if matched:
        out.write("\nmatched:\n")
        for needle in args.match:
            out.write(f"  {matched[needle] / total:6.1%}  {needle}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
