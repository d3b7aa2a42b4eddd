"""Merchant admission across a real timelock delay: scheduled and pending, then admitted.

The timelock's delay is 3 s; the chain's clock is moved past it with
``evm_increaseTime`` rather than waited for.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from factories import devnet_settings
from hexbytes import HexBytes
from sqlalchemy import select
from typer.testing import CliRunner

from chain import governance
from chain.deploy import deploy, operator_sender
from chain.devnet import Devnet, free_port, rpc_call
from gateway.cli import app as cli
from gateway.context import GatewayContext
from gateway.errors import Unauthorized
from gateway.migrate import upgrade
from gateway.models import ChainOp, MerchantAdmission
from gateway.services.merchants import admit_ready, authenticate, schedule_admission

DELAY = 3


@pytest.fixture(scope="module")
def delayed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayContext]:
    tmp = tmp_path_factory.mktemp("admission")
    with Devnet(port=free_port(), log_file=tmp / "anvil.log") as node:
        settings = devnet_settings(tmp, node, timelock_delay=DELAY)
        deploy(settings)
        context = GatewayContext.open(settings)
        upgrade(context.engine)
        yield context
        context.engine.dispose()


def warp_past_delay(context: GatewayContext) -> None:
    rpc_call(context.settings.rpc_url, "evm_increaseTime", [DELAY + 1])
    rpc_call(context.settings.rpc_url, "evm_mine", [])


def key_works(context: GatewayContext, api_key: str) -> bool:
    with context.sessions() as session:
        try:
            authenticate(session, api_key)
        except Unauthorized:
            return False
    return True


def test_an_admission_waits_out_the_delay_then_admit_ready_activates_it_once(
    delayed: GatewayContext,
) -> None:
    hub = delayed.link.network.hub
    merchants_before = hub.merchant_count()
    pending = schedule_admission(delayed, "Later Shop", "EUR", cap=5_000)
    now = int(delayed.link.w3.eth.get_block("latest")["timestamp"])
    assert pending.ready_at >= now + DELAY - 1
    assert admit_ready(delayed) == []  # not ready: nothing executed
    assert hub.merchant_count() == merchants_before
    assert not key_works(delayed, pending.api_key)

    warp_past_delay(delayed)
    admitted = admit_ready(delayed)
    assert [m.name for m in admitted] == ["Later Shop"]
    merchant_id = admitted[0].id
    assert hub.merchant_count() == merchants_before + 1
    assert hub.merchant(merchant_id).cap_per_period == 5_000
    assert key_works(delayed, pending.api_key)
    with delayed.sessions() as session:
        rule_ops = session.scalars(
            select(ChainOp).where(ChainOp.merchant_id == merchant_id, ChainOp.kind == "rule")
        ).all()
        assert len(rule_ops) == 1  # its first rule set is queued for publication

    assert admit_ready(delayed) == []  # again: nothing executed twice
    assert hub.merchant_count() == merchants_before + 1


def test_admit_ready_activates_an_admission_already_executed_on_chain(
    delayed: GatewayContext,
) -> None:
    # A crash between the execution and its record: the chain has the merchant already.
    hub, timelock = delayed.link.network.hub, delayed.link.network.timelock
    pending = schedule_admission(delayed, "Crashed Shop", "USD")
    warp_past_delay(delayed)
    with delayed.sessions() as session:
        row = session.get(MerchantAdmission, pending.admission_id)
        assert row is not None
        change = governance.ScheduledChange(
            bytes(HexBytes(row.operation_id)), row.target, row.call_data, row.salt, row.ready_at, ""
        )
    admin = operator_sender(delayed.settings, delayed.link.w3, "admin")
    governance.execute(timelock, admin, change)
    count = hub.merchant_count()

    admitted = admit_ready(delayed)
    assert [m.name for m in admitted] == ["Crashed Shop"]
    assert hub.merchant_count() == count  # detected as done, not executed again
    assert hub.merchant(admitted[0].id).signer == pending.signer
    assert key_works(delayed, pending.api_key)


def test_merchant_add_says_when_the_admission_can_execute_and_admit_ready_admits_it(
    delayed: GatewayContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = delayed.settings
    monkeypatch.setattr("gateway.cli.common.get_settings", lambda: settings)
    runner = CliRunner()
    added = runner.invoke(cli, ["merchant", "add", "Cli Shop", "--currency", "EUR", "--json"])
    assert added.exit_code == 0, added.output
    record = json.loads(added.output)
    assert (record["status"], record["id"]) == ("scheduled", None)
    assert record["ready_at"] and record["operation_id"].startswith("0x")
    early = runner.invoke(cli, ["merchant", "admit-ready", "--json"])
    assert json.loads(early.output)["admitted"] == []

    warp_past_delay(delayed)
    ready = runner.invoke(cli, ["merchant", "admit-ready", "--json"])
    assert ready.exit_code == 0, ready.output
    assert [m["name"] for m in json.loads(ready.output)["admitted"]] == ["Cli Shop"]
    assert key_works(delayed, record["api_key"])
