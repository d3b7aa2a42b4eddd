"""Rule parameters change only through the timelock, after its published delay."""

from __future__ import annotations

from pathlib import Path

import pytest
from contract_kit import (
    ADMIN_ROLE,
    EXECUTOR_ROLE,
    GUARDIAN_ROLE,
    ISSUER_ROLE,
    MERCHANT_CAP,
    PROPOSER_ROLE,
    ZERO_ADDRESS,
    admin,
    assert_error,
    call_revert,
    events,
    increase_time,
    issue,
    latest_timestamp,
    member,
    only_event,
    publish,
    reverts,
)
from eth_abi import encode
from web3 import Web3

from chain import governance
from chain.artifacts import load_artifact
from chain.contracts import MerchantStatus, Network
from chain.deploy import deploy
from gateway.settings import Settings

DELAY = 3600
#: TimelockController's state bitmap for "Ready" (1 << OperationState.Ready).
READY_STATE = (1 << 2).to_bytes(32, "big")


# ------------------------------------------------------------------ the deployment's rules


def test_hub_is_deployed_with_the_published_parameters(net):
    hub = net.hub.functions
    assert hub.pointValueMicros().call() == 10_000
    assert hub.valueCurrency().call() == "USD"
    assert hub.transfersAllowed().call() is True
    assert hub.sunsetActive().call() is False
    assert hub.MAX_TIER().call() == 4
    assert net.hub.token_address() == net.token.address
    assert net.hub.badges_address() == net.badges.address
    assert net.network.timelock.functions.getMinDelay().call() == 0


def test_roles_follow_least_privilege(net):
    has = net.hub.functions.hasRole
    timelock = net.network.timelock.address
    assert has(ADMIN_ROLE, timelock).call() is True
    assert has(ISSUER_ROLE, net.operator.address).call() is True
    assert has(GUARDIAN_ROLE, net.guardian.address).call() is True
    for role in (ADMIN_ROLE, GUARDIAN_ROLE):
        assert has(role, net.operator.address).call() is False
    for role in (ADMIN_ROLE, ISSUER_ROLE, GUARDIAN_ROLE):
        assert has(role, net.timelock_admin.address).call() is False
        assert has(role, net.merchant_signers[1].address).call() is False
    assert net.network.timelock.functions.hasRole(PROPOSER_ROLE, net.operator.address).call() is (
        False
    )


# ------------------------------------------------------------------ admin functions


def test_add_merchant_through_the_timelock_admits_it_with_the_next_id(net):
    signer = member()
    receipt = admin(net, net.hub.functions.addMerchant("Shop Three", signer.address, 500))

    assert only_event(net.hub, "MerchantAdded", receipt) == {
        "merchantId": 3,
        "signer": signer.address,
        "capPerPeriod": 500,
        "name": "Shop Three",
    }
    assert net.hub.merchant_count() == 3
    merchant = net.hub.merchant(3)
    assert (merchant.signer, merchant.status, merchant.cap_per_period) == (
        signer.address,
        MerchantStatus.ACTIVE,
        500,
    )
    assert (merchant.rule_version, merchant.issued) == (0, 0)


def test_a_new_merchant_cannot_issue_before_publishing_a_rule_set(net):
    admin(net, net.hub.functions.addMerchant("Shop Three", member().address, 500))

    with reverts("LoyaltyNetworkUnknownRuleVersion", merchantId=3, ruleVersion=1):
        issue(net, 3, 0, [member().address], [1])
    publish(net, 3)
    issue(net, 3, 0, [member().address], [1])


def test_set_merchant_cap_through_the_timelock_emits_merchant_cap_changed(net):
    receipt = admin(net, net.hub.functions.setMerchantCap(2, 77))

    assert only_event(net.hub, "MerchantCapChanged", receipt) == {
        "merchantId": 2,
        "capPerPeriod": 77,
    }
    assert net.hub.merchant(2).cap_per_period == 77
    assert net.hub.merchant(1).cap_per_period == MERCHANT_CAP


def test_set_merchant_signer_through_the_timelock_rotates_the_key(net):
    new_signer = net.outsider
    receipt = admin(net, net.hub.functions.setMerchantSigner(1, new_signer.address))

    assert only_event(net.hub, "MerchantSignerChanged", receipt) == {
        "merchantId": 1,
        "signer": new_signer.address,
    }
    assert net.hub.merchant(1).signer == new_signer.address
    issue(net, 1, 0, [member().address], [1], sender=new_signer)


