"""Chaos test kit: a real anvil, deployed contracts, the real app, and a worker that can be
pointed through a fault-injecting RPC proxy and stopped, restarted or given another database.

``Stack`` builds the chain side once per test with the one launcher
(:class:`bench.stack.Stack`); ``Stack.open()`` opens the gateway on its
database (a ``GatewayContext`` for the API, a ``TestClient``, and an ``OutboxWorker``
running in a thread, on ``rpc_url`` if given: the fault proxy).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from web3 import Web3

from bench.stack import Stack as Launcher
from chain.devnet import Devnet
from gateway.app import create_app
from gateway.chainlink import ChainLink
from gateway.context import GatewayContext
from gateway.migrate import upgrade
from gateway.models import ChainOp, ChainTx, Event
from gateway.outbox.worker import OutboxWorker
from gateway.services.events import event_ref
from gateway.services.merchants import NewMerchant
from gateway.settings import Settings


@dataclass
class Running:
    """An open gateway: API client, worker thread, and the context they share."""

    context: GatewayContext
    client: TestClient
    worker: OutboxWorker
    stop: threading.Event
    thread: threading.Thread

    def close(self) -> None:
        self.stop.set()
        self.thread.join(30)
        self.client.__exit__(None, None, None)
        self.context.engine.dispose()


@dataclass
class Stack:
    """anvil + contracts + one merchant (the one launcher, :class:`bench.stack.Stack`),
    and the gateway opened on demand."""

    launcher: Launcher
    running: Running | None = None
    answers: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def build(cls, tmp: Path, **settings: Any) -> Stack:
        launcher = Launcher(
            tmp, merchants=(("Lumière Paris", "EUR"),), settings={"batch_max_wait": 0.0, **settings}
        ).__enter__()
        launcher.close_context()
        return cls(launcher)

    @property
    def node(self) -> Devnet:
        assert self.launcher.node is not None
        return self.launcher.node

    @property
    def settings(self) -> Settings:
        return self.launcher.settings

    @property
    def merchants(self) -> list[NewMerchant]:
        return self.launcher.merchants

    @property
    def data_dir(self) -> Path:
        return self.launcher.data_dir

    @property
    def w3(self) -> Web3:
        return Web3(Web3.HTTPProvider(self.node.url))

    def open(self, rpc_url: str | None = None, before: Callable[[], None] | None = None) -> Running:
        """Open the gateway; its worker talks to ``rpc_url`` (default: the node itself)."""
        context = GatewayContext.open(self.settings)
        upgrade(context.engine)
        worker_settings = self.settings.model_copy(update={"rpc_url": rpc_url or self.node.url})
        if before is not None:
            before()
        link = ChainLink.open(worker_settings)
        worker = OutboxWorker(link, context.sessions)
        stop = threading.Event()
        thread = threading.Thread(target=worker.run, args=(stop, 0.02), daemon=True)
        client = TestClient(create_app(context), raise_server_exceptions=False)
        client.__enter__()
        thread.start()
        deadline = time.monotonic() + 60
        while not worker._recovered and time.monotonic() < deadline:
            time.sleep(0.05)  # start-up (badge definitions) done before any fault is let in
        self.running = Running(context, client, worker, stop, thread)
        return self.running

    def close(self) -> None:
        if self.running is not None:
            self.running.close()
            self.running = None

    def shutdown(self) -> None:
        self.close()
        self.launcher.__exit__()

    # ------------------------------------------------------------ merchant side

    def post(self, key: str, customer: str, amount: str = "100.00") -> dict[str, Any]:
        """POST a purchase with Idempotency-Key ``key``; remembers an accepted answer."""
        return self._post(key, {
            "type": "purchase",
            "customer_id": customer,
            "occurred_at": "2026-11-20T10:00:00Z",
            "order": {"id": f"order-{key}", "amount": amount, "currency": "EUR",
                      "items": [{"sku": "sku-1", "category": "apparel", "amount": amount}]},
        })  # fmt: skip

    def post_refund(
        self, key: str, customer: str, purchase_key: str, amount: str
    ) -> dict[str, Any]:
        """POST a refund of ``amount`` of the order of purchase ``purchase_key``."""
        return self._post(key, {
            "type": "refund",
            "customer_id": customer,
            "occurred_at": "2026-11-21T10:00:00Z",
            "refund": {"order_id": f"order-{purchase_key}", "amount": amount},
        })  # fmt: skip

    def _post(self, key: str, body: dict[str, Any]) -> dict[str, Any]:
        assert self.running is not None
        headers = {
            "Authorization": f"Bearer {self.merchants[0].api_key}",
            "Idempotency-Key": key,
        }
        response = self.running.client.post("/v1/events", json=body, headers=headers)
        assert response.status_code == 202, response.text
        answer: dict[str, Any] = response.json()
        self.answers[key] = answer
        return answer

    # ------------------------------------------------------------ checks

    def statuses(self) -> Counter[str]:
        """Status of the latest event row of every key posted."""
        assert self.running is not None
        with self.running.context.sessions() as session:
            rows = session.execute(
                select(Event.idempotency_key, Event.status).order_by(Event.created_at)
            ).all()
        latest = {key: status for key, status in rows if key in self.answers}
        return Counter(latest.values())

    def wait_final(self, timeout: float = 90.0, statuses: tuple[str, ...] = ("confirmed",)) -> None:
        """Wait until every posted key's event is in one of ``statuses`` and the outbox is idle."""
        assert self.running is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            counts = self.statuses()
            with self.running.context.sessions() as session:
                busy = session.query(ChainOp).filter(ChainOp.status.in_(("pending", "sent")))
                busy_txs = session.query(ChainTx).filter(ChainTx.status.in_(("signed", "sent")))
                idle = busy.count() == 0 and busy_txs.count() == 0
            if idle and sum(counts[s] for s in statuses) == len(self.answers):
                return
            time.sleep(0.1)
        raise AssertionError(f"events not final in {timeout:.0f} s: {dict(self.statuses())}")

    def issued_refs(self) -> Counter[str]:
        """How many times each eventRef was issued on chain."""
        assert self.running is not None
        return Counter(r.ref for r in self.running.context.link.network.issuances())

    def clawed_back_refs(self) -> Counter[str]:
        """How many times each refund's eventRef was clawed back on chain."""
        assert self.running is not None
        return Counter(r.ref for r in self.running.context.link.network.clawbacks())

    def ref(self, key: str, part: str = "points") -> str:
        return event_ref(self.merchants[0].id, key, part)

    def expected_balances(self, keys: list[str] | None = None) -> Counter[str]:
        """Each member's points: what its events issued less what its refunds clawed back."""
        expected: Counter[str] = Counter()
        for key, answer in self.answers.items():
            if keys is None or key in keys:
                address = Web3.to_checksum_address(answer["member_address"])
                expected[address] += answer["points"] - answer["clawback"]
        return expected

    def balance(self, address: str) -> int:
        assert self.running is not None
        return int(self.running.context.link.network.token.balance_of(address))

    def mined_nonces(self, sender: str, from_block: int = 0) -> dict[int, list[str]]:
        """Nonce → hashes of every transaction ``sender`` got mined."""
        w3 = self.w3
        mined: dict[int, list[str]] = {}
        for number in range(from_block, int(w3.eth.block_number) + 1):
            block: Any = w3.eth.get_block(number, full_transactions=True)
            for tx in block["transactions"]:
                if str(tx["from"]).lower() == sender.lower():
                    mined.setdefault(int(tx["nonce"]), []).append("0x" + bytes(tx["hash"]).hex())
        return mined


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"
