"""The audit's pure parts on synthetic input: anomaly checks over hand-made records,
the decoder over hand-made logs, and the pager against a provider with limits.

The contracts refuse what most anomalies describe (over-cap minting, transfers while
paused, ...), so only synthetic histories can show that the auditor would notice."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from eth_abi import encode
from eth_utils import to_checksum_address

from chain.audit import (
    ZERO_ADDRESS,
    AuditLog,
    Clawback,
    Contracts,
    Issuance,
    IssuanceBatch,
    MerchantChange,
    ParameterChange,
    PointValueChange,
    Record,
    Redemption,
    RelayedTransfer,
    Rpc,
    RpcError,
    RpcTransportError,
    RuleSetPublication,
    TokenMovement,
    UnknownLog,
    attribution_anomalies,
    cap_anomalies,
    clawback_anomalies,
    decode_logs,
    event_topic,
    find_anomalies,
    format_money,
    is_limit_error,
    pause_anomalies,
    sequence_anomalies,
    settlement_report,
    status_anomalies,
    suggested_range_end,
)

ALICE = "0x" + "a1" * 20
BOB = "0x" + "b0" * 20
DAY = 86_400


class Tx:
    """Hands out block numbers, log indexes and transaction hashes in chain order."""

    def __init__(self) -> None:
        self.block = 0

    def at(self, block: int | None = None) -> tuple[int, int, int, str]:
        self.block = self.block + 1 if block is None else block
        return self.block, 0, self.block * 10, f"0x{self.block:064x}"


def added(b: int, merchant: int, cap: int) -> MerchantChange:
    return MerchantChange(
        b,
        0,
        b * 10,
        f"0x{b:064x}",
        "hub",
        "merchant_added",
        merchant,
        f"m{merchant}",
        ALICE,
        "active",
        cap,
    )


def status(b: int, merchant: int, state: str) -> MerchantChange:
    return MerchantChange(
        b,
        0,
        b * 10,
        f"0x{b:064x}",
        "hub",
        "merchant_status_changed",
        merchant,
        None,
        None,
        state,
        None,
    )


def cap_changed(b: int, merchant: int, cap: int) -> MerchantChange:
    return MerchantChange(
        b, 0, b * 10, f"0x{b:064x}", "hub", "merchant_cap_changed", merchant, None, None, None, cap
    )


def period(b: int, seconds: int) -> ParameterChange:
    return ParameterChange(
        b, 0, b * 10, f"0x{b:064x}", "hub", "cap_period_changed", seconds, None, None
    )


def pause(b: int, kind: str) -> ParameterChange:
    return ParameterChange(b, 0, b * 10, f"0x{b:064x}", "hub", kind, None, None, ALICE)


def rules(b: int, merchant: int, version: int) -> RuleSetPublication:
    return RuleSetPublication(
        b,
        0,
        b * 10,
        f"0x{b:064x}",
        "hub",
        "rule_set_published",
        merchant,
        version,
        "0x" + "00" * 32,
    )


def batch(
    b: int,
    merchant: int,
    seq: int,
    count: int,
    total: int,
    *,
    time: int | None = None,
    rule_version: int = 1,
    minted: int | None = None,
    minted_total: int | None = None,
) -> IssuanceBatch:
    return IssuanceBatch(
        b, 5, b * 10 if time is None else time, f"0x{b:064x}", "hub", "points_issued", merchant,
        rule_version, seq, count, total, count if minted is None else minted,
        total if minted_total is None else minted_total,
    )  # fmt: skip


def item(b: int, merchant: int, seq: int, amount: int, log_index: int = 0) -> Issuance:
    return Issuance(
        b,
        log_index,
        b * 10,
        f"0x{b:064x}",
        "token",
        "issuance",
        merchant,
        ALICE,
        amount,
        seq,
        1,
        "0x" + "00" * 32,
        5,
    )


def claw(b: int, merchant: int, seq: int, original: int, amount: int) -> Clawback:
    return Clawback(
        b,
        1,
        b * 10,
        f"0x{b:064x}",
        "hub",
        "clawback",
        merchant,
        ALICE,
        seq,
        original,
        "0x" + "ee" * 32,
        amount,
        amount,
    )


def burn(b: int, amount: int) -> TokenMovement:
    return TokenMovement(
        b, 0, b * 10, f"0x{b:064x}", "token", "token_burn", ALICE, ZERO_ADDRESS, amount
    )


def move(b: int, amount: int) -> TokenMovement:
    return TokenMovement(b, 0, b * 10, f"0x{b:064x}", "token", "token_transfer", ALICE, BOB, amount)


def redeem(b: int, merchant: int, amount: int) -> Redemption:
    return Redemption(
        b,
        1,
        b * 10,
        f"0x{b:064x}",
        "hub",
        "redemption",
        merchant,
        ALICE,
        amount,
        "0x" + "00" * 32,
        0,
    )


def value(b: int, micros: int) -> PointValueChange:
    return PointValueChange(
        b, 0, b * 10, f"0x{b:064x}", "hub", "point_value_changed", micros, "USD"
    )


def kinds(found: Sequence[Any]) -> list[str]:
    return [a.kind for a in found]


def network(records: Sequence[Record]) -> list[Record]:
    """A merchant 1 (cap 100 per day) with a rule set, then ``records``."""
    return [period(1, DAY), added(2, 1, 100), rules(3, 1, 1), *records]


# ---------------------------------------------------------------- caps


def test_cap_anomaly_when_a_period_mints_more_than_the_cap() -> None:
    history = network([batch(10, 1, 0, 1, 60, time=100), batch(11, 1, 1, 1, 50, time=200)])

    found = cap_anomalies(history)

    assert kinds(found) == ["cap_exceeded"]
    assert found[0].block == 11
    assert found[0].details == {"period": 0, "minted": 110, "cap": 100}


def test_cap_counts_start_again_in_a_new_period() -> None:
    history = network([batch(10, 1, 0, 1, 60, time=100), batch(11, 1, 1, 1, 90, time=DAY + 1)])
    assert cap_anomalies(history) == []


def test_cap_follows_cap_and_period_changes() -> None:
    history = network(
        [
            batch(10, 1, 0, 1, 90, time=100),
            cap_changed(11, 1, 200),
            batch(12, 1, 1, 1, 100, time=200),  # 190 <= 200
            period(13, 10 * DAY),
            batch(14, 1, 2, 1, 50, time=DAY + 5),  # still period 0 of 10 days: 240 > 200
        ]
    )

    found = cap_anomalies(history)

    assert [(a.block, a.details["minted"], a.details["cap"]) for a in found] == [(14, 240, 200)]


# ---------------------------------------------------------------- merchants and rule sets


def test_issuance_by_an_unknown_or_suspended_merchant_is_an_anomaly() -> None:
    history = network(
        [
            batch(10, 7, 0, 1, 5),  # merchant 7 was never admitted
            status(11, 1, "suspended"),
            batch(12, 1, 0, 1, 5),
            redeem(13, 1, 1),
            status(14, 1, "active"),
            batch(15, 1, 1, 1, 5),
        ]
    )

    found = status_anomalies(history)

    assert [(a.kind, a.block, a.merchant) for a in found] == [
        ("unknown_merchant", 10, 7),
        ("unknown_rule_version", 10, 7),
        ("merchant_not_active", 12, 1),
        ("merchant_not_active", 13, 1),
    ]
    assert found[2].message == "issuance by merchant 1 while suspended"


def test_issuance_citing_an_unpublished_rule_set_is_an_anomaly() -> None:
    found = status_anomalies(network([batch(10, 1, 0, 1, 5, rule_version=2)]))
    assert kinds(found) == ["unknown_rule_version"]


def test_minting_after_sunset_is_an_anomaly() -> None:
    sunset = ParameterChange(9, 0, 90, "0x09", "hub", "sunset", 90, None, None)
    found = status_anomalies(network([sunset, batch(10, 1, 0, 1, 5), redeem(11, 1, 1)]))
    assert kinds(found) == ["minted_after_sunset"]


# ---------------------------------------------------------------- sequences and clawbacks


def test_sequence_gaps_are_reported_as_missing_ranges() -> None:
    history = network(
        [
            batch(10, 1, 0, 3, 30),  # 0..2
            claw(11, 1, 3, 0, 5),  # 3
            batch(12, 1, 6, 2, 20),  # 6..7: 4..5 missing
            batch(13, 1, 9, 1, 10),  # 9: 8 missing
            batch(14, 2, 1, 1, 10),  # merchant 2 never used 0
        ]
    )

    found = sequence_anomalies(history)

    assert [(a.merchant, a.details) for a in found] == [
        (1, {"first_missing": 4, "last_missing": 5}),
        (1, {"first_missing": 8, "last_missing": 8}),
        (2, {"first_missing": 0, "last_missing": 0}),
    ]
    assert found[0].message == "merchant 1 never used sequence numbers 4..5"
    assert found[1].message == "merchant 1 never used sequence numbers 8"


def test_a_sequence_number_used_twice_is_reported() -> None:
    found = sequence_anomalies(network([batch(10, 1, 0, 3, 30), claw(11, 1, 2, 0, 5)]))
    assert [(a.kind, a.block, a.details) for a in found] == [
        ("sequence_reused", 11, {"first": 2, "last": 2})
    ]


def test_clawback_of_a_sequence_never_issued_is_reported() -> None:
    history = network([batch(10, 1, 0, 2, 20), claw(11, 1, 2, 0, 5), claw(12, 1, 3, 7, 5)])

    found = clawback_anomalies(history)

    assert [(a.kind, a.block, a.details) for a in found] == [
        ("clawback_unknown_seq", 12, {"original_seq": 7})
    ]


def test_clawback_issued_later_than_the_clawback_still_counts_as_unknown() -> None:
    found = clawback_anomalies(network([claw(10, 1, 0, 5, 1), batch(11, 1, 1, 5, 5)]))
    assert kinds(found) == ["clawback_unknown_seq"]


def test_clawbacks_burning_more_than_the_event_issued_are_reported() -> None:
    history = network(
        [item(10, 1, 0, 8), batch(10, 1, 0, 1, 8), claw(11, 1, 1, 0, 5), claw(12, 1, 2, 0, 5)]
    )

    found = clawback_anomalies(history)

    assert [(a.kind, a.block, a.details) for a in found] == [
        ("clawback_exceeds_issuance", 12, {"original_seq": 0, "issued": 8, "clawed_back": 10})
    ]


# ---------------------------------------------------------------- pauses and attribution


def test_clawback_from_another_member_than_the_event_credited_is_reported() -> None:
    bobs_claw = Clawback(
        11, 1, 110, "0x0b", "hub", "clawback", 1, BOB, 1, 0, "0x" + "0b" * 32, 3, 3
    )
    history = network([item(10, 1, 0, 8), batch(10, 1, 0, 1, 8), bobs_claw])

    found = clawback_anomalies(history)

    assert [(a.kind, a.block) for a in found] == [("clawback_wrong_member", 11)]
    assert found[0].details["credited"] == to_checksum_address(ALICE)


def test_member_transfer_while_paused_is_an_anomaly() -> None:
    history = network(
        [move(10, 3), pause(11, "paused"), move(12, 4), pause(13, "unpaused"), move(14, 5)]
    )

    found = pause_anomalies(history)

    assert [(a.kind, a.block, a.details) for a in found] == [
        ("transfer_while_paused", 12, {"amount": 4})
    ]


def test_issuance_redemption_and_clawback_while_paused_are_anomalies() -> None:
    history = network(
        [pause(9, "paused"), batch(10, 1, 0, 1, 5), redeem(11, 1, 1), claw(12, 1, 1, 0, 1)]
    )
    assert kinds(pause_anomalies(history)) == [
        "points_issued_while_paused",
        "redemption_while_paused",
        "clawback_while_paused",
    ]


def test_mints_and_burns_the_hub_does_not_account_for_are_anomalies() -> None:
    stray_mint = TokenMovement(10, 0, 100, "0x0a", "token", "token_mint", ZERO_ADDRESS, BOB, 7)
    history = network(
        [
            stray_mint,
            batch(11, 1, 0, 3, 30, minted=2, minted_total=20),
            burn(12, 5),  # a burn with no redemption or clawback
            burn(13, 4),
            redeem(13, 1, 4),  # explained
        ]
    )

    found = attribution_anomalies(history)

    assert [(a.kind, a.block) for a in found] == [
        ("unattributed_mint", 10),
        ("batch_mismatch", 11),
        ("unattributed_burn", 12),
    ]
    assert found[2].details == {"burned": 5, "accounted": 0}


def test_a_clean_history_has_no_anomaly() -> None:
    history = network(
        [
            item(10, 1, 0, 5),
            item(10, 1, 1, 5, log_index=1),
            batch(10, 1, 0, 2, 10),
            burn(11, 3),
            claw(11, 1, 2, 0, 3),
            move(12, 1),
        ]
    )
    assert find_anomalies(history) == []


# ---------------------------------------------------------------- settlement


def test_settlement_values_each_event_at_the_point_value_then_in_force() -> None:
    history = [
        value(1, 10_000),
        added(2, 1, 10**9),
        added(3, 2, 10**9),
        batch(10, 1, 0, 1, 100),
        value(11, 20_000),
        redeem(12, 2, 30),
        batch(13, 2, 0, 1, 10),
    ]

    whole = settlement_report(history, 0, 100)
    later = settlement_report(history, 12, 100)

    rows = {m.merchant: m for m in whole.merchants}
    assert (rows[1].net_value, rows[1].position) == (1_000_000, "owes the network")
    assert (rows[2].net, rows[2].net_value) == (-20, -400_000)
    assert rows[2].position == "owed by the network"
    assert rows[2].to_dict("USD")["amount"] == "USD 0.40"
    assert whole.outstanding == 80
    assert {m.merchant: m.issued for m in later.merchants} == {1: 0, 2: 10}
    assert later.point_value_micros == 20_000


def test_format_money_shows_cents_and_keeps_sub_cent_digits() -> None:
    assert format_money(1_470_000, "USD") == "USD 1.47"
    assert format_money(5, "EUR") == "EUR 0.000005"
    assert format_money(-2_000_000, "USD") == "USD -2.00"
    assert format_money(1_234_567_000_000, "USD") == "USD 1,234,567.00"


# ---------------------------------------------------------------- decoding raw logs

HUB = "0x" + "11" * 20
TOKEN = "0x" + "22" * 20
CONTRACTS = Contracts(HUB, TOKEN, "0x" + "33" * 20, ("0x" + "44" * 20,), ("0x" + "44" * 20,), 1)
TRANSFER = event_topic("Transfer(address,address,uint256)")
ISSUED = event_topic("PointsIssued(uint32,uint64,uint64,bytes32[],uint256,uint8,bytes32)")
CLAWED_BACK = event_topic("PointsClawedBack(uint32,address,uint64,uint64,bytes32,uint256,uint256)")


def word(value: int | str) -> str:
    if isinstance(value, str):
        return "0x" + value[2:].rjust(64, "0")
    return "0x" + f"{value:064x}"


def raw(
    address: str, topics: list[str], data: bytes, block: int, index: int, tx: str
) -> dict[str, Any]:
    return {
        "address": address,
        "topics": topics,
        "data": "0x" + data.hex(),
        "blockNumber": hex(block),
        "blockTimestamp": hex(1_000 + block),
        "transactionHash": tx,
        "logIndex": hex(index),
        "removed": False,
    }


def mint(member: str, amount: int, block: int, index: int, tx: str) -> dict[str, Any]:
    return raw(
        TOKEN, [TRANSFER, word(0), word(member)], amount.to_bytes(32, "big"), block, index, tx
    )


def issued(
    merchant: int, first: int, refs: list[bytes], total: int, block: int, index: int, tx: str
) -> dict[str, Any]:
    types = ["uint64", "bytes32[]", "uint256", "uint8", "bytes32"]
    data = encode(types, [first, refs, total, 0, b"\x00" * 32])
    return raw(HUB, [ISSUED, word(merchant), word(1)], data, block, index, tx)


def test_two_batches_in_one_transaction_zip_with_their_own_mints_in_log_order() -> None:
    tx = "0x" + "aa" * 32
    refs = [bytes([i]) * 32 for i in range(3)]
    logs = [
        mint(ALICE, 5, 7, 0, tx),
        mint(BOB, 6, 7, 1, tx),
        issued(1, 10, refs[:2], 11, 7, 2, tx),
        mint(BOB, 9, 7, 3, tx),
        issued(2, 0, refs[2:], 9, 7, 4, tx),
    ]

    records = decode_logs(CONTRACTS, logs)

    items = [r for r in records if isinstance(r, Issuance)]
    assert [
        (i.merchant, i.seq, i.member, i.amount, i.ref, i.log_index, i.batch_log_index)
        for i in items
    ] == [
        (1, 10, ALICE, 5, "0x" + refs[0].hex(), 0, 2),
        (1, 11, BOB, 6, "0x" + refs[1].hex(), 1, 2),
        (2, 0, BOB, 9, "0x" + refs[2].hex(), 3, 4),
    ]
    assert [r.log_index for r in records] == [0, 1, 2, 3, 4]
    assert all(r.time == 1_007 for r in records)
    assert attribution_anomalies(records) == []


def test_a_mint_without_points_issued_is_kept_as_an_unattributed_mint() -> None:
    first, second = "0x" + "01" * 32, "0x" + "02" * 32
    logs = [
        mint(ALICE, 5, 3, 0, first),
        mint(BOB, 7, 3, 1, second),
        issued(1, 0, [b"\x01" * 32], 7, 3, 2, second),
    ]

    records = decode_logs(CONTRACTS, logs)

    stray = [r for r in records if isinstance(r, TokenMovement)]
    assert [(r.kind, r.recipient, r.amount, r.tx_hash) for r in stray] == [
        ("token_mint", ALICE, 5, first)
    ]
    assert kinds(attribution_anomalies(records)) == ["unattributed_mint"]


def test_points_issued_with_fewer_mints_than_events_is_a_batch_mismatch() -> None:
    tx = "0x" + "bb" * 32
    logs = [mint(ALICE, 5, 4, 0, tx), issued(1, 0, [b"\x01" * 32, b"\x02" * 32], 10, 4, 1, tx)]

    records = decode_logs(CONTRACTS, logs)

    found = attribution_anomalies(records)
    assert [(a.kind, a.details) for a in found] == [
        ("batch_mismatch", {"count": 2, "total": 10, "minted": 1, "minted_total": 5})
    ]


def test_logs_out_of_chain_order_decode_as_if_ordered() -> None:
    tx = "0x" + "cc" * 32
    logs = [
        mint(ALICE, 5, 5, 0, tx),
        issued(1, 0, [b"\x01" * 32], 5, 5, 1, tx),
        mint(BOB, 1, 2, 0, "0x" + "dd" * 32),
    ]

    shuffled = decode_logs(CONTRACTS, list(reversed(logs)))

    assert shuffled == decode_logs(CONTRACTS, [logs[2], logs[0], logs[1]])
    assert [r.block for r in shuffled] == [2, 5, 5]


def test_a_log_no_audited_contract_declares_is_kept_as_unknown() -> None:
    log = raw(HUB, ["0x" + "ee" * 32], b"\x01", 9, 0, "0x" + "ff" * 32)
    (record,) = decode_logs(CONTRACTS, [log])
    assert isinstance(record, UnknownLog)
    assert record.topics == ("0x" + "ee" * 32,)


def test_relayed_transfer_and_clawback_decode_every_field() -> None:
    tx = "0x" + "12" * 32
    transferred = raw(
        HUB,
        [event_topic("PointsTransferred(address,address,uint256,uint256)"), word(ALICE), word(BOB)],
        encode(["uint256", "uint256"], [40, 3]),
        6, 0, tx,
    )  # fmt: skip
    clawed = raw(
        HUB,
        [CLAWED_BACK, word(2), word(BOB)],
        encode(["uint64", "uint64", "bytes32", "uint256", "uint256"], [9, 4, b"\x0e" * 32, 30, 25]),
        6, 1, tx,
    )  # fmt: skip

    relayed, clawback = decode_logs(CONTRACTS, [transferred, clawed])

    assert relayed == RelayedTransfer(6, 0, 1_006, tx, "hub", "relayed_transfer", ALICE, BOB, 40, 3)
    assert clawback == Clawback(
        6, 1, 1_006, tx, "hub", "clawback", 2, BOB, 9, 4, "0x" + "0e" * 32, 30, 25
    )


# ---------------------------------------------------------------- paging against provider limits


class LimitedRpc(Rpc):
    """A provider with ``logs_per_block`` logs in each block that refuses answers of more
    than ``max_results`` logs, suggesting a range the way Infura and Alchemy do."""

    def __init__(self, blocks: int, logs_per_block: int, max_results: int, suggest: bool) -> None:
        super().__init__("http://provider.invalid")
        self.blocks = blocks
        self.logs_per_block = logs_per_block
        self.max_results = max_results
        self.suggest = suggest
        self.refused = 0

    def call(self, method: str, params: Sequence[Any] = ()) -> Any:
        assert method == "eth_getLogs"
        first, last = int(params[0]["fromBlock"], 16), int(params[0]["toBlock"], 16)
        count = (last - first + 1) * self.logs_per_block
        if count > self.max_results:
            self.refused += 1
            fits = first + self.max_results // self.logs_per_block - 1
            hint = (
                f" Try with this block range [{hex(first)}, {hex(fits)}]." if self.suggest else ""
            )
            raise RpcError(
                method, -32005, f"query returned more than {self.max_results} results.{hint}"
            )
        return [
            {"blockNumber": hex(b)}
            for b in range(first, last + 1)
            for _ in range(self.logs_per_block)
        ]


@pytest.mark.parametrize("suggest", [True, False])
def test_pages_shrink_on_too_many_results_and_cover_every_block_once(suggest: bool) -> None:
    rpc = LimitedRpc(blocks=5_000, logs_per_block=3, max_results=1_000, suggest=suggest)
    reader = AuditLog(rpc, HUB, target_logs=900, initial_span=4_000)

    pages = list(reader.pages([HUB], 0, 4_999))

    covered = [b for first, last, _logs in pages for b in range(first, last + 1)]
    assert covered == list(range(5_000))
    assert all(len(logs) <= 1_000 for _f, _l, logs in pages)
    assert rpc.refused <= (2 if suggest else 6)


def test_limit_errors_are_recognised_and_other_errors_are_not() -> None:
    assert is_limit_error(RpcError("eth_getLogs", -32005, "limit exceeded"))
    assert is_limit_error(RpcError("eth_getLogs", -32000, "block range is too wide"))
    assert is_limit_error(RpcError("eth_getLogs", -32602, "Log response size exceeded."))
    assert is_limit_error(RpcTransportError("read timed out"))
    assert not is_limit_error(RpcError("eth_getLogs", -32602, "invalid argument 0: hex string"))


def test_suggested_range_is_read_from_provider_messages() -> None:
    infura = "query returned more than 10000 results. Try with this block range [0x10, 0x2F]."
    alchemy = "Log response size exceeded. this block range should work: [0x10, 0x1a]"
    assert suggested_range_end(infura, 16) == 0x2F
    assert suggested_range_end(alchemy, 16) == 0x1A
    assert suggested_range_end(alchemy, 17) is None  # a range for another start is no help
    assert suggested_range_end("no hint here", 16) is None
