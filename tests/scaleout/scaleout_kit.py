"""Scale-out kit: one PostgreSQL database, a real anvil, two signer keys, worker processes.

``Stack`` is a deployed network whose signer pool has two keys (both issuers),
two merchants with their merchant-wide velocity limits lifted, and the
gateway's services opened on a fresh PostgreSQL database.  Events are accepted
through the service layer (what ``POST /v1/events`` calls); the outbox is
drained by real ``pointsnet serve --role worker --signer-index N`` processes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from factories import devnet_settings, open_network
from fastapi.testclient import TestClient

from chain.devnet import Devnet, free_port
from chain.signers import signer_addresses
from gateway.app import create_app
from gateway.context import GatewayContext
from gateway.models import ChainOp, ChainTx, Event, Merchant
from gateway.runtime.lanes import lane_senders
from gateway.schemas import EventCreate
from gateway.services import events as event_service
from gateway.services.merchants import NewMerchant
from gateway.settings import Settings
from gateway.worker import OutboxWorker

SIGNERS = 2


@dataclass
class Stack:
    """A deployed network with a two-key signer pool and a fresh PostgreSQL database."""

    context: GatewayContext
    client: TestClient
    merchants: list[NewMerchant]
    tmp: Path
    expected: Counter[str] = field(default_factory=Counter)  # member address -> points
    event_ids: list[str] = field(default_factory=list)
    #: pid of each worker process started -> (its log, the log's size when it started)
    logs: dict[int, tuple[Path, int]] = field(default_factory=dict)

    @property
    def settings(self) -> Settings:
        return self.context.settings

    def headers(self, merchant: int) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self.merchants[merchant].api_key}",
            "Idempotency-Key": uuid.uuid4().hex,
        }

    # ------------------------------------------------------------------ events

    def accept_purchases(self, count: int, customers: int = 400, threads: int = 4) -> float:
        """Accept ``count`` purchases through the service layer; returns the seconds taken."""
        started = time.monotonic()
        with self.context.sessions() as session:
            merchants = [session.get(Merchant, m.id) for m in self.merchants]
            for merchant in merchants:
                assert merchant is not None
                session.expunge(merchant)
        batch = uuid.uuid4().hex[:8]

        def one(i: int) -> tuple[str, str, int]:
            merchant = merchants[i % len(merchants)]
            assert merchant is not None
            currency = "EUR" if merchant.currency == "EUR" else merchant.currency
            amount = "12.00" if currency != "JPY" else "1500"
            body = EventCreate.model_validate(
                {
                    "type": "purchase",
                    "customer_id": f"c{batch}-{i % customers}",
                    "occurred_at": "2026-11-20T10:00:00Z",
                    "order": {
                        "id": f"{batch}-{i}",
                        "amount": amount,
                        "currency": currency,
                        "items": [{"sku": "s", "category": "apparel", "amount": amount}],
                    },
                }
            )
            status, answer = event_service.submit(self.context, merchant, f"{batch}-{i}", body)
            assert status == 202, answer
            assert answer["status"] == "accepted", answer
            return answer["id"], answer["member_address"], int(answer["points"])

        with ThreadPoolExecutor(threads) as pool:
            for event_id, member, points in pool.map(one, range(count)):
                self.event_ids.append(event_id)
                self.expected[member] += points
        return time.monotonic() - started

    def statuses(self) -> Counter[str]:
        with self.context.sessions() as session:
            rows = session.query(Event.status, Event.id).filter(Event.id.in_(self.event_ids))
            return Counter(status for status, _ in rows)

    def unfinished_ops(self) -> int:
        with self.context.sessions() as session:
            return session.query(ChainOp).filter(ChainOp.status.in_(("pending", "sent"))).count()

    def pending_ops(self) -> int:
        """Ops no worker has claimed yet."""
        with self.context.sessions() as session:
            return session.query(ChainOp).filter(ChainOp.status == "pending").count()

    def tx_count(self, sender: str) -> int:
        """Transactions ``sender``'s lane has stored so far."""
        with self.context.sessions() as session:
            return session.query(ChainTx).filter(ChainTx.sender == sender).count()

    def in_flight(self, sender: str) -> int:
        """``sender``'s transactions stored or sent but not final."""
        with self.context.sessions() as session:
            return (
                session.query(ChainTx)
                .filter(ChainTx.sender == sender, ChainTx.status.in_(("signed", "sent")))
                .count()
            )

    # ------------------------------------------------------------------ processes

    def worker_process(
        self, *signer_indexes: int, fault: str | None = None
    ) -> subprocess.Popen[bytes]:
        """``pointsnet serve --role worker`` for the given signer keys, as a real process
        (``fault``: a fault point of :mod:`gateway.faults` where it SIGKILLs itself)."""
        settings = self.settings
        env = {
            **os.environ,
            "POINTSNET_DATA_DIR": str(settings.data_dir),
            "POINTSNET_RPC_URL": settings.rpc_url,
            "POINTSNET_DEVNET_PORT": str(settings.devnet_port),
            "POINTSNET_DATABASE_URL": settings.effective_database_url,
            "POINTSNET_SIGNERS": str(SIGNERS),
            "POINTSNET_TIMELOCK_DELAY": "0",
            "POINTSNET_TX_STUCK_AFTER": "3600",
        }
        env.pop("POINTSNET_FAULT", None)
        if fault:
            env["POINTSNET_FAULT"] = fault
        args = [f"--signer-index={i}" for i in signer_indexes]
        path = self.tmp / f"worker-{'-'.join(map(str, signer_indexes))}.log"
        log = open(path, "ab")  # noqa: SIM115
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "serve", "--role", "worker", *args],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.logs[process.pid] = (path, log.tell())
        return process

    def wait_running(self, *processes: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
        """Wait until each worker process has taken its signer lanes and started working."""

        def running(process: subprocess.Popen[bytes]) -> bool:
            assert process.poll() is None, f"worker {process.pid} exited: {process.returncode}"
            path, start = self.logs[process.pid]
            with open(path, "rb") as log:
                log.seek(start)
                return b") running" in log.read()

        wait_until(lambda: all(running(p) for p in processes), timeout)

    def settle_in_process(self, timeout: float = 60.0) -> None:
        """Drain the outbox with an in-process worker on signer 0 (setup only)."""
        worker = OutboxWorker(
            self.context.link,
            self.context.sessions,
            sender=lane_senders(self.context.link, [0])[0][1],
        )
        wait_until(lambda: (worker.run_once(), self.unfinished_ops() == 0)[1], timeout)


def wait_until(predicate: Callable[[], bool], timeout: float = 60.0, poll: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(poll)
    raise AssertionError(f"condition not reached in {timeout:.0f} s")


def start_stack(tmp: Path, database_url: str | None) -> Iterator[Stack]:
    """A deployed network and the gateway on ``database_url`` (None: SQLite in ``tmp``)."""
    with Devnet(port=free_port(), log_file=tmp / "anvil.log") as node:
        settings = devnet_settings(
            tmp, node, batch_max_wait=0.2, database_url=database_url, signers=SIGNERS
        )
        context, merchants = open_network(settings)
        assert len(signer_addresses(settings)) == SIGNERS
        app = create_app(context)
        with TestClient(app, raise_server_exceptions=False) as client:
            stack = Stack(context, client, merchants, tmp)
            for i in range(len(merchants)):
                rules = client.get("/v1/rules", headers=stack.headers(i)).json()["rules"]
                rules["velocity"].update(
                    merchant_events_per_minute=None, merchant_points_per_day=None
                )
                answer = client.put("/v1/rules", json=rules, headers=stack.headers(i))
                assert answer.status_code == 202, answer.text
            stack.settle_in_process()  # publish the rule sets, define the badges
            yield stack
        context.engine.dispose()
