"""Several outbox worker processes, each with its own signer key, on one PostgreSQL database.

Events are accepted while two ``pointsnet serve --role worker`` processes (signer
0 and signer 1, one nonce lane each) drain the outbox. Nothing may be lost or
doubled: every event is confirmed once, its reference appears exactly once in
the hub's ``PointsIssued`` logs, per-merchant sequence numbers are unique, and
each member's on-chain balance is exactly what its events earned. When one
worker dies (SIGKILL) the other keeps claiming pending work; the dead one's
stored transactions are sent and followed when it restarts.

``POINTSNET_SCALEOUT_EVENTS`` sets how many events the main test sends (default
1,000; the issue's figure is 10,000).
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections import Counter

import pytest
from scaleout_kit import Stack, assert_exactly_once, wait_until
from sqlalchemy import func

from chain.signers import signer_addresses
from gateway.models import ChainTx

pytestmark = pytest.mark.postgres

EVENTS = int(os.environ.get("POINTSNET_SCALEOUT_EVENTS", "1000"))


def stop(*processes: subprocess.Popen[bytes]) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def senders_of_confirmed_issues(stack: Stack) -> Counter[str]:
    with stack.context.sessions() as session:
        rows = (
            session.query(ChainTx.sender, func.count(ChainTx.id))
            .filter(ChainTx.kind == "issue", ChainTx.status == "confirmed")
            .group_by(ChainTx.sender)
            .all()
        )
    return Counter({sender: count for sender, count in rows})


def start_round(stack: Stack) -> tuple[int, int]:
    stack.event_ids.clear()
    stack.expected.clear()
    link = stack.context.link
    return link.network.token.total_supply(), link.w3.eth.block_number


@pytest.mark.timeout(1800)
def test_two_worker_processes_with_two_keys_confirm_every_event_exactly_once(
    stack: Stack,
) -> None:
    supply_before, first_block = start_round(stack)
    issues_before = senders_of_confirmed_issues(stack)
    workers = [stack.worker_process(0), stack.worker_process(1)]
    try:
        stack.wait_running(*workers)  # or the first one up might take every op
        stack.accept_purchases(EVENTS)
        wait_until(
            lambda: stack.statuses() == Counter({"confirmed": EVENTS}),
            timeout=max(120.0, EVENTS / 10),
        )
    finally:
        stop(*workers)
    assert [w.returncode for w in workers] == [0, 0]
    assert_exactly_once(stack, supply_before, first_block)
    # Both nonce lanes carried issuances.
    issued = senders_of_confirmed_issues(stack) - issues_before
    assert set(issued) == set(signer_addresses(stack.settings)), issued


@pytest.mark.timeout(600)
def test_worker_killed_after_storing_a_batch_leaves_the_rest_to_the_other(stack: Stack) -> None:
    supply_before, first_block = start_round(stack)
    stack.accept_purchases(400)
    signer_0, signer_1 = signer_addresses(stack.settings)
    doomed = stack.worker_process(0, fault="after_store")
    assert doomed.wait(timeout=120) == -signal.SIGKILL
    with stack.context.sessions() as session:
        orphaned = (
            session.query(ChainTx)
            .filter(ChainTx.sender == signer_0, ChainTx.status == "signed")
            .count()
        )
    assert orphaned >= 1  # a signed issue batch that never left the dead process

    survivor = stack.worker_process(1)
    try:
        # The other lane claims every op still pending; the dead lane's batch waits for it.
        wait_until(lambda: stack.pending_ops() == 0 and stack.in_flight(signer_1) == 0, 300)
        assert stack.statuses()["submitted"] >= 1
        assert stack.statuses()["confirmed"] >= 1
        restarted = stack.worker_process(0)
        try:
            wait_until(lambda: stack.statuses() == Counter({"confirmed": 400}), 120)
        finally:
            stop(restarted)
    finally:
        stop(survivor)
    assert_exactly_once(stack, supply_before, first_block)


@pytest.mark.timeout(600)
def test_worker_killed_mid_flight_hands_pending_work_to_the_other(stack: Stack) -> None:
    supply_before, first_block = start_round(stack)
    signer_0, _ = signer_addresses(stack.settings)
    tx_before = stack.tx_count(signer_0)
    # Lane 0 starts alone: were both lanes up, the first one ready could take every op
    # of the round and lane 0 would have nothing in flight to be killed with.
    workers = [stack.worker_process(0)]
    killed = False
    try:
        stack.accept_purchases(150)
        # SIGKILL lane 0 while it is busy: after it stored a transaction of this round.
        wait_until(lambda: stack.tx_count(signer_0) > tx_before, 120, poll=0.02)
        workers.append(stack.worker_process(1))
        workers[0].send_signal(signal.SIGKILL)
        workers[0].wait(timeout=30)
        killed = True
        stack.accept_purchases(150)  # arrives while lane 0 is dead
        wait_until(lambda: stack.pending_ops() == 0, 300)
        workers[0] = stack.worker_process(0)  # back: finalizes what it had in flight
        wait_until(lambda: stack.statuses() == Counter({"confirmed": 300}), 180)
    finally:
        stop(*workers)
    assert killed
    assert_exactly_once(stack, supply_before, first_block)
