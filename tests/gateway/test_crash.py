"""Crash recovery: the outbox worker is a real process, killed with SIGKILL mid-flight.

For each fault point the worker dies (SIGKILL, no cleanup) after storing a
signed transaction, after broadcasting it, or after it was mined but before
the database knew; a restarted worker must finish the job, and the chain must
hold exactly the points the accepted events earned: nothing lost, nothing
doubled.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
from gateway_kit import Gateway, purchase

from gateway.faults import POINTS
from gateway.models import ChainOp, ChainTx, Event

EVENTS = 12


def worker_process(gateway: Gateway, fault: str | None) -> subprocess.Popen[bytes]:
    settings = gateway.context.settings
    env = {
        **os.environ,
        "POINTSNET_DATA_DIR": str(settings.data_dir),
        "POINTSNET_RPC_URL": settings.rpc_url,
        "POINTSNET_DEVNET_PORT": str(settings.devnet_port),
        "POINTSNET_TIMELOCK_DELAY": "0",
        "POINTSNET_BATCH_MAX_WAIT": "0",
        "POINTSNET_TX_STUCK_AFTER": "3600",
    }
    if settings.database_url:
        env["POINTSNET_DATABASE_URL"] = settings.database_url
    env.pop("POINTSNET_FAULT", None)
    if fault:
        env["POINTSNET_FAULT"] = fault
    return subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "serve", "--role", "worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def wait_until(predicate: object, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError("condition not reached in time")


def statuses(gateway: Gateway, ids: list[str]) -> Counter[str]:
    with gateway.context.sessions() as session:
        return Counter(s for (s,) in session.query(Event.status).filter(Event.id.in_(ids)).all())


@pytest.mark.parametrize("fault", POINTS)
def test_worker_killed_mid_flight_resumes_without_loss_or_double_mint(
    gateway: Gateway, fault: str
) -> None:
    token = gateway.context.link.network.token
    expected: Counter[str] = Counter()
    ids = []
    for i in range(EVENTS):
        body = purchase(f"crash-{fault}-{i % 4}", f"{fault}-{i}", f"{10 + i}.00")
        answer = gateway.client.post("/v1/events", json=body, headers=gateway.headers()).json()
        ids.append(answer["id"])
        expected[answer["member_address"]] += answer["points"]
    supply_before = token.total_supply()

    doomed = worker_process(gateway, fault)
    assert doomed.wait(timeout=60) == -signal.SIGKILL, (
        doomed.stderr.read().decode()[-2000:] if doomed.stderr else ""
    )
    with gateway.context.sessions() as session:
        stored = session.query(ChainTx).filter(ChainTx.kind == "issue").count()
    assert stored >= 1  # the worker got as far as storing a signed transaction

    survivor = worker_process(gateway, None)
    try:
        wait_until(lambda: statuses(gateway, ids) == Counter({"confirmed": EVENTS}))
    finally:
        survivor.send_signal(signal.SIGTERM)
        survivor.wait(timeout=30)

    for address, points in expected.items():
        assert token.balance_of(address) == points, address
    assert token.total_supply() - supply_before == sum(expected.values())
    with gateway.context.sessions() as session:
        seqs = [s for (s,) in session.query(ChainOp.seq).filter(ChainOp.kind == "issue").all()]
    assert len(seqs) == len(set(seqs))  # every sequence number used once
