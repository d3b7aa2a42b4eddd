"""Helpers for contract tests: issuing, signing member consent, time travel, reverts.

Imported by the ``test_*.py`` files of this folder (``conftest.py`` holds the
fixtures). Everything here talks to the ``net`` deployment of the session anvil.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from eth_abi import decode as abi_decode
from eth_utils import get_abi_output_types, is_address, keccak, to_checksum_address
from factories import new_member
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.exceptions import ContractLogicError
from web3.logs import DISCARD
from web3.types import EventData, TxReceipt

from chain import governance, signing
from chain.abi import ZERO32
from chain.contracts import decode_revert
from chain.errors import ContractRevert
from chain.sender import TransactionSender

#: Badge types the session deployment defines (see conftest.py).
FIRST_ORDER = 1  # soulbound, max supply 1000
ECO_GUARDIAN = 2  # transferable, max supply 2
#: Mint cap per period the session deployment gives both merchants.
MERCHANT_CAP = 10**12
RULE_VERSION = 1
DAY = 24 * 3600
ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
ADMIN_ROLE = b"\x00" * 32
ISSUER_ROLE = keccak(text="ISSUER_ROLE")
GUARDIAN_ROLE = keccak(text="GUARDIAN_ROLE")
PROPOSER_ROLE = keccak(text="PROPOSER_ROLE")
EXECUTOR_ROLE = keccak(text="EXECUTOR_ROLE")


@dataclass(frozen=True)
class Member:
    """A member's address and private key."""

    address: str
    key: str


def member() -> Member:
    """A fresh member (no points, no ether)."""
    address, key = new_member()
    return Member(address, key)


def ref(n: int) -> bytes:
    """A bytes32 event reference."""
    return n.to_bytes(32, "big")


# ------------------------------------------------------------------ reverts


def _normalized(value: Any) -> Any:
    if isinstance(value, str) and is_address(value):
        return to_checksum_address(value)
    if isinstance(value, list | tuple):
        return type(value)(_normalized(v) for v in value)
    return value


def assert_error(error: ContractRevert, name: str, **args: Any) -> None:
    """``error`` is the custom error ``name`` with exactly ``args`` (addresses normalized)."""
    assert error.name == name, f"expected {name}, got {error}"
    actual = {k: _normalized(v) for k, v in error.args_by_name.items()}
    expected = {k: _normalized(v) for k, v in args.items()}
    assert actual == expected, f"{name} arguments: expected {expected}, got {actual}"


@contextmanager
def reverts(name: str, **args: Any) -> Iterator[None]:
    """The block raises :class:`ContractRevert` ``name(**args)``."""
    with pytest.raises(ContractRevert) as info:
        yield
    assert_error(info.value, name, **args)


def call_revert(fn: ContractFunction, sender: str | None = None) -> ContractRevert:
    """The decoded custom error of a reverting ``eth_call`` (optionally from ``sender``)."""
    try:
        fn.call({"from": to_checksum_address(sender)} if sender else None)
    except ContractLogicError as exc:
        return decode_revert(exc.data if isinstance(exc.data, str | bytes) else None)
    pytest.fail(f"{fn.fn_name} did not revert")


# ------------------------------------------------------------------ events


def events(contract: Any, name: str, receipt: TxReceipt) -> list[EventData]:
    """Logs ``name`` that ``contract`` (a client or web3 contract) emitted in ``receipt``."""
    web3_contract: Contract = getattr(contract, "contract", contract)
    logs = getattr(web3_contract.events, name)().process_receipt(receipt, errors=DISCARD)
    return [log for log in logs if log["address"] == web3_contract.address]


def only_event(contract: Any, name: str, receipt: TxReceipt) -> dict[str, Any]:
    """The arguments of the single log ``name`` of ``contract`` in ``receipt``."""
    found = events(contract, name, receipt)
    assert len(found) == 1, f"expected one {name}, got {len(found)}"
    return dict(found[0]["args"])


# ------------------------------------------------------------------ chain time and funds


def rpc_url(net: Any) -> str:
    return str(net.w3.provider.endpoint_uri)


def rpc(net: Any, method: str, params: Sequence[Any] = ()) -> Any:
    """One raw JSON-RPC call over web3's pooled connection.

    (``chain.devnet.rpc_call`` opens a new HTTP client per call, ~25 ms each; too slow
    for the property test, which travels in time and snapshots on every example.)
    """
    response = net.w3.provider.make_request(method, list(params))
    if "error" in response:
        raise AssertionError(f"{method}{list(params)}: {response['error']}")
    return response["result"]


def read_many(net: Any, calls: Sequence[ContractFunction]) -> list[Any]:
    """Several view calls in one JSON-RPC batch, decoded (a single output is unwrapped)."""
    batch = [
        ("eth_call", [{"to": fn.address, "data": fn._encode_transaction_data()}, "latest"])
        for fn in calls
    ]
    responses = net.w3.provider.make_batch_request(batch)
    assert isinstance(responses, list), responses
    results = []
    for fn, response in zip(calls, responses, strict=True):
        assert "error" not in response, response
        values = abi_decode(get_abi_output_types(fn.abi), bytes.fromhex(response["result"][2:]))
        results.append(values[0] if len(values) == 1 else values)
    return results


