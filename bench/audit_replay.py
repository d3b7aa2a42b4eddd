"""Benchmark (not a test): how fast ``chain.audit`` replays issuance history.

Creates ``--events`` issuance events on a fresh anvil (``issueBatch`` batches of
``--batch`` events, one transaction per block, members drawn from a pool of
``--members`` addresses), then times :meth:`chain.audit.AuditLog.read` over the
whole history and the reports built from it, and prints a table.

    .venv/bin/python -m bench.audit_replay --events 100000
    .venv/bin/python -m bench.audit_replay --events 1000000 --batch 1000

Population is not part of the timing (it runs anvil's EVM for every mint).
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import time

from eth_abi import encode
from eth_account import Account
from eth_utils import function_signature_to_4byte_selector
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from bench.gas import fresh_network
from chain.audit import AuditLog, Rpc, build_report, chain_state_at
from chain.contracts import pack_item
from chain.sender import TransactionSender

ISSUE_BATCH = function_signature_to_4byte_selector(
    "issueBatch(uint32,uint64,uint64,bytes32[],uint256[])"
)

console = Console(width=150)


def issue_batch_calldata(
    first_seq: int, refs: list[bytes], members: list[str], amounts: list[int]
) -> bytes:
    """``issueBatch(1, 1, first_seq, refs, items)`` (each item ``member << 96 | amount``),
    encoded without web3."""
    items = [pack_item(m, a) for m, a in zip(members, amounts, strict=True)]
    args = encode(
        ["uint32", "uint64", "uint64", "bytes32[]", "uint256[]"], [1, 1, first_seq, refs, items]
    )
    return ISSUE_BATCH + args


def populate(
    sender: TransactionSender, hub: str, events: int, batch: int, pool_size: int, seed: int = 7
) -> tuple[int, float]:
    """Issue ``events`` events for merchant 1; returns (transactions, seconds)."""
    rng = random.Random(seed)
    pool = [Account.create().address for _ in range(pool_size)]
    started = time.perf_counter()
    first = issue_batch_calldata(0, [os.urandom(32)], [pool[0]], [1])
    gas = sender.estimate_gas(hub, first) * batch + 1_000_000  # new members cost most
    fees = sender.current_fees()
    fees = (fees[0] * 4, fees[1])  # no re-pricing needed while the base fee moves
    sent: list[str] = []
    seq = 0
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task("issuing", total=events)
        while seq < events:
            n = min(batch, events - seq)
            members = [rng.choice(pool) for _ in range(n)]
            amounts = [rng.randint(1, 1_000) for _ in range(n)]
            refs = [rng.randbytes(32) for _ in range(n)]
            tx = sender.sign(
                hub, issue_batch_calldata(seq, refs, members, amounts), gas=gas, fees=fees
            )
            sender.broadcast(tx)
            sent.append(tx.hash)
            seq += n
            if len(sent) % 20 == 0:  # keep the pool short: anvil mines one tx per block
                sender.wait(sent[-1], timeout=600)
            bar.update(task, completed=seq)
        for tx_hash in sent[-20:]:
            sender.wait(tx_hash, timeout=600)
    return len(sent), time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--members", type=int, default=50_000, help="size of the member pool")
    parser.add_argument("--gas-limit", type=int, default=1_000_000_000)
    args = parser.parse_args()

    with fresh_network(gas_limit=args.gas_limit) as (settings, network, sender):
        txs, populate_s = populate(
            sender, network.hub.address, args.events, args.batch, args.members
        )
        console.log(f"populated {args.events:,} events in {txs:,} txs ({populate_s:.1f}s)")

        rpc = Rpc(settings.rpc_url)
        with Progress(console=console, transient=True) as bar:
            task = bar.add_task("replaying", total=None)

            def progress(done: int, total: int, logs: int) -> None:
                bar.update(task, completed=done, total=total, description=f"{logs:,} logs")

            started = time.perf_counter()
            reader = AuditLog(rpc, network.hub.address, progress=progress)
            history = reader.read()
            read_s = time.perf_counter() - started
        started = time.perf_counter()
        state = chain_state_at(rpc, history.contracts, history.to_block)
        report = build_report(history, state)
        report_s = time.perf_counter() - started

    issued = sum(1 for r in history.records if r.kind == "issuance")
    table = Table(title="chain.audit replay (anvil, one process, 2 cores)")
    columns = ("events", "logs", "blocks", "requests", "read s", "events/s", "logs/s")
    for column in (*columns, "reports s", "peak RSS MB", "ok"):
        table.add_column(column, justify="right")
    table.add_row(
        f"{issued:,}",
        f"{history.log_count:,}",
        f"{history.to_block - history.from_block + 1:,}",
        f"{reader.requests:,}",
        f"{read_s:.2f}",
        f"{issued / read_s:,.0f}",
        f"{history.log_count / read_s:,.0f}",
        f"{report_s:.2f}",
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f}",
        "yes" if report.ok else "NO",
    )
    console.print(table)


if __name__ == "__main__":
    main()
