"""Changing the rule notice through the timelock: ``chain.governance`` and ``pointsnet network``.

A second deployment (inside the test's snapshot) has a timelock delay of an hour and the
devnet's default notice. ``change_rule_notice`` schedules ``setRuleNotice``, finds the
same operation when asked again, and executes it once due; nothing is kept off chain.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from contract_kit import increase_time, latest_timestamp
from typer.testing import CliRunner

from chain import governance
from chain.config import DEVNET_RULE_NOTICE_SECONDS
from chain.contracts import Network
from chain.deploy import deploy
from gateway.cli import app
from gateway.settings import Settings

DELAY = 3600


@pytest.fixture
def delayed(net, anvil, tmp_path: Path):
    """``(settings, deployment, network)`` of a deployment whose timelock waits an hour."""
    settings = Settings(
        data_dir=tmp_path,
        rpc_url=anvil.url,
        chain_id=anvil.chain_id,
        devnet_port=anvil.port,
        timelock_delay=DELAY,
    )
    deployment = deploy(settings)
    for sender in net.senders():  # deploy() sent with its own operator sender
        sender.reconcile_nonce()
    return settings, deployment, Network.at(net.w3, deployment.hub, deployment.timelock)


def test_a_deployment_starts_with_the_profiles_notice(delayed):
    settings, deployment, network = delayed

    assert settings.rule_notice_seconds is None
    assert network.hub.rule_notice_seconds() == DEVNET_RULE_NOTICE_SECONDS == 60
    assert deployment.params["rule_notice_seconds"] == 60


def test_a_notice_change_is_scheduled_found_again_and_executed_once_due(net, delayed):
    _settings, deployment, network = delayed
    admin = net.timelock_admin

    change, done = governance.change_rule_notice(network, admin, 900, deployment.block)
    assert not done
    assert change.ready_at == latest_timestamp(net.w3) + DELAY
    assert governance.pending_rule_notices(network, deployment.block) == [(900, change.ready_at)]

    again, done = governance.change_rule_notice(network, admin, 900, deployment.block)
    assert (again.operation_id, done) == (change.operation_id, False)
    assert network.hub.rule_notice_seconds() == 60

    increase_time(net, DELAY)
    _, done = governance.change_rule_notice(network, admin, 900, deployment.block)

    assert done
    assert network.hub.rule_notice_seconds() == 900
    assert governance.pending_rule_notices(network, deployment.block) == []


def test_the_same_value_asked_after_another_change_is_a_new_operation(net, delayed):
    _settings, deployment, network = delayed
    admin = net.timelock_admin
    first, _ = governance.change_rule_notice(network, admin, 900, deployment.block)
    increase_time(net, DELAY)
    governance.change_rule_notice(network, admin, 900, deployment.block)

    second, done = governance.change_rule_notice(network, admin, 900, deployment.block)

    assert not done and second.operation_id != first.operation_id
    assert governance.pending_rule_notices(network, deployment.block) == [(900, second.ready_at)]


def test_the_cli_shows_the_notice_and_schedules_a_change(net, delayed):
    settings, _deployment, network = delayed
    env = {
        "POINTSNET_DATA_DIR": str(settings.data_dir),
        "POINTSNET_RPC_URL": settings.rpc_url,
        "POINTSNET_CHAIN_ID": str(settings.chain_id),
        "POINTSNET_DEVNET_PORT": str(settings.devnet_port),
    }
    runner = CliRunner()

    shown = runner.invoke(app, ["network", "rule-notice"], env=env)
    scheduled = runner.invoke(app, ["network", "rule-notice", "120"], env=env)
    net.timelock_admin.reconcile_nonce()  # the CLI sent with its own admin sender
    refused = runner.invoke(app, ["network", "rule-notice", str(366 * 24 * 3600)], env=env)

    assert shown.exit_code == 0, shown.output
    assert "rule notice: 60 s" in shown.output
    assert scheduled.exit_code == 0, scheduled.output
    assert "setRuleNotice(120) scheduled" in scheduled.output
    assert "scheduled: 120 s, due at" in scheduled.output
    assert network.hub.rule_notice_seconds() == 60
    assert refused.exit_code == 1 and "0 to 31536000 seconds" in refused.output


def test_execute_ready_runs_what_is_due_from_the_logs_alone(net, delayed):
    _settings, deployment, network = delayed
    admin = net.timelock_admin
    notice, _ = governance.change_rule_notice(network, admin, 900, deployment.block)
    governance.schedule(network.timelock, admin, network.hub.functions.setPointValue(20_000))

    assert governance.execute_ready(network, admin, deployment.block) == []  # none due yet
    waiting = governance.pending_calls(network, deployment.block)
    assert len(waiting) == 2 and waiting[0].operation_id == "0x" + notice.operation_id.hex()
    assert waiting[0].salt == notice.salt  # from the CallSalt log

    increase_time(net, DELAY)
    tried = governance.execute_ready(network, admin, deployment.block)

    assert [outcome for _call, outcome in tried] == ["executed", "executed"]
    assert network.hub.rule_notice_seconds() == 900
    assert network.hub.functions.pointValueMicros().call() == 20_000
    assert governance.pending_calls(network, deployment.block) == []


def test_the_cli_executes_due_operations(net, delayed):
    settings, deployment, network = delayed
    governance.change_rule_notice(network, net.timelock_admin, 900, deployment.block)
    increase_time(net, DELAY)
    env = {
        "POINTSNET_DATA_DIR": str(settings.data_dir),
        "POINTSNET_RPC_URL": settings.rpc_url,
        "POINTSNET_CHAIN_ID": str(settings.chain_id),
        "POINTSNET_DEVNET_PORT": str(settings.devnet_port),
    }

    result = CliRunner().invoke(app, ["network", "execute-ready"], env=env)
    net.timelock_admin.reconcile_nonce()
    again = CliRunner().invoke(app, ["network", "execute-ready"], env=env)

    assert result.exit_code == 0, result.output
    assert "setRuleNotice(noticeSeconds=900): executed" in result.output
    assert network.hub.rule_notice_seconds() == 900
    assert again.exit_code == 0 and "no timelock operation is waiting" in again.output
