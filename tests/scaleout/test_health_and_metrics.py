"""``/readyz`` and ``/metrics``: readiness judged, and metrics read, from shared state.

Runs on SQLite (a module of its own, any machine): the figures come from the
database and the chain, so they would be the same in every process.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from scaleout_kit import Stack, start_stack

from chain.devnet import free_port
from chain.signers import signer_addresses
from gateway.app import create_app
from gateway.runtime.metrics import GatewayCollector
from gateway.settings import Settings


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    yield from start_stack(tmp_path_factory.mktemp("health"), None)


def client_with(stack: Stack, **settings: Any) -> TestClient:
    """The app on the same database and chain, with some settings changed."""
    context = dataclasses.replace(
        stack.context, settings=stack.settings.model_copy(update=settings)
    )
    return TestClient(create_app(context), raise_server_exceptions=False)


def scrape(client: TestClient) -> dict[str, float]:
    """``/metrics`` as {"name{labels}": value}."""
    answer = client.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    values = {}
    for line in answer.text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


def test_readyz_is_200_with_every_check_passing(stack: Stack) -> None:
    answer = stack.client.get("/readyz")
    assert answer.status_code == 200, answer.json()
    body = answer.json()
    assert body["ready"] is True and body["failing"] == []
    assert set(body["checks"]) == {"database", "rpc", "signers", "worker_lag", "indexer_lag"}
    assert body["checks"]["rpc"]["chain_id"] == stack.settings.chain_id
    assert set(body["checks"]["signers"]["balances_wei"]) == set(signer_addresses(stack.settings))


def test_readyz_is_503_naming_the_rpc_when_the_node_is_down(stack: Stack) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    with client_with(stack, rpc_url=dead) as client:
        answer = client.get("/readyz")
    assert answer.status_code == 503
    body = answer.json()
    assert body["ready"] is False
    assert {"rpc", "signers", "indexer_lag"} <= set(body["failing"])
    assert "database" not in body["failing"]
    assert body["checks"]["rpc"]["error"]


def test_readyz_is_503_when_the_rpc_serves_another_chain(stack: Stack) -> None:
    with client_with(stack, chain_id=1337) as client:
        body = client.get("/readyz").json()
    assert "rpc" in body["failing"]
    assert body["checks"]["rpc"]["chain_id"] == 31337


def test_readyz_is_503_when_a_signer_is_below_the_minimum_balance(stack: Stack) -> None:
    with client_with(stack, ready_min_signer_balance_eth=10**9) as client:
        body = client.get("/readyz").json()
    assert body["failing"] == ["signers"]
    assert body["checks"]["signers"]["below_minimum"] == sorted(signer_addresses(stack.settings))


def test_readyz_is_503_when_the_indexer_lags(stack: Stack) -> None:
    # No indexer runs in this module: every block since the deployment is unread.
    with client_with(stack, ready_max_indexer_lag=0) as client:
        body = client.get("/readyz").json()
    assert body["failing"] == ["indexer_lag"]
    assert body["checks"]["indexer_lag"]["blocks"] > 0


def test_readyz_is_503_while_an_event_waits_longer_than_the_worker_lag_limit(
    stack: Stack,
) -> None:
    stack.accept_purchases(1, threads=1)  # no worker runs: it waits
    time.sleep(0.6)
    with client_with(stack, ready_max_worker_lag=0.5) as client:
        body = client.get("/readyz").json()
        assert body["failing"] == ["worker_lag"]
        assert body["checks"]["worker_lag"]["seconds"] >= 0.5
        stack.settle_in_process()
        assert client.get("/readyz").json()["checks"]["worker_lag"]["seconds"] == 0


def test_metrics_count_events_batches_gas_and_latency_as_events_are_confirmed(
    stack: Stack,
) -> None:
    stack.settle_in_process()
    before = scrape(stack.client)
    assert before["pointsnet_database_up"] == 1 and before["pointsnet_rpc_up"] == 1

    stack.event_ids.clear()
    stack.accept_purchases(30, threads=2)
    waiting = scrape(stack.client)
    accepted = 'pointsnet_events{status="accepted"}'
    assert waiting[accepted] - before.get(accepted, 0) == 30
    assert waiting['pointsnet_worker_lag_seconds{stage="pending"}'] > 0
    stack.settle_in_process()
    after = scrape(stack.client)

    confirmed = 'pointsnet_events{status="confirmed"}'
    assert after[confirmed] - before.get(confirmed, 0) == 30
    assert after.get(accepted, 0) == 0
    # 30 issuances went out in issueBatch transactions, each one observed once.
    batches = after["pointsnet_issue_batch_size_count"] - before["pointsnet_issue_batch_size_count"]
    assert batches >= 1
    issued = after["pointsnet_issue_batch_size_sum"] - before["pointsnet_issue_batch_size_sum"]
    assert issued == 30
    everything = after['pointsnet_issue_batch_size_bucket{le="+Inf"}']
    assert everything == after["pointsnet_issue_batch_size_count"]
    gas = after['pointsnet_gas_used_total{kind="issue"}'] - before.get(
        'pointsnet_gas_used_total{kind="issue"}', 0
    )
    assert gas > 30 * 5_000
    latencies = (
        after["pointsnet_tx_latency_seconds_count"] - before["pointsnet_tx_latency_seconds_count"]
    )
    assert latencies >= batches
    assert after['pointsnet_worker_lag_seconds{stage="pending"}'] == 0
    assert after["pointsnet_chain_head_block"] > before["pointsnet_chain_head_block"]
    assert after["pointsnet_indexer_lag_blocks"] > 0  # no indexer in this module
    for address in signer_addresses(stack.settings):
        assert after[f'pointsnet_signer_balance_wei{{signer="{address}"}}'] > 0


def test_metrics_say_the_rpc_is_down_and_still_report_the_database(stack: Stack) -> None:
    with client_with(stack, rpc_url=f"http://127.0.0.1:{free_port()}") as client:
        values = scrape(client)
    assert values["pointsnet_rpc_up"] == 0
    assert values["pointsnet_database_up"] == 1
    assert any(re.match(r"pointsnet_events\{", name) for name in values)
    assert "pointsnet_chain_head_block" not in values


def test_metrics_answer_only_the_bearer_token_when_one_is_set(stack: Stack) -> None:
    token = "m3trics-" + "x" * 24
    with client_with(stack, metrics_token=SecretStr(token)) as client:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": token}):
            refused = client.get("/metrics", headers=headers)
            assert refused.status_code == 401
            assert refused.json()["error"]["code"] == "unauthorized"
            assert token not in refused.text
        answer = client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 200 and "pointsnet_events" in answer.text
        assert client.get("/readyz").status_code in (200, 503)  # probes need no token


def test_scrapes_within_max_age_share_one_computation(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """However often /metrics is called, the history is read once per max age."""
    computed = []
    from_database = GatewayCollector._from_database

    def counted(self: GatewayCollector, seen: Any) -> Any:
        computed.append(time.monotonic())
        time.sleep(0.2)  # a long history: scrapes arriving meanwhile wait for this one
        return from_database(self, seen)

    monkeypatch.setattr(GatewayCollector, "_from_database", counted)
    with client_with(stack, metrics_max_age=60.0) as client:
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda _: client.get("/metrics").text, range(8)))
        assert len(computed) == 1 and len(set(answers)) == 1
        stack.event_ids.clear()
        stack.accept_purchases(3, threads=1)
        assert client.get("/metrics").text == answers[0]  # served again, as it was
    with client_with(stack, metrics_max_age=0.0) as fresh:
        assert 'pointsnet_events{status="accepted"}' in fresh.get("/metrics").text
    assert len(computed) == 2
    stack.settle_in_process()


def test_a_metrics_token_shorter_than_16_characters_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="METRICS_TOKEN"):
        Settings(data_dir=tmp_path, metrics_token="")  # an empty one would match "Bearer "
    assert Settings(data_dir=tmp_path, metrics_token="x" * 16).metrics_token is not None
