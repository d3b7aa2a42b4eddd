"""After the chaos: the chain checked against the answers given, and the report printed."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from sqlalchemy import func, select

from bench.chaos.config import (
    Answers,
    ChaosReport,
)
from bench.chaos.stack import ChaosStack


def verify(stack: ChaosStack, answers: Answers, report: ChaosReport) -> None:
    """Compare the chain (and the gateway's database) with the answers given."""
    from web3 import Web3

    from chain.contracts import Network
    from gateway.models import ChainOp, ChainTx, Event
    from gateway.services.events import event_ref

    w3 = Web3(Web3.HTTPProvider(stack.rpc_url, request_kwargs={"timeout": 60}))
    network = Network.at(w3, stack.hub)
    assert stack.engine is not None

    # -- exactly once: every accepted event's reference on chain once
    on_chain: Counter[str] = Counter()
    seqs: dict[int, Counter[int]] = defaultdict(Counter)
    for issued in network.issuances():
        on_chain[issued.ref] += 1
        seqs[issued.merchant][issued.seq] += 1
    for clawback in network.clawbacks():
        seqs[clawback.merchant][clawback.seq] += 1
    report.seq_reused = sum(n - 1 for counts in seqs.values() for n in counts.values() if n > 1)

    expected: Counter[str] = Counter()
    with stack.engine.connect() as conn:
        status = dict(
            conn.execute(
                select(Event.id, Event.status).where(
                    Event.id.in_([a["id"] for a in answers.accepted.values()])
                )
            ).all()
        )
    for key, answer in answers.accepted.items():
        points = int(answer["points"])
        merchant_id = stack.merchant_ids[answer["merchant"]]
        expected[Web3.to_checksum_address(answer["member_address"])] += points
        if status.get(answer["id"]) == "confirmed":
            report.confirmed += 1
        else:
            report.unconfirmed += 1
            report.problems.append(f"event {answer['id']} ({key}) is {status.get(answer['id'])}")
        if points <= 0:
            continue
        count = on_chain[event_ref(merchant_id, key, "points")]
        if count == 0:
            report.lost += 1
            report.problems.append(f"{key}: {points} points never issued")
        elif count > 1:
            report.doubled += 1
            report.problems.append(f"{key}: issued {count} times")

    # -- balances, to the point
    report.points_expected = sum(expected.values())
    report.points_on_chain = int(network.token.total_supply())
    for address, points in expected.items():
        balance = int(network.token.balance_of(address))
        if balance != points:
            report.balance_mismatches += 1
            report.problems.append(f"{address}: balance {balance}, expected {points}")

    # -- sequences in the gateway's database: each (merchant, seq) once
    with stack.engine.connect() as conn:
        rows = conn.execute(
            select(ChainOp.merchant_id, ChainOp.seq, func.count(ChainOp.id))
            .where(ChainOp.status == "confirmed", ChainOp.seq.is_not(None))
            .group_by(ChainOp.merchant_id, ChainOp.seq)
            .having(func.count(ChainOp.id) > 1)
        ).all()
    report.seq_reused += len(rows)

    # -- nonces: the operator's mined transactions against the outbox's
    with stack.engine.connect() as conn:
        txs = conn.execute(
            select(ChainTx.nonce, ChainTx.tx_hash, ChainTx.status).where(
                ChainTx.sender == stack.operator
            )
        ).all()
    confirmed: dict[int, list[str]] = defaultdict(list)
    for nonce, tx_hash, tx_status in txs:
        if tx_status == "confirmed":
            confirmed[int(nonce)].append(str(tx_hash).lower())
        elif tx_status in ("signed", "sent"):
            report.unfinished_txs += 1
    report.nonce_duplicates = sum(len(h) - 1 for h in confirmed.values() if len(h) > 1)
    chain_nonce = int(w3.eth.get_transaction_count(Web3.to_checksum_address(stack.operator)))
    pending_nonce = int(
        w3.eth.get_transaction_count(Web3.to_checksum_address(stack.operator), "pending")
    )
    highest = max(confirmed, default=-1)
    report.nonce_drift = abs(chain_nonce - (highest + 1)) + abs(pending_nonce - chain_nonce)
    mined = _mined_by(w3, stack.operator, stack.start_block)
    first_outbox = min(confirmed, default=chain_nonce)
    for nonce, tx_hash in mined.items():
        if nonce < first_outbox:
            continue  # start-up transactions outside the outbox (badge definitions)
        if tx_hash not in confirmed.get(nonce, []):
            report.nonce_unrecorded += 1
            report.problems.append(f"nonce {nonce}: mined {tx_hash}, not the outbox's")
    for nonce, hashes in confirmed.items():
        if mined.get(nonce) not in hashes:
            report.nonce_unrecorded += 1
            report.problems.append(f"nonce {nonce}: the outbox's {hashes} not mined")


def _mined_by(w3: Any, sender: str, start_block: int) -> dict[int, str]:
    """Nonce → hash of every transaction ``sender`` got mined after ``start_block``."""
    sender = sender.lower()
    mined: dict[int, str] = {}
    head = int(w3.eth.block_number)
    for number in range(start_block + 1, head + 1):
        block = w3.eth.get_block(number, full_transactions=True)
        for tx in block["transactions"]:
            if str(tx["from"]).lower() == sender:
                mined[int(tx["nonce"])] = "0x" + bytes(tx["hash"]).hex()
    return mined


# ---------------------------------------------------------------- report


def render_table(report: ChaosReport) -> Any:
    from rich.table import Table

    table = Table(title=f"pointsnet chaos (seed {report.seed})")
    table.add_column("figure")
    table.add_column("value", justify="right")
    kills = ", ".join(f"{k} {v}" for k, v in sorted(report.kills.items())) or "none"
    faults = ", ".join(f"{k} {v}" for k, v in sorted(report.faults.items())) or "none"
    refused = ", ".join(f"{k} {v}" for k, v in sorted(report.refused.items())) or "none"
    rows = [
        ("kill cycles survived", f"{report.cycles_survived} / {report.cycles_planned}"),
        ("  kills by target", kills),
        ("  worker fault points", faults),
        ("  unplanned exits (restarted)", str(report.unplanned_exits)),
        ("events sent (answered)", f"{report.events_sent} / {report.events_planned}"),
        ("  HTTP requests (retries)", f"{report.requests} ({report.retries})"),
        ("events accepted", str(report.accepted)),
        ("  refused", refused),
        ("events confirmed", str(report.confirmed)),
        ("lost", str(report.lost + report.unconfirmed)),
        ("doubled", str(report.doubled)),
        ("balances off", str(report.balance_mismatches)),
        ("points expected / on chain", f"{report.points_expected} / {report.points_on_chain}"),
        ("sequence numbers reused", str(report.seq_reused)),
        ("nonce drift", str(report.nonce_drift)),
        ("  nonces not matching the outbox", str(report.nonce_unrecorded)),
        ("  nonces confirmed twice", str(report.nonce_duplicates)),
        ("  stored transactions unfinished", str(report.unfinished_txs)),
        ("outbox drained", "yes" if report.drained else "NO"),
        ("time", f"{report.seconds:.0f} s"),
        ("result", "[green]PASS[/green]" if report.ok else "[red]FAIL[/red]"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    return table


def print_report(report: ChaosReport, console: Any) -> None:
    console.print(render_table(report))
    for problem in report.problems[:20]:
        console.print(f"[red]•[/red] {problem}")
    if len(report.problems) > 20:
        console.print(f"... and {len(report.problems) - 20} more")
    if not report.ok:
        console.print(f"data kept in {report.data_dir}")