def test_set_point_value_through_the_timelock_emits_point_value_changed(net):
    receipt = admin(net, net.hub.functions.setPointValue(12_500))

    assert only_event(net.hub, "PointValueChanged", receipt) == {
        "microUnits": 12_500,
        "currency": "USD",
    }
    assert net.hub.functions.pointValueMicros().call() == 12_500


def test_set_transfers_allowed_through_the_timelock_emits_transfer_policy_changed(net):
    receipt = admin(net, net.hub.functions.setTransfersAllowed(False))

    assert only_event(net.hub, "TransferPolicyChanged", receipt) == {"allowed": False}
    assert net.hub.functions.transfersAllowed().call() is False


def test_grant_role_through_the_timelock_makes_a_new_issuer(net):
    receipt = admin(net, net.hub.functions.grantRole(ISSUER_ROLE, net.outsider.address))

    granted = only_event(net.hub, "RoleGranted", receipt)
    assert (granted["role"], granted["account"]) == (ISSUER_ROLE, net.outsider.address)
    issue(net, 2, 0, [member().address], [1], sender=net.outsider)


def test_revoke_role_through_the_timelock_retires_an_issuer_key(net):
    admin(net, net.hub.functions.revokeRole(ISSUER_ROLE, net.operator.address))

    with reverts("LoyaltyNetworkUnauthorizedIssuer", caller=net.operator.address, merchantId=1):
        issue(net, 1, 0, [member().address], [1])


def test_an_issuer_key_can_renounce_its_own_role(net):
    net.operator.transact(net.hub.functions.renounceRole(ISSUER_ROLE, net.operator.address))

    assert net.hub.functions.hasRole(ISSUER_ROLE, net.operator.address).call() is False
    with reverts("LoyaltyNetworkUnauthorizedIssuer", caller=net.operator.address, merchantId=1):
        issue(net, 1, 0, [member().address], [1])


# ------------------------------------------------------------------ admin errors


def _admin_calls(net):
    hub = net.hub.functions
    someone = member().address
    return {
        "addMerchant": hub.addMerchant("x", someone, 1),
        "setMerchantCap": hub.setMerchantCap(1, 1),
        "setMerchantSigner": hub.setMerchantSigner(1, someone),
        "reinstateMerchant": hub.reinstateMerchant(1),
        "setPointValue": hub.setPointValue(1),
        "setTransfersAllowed": hub.setTransfersAllowed(False),
        "setCapPeriod": hub.setCapPeriod(60),
        "sunset": hub.sunset(),
        "grantRole": hub.grantRole(ISSUER_ROLE, someone),
    }


ADMIN_FUNCTIONS = [
    "addMerchant",
    "setMerchantCap",
    "setMerchantSigner",
    "reinstateMerchant",
    "setPointValue",
    "setTransfersAllowed",
    "setCapPeriod",
    "sunset",
    "grantRole",
]


@pytest.mark.parametrize("name", ADMIN_FUNCTIONS)
def test_admin_function_called_directly_by_the_operator_reverts(net, name):
    fn = _admin_calls(net)[name]

    with reverts(
        "AccessControlUnauthorizedAccount", account=net.operator.address, neededRole=ADMIN_ROLE
    ):
        net.operator.transact(fn)


def test_admin_function_called_directly_by_the_timelock_proposer_reverts(net):
    fn = net.hub.functions.setPointValue(1)
    proposer = net.timelock_admin.address

    with reverts("AccessControlUnauthorizedAccount", account=proposer, neededRole=ADMIN_ROLE):
        net.timelock_admin.transact(fn)


@pytest.mark.parametrize("name", ["pause", "unpause", "suspendMerchant"])
def test_guardian_function_called_by_the_operator_reverts(net, name):
    hub = net.hub.functions
    fn = {"pause": hub.pause(), "unpause": hub.unpause(), "suspendMerchant": hub.suspendMerchant(1)}

    with reverts(
        "AccessControlUnauthorizedAccount",
        account=net.operator.address,
        neededRole=GUARDIAN_ROLE,
    ):
        net.operator.transact(fn[name])


def test_operator_cannot_schedule_on_the_timelock(net):
    with reverts(
        "AccessControlUnauthorizedAccount", account=net.operator.address, neededRole=PROPOSER_ROLE
    ):
        governance.schedule(net.network.timelock, net.operator, net.hub.functions.setPointValue(1))


def test_an_outsider_cannot_execute_a_scheduled_change(net):
    change = governance.schedule(
        net.network.timelock, net.timelock_admin, net.hub.functions.setPointValue(1)
    )

    with reverts(
        "AccessControlUnauthorizedAccount", account=net.outsider.address, neededRole=EXECUTOR_ROLE
    ):
        governance.execute(net.network.timelock, net.outsider, change)


