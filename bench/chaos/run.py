"""Running ``pointsnet chaos``: the merchants' clients, the kill cycles, the drain."""

from __future__ import annotations

import queue
import random
import threading
import time
from collections import Counter

import httpx

from bench.chaos.config import (
    FAULTS,
    RETRY_STATUS,
    TARGETS,
    Answers,
    ChaosConfig,
    ChaosEvent,
    ChaosReport,
    Progress,
    workload,
)
from bench.chaos.stack import ChaosStack
from bench.chaos.verify import verify


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


# ---------------------------------------------------------------- chaos


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
                stack.spawn_role(target, fault)
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
        report.data_dir = str(stack.data_dir)
        say(f"stack up in {time.monotonic() - t0:.1f} s ({stack.data_dir}); chaos starts")
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
