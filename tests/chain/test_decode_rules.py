"""The one log decoder on the events of published rules and input commitments.

Synthetic logs (no node), encoded as the hub emits them: ``PointsIssued``'s kind and
input root (data words 3 and 4, read by hand in ``zip_batch``) reach the batch and each
of its issuances; ``RuleSetPublished`` carries the text and its effective time;
``RuleNoticeChanged`` and ``ClawbackInputsCommitted`` get their records.
"""

from __future__ import annotations

from typing import Any

from eth_abi import encode
from eth_utils import keccak

from chain.abi import (
    CLAWBACK_INPUTS_COMMITTED,
    POINTS_ISSUED,
    RULE_NOTICE_CHANGED,
    RULE_SET_PUBLISHED,
    TRANSFER,
    ZERO_WORD,
    event_table,
)
from chain.contracts import MintKind
from chain.decode import HubAndToken, decode_logs
from chain.records import (
    ClawbackCommitment,
    Issuance,
    IssuanceBatch,
    ParameterChange,
    RuleSetPublication,
    record_dict,
)

HUB = "0x" + "a1" * 20
TOKEN = "0x" + "b2" * 20
EMITTERS = HubAndToken(HUB, TOKEN)
ALICE, BOB = "0x" + "12" * 20, "0x" + "34" * 20
ROOT = keccak(b"inputs")


def _word(n: int) -> str:
    return "0x" + f"{n:064x}"


def _topic(address: str) -> str:
    return "0x" + "00" * 12 + address[2:]


def _log(index: int, address: str, topics: list[str], data: bytes) -> dict[str, Any]:
    return {
        "address": address,
        "topics": topics,
        "data": "0x" + data.hex(),
        "blockNumber": "0x9",
        "transactionHash": "0x" + "ee" * 32,
        "logIndex": hex(index),
        "blockTimestamp": "0x65",
    }


def mint(index: int, member: str, amount: int) -> dict[str, Any]:
    return _log(index, TOKEN, [TRANSFER, ZERO_WORD, _topic(member)], encode(["uint256"], [amount]))


def issued(index: int, version: int, first_seq: int, refs: list[bytes], total: int, kind: int):
    data = encode(
        ["uint64", "bytes32[]", "uint256", "uint8", "bytes32"], [first_seq, refs, total, kind, ROOT]
    )
    return _log(index, HUB, [POINTS_ISSUED, _word(3), _word(version)], data)


def test_the_topics_are_the_artifacts_events() -> None:
    names = {topic: event.name for topic, event in event_table().items()}

    assert names[POINTS_ISSUED] == "PointsIssued"
    assert names[RULE_SET_PUBLISHED] == "RuleSetPublished"
    assert names[RULE_NOTICE_CHANGED] == "RuleNoticeChanged"
    assert names[CLAWBACK_INPUTS_COMMITTED] == "ClawbackInputsCommitted"


def test_a_batch_and_its_issuances_carry_the_kind_and_the_input_root() -> None:
    refs = [keccak(b"a"), keccak(b"b")]
    logs = [mint(0, ALICE, 5), mint(1, BOB, 7), issued(2, 2, 40, refs, 12, MintKind.RULE)]

    records = decode_logs(EMITTERS, logs)

    [batch] = [r for r in records if isinstance(r, IssuanceBatch)]
    items = [r for r in records if isinstance(r, Issuance)]
    root = "0x" + ROOT.hex()
    assert (batch.merchant, batch.rule_version, batch.seq, batch.count, batch.amount) == (
        3,
        2,
        40,
        2,
        12,
    )
    assert (batch.mint_kind, batch.input_root, batch.minted_total) == (0, root, 12)
    assert [(i.member, i.amount, i.seq, i.ref, i.mint_kind, i.input_root) for i in items] == [
        (ALICE, 5, 40, "0x" + refs[0].hex(), 0, root),
        (BOB, 7, 41, "0x" + refs[1].hex(), 0, root),
    ]
    assert record_dict(batch)["kind"] == "points_issued"


def test_a_batch_of_another_kind_names_it() -> None:
    logs = [mint(0, ALICE, 9), issued(1, 0, 7, [keccak(b"p")], 9, MintKind.PRIZE)]

    batch = next(r for r in decode_logs(EMITTERS, logs) if isinstance(r, IssuanceBatch))

    assert (batch.mint_kind, batch.rule_version) == (MintKind.PRIZE, 0)


def test_a_rule_set_publication_carries_its_text_and_effective_time() -> None:
    text = '{"earn_rate":"2","merchant":3}'
    digest = keccak(text=text)
    data = encode(["bytes32", "uint64", "bytes"], [digest, 1_800, text.encode()])
    log = _log(0, HUB, [RULE_SET_PUBLISHED, _word(3), _word(2)], data)

    [record] = decode_logs(EMITTERS, [log])

    assert isinstance(record, RuleSetPublication)
    assert (record.kind, record.merchant, record.rule_version) == ("rule_set_published", 3, 2)
    assert (record.rule_set_hash, record.effective_at, record.text) == (
        "0x" + digest.hex(),
        1_800,
        text,
    )
    assert record.rule_set == "0x" + text.encode().hex()


def test_a_published_text_that_is_not_utf8_cannot_pass_its_hash_check() -> None:
    raw = b'{"name":"\xff"}'
    data = encode(["bytes32", "uint64", "bytes"], [keccak(raw), 0, raw])
    log = _log(0, HUB, [RULE_SET_PUBLISHED, _word(1), _word(1)], data)

    [record] = decode_logs(EMITTERS, [log])

    assert isinstance(record, RuleSetPublication)
    assert "\ufffd" in record.text
    assert record.rule_set == "0x" + raw.hex()
    assert "0x" + keccak(text=record.text).hex() != record.rule_set_hash


def test_a_notice_change_is_a_parameter_change() -> None:
    log = _log(0, HUB, [RULE_NOTICE_CHANGED], encode(["uint64"], [604_800]))

    [record] = decode_logs(EMITTERS, [log])

    assert isinstance(record, ParameterChange)
    assert (record.kind, record.value, record.contract) == ("rule_notice_changed", 604_800, "hub")


def test_a_clawback_commitment_names_its_merchant_count_and_root() -> None:
    data = encode(["uint256", "bytes32"], [4, ROOT])
    log = _log(0, HUB, [CLAWBACK_INPUTS_COMMITTED, _word(2)], data)

    [record] = decode_logs(EMITTERS, [log])

    assert isinstance(record, ClawbackCommitment)
    assert (record.kind, record.merchant, record.count) == ("clawback_inputs", 2, 4)
    assert record.input_root == "0x" + ROOT.hex()
    assert len(record.kind) <= 24  # chain_records.kind is VARCHAR(24)