def test_add_merchant_reverts_for_the_zero_address_as_signer(net):
    with reverts("LoyaltyNetworkZeroAddress"):
        admin(net, net.hub.functions.addMerchant("x", ZERO_ADDRESS, 1))


def test_set_merchant_signer_reverts_for_the_zero_address(net):
    with reverts("LoyaltyNetworkZeroAddress"):
        admin(net, net.hub.functions.setMerchantSigner(1, ZERO_ADDRESS))
    assert net.hub.merchant(1).signer == net.merchant_signers[1].address


def test_set_cap_period_reverts_for_zero_seconds(net):
    with reverts("LoyaltyNetworkZeroPeriod"):
        admin(net, net.hub.functions.setCapPeriod(0))


@pytest.mark.parametrize("fn_name", ["setMerchantCap", "setMerchantSigner", "reinstateMerchant"])
def test_merchant_admin_functions_revert_for_an_unknown_merchant(net, fn_name):
    hub = net.hub.functions
    fn = {
        "setMerchantCap": hub.setMerchantCap(99, 1),
        "setMerchantSigner": hub.setMerchantSigner(99, member().address),
        "reinstateMerchant": hub.reinstateMerchant(99),
    }[fn_name]

    with reverts("LoyaltyNetworkUnknownMerchant", merchantId=99):
        admin(net, fn)


def test_merchant_view_reverts_for_an_unknown_merchant(net):
    error = call_revert(net.hub.functions.merchant(99))
    assert_error(error, "LoyaltyNetworkUnknownMerchant", merchantId=99)


# ------------------------------------------------------------------ constructor checks


def _hub_constructor_data(net, timelock, guardian, cap_period, rule_notice=0) -> bytes:
    artifact = load_artifact("LoyaltyNetwork")
    factory = net.w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    config = (
        timelock,
        guardian,
        [net.operator.address],
        10_000,
        "USD",
        True,
        cap_period,
        rule_notice,
        "Points",
        "PTS",
    )
    return bytes.fromhex(factory.constructor(config).data_in_transaction[2:])


@pytest.mark.parametrize("missing", ["timelock", "guardian"])
def test_hub_constructor_reverts_for_a_zero_admin_address(net, missing):
    timelock = ZERO_ADDRESS if missing == "timelock" else net.network.timelock.address
    guardian = ZERO_ADDRESS if missing == "guardian" else net.guardian.address

    with reverts("LoyaltyNetworkZeroAddress"):
        net.operator.estimate_gas(None, _hub_constructor_data(net, timelock, guardian, 3600))


def test_hub_constructor_reverts_for_a_zero_cap_period(net):
    data = _hub_constructor_data(net, net.network.timelock.address, net.guardian.address, 0)

    with reverts("LoyaltyNetworkZeroPeriod"):
        net.operator.estimate_gas(None, data)


def test_hub_constructor_reverts_for_a_rule_notice_over_a_year(net):
    year = 365 * 24 * 3600
    timelock, guardian = net.network.timelock.address, net.guardian.address
    data = _hub_constructor_data(net, timelock, guardian, 3600, year + 1)

    with reverts("LoyaltyNetworkRuleNoticeTooLong", noticeSeconds=year + 1, max=year):
        net.operator.estimate_gas(None, data)
    assert net.operator.estimate_gas(
        None, _hub_constructor_data(net, timelock, guardian, 3600, year)
    )


# ------------------------------------------------------------------ a timelock with a delay


@pytest.fixture
def delayed(net, anvil, tmp_path: Path) -> Network:
    """A second deployment (inside the test's snapshot) whose timelock delay is an hour."""
    # A fresh Settings rather than anvil.settings.model_copy(update=...): see
    # test_settings_copy_recomputes_the_effective_timelock_delay.
    settings = Settings(
        data_dir=tmp_path,
        rpc_url=anvil.url,
        chain_id=anvil.chain_id,
        devnet_port=anvil.port,
        timelock_delay=DELAY,
    )
    deployment = deploy(settings)
    assert deployment.timelock_delay == DELAY
    for sender in net.senders():  # deploy() sent with its own operator sender
        sender.reconcile_nonce()
    return Network.at(net.w3, deployment.hub, deployment.timelock)


def test_second_deployment_publishes_its_timelock_delay(delayed):
    assert delayed.timelock.functions.getMinDelay().call() == DELAY