def latest_timestamp(w3: Web3) -> int:
    return int(w3.eth.get_block("latest")["timestamp"])


def increase_time(net: Any, seconds: int) -> None:
    """Move the chain clock forward and mine a block at the new time."""
    rpc(net, "evm_increaseTime", [seconds])
    rpc(net, "evm_mine")


def align_to_period_start(net: Any, period: int = DAY, margin: int = 60) -> int:
    """Jump to ``margin`` seconds into the next cap period (so a test never straddles one).

    Returns the index of that period.
    """
    now = latest_timestamp(net.w3)
    increase_time(net, period - now % period + margin)
    return latest_timestamp(net.w3) // period


def fund(net: Any, address: str, wei: int = 10**20) -> None:
    rpc(net, "anvil_setBalance", [to_checksum_address(address), hex(wei)])


def member_sender(net: Any, who: Member) -> TransactionSender:
    """A funded sender for a member who sends its own transactions (direct ERC-20 calls)."""
    fund(net, who.address)
    return TransactionSender(net.w3, who.key, net.chain_id)


# ------------------------------------------------------------------ network actions


def admin(net: Any, call: ContractFunction) -> TxReceipt:
    """Apply ``call`` through the timelock (delay 0) and return the execution receipt."""
    result = governance.apply(net.network.timelock, net.timelock_admin, call)
    assert not isinstance(result, governance.ScheduledChange), "timelock delay is not 0"
    return result


def issue(
    net: Any,
    merchant_id: int,
    first_seq: int,
    members: Sequence[str],
    amounts: Sequence[int],
    *,
    sender: TransactionSender | None = None,
    rule_version: int = RULE_VERSION,
    kind: int = 0,
    input_root: bytes = ZERO32,
) -> TxReceipt:
    """Issue one batch; event ``i`` gets sequence ``first_seq + i`` and ref ``first_seq + i``."""
    refs = [ref(first_seq + i) for i in range(len(members))]
    fn = net.hub.issue_batch(
        merchant_id,
        rule_version,
        first_seq,
        refs,
        list(members),
        list(amounts),
        kind=kind,
        input_root=input_root,
    )
    return (sender or net.operator).transact(fn)


def rule_text(merchant_id: int, version: int, **extra: Any) -> str:
    """A small canonical-looking rule-set text, distinct per merchant and version."""
    return json.dumps(
        {"merchant": merchant_id, "version": version, **extra},
        sort_keys=True,
        separators=(",", ":"),
    )


def publish(
    net: Any,
    merchant_id: int,
    text: str | None = None,
    *,
    sender: TransactionSender | None = None,
) -> TxReceipt:
    """Publish the next rule-set version of ``merchant_id`` (``text``: default
    :func:`rule_text` of that version)."""
    if text is None:
        text = rule_text(merchant_id, net.hub.merchant(merchant_id).rule_version + 1)
    return (sender or net.operator).transact(net.hub.publish_rule_set(merchant_id, text))


def deadline_from_now(w3: Web3, seconds: int = 3600) -> int:
    return latest_timestamp(w3) + seconds


def redemption(
    net: Any,
    member: Member,
    merchant_id: int,
    amount: int,
    *,
    reward: bytes = b"\x07" * 32,
    nonce: int | None = None,
    deadline: int | None = None,
    signer_key: str | None = None,
    chain_id: int | None = None,
    verifying_contract: str | None = None,
) -> tuple[dict[str, Any], bytes]:
    """A redemption message and its EIP-712 signature (by the member unless overridden)."""
    message = {
        "member": member.address,
        "merchantId": merchant_id,
        "amount": amount,
        "ref": reward,
        "nonce": net.hub.nonce_of(member.address) if nonce is None else nonce,
        "deadline": deadline_from_now(net.w3) if deadline is None else deadline,
    }
    signature = signing.sign(
        signer_key or member.key,
        "Redemption",
        net.chain_id if chain_id is None else chain_id,
        verifying_contract or net.hub.address,
        message,
    )
    return message, signature


def transfer_request(
    net: Any,
    sender: Member,
    to: str,
    amount: int,
    *,
    nonce: int | None = None,
    deadline: int | None = None,
    signer_key: str | None = None,
    chain_id: int | None = None,
    verifying_contract: str | None = None,
) -> tuple[dict[str, Any], bytes]:
    """A transfer request from ``sender`` and its EIP-712 signature."""
    message = {
        "from": sender.address,
        "to": to,
        "amount": amount,
        "nonce": net.hub.nonce_of(sender.address) if nonce is None else nonce,
        "deadline": deadline_from_now(net.w3) if deadline is None else deadline,
    }
    signature = signing.sign(
        signer_key or sender.key,
        "TransferRequest",
        net.chain_id if chain_id is None else chain_id,
        verifying_contract or net.hub.address,
        message,
    )
    return message, signature


def property_steps(default: int = 20) -> int:
    """Steps per hypothesis example; ``POINTSNET_PROPERTY_STEPS`` for a long run."""
    return int(os.environ.get("POINTSNET_PROPERTY_STEPS", default))


def property_examples(default: int = 15) -> int:
    """Examples per property test; ``POINTSNET_PROPERTY_EXAMPLES`` for a long run."""
    return int(os.environ.get("POINTSNET_PROPERTY_EXAMPLES", default))
