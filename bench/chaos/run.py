"""``pointsnet chaos``: the gateway under random SIGKILLs and node restarts, checked to the point.

A test harness, not a benchmark; every figure comes from the run that prints it.

1. A stack of its own in a data dir: anvil with its state persisted
   (``--state`` + ``--state-interval 1``, interval mining), the contracts
   deployed, three merchants admitted, and the gateway as three separate
   processes: ``pointsnet serve --role api``, ``--role worker`` and
   ``--role indexer``.
2. Client threads drive ``events`` merchant events through ``POST /v1/events``
   with an Idempotency-Key each, as real merchants do: on a connection error,
   a 5xx, a 409 (the key is still being processed) or a 429 they retry with
   the same key until they get an answer.
3. Meanwhile ``cycles`` kill cycles: each picks the API, the worker, the
   indexer or anvil (every target once per round of four, in a random order)
   at a random moment; a gateway process gets SIGKILL (a worker is sometimes
   restarted with a fault point, so that it also dies right after storing,
   after broadcasting or before recording a receipt), anvil gets SIGTERM (it
   writes its state; its mempool is lost). After a random pause the victim is
   started again. A supervisor restarts any role that died on its own.
4. When everything is sent and every cycle is survived, the outbox is drained
   and the chain is checked against the answers the clients were given:
   every accepted event's issuance is on chain exactly once (its ``eventRef``
   in ``PointsIssued`` logs) and confirmed in the gateway, every member's
   balance is exactly what the accepted answers promised, no merchant
   sequence number is used twice, and the operator's nonces have no drift:
   every mined transaction of the operator key after start-up is a
   transaction the outbox stored and marked confirmed at that nonce, no
   stored transaction is left unfinished, and the chain's nonce is the
   outbox's highest confirmed nonce plus one.
"""

from __future__ import annotations

import contextlib
import os
import queue
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, func, select

from bench.e2e.run import raise_merchant_limits
from chain.config import PROJECT_ROOT
from chain.deploy import deploy
from chain.devnet import Devnet, free_port, rpc_call
from gateway.settings import Settings

Progress = Callable[[str], None]

