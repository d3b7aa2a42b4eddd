"""RPC faults: the worker talks to anvil through a proxy that times out, drops connections,
rate-limits, and answers "nonce too low", "already known" and "replacement transaction
underpriced" (some of them after forwarding the transaction, so the node has it while the
worker hears otherwise), to single calls and to each item of the worker's batched
broadcasts, where it also drops an item, leaves its answer out, or delays it behind later
nonces.

Transient faults are retried until every event is confirmed; a permanent refusal fails the
events it carried with the node's reason and leaves the worker able to go on. Whatever the
faults, exactly one transaction is mined per nonce, each the outbox's own, every event is
issued once and every balance is exact.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from chaos_kit import Running, Stack, unique
from sqlalchemy import select

from bench.faultproxy import FaultProxy, FaultRates
from gateway.models import ChainTx, Event

TRANSIENT = FaultRates(
    timeout=0.01,
    drop=0.03,
    rate_limit=0.03,
    drop_after=0.12,
    nonce_too_low=0.12,
    already_known=0.12,
    underpriced=0.12,
    hang=1.0,
)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    built = Stack.build(tmp_path, tx_stuck_after=2.0)
    yield built
    built.shutdown()


def test_worker_retries_transient_rpc_faults_and_never_double_sends(stack: Stack) -> None:
    with FaultProxy(stack.node.url, TRANSIENT, seed=7) as proxy:
        proxy.enabled = False  # let the worker connect; the faults start with the work
        running = stack.open(proxy.url)
        operator = running.worker.sender.address
        start_block = int(stack.w3.eth.block_number)
        proxy.enabled = True
        # Broadcasts go as JSON-RPC batches: their items meet the send faults; an item
        # refused or left out is sent again alone, where single calls meet them too.
        wanted = ("drop", "rate_limit", "item_drop_after", "item_nonce_too_low",
                  "item_already_known", "item_underpriced")  # fmt: skip
        for wave in range(60):  # waves (several transactions) until every fault was met
            for i in range(4):
                stack.post(unique(f"rpc-{wave}-{i}"), f"rpc-customer-{i}", f"{20 + wave}.00")
            time.sleep(0.3)
            counts = proxy.stats.counts
            after_forward = counts["item_nonce_too_low_after_forward"] + counts["item_underpriced"]
            if wave >= 8 and after_forward and all(counts[f] for f in wanted):
                break
        stack.wait_final(timeout=120)
        proxy.enabled = False
        stats = dict(proxy.stats.counts)

    for fault in wanted:
        assert stats.get(fault, 0) > 0, f"{fault} never injected: {stats}"
    assert stats.get("item_nonce_too_low_after_forward", 0) > 0, stats
    assert_exactly_once(stack, running, operator, start_block)


#: Faults on the items of batched broadcasts only (the rest of the traffic is clean): an
#: item lost before the node (dropped), lost after it (its answer left out), answered
#: with an error after the node took it, or sent to the node after later nonces.
ITEMS_LOST_OR_FAILED = FaultRates(
    item_drop=0.15,
    drop_after=0.15,
    nonce_too_low=0.1,
    already_known=0.1,
    item_delay=0.1,
    after_forward=0.5,
    hang=0.5,
)


def test_a_lost_or_failed_item_of_a_batch_send_is_recovered_exactly_once(stack: Stack) -> None:
    with FaultProxy(stack.node.url, ITEMS_LOST_OR_FAILED, seed=11) as proxy:
        proxy.enabled = False
        running = stack.open(proxy.url)
        operator = running.worker.sender.address
        start_block = int(stack.w3.eth.block_number)
        proxy.enabled = True
        wanted = ("item_drop", "item_drop_after", "item_nonce_too_low_after_forward",
                  "item_already_known", "item_delay")  # fmt: skip
        for wave in range(60):
            for i in range(4):
                stack.post(unique(f"item-{wave}-{i}"), f"item-customer-{i}", f"{30 + wave}.00")
            time.sleep(0.3)
            if wave >= 6 and all(proxy.stats.counts[f] for f in wanted):
                break
        stack.wait_final(timeout=120)
        proxy.enabled = False
        stats = dict(proxy.stats.counts)

    for fault in wanted:
        assert stats.get(fault, 0) > 0, f"{fault} never injected: {stats}"
    # Only single calls are the resends of items refused or left out: all of the rest
    # went as batches.
    assert stats.get("item_forwarded", 0) > 0, stats
    assert_exactly_once(stack, running, operator, start_block)


def assert_exactly_once(stack: Stack, running: Running, operator: str, start_block: int) -> None:
    """Every event issued once, every balance exact, exactly one transaction mined per
    nonce, each the outbox's own, and no nonce drift."""
    issued = stack.issued_refs()
    for key in stack.answers:
        assert issued[stack.ref(key)] == 1, key  # issued once, never twice
    for address, points in stack.expected_balances().items():
        assert stack.balance(address) == points, address

    mined = stack.mined_nonces(operator, start_block)
    assert all(len(hashes) == 1 for hashes in mined.values())
    with running.context.sessions() as session:
        confirmed = {
            int(nonce): tx_hash.lower()
            for nonce, tx_hash in session.execute(
                select(ChainTx.nonce, ChainTx.tx_hash).where(ChainTx.status == "confirmed")
            )
        }
    chain_nonce = int(stack.w3.eth.get_transaction_count(operator))
    assert max(confirmed) + 1 == chain_nonce  # no drift
    for nonce, hashes in mined.items():
        if nonce >= min(confirmed):  # below: the worker's start-up badge definitions
            assert confirmed.get(nonce) == hashes[0], f"nonce {nonce}: a tx the outbox lacks"
    assert set(range(min(confirmed), chain_nonce)) <= set(mined)


def test_permanent_refusal_fails_the_events_with_the_reason_and_the_worker_goes_on(
    stack: Stack,
) -> None:
    refusing = FaultRates(refuse=1.0, refuse_message="transaction type not supported")
    with FaultProxy(stack.node.url, refusing, seed=3) as proxy:
        proxy.enabled = False
        running = stack.open(proxy.url)
        operator = running.worker.sender.address
        stack.wait_final(timeout=30)  # the first rule set is published
        proxy.enabled = True
        refused = [stack.post(unique("refused"), f"refused-{i}")["id"] for i in range(3)]
        stack.wait_final(timeout=60, statuses=("failed",))
        with running.context.sessions() as session:
            reasons = session.scalars(select(Event.reason).where(Event.id.in_(refused))).all()
        assert len(reasons) == 3
        assert all(r and "transaction type not supported" in r for r in reasons), reasons

        proxy.enabled = False  # the node takes transactions again
        later = unique("after-refusal")
        stack.post(later, "refused-0", "30.00")
        stack.wait_final(timeout=60, statuses=("confirmed", "failed"))
        assert stack.statuses()["confirmed"] == 1

    issued = stack.issued_refs()
    assert issued[stack.ref(later)] == 1
    assert stack.balance(stack.answers[later]["member_address"]) == stack.answers[later]["points"]
    # The refused nonce was not left as a gap: the chain went on from it.
    pending = int(stack.w3.eth.get_transaction_count(operator, "pending"))
    assert pending == int(stack.w3.eth.get_transaction_count(operator))