def test_scheduled_change_cannot_execute_before_the_delay(net, delayed):
    timelock = delayed.timelock
    change = governance.schedule(
        timelock, net.timelock_admin, delayed.hub.functions.setPointValue(20_000)
    )
    scheduled_at = latest_timestamp(net.w3)

    assert change.ready_at == scheduled_at + DELAY
    assert timelock.functions.isOperationPending(change.operation_id).call() is True
    assert timelock.functions.isOperationReady(change.operation_id).call() is False
    with reverts(
        "TimelockUnexpectedOperationState",
        operationId=change.operation_id,
        expectedStates=READY_STATE,
    ):
        governance.execute(timelock, net.timelock_admin, change)

    increase_time(net, DELAY - 60)
    with reverts(
        "TimelockUnexpectedOperationState",
        operationId=change.operation_id,
        expectedStates=READY_STATE,
    ):
        governance.execute(timelock, net.timelock_admin, change)
    assert delayed.hub.functions.pointValueMicros().call() == 10_000


def test_scheduled_change_executes_once_the_delay_has_passed(net, delayed):
    timelock = delayed.timelock
    change = governance.schedule(
        timelock, net.timelock_admin, delayed.hub.functions.setPointValue(20_000)
    )
    schedule_receipt = net.w3.eth.get_transaction_receipt(change.schedule_tx)
    assert events(timelock, "CallScheduled", schedule_receipt)[0]["args"]["delay"] == DELAY

    increase_time(net, DELAY)
    receipt = governance.execute(timelock, net.timelock_admin, change)

    assert only_event(delayed.hub, "PointValueChanged", receipt) == {
        "microUnits": 20_000,
        "currency": "USD",
    }
    assert delayed.hub.functions.pointValueMicros().call() == 20_000
    assert timelock.functions.isOperationDone(change.operation_id).call() is True
    with reverts(
        "TimelockUnexpectedOperationState",
        operationId=change.operation_id,
        expectedStates=READY_STATE,
    ):
        governance.execute(timelock, net.timelock_admin, change)


def test_scheduled_merchant_admission_applies_only_after_the_delay(net, delayed):
    signer = member()
    call = delayed.hub.functions.addMerchant("Late Shop", signer.address, 100)
    result = governance.apply(delayed.timelock, net.timelock_admin, call)

    assert isinstance(result, governance.ScheduledChange)  # too long to wait for
    assert delayed.hub.merchant_count() == 0
    increase_time(net, DELAY)
    governance.execute(delayed.timelock, net.timelock_admin, result)
    assert delayed.hub.merchant_count() == 1
    assert delayed.hub.merchant(1).signer == signer.address


def test_scheduling_below_the_minimum_delay_reverts(net, delayed):
    call = delayed.hub.functions.setPointValue(1)
    data = bytes.fromhex(call._encode_transaction_data()[2:])
    schedule = delayed.timelock.functions.schedule(
        delayed.hub.address, 0, data, b"\x00" * 32, b"\x01" * 32, DELAY - 1
    )

    with reverts("TimelockInsufficientDelay", delay=DELAY - 1, minDelay=DELAY):
        net.timelock_admin.transact(schedule)


def test_a_cancelled_change_never_executes(net, delayed):
    timelock = delayed.timelock
    change = governance.schedule(timelock, net.timelock_admin, delayed.hub.functions.sunset())
    net.timelock_admin.transact(timelock.functions.cancel(change.operation_id))

    increase_time(net, DELAY)
    with reverts(
        "TimelockUnexpectedOperationState",
        operationId=change.operation_id,
        expectedStates=READY_STATE,
    ):
        governance.execute(timelock, net.timelock_admin, change)
    assert delayed.hub.functions.sunsetActive().call() is False


def test_settings_copy_recomputes_the_effective_timelock_delay(tmp_path: Path):
    original = Settings(data_dir=tmp_path / "a", chain_id=31337)
    assert original.effective_timelock_delay == 0
    assert original.data_path == (tmp_path / "a").resolve()

    copy = original.model_copy(update={"timelock_delay": DELAY, "data_dir": tmp_path / "b"})

    assert (copy.effective_timelock_delay, copy.data_path) == (DELAY, (tmp_path / "b").resolve())


def test_timelock_encodes_the_call_it_executes(net):
    # The operation id binds target, value, calldata, predecessor and salt.
    call = net.hub.functions.setPointValue(5)
    data = bytes.fromhex(call._encode_transaction_data()[2:])
    salt = b"\x05" * 32
    expected = Web3.keccak(
        encode(
            ["address", "uint256", "bytes", "bytes32", "bytes32"],
            [net.hub.address, 0, data, b"\x00" * 32, salt],
        )
    )
    timelock = net.network.timelock.functions
    assert timelock.hashOperation(net.hub.address, 0, data, b"\x00" * 32, salt).call() == expected
