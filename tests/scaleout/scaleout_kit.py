"""Scale-out kit: one PostgreSQL database, a real anvil, two signer keys, worker processes.

``Stack`` is a deployed network whose signer pool has two keys (both issuers),
two merchants with their merchant-wide velocity limits lifted, and the
gateway's services opened on a fresh PostgreSQL database.  Events are accepted
through the service layer (what ``POST /v1/events`` calls); the outbox is
drained by real ``pointsnet serve --role worker --signer-index N`` processes, spawned
by the one launcher (:mod:`bench.stack`).
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from factories import TEST_SETTINGS
from fastapi.testclient import TestClient

from bench.stack import Stack as Launcher
from bench.stack import lift_merchant_limits
from chain.signers import signer_addresses
from gateway.app import create_app
from gateway.context import GatewayContext
from gateway.models import ChainOp, ChainTx, Event, Merchant
from gateway.outbox.worker import OutboxWorker
from gateway.runtime.lanes import lane_senders
from gateway.schemas import EventCreate
from gateway.services import events as event_service
from gateway.services.merchants import NewMerchant
from gateway.settings import Settings

SIGNERS = 2


@dataclass
class Stack:
    """A deployed network with a two-key signer pool and a fresh PostgreSQL database
    (started by the one launcher, :class:`bench.stack.Stack`)."""

    launcher: Launcher
    client: TestClient
    expected: Counter[str] = field(default_factory=Counter)  # member address -> points
    event_ids: list[str] = field(default_factory=list)

    @property
    def context(self) -> GatewayContext:
        assert self.launcher.context is not None
        return self.launcher.context

    @property
    def merchants(self) -> list[NewMerchant]:
        return self.launcher.merchants

    @property
    def tmp(self) -> Path:
        return self.launcher.data_dir

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
        name = f"worker-{'-'.join(map(str, signer_indexes))}"
        args = [f"--signer-index={i}" for i in signer_indexes]
        return self.launcher.spawn(
            name, "--role", "worker", *args, fault=fault, log=self.tmp / f"{name}.log",
            signers=str(SIGNERS), tx_stuck_after="3600",
        )  # fmt: skip

    def wait_running(self, *processes: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
        """Wait until each worker process has taken its signer lanes and started working."""

        def running(process: subprocess.Popen[bytes]) -> bool:
            assert process.poll() is None, f"worker {process.pid} exited: {process.returncode}"
            return b") running" in self.launcher.log_since_start(process)

        wait_until(lambda: all(running(p) for p in processes), timeout)

    def settle_in_process(self, timeout: float = 60.0) -> None:
        """Drain the outbox with an in-process worker on signer 0 (setup only)."""
        worker = OutboxWorker(
            self.context.link,
            self.context.sessions,
            sender=lane_senders(self.context.link, [0])[0][1],
        )
        wait_until(lambda: (worker.run_once(), self.unfinished_ops() == 0)[1], timeout)


def assert_exactly_once(stack: Stack, supply_before: int, first_block: int) -> None:
    """Chain and database agree that every accepted event earned its points once."""
    network = stack.context.link.network
    token = network.token
    assert stack.statuses() == Counter({"confirmed": len(stack.event_ids)})
    for address, points in stack.expected.items():
        assert token.balance_of(address) == points, address
    assert token.total_supply() - supply_before == sum(stack.expected.values())
    with stack.context.sessions() as session:
        ops = (
            session.query(ChainOp.merchant_id, ChainOp.seq, ChainOp.ref, ChainOp.status)
            .filter(ChainOp.kind == "issue", ChainOp.event_id.in_(stack.event_ids))
            .all()
        )
        all_seqs = (
            session.query(ChainOp.merchant_id, ChainOp.seq).filter(ChainOp.seq.is_not(None)).all()
        )
    assert len(ops) == len(stack.event_ids)
    assert {status for *_, status in ops} == {"confirmed"}
    assert len(all_seqs) == len(set(all_seqs)), "a sequence number was used twice"
    on_chain: Counter[str] = Counter()
    for issued in network.issuances(first_block):
        on_chain[issued.ref] += 1
        # The i-th reference of a batch carries sequence number firstSeq + i (chain.decode).
        assert (issued.merchant, issued.seq) in set(all_seqs)
    refs = Counter(ref for _, _, ref, _ in ops)
    assert max(refs.values()) == 1
    assert {ref: on_chain[ref] for ref in refs} == dict.fromkeys(refs, 1), "issued twice or never"


def wait_until(predicate: Callable[[], bool], timeout: float = 60.0, poll: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(poll)
    raise AssertionError(f"condition not reached in {timeout:.0f} s")


def start_stack(tmp: Path, database_url: str | None) -> Iterator[Stack]:
    """A deployed network and the gateway on ``database_url`` (None: SQLite in ``tmp``)."""
    settings = {**TEST_SETTINGS, "batch_max_wait": 0.2, "database_url": database_url}
    with Launcher(tmp, settings={**settings, "signers": SIGNERS}) as launcher:
        assert launcher.context is not None
        assert len(signer_addresses(launcher.settings)) == SIGNERS
        app = create_app(launcher.context)
        with TestClient(app, raise_server_exceptions=False) as client:
            stack = Stack(launcher, client)
            lift_merchant_limits(client, launcher.api_keys)
            stack.settle_in_process()  # publish the rule sets, define the badges
            yield stack
