"""The pipelined relayer baseline's pure parts: calldata, signing, JSON-RPC batches,
receipts in nonce order, the in-flight window and its figures (no anvil)."""

from __future__ import annotations

import json

import pytest
from eth_abi import encode
from eth_account import Account

from bench.e2e.rawrpc import batch_body, batch_results
from bench.e2e.relayer import (
    MINT_SELECTOR,
    SEND_BATCH,
    MintSigner,
    PipelinedRelayer,
    Sent,
    in_flight_window,
    mint_calldata,
    receipted_prefix,
    relayer_figures,
)
from chain.config import anvil_dev_key

KEY = anvil_dev_key(9)
TO = bytes.fromhex("11" * 20)


def signer(gas: int = 53_106) -> MintSigner:
    return MintSigner(KEY, 31337, bytes.fromhex("22" * 20), gas, 2_000_000_000, 1_000_000_000)


def test_mint_calldata_is_the_abi_encoding_of_mint() -> None:
    assert MINT_SELECTOR.hex() == "40c10f19"
    assert mint_calldata(TO, 100) == MINT_SELECTOR + encode(
        ["address", "uint256"], ["0x" + TO.hex(), 100]
    )
    with pytest.raises(ValueError):
        mint_calldata(TO[:19], 1)


@pytest.mark.parametrize("nonce", [0, 1, 127, 128, 70_000])
def test_fast_signing_gives_the_bytes_of_sign_transaction(nonce: int) -> None:
    data = mint_calldata(TO, 100)
    raw = signer().sign(nonce, data)
    assert raw == signer().sign_dict(nonce, data)
    assert Account.recover_transaction(raw) == Account.from_key(KEY).address


def test_batch_body_numbers_the_calls_from_the_first_id() -> None:
    body = json.loads(batch_body("eth_sendRawTransaction", [["0xaa"], ["0xbb"]], 7))
    assert body == [
        {"jsonrpc": "2.0", "id": 7, "method": "eth_sendRawTransaction", "params": ["0xaa"]},
        {"jsonrpc": "2.0", "id": 8, "method": "eth_sendRawTransaction", "params": ["0xbb"]},
    ]


def test_batch_results_come_back_in_request_order_and_errors_raise() -> None:
    answer = [{"id": 4, "result": "b"}, {"id": 3, "result": "a"}]
    assert batch_results(answer, 3, 2) == ["a", "b"]
    with pytest.raises(RuntimeError, match="missing"):
        batch_results(answer, 3, 3)
    with pytest.raises(RuntimeError, match="nonce too low"):
        batch_results([{"id": 1, "error": {"code": -32000, "message": "nonce too low"}}], 1, 1)
    with pytest.raises(RuntimeError, match="not a batch"):
        batch_results({"id": 1, "result": 1}, 1, 1)


def test_receipts_are_taken_up_to_the_first_missing_one() -> None:
    a, b = {"status": "0x1"}, {"status": "0x1"}
    assert receipted_prefix([a, b, None, {"status": "0x1"}]) == [a, b]
    assert receipted_prefix([None, a]) == []


def test_the_signer_never_shows_its_key() -> None:
    assert KEY[2:] not in repr(signer()) and KEY not in repr(signer())


def test_in_flight_window_is_three_blocks_of_gas() -> None:
    assert in_flight_window(30_000_000, 50_000, 1.0) == 1_800
    assert in_flight_window(30_000_000, 50_000_000, 1.0) == SEND_BATCH
    assert in_flight_window(30_000_000, 50_000, None) == 10 * SEND_BATCH


def test_figures_run_from_the_first_send_to_the_last_receipt() -> None:
    relayer = PipelinedRelayer("http://x", signer(), iter(()), seconds=10, window=1)
    relayer.first_send = 100.0
    relayer.done = [
        (Sent(99.5, 0, "0x0", True, 100.0), 101.0, 50_000),
        (Sent(100.0, 1, "0x1", False, 100.5), 102.0, 30_000),
        (Sent(100.5, 2, "0x2", False, 101.0), 104.0, 31_000),
    ]
    figures = relayer_figures(relayer, wanted=3)
    assert figures.confirmed == 3 and not figures.extrapolated
    assert figures.confirmed_per_s == pytest.approx(3 / 4.0)
    assert figures.gas["all_in_per_event"] == pytest.approx(37_000)
    assert figures.gas["new_member"] == 50_000
    assert figures.gas["existing_member"] == pytest.approx(30_500)
    assert figures.confirm_s["p50"] == pytest.approx(2.0)
    assert relayer_figures(relayer, wanted=10).extrapolated


def test_sending_stops_when_the_receipt_collector_failed() -> None:
    relayer = PipelinedRelayer("http://x", signer(), iter(()), seconds=10, window=0)
    relayer.outstanding.append(Sent(0.0, 0, "0x0", True))
    relayer.error = RuntimeError("mint 0x0 reverted")
    assert relayer._room() is False  # a full window no longer waits forever
    relayer.outstanding.clear()
    assert relayer._room() is False


def test_in_flight_limit_follows_what_the_last_blocks_took() -> None:
    relayer = PipelinedRelayer("http://x", signer(), iter(()), seconds=10, window=5_000)
    assert relayer.limit() == 5_000  # nothing mined yet: the chain's gas bound
    relayer.mined.extend([300, 700, 650])
    assert relayer.limit() == 1_400  # two blocks of the most a recent block took
    relayer.mined.extend([4_000] * 5)
    assert relayer.limit() == 5_000  # never beyond what the gas allows
    relayer.mined.extend([0] * 5)
    assert relayer.limit() == 2 * SEND_BATCH  # an idle stretch does not stall the sending
    automine = PipelinedRelayer("http://x", signer(), iter(()), seconds=1, window=1_000,
                                adaptive=False)  # fmt: skip
    automine.mined.append(1)
    assert automine.limit() == 1_000
