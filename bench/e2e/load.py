"""The load generator: requests built from the workload, sent open or closed loop."""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections import Counter
from dataclasses import dataclass

import httpx

from bench.e2e.config import FINAL, MERCHANTS
from bench.e2e.stack import GatewayStack
from bench.e2e.workload import Planned


@dataclass
class Request:
    merchant: int
    path: str
    body: bytes
    keys: list[str]
    idempotency_key: str | None = None


@dataclass
class Sent:
    """What one request did: times (perf counter and wall clock) and the answer."""

    scheduled: float
    start: float
    end: float
    wall_start: float
    status: int
    n_events: int
    accepted: dict[str, str]  # idempotency key -> event id (202, status accepted/confirmed)
    outcomes: Counter[str]
    keys: list[str]  # idempotency keys of the events in the request


@dataclass
class LoadResult:
    sent: list[Sent]
    t0_wall: float
    t1_wall: float
    polled: list[float]  # client-observed event→confirmed seconds (polled)
    client_cpu: float


def build_requests(planned: list[Planned], mode: str, batch_size: int) -> list[Request]:
    if mode == "single":
        return [
            Request(p.merchant, "/v1/events", json.dumps(p.body).encode(), [p.key], p.key)
            for p in planned
        ]
    requests: list[Request] = []
    buffers: list[list[Planned]] = [[] for _ in MERCHANTS]

    def flush(merchant: int) -> None:
        items = buffers[merchant]
        body = {"events": [{"idempotency_key": p.key, "event": p.body} for p in items]}
        requests.append(
            Request(merchant, "/v1/events/batch", json.dumps(body).encode(), [p.key for p in items])
        )
        buffers[merchant] = []

    for p in planned:
        buffers[p.merchant].append(p)
        if len(buffers[p.merchant]) >= batch_size:
            flush(p.merchant)
    for merchant, items in enumerate(buffers):
        if items:
            flush(merchant)
    return requests


def parse_answer(request: Request, response: httpx.Response) -> tuple[dict[str, str], Counter[str]]:
    accepted: dict[str, str] = {}
    outcomes: Counter[str] = Counter()
    try:
        body = response.json()
    except ValueError:
        outcomes[f"http_{response.status_code}"] += len(request.keys)
        return accepted, outcomes
    if request.idempotency_key is not None:
        if response.status_code == 202:
            accepted[request.idempotency_key] = body["id"]
            outcomes[body["status"]] += 1
        else:
            outcomes[body.get("error", {}).get("code", f"http_{response.status_code}")] += 1
        return accepted, outcomes
    if response.status_code != 200:
        outcomes[f"http_{response.status_code}"] += len(request.keys)
        return accepted, outcomes
    for item in body["data"]:
        if item["status_code"] == 202:
            accepted[item["idempotency_key"]] = item["event"]["id"]
            outcomes[item["event"]["status"]] += 1
        else:
            outcomes[(item.get("error") or {}).get("code", str(item["status_code"]))] += 1
    return accepted, outcomes


async def drive(
    stack: GatewayStack,
    requests: list[Request],
    clients: int,
    rate: float | None,
    poll_every: int,
    seconds: float = math.inf,
) -> LoadResult:
    """Send ``requests`` (open loop at ``rate`` requests/s, or closed loop) from ``clients``;
    no request starts after ``seconds``."""
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    headers = [
        {**stack.headers(i), "Content-Type": "application/json"} for i in range(len(MERCHANTS))
    ]
    sent: list[Sent] = []
    polled: list[float] = []
    pollers: list[asyncio.Task[None]] = []
    loop = asyncio.get_running_loop()
    cpu0 = time.process_time()
    async with (
        httpx.AsyncClient(base_url=stack.url, limits=limits, timeout=300, trust_env=False) as http,
        httpx.AsyncClient(base_url=stack.url, timeout=60, trust_env=False) as poll_http,
    ):

        async def poll(event_id: str, merchant: int, wall_start: float) -> None:
            # Every 10% of the time waited so far (at least 0.1 s): within 10% of the
            # latency, without hundreds of GETs per event loading the gateway it measures.
            deadline = time.time() + 300
            while time.time() < deadline:
                await asyncio.sleep(max(0.1, 0.1 * (time.time() - wall_start)))
                try:
                    answer = await poll_http.get(
                        f"/v1/events/{event_id}", headers=headers[merchant]
                    )
                except httpx.HTTPError:
                    continue
                if answer.status_code == 200 and answer.json()["status"] in FINAL:
                    polled.append(time.time() - wall_start)
                    return

        async def send(index: int, request: Request, scheduled: float) -> None:
            h = headers[request.merchant]
            if request.idempotency_key is not None:
                h = {**h, "Idempotency-Key": request.idempotency_key}
            wall = time.time()
            start = loop.time()
            try:
                response = await http.post(request.path, content=request.body, headers=h)
                accepted, outcomes = parse_answer(request, response)
                status = response.status_code
            except httpx.HTTPError as exc:
                accepted, outcomes, status = {}, Counter({type(exc).__name__: 1}), 0
            end = loop.time()
            n = len(request.keys)
            record = Sent(scheduled, start, end, wall, status, n, accepted, outcomes, request.keys)
            sent.append(record)
            if poll_every and index % poll_every == 0 and accepted:
                first = next(iter(accepted.values()))
                pollers.append(asyncio.create_task(poll(first, request.merchant, wall)))

        t0_wall = time.time()
        stop_sending = loop.time() + seconds
        if rate is None:
            queue = iter(enumerate(requests))

            async def client() -> None:
                for index, request in queue:
                    if loop.time() > stop_sending:
                        return
                    await send(index, request, loop.time())

            await asyncio.gather(*(client() for _ in range(clients)))
        else:
            gate = asyncio.Semaphore(clients)
            tasks: list[asyncio.Task[None]] = []
            begin = loop.time()

            async def gated(index: int, request: Request, scheduled: float) -> None:
                try:
                    await send(index, request, scheduled)
                finally:
                    gate.release()

            for index, request in enumerate(requests):
                if loop.time() > stop_sending:
                    break
                due = begin + index / rate
                delay = due - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                await gate.acquire()
                tasks.append(asyncio.create_task(gated(index, request, due)))
            await asyncio.gather(*tasks)
        t1_wall = time.time()
        if pollers:
            await asyncio.wait(pollers, timeout=300)
    return LoadResult(sent, t0_wall, t1_wall, polled, time.process_time() - cpu0)