#: What a kill cycle can hit.
TARGETS = ("api", "worker", "indexer", "anvil")
#: Gateway roles, each its own process.
ROLES = ("api", "worker", "indexer")
#: (name, currency, smallest order, largest order) of the chaos merchants.
MERCHANTS: tuple[tuple[str, str, int, int], ...] = (
    ("Lumière Paris", "EUR", 20, 300),
    ("Sakura Goods", "JPY", 2_000, 40_000),
    ("Maple & Co", "USD", 15, 250),
)
#: Worker fault points (see gateway.faults) a restarted worker may be given.
FAULTS = ("after_store", "after_broadcast", "before_receipt")
#: HTTP answers a merchant retries with the same Idempotency-Key.
RETRY_STATUS = frozenset({409, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class ChaosConfig:
    """What to run; the CLI's options."""

    cycles: int = 100
    events: int = 3_000
    seed: int = 1
    data_dir: Path | None = None  # default: a temporary directory, removed unless keep
    clients: int = 4
    block_time: float = 1.0
    rate: float | None = None  # events/s offered; default: spread over the kill cycles
    pause: tuple[float, float] = (0.5, 2.5)  # seconds between two kill cycles
    down: tuple[float, float] = (0.0, 1.5)  # seconds a victim stays down
    fault_share: float = 0.3  # share of worker restarts given a fault point
    tx_stuck_after: float = 5.0  # the worker's fee-bump delay (anvil restarts drop its mempool)
    drain_timeout: float = 300.0
    keep: bool = False


@dataclass
class ChaosReport:
    """The figures of one run; ``ok`` when nothing was lost, doubled or drifted."""

    seed: int
    cycles_planned: int
    cycles_survived: int = 0
    kills: dict[str, int] = field(default_factory=dict)
    faults: dict[str, int] = field(default_factory=dict)
    unplanned_exits: int = 0
    events_planned: int = 0
    events_sent: int = 0
    requests: int = 0
    retries: int = 0
    accepted: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    confirmed: int = 0
    lost: int = 0
    doubled: int = 0
    unconfirmed: int = 0
    balance_mismatches: int = 0
    points_expected: int = 0
    points_on_chain: int = 0
    seq_reused: int = 0
    nonce_drift: int = 0
    nonce_unrecorded: int = 0
    nonce_duplicates: int = 0
    unfinished_txs: int = 0
    drained: bool = False
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)
    data_dir: str = ""

    @property
    def ok(self) -> bool:
        return (
            self.drained
            and self.cycles_survived == self.cycles_planned
            and self.events_sent == self.events_planned
            and not (self.lost or self.doubled or self.unconfirmed or self.balance_mismatches)
            and not (self.seq_reused or self.nonce_drift or self.nonce_unrecorded)
            and not (self.nonce_duplicates or self.unfinished_txs)
            and self.points_expected == self.points_on_chain
        )

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


# ====================================================================== workload


@dataclass(frozen=True)
class ChaosEvent:
    """One merchant event to send."""

    merchant: int
    key: str
    body: dict[str, Any]


def workload(config: ChaosConfig) -> list[ChaosEvent]:
    """Purchases (new and returning customers) and check-ins, deterministic per seed.

    A customer's successive events fall on successive past days, so daily caps
    never zero them and the points the answer promises are the points issued.
    """
    rng = random.Random(config.seed)
    start = datetime.now(UTC).replace(hour=10, minute=0, second=0, microsecond=0)
    start -= timedelta(days=400)
    customers: list[list[str]] = [[] for _ in MERCHANTS]
    days: Counter[str] = Counter()
    run = f"s{config.seed}"
    out: list[ChaosEvent] = []
    for index in range(config.events):
        merchant = rng.randrange(len(MERCHANTS))
        pool = customers[merchant]
        roll = rng.random()
        if not pool or roll < 0.35:
            customer = f"{run}-m{merchant}-c{len(pool)}"
            pool.append(customer)
        else:
            customer = rng.choice(pool)
        when = start + timedelta(days=days[customer], minutes=rng.randrange(600))
        days[customer] += 1
        body: dict[str, Any] = {
            "customer_id": customer,
            "occurred_at": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "device_id": f"dev-{customer}",
        }
        if roll > 0.85:
            body["type"] = "check_in"
        else:
            _name, currency, low, high = MERCHANTS[merchant]
            amount = rng.randint(low, high)
            body["type"] = "purchase"
            body["order"] = {
                "id": f"{run}-o{index}",
                "amount": f"{amount}.00",
                "currency": currency,
                "items": [{"sku": f"sku-{rng.randrange(100)}", "category": "apparel",
                           "amount": f"{amount}.00", "eco": rng.random() < 0.1}],
            }  # fmt: skip
        out.append(ChaosEvent(merchant, f"chaos-{run}-{index}", body))
    return out


# ====================================================================== the stack


class ChaosStack:
    """anvil (state persisted) + contracts + merchants + the gateway's three roles."""

    def __init__(self, config: ChaosConfig, progress: Progress) -> None:
        self.config = config
        self.progress = progress
        if config.data_dir is not None:
            self.tmp = config.data_dir.expanduser().resolve()
            self.tmp.mkdir(parents=True, exist_ok=True)
        else:
            self.tmp = Path(tempfile.mkdtemp(prefix="pointsnet-chaos-"))
        self.keep = config.keep or config.data_dir is not None
        self.rpc_port = free_port()
        self.port = free_port()
        self.node: Devnet | None = None
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.planned_down: set[str] = set()
        self.unplanned_exits = 0
        self.api_keys: list[str] = []
        self.merchant_ids: list[int] = []
        self.operator = ""
        self.hub = ""
        self.token = ""
        self.start_block = 0
        self.engine: Engine | None = None
        self.lock = threading.RLock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def rpc_url(self) -> str:
        return f"http://127.0.0.1:{self.rpc_port}"

    @property
    def database_url(self) -> str:
        return f"sqlite:///{self.tmp / 'gateway.db'}"

    # ------------------------------------------------------------ start / stop

    def __enter__(self) -> ChaosStack:
        try:
            self._start()
        except BaseException:
            self.keep = True
            self.__exit__()
            raise
        return self

    def _start(self) -> None:
        from gateway.context import GatewayContext
        from gateway.db import make_engine
        from gateway.migrate import upgrade
        from gateway.services.merchants import register

        self.start_anvil()
        settings = self.settings()
        deploy(settings)
        context = GatewayContext.open(settings)
        upgrade(context.engine)
        for name, currency, _low, _high in MERCHANTS:
            created = register(context, name, currency)
            self.api_keys.append(created.api_key)
            self.merchant_ids.append(created.id)
        self.operator = context.link.new_sender().address
        self.hub = context.link.network.hub.address
        self.token = context.link.network.token.address
        self.start_block = int(rpc_call(self.rpc_url, "eth_blockNumber"), 16)
        context.engine.dispose()
        self.engine = make_engine(self.database_url)
        for role in ROLES:
            self.spawn(role)
        self.wait_api()
        self._raise_merchant_limits()

    def settings(self) -> Settings:
        return Settings(
            data_dir=self.tmp,
            rpc_url=self.rpc_url,
            devnet_port=self.rpc_port,
            timelock_delay=0,
            database_url=self.database_url,
            port=self.port,
            _env_file=None,  # type: ignore[call-arg]
        )

    def start_anvil(self) -> None:
        self.node = Devnet(
            port=self.rpc_port,
            state_file=self.tmp / "devnet" / "state.json",
            block_time=self.config.block_time,
            gas_limit=1_000_000_000,
            log_file=self.tmp / "devnet" / "anvil.log",
        ).start(timeout=60)

    def stop_anvil(self) -> None:
        """SIGTERM: anvil writes its state and exits (its mempool is lost)."""
        if self.node is not None:
            self.node.stop(timeout=30)
            self.node = None

    def _env(self, fault: str | None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("POINTSNET_")}
        env.update(
            POINTSNET_DATA_DIR=str(self.tmp),
            POINTSNET_RPC_URL=self.rpc_url,
            POINTSNET_DEVNET_PORT=str(self.rpc_port),
            POINTSNET_TIMELOCK_DELAY="0",
            POINTSNET_DATABASE_URL=self.database_url,
            POINTSNET_HOST="127.0.0.1",
            POINTSNET_PORT=str(self.port),
            POINTSNET_TX_STUCK_AFTER=str(self.config.tx_stuck_after),
            POINTSNET_RATE_LIMIT_PER_MINUTE=str(10**9),
        )
        if fault:
            env["POINTSNET_FAULT"] = fault
        env["PYTHONPATH"] = str(PROJECT_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        return env

    def spawn(self, role: str, fault: str | None = None) -> None:
        script = Path(sys.executable).with_name("pointsnet")
        if script.exists():
            command = [str(script), "serve", "--role", role]
        else:
            command = [sys.executable, "-m", "gateway.cli", "serve", "--role", role]
        with (self.tmp / f"server-{role}.log").open("ab") as log:
            log.write(f"--- start {datetime.now(UTC).isoformat()} fault={fault}\n".encode())
            log.flush()
            self.processes[role] = subprocess.Popen(
                command, cwd=self.tmp, env=self._env(fault), stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def kill(self, role: str) -> None:
        """SIGKILL one gateway role: no cleanup, no flush."""
        proc = self.processes.get(role)
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()

    def supervise(self) -> None:
        """Restart every role that is not running (a crash, or a fault point it reached)."""
        with self.lock:
            for role in ROLES:
                if role in self.planned_down:
                    continue
                proc = self.processes.get(role)
                if proc is None or proc.poll() is not None:
                    if proc is not None and proc.returncode != -signal.SIGKILL:
                        self.unplanned_exits += 1
                        self.progress(f"{role} exited with {proc.returncode}; restarting it")
                    self.spawn(role)
            if self.node is None and "anvil" not in self.planned_down:
                self.start_anvil()

    def wait_api(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + "/healthz", timeout=1, trust_env=False).status_code == 200:
                    return
            self.supervise()
            time.sleep(0.1)
        raise RuntimeError(f"the API did not answer within {timeout:.0f} s; see {self.tmp}")

    def headers(self, merchant: int) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_keys[merchant]}"}

    def _raise_merchant_limits(self) -> None:
        raise_merchant_limits(self.url, self.api_keys, timeout=120)

    def wait_drained(self, timeout: float) -> bool:
        """Supervise until no event, op or stored transaction is in flight; False on timeout."""
        from gateway.models import ChainOp, ChainTx, Event

        assert self.engine is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.supervise()
            try:
                with self.engine.connect() as conn:
                    busy = sum(
                        int(conn.scalar(query) or 0)
                        for query in (
                            select(func.count(Event.id)).where(
                                Event.status.in_(("accepted", "submitted"))
                            ),
                            select(func.count(ChainOp.id)).where(
                                ChainOp.status.in_(("pending", "sent"))
                            ),
                            select(func.count(ChainTx.id)).where(
                                ChainTx.status.in_(("signed", "sent"))
                            ),
                        )
                    )
            except Exception:  # the database is busy: look again
                busy = 1
            if not busy:
                return True
            time.sleep(0.3)
        return False

    def stop_gateway(self) -> None:
        for proc in self.processes.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.processes.values():
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def __exit__(self, *_exc: object) -> None:
        self.stop_gateway()
        if self.engine is not None:
            self.engine.dispose()
        self.stop_anvil()
        if self.keep:
            self.progress(f"kept {self.tmp} (server-*.log, devnet/, gateway.db) for inspection")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


# ====================================================================== merchants


@dataclass
class Answers:
    """What the merchants were told, by idempotency key."""

    accepted: dict[str, dict[str, Any]] = field(default_factory=dict)
    refused: Counter[str] = field(default_factory=Counter)
    sent: int = 0
    requests: int = 0
    retries: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def drive(
    stack: ChaosStack,
    events: list[ChaosEvent],
    config: ChaosConfig,
    rate: float,
    answers: Answers,
    give_up: threading.Event,
) -> None:
    """Send every event from ``config.clients`` threads at about ``rate`` events/s, each
    retried with its Idempotency-Key until it gets a final answer (or ``give_up`` is set)."""
    todo: queue.Queue[tuple[int, ChaosEvent]] = queue.Queue()
    for item in enumerate(events):
        todo.put(item)
    begin = time.monotonic()

    def client() -> None:
        with httpx.Client(base_url=stack.url, timeout=30, trust_env=False) as http:
            while not give_up.is_set():
                try:
                    index, event = todo.get_nowait()
                except queue.Empty:
                    return
                delay = begin + index / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                headers = {**stack.headers(event.merchant), "Idempotency-Key": event.key}
                backoff = 0.1
                while not give_up.is_set():
                    with answers.lock:
                        answers.requests += 1
                    try:
                        response = http.post("/v1/events", json=event.body, headers=headers)
                    except httpx.HTTPError:
                        response = None
                    if response is not None and response.status_code not in RETRY_STATUS:
                        _record(answers, event, response)
                        break
                    with answers.lock:
                        answers.retries += 1
                    time.sleep(backoff)
                    backoff = min(backoff * 2, 2.0)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(config.clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _record(answers: Answers, event: ChaosEvent, response: httpx.Response) -> None:
    try:
        body = response.json()
    except ValueError:
        body = {}
    with answers.lock:
        answers.sent += 1
        if response.status_code == 202 and body.get("status") in ("accepted", "confirmed"):
            answers.accepted[event.key] = {**body, "merchant": event.merchant}
        elif response.status_code == 202:
            answers.refused[str(body.get("status"))] += 1
        else:
            answers.refused[str(body.get("error", {}).get("code", response.status_code))] += 1


# ====================================================================== chaos


def chaos_loop(
    stack: ChaosStack,
    config: ChaosConfig,
    report: ChaosReport,
    rng: random.Random,
    stop: threading.Event,
) -> None:
    """Run the kill cycles (or until ``stop``); counts what it killed in ``report``."""
    order: list[str] = []
    kills: Counter[str] = Counter()
    faults: Counter[str] = Counter()
    for cycle in range(config.cycles):
        if stop.wait(rng.uniform(*config.pause)):
            break
        if not order:
            order = list(TARGETS)
            rng.shuffle(order)
        target = order.pop()
        down = rng.uniform(*config.down)
        with stack.lock:
            stack.planned_down.add(target)
            if target == "anvil":
                stack.stop_anvil()
            else:
                stack.kill(target)
        time.sleep(down)
        fault = None
        if target == "worker" and rng.random() < config.fault_share:
            fault = rng.choice(FAULTS)
            faults[fault] += 1
        with stack.lock:
            stack.planned_down.discard(target)
            if target == "anvil":
                stack.start_anvil()
            else:
                stack.spawn(target, fault)
        if target == "api":
            stack.wait_api()
        kills[target] += 1
        report.cycles_survived = cycle + 1
        report.kills = dict(kills)
        report.faults = dict(faults)
        stack.progress(
            f"cycle {cycle + 1}/{config.cycles}: {target} killed"
            + (f", restarted with fault {fault}" if fault else "")
            + f" (down {down:.1f} s)"
        )


def _supervise(stack: ChaosStack, stop: threading.Event) -> None:
    while not stop.wait(0.5):
        try:
            stack.supervise()
        except Exception as exc:  # anvil slow to come back: try again
            stack.progress(f"supervisor: {exc}")


def run_chaos(config: ChaosConfig, progress: Progress | None = None) -> ChaosReport:
    """Build the stack, send the events under the kill cycles, drain, verify."""
    say = progress or (lambda _message: None)
    rng = random.Random(config.seed)
    report = ChaosReport(seed=config.seed, cycles_planned=config.cycles)
    events = workload(config)
    report.events_planned = len(events)
    t0 = time.monotonic()
    with ChaosStack(config, say) as stack:
        report.data_dir = str(stack.tmp)
        say(f"stack up in {time.monotonic() - t0:.1f} s ({stack.tmp}); chaos starts")
        mean_cycle = sum(config.pause) / 2 + sum(config.down) / 2 + 1.5
        rate = config.rate or max(2.0, len(events) / max(1.0, config.cycles * mean_cycle))
        answers = Answers()
        give_up = threading.Event()
        stop = threading.Event()
        sender = threading.Thread(
            target=drive, args=(stack, events, config, rate, answers, give_up), daemon=True
        )
        sender.start()
        supervisor = threading.Thread(target=_supervise, args=(stack, stop), daemon=True)
        supervisor.start()
        chaos_loop(stack, config, report, rng, stop)
        say("kill cycles done; waiting for the merchants' last answers")
        deadline = time.monotonic() + config.drain_timeout
        while sender.is_alive() and time.monotonic() < deadline:
            stack.supervise()
            sender.join(0.5)
        give_up.set()
        sender.join(30)
        report.events_sent = answers.sent
        report.requests = answers.requests
        report.retries = answers.retries
        report.accepted = len(answers.accepted)
        report.refused = dict(answers.refused)
        say(f"{answers.sent} events answered ({report.accepted} accepted); draining the outbox")
        report.drained = stack.wait_drained(max(30.0, deadline - time.monotonic()))
        stop.set()
        supervisor.join(10)
        report.unplanned_exits = stack.unplanned_exits
        verify(stack, answers, report)
        report.seconds = time.monotonic() - t0
        if not report.ok:
            stack.keep = True
    return report


# ====================================================================== verification


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
    for entry in network.hub.contract.events.PointsIssued().get_logs(from_block=0):
        merchant = int(entry["args"]["merchantId"])
        first = int(entry["args"]["firstSeq"])
        for i, ref in enumerate(entry["args"]["eventRefs"]):
            on_chain["0x" + bytes(ref).hex()] += 1
            seqs[merchant][first + i] += 1
    for entry in network.hub.contract.events.PointsClawedBack().get_logs(from_block=0):
        seqs[int(entry["args"]["merchantId"])][int(entry["args"]["seq"])] += 1
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


# ====================================================================== report


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
