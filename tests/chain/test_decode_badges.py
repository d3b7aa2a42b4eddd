"""The one log decoder on badge awards: one hub ``BadgesAwarded`` per batch, one record per badge.

Synthetic logs (no node): each award becomes a :class:`BadgeAward` at its mint's log
index, a nested award takes its own mints, and mints no batch accounts for stay
:class:`BadgeMovement` records, all in chain order.
"""

from __future__ import annotations

from typing import Any

from chain.abi import BADGES_AWARDED, TRANSFER_SINGLE, ZERO_WORD
from chain.decode import HubAndToken, decode_logs
from chain.records import BadgeAward, BadgeMovement, Record

HUB = "0x" + "a1" * 20
TOKEN = "0x" + "b2" * 20
BADGES = "0x" + "c3" * 20
EMITTERS = HubAndToken(HUB, TOKEN, BADGES)


def _topic(address: str) -> str:
    return "0x" + "00" * 12 + address[2:]


def _word(n: int) -> str:
    return f"{n:064x}"


def _log(index: int, address: str, topics: list[str], data: str, tx: str = "0x01") -> dict:
    return {
        "address": address,
        "topics": topics,
        "data": "0x" + data,
        "blockNumber": "0x7",
        "transactionHash": tx,
        "logIndex": hex(index),
        "blockTimestamp": "0x64",
    }


def mint(index: int, member: str, badge: int, tx: str = "0x01") -> dict[str, Any]:
    topics = [TRANSFER_SINGLE, _topic(HUB), ZERO_WORD, _topic(member)]
    return _log(index, BADGES, topics, _word(badge) + _word(1), tx)


def awarded(index: int, merchant: int, count: int, tx: str = "0x01") -> dict[str, Any]:
    return _log(index, HUB, [BADGES_AWARDED, "0x" + _word(merchant)], _word(count), tx)


def summary(records: list[Record]) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    for r in records:
        if isinstance(r, BadgeAward):
            out.append(("award", r.log_index, r.merchant, r.member, r.badge_id))
        elif isinstance(r, BadgeMovement):
            out.append(("move", r.log_index, r.sender, r.recipient, r.badge_id))
        else:
            out.append((r.kind, r.log_index))
    return out


ALICE, BOB, CAROL = ("0x" + c * 40 for c in "123")


def test_a_batch_event_yields_one_award_per_mint_at_the_mints_log_index() -> None:
    logs = [mint(0, ALICE, 1), mint(1, BOB, 1), mint(2, ALICE, 2), awarded(3, 4, 3)]

    assert summary(decode_logs(EMITTERS, logs)) == [
        ("award", 0, 4, ALICE, 1),
        ("award", 1, 4, BOB, 1),
        ("award", 2, 4, ALICE, 2),
    ]


def test_an_award_nested_in_a_receivers_hook_takes_its_own_mints() -> None:
    # Outer batch (merchant 1): Alice, then Carol's hook awards Bob (merchant 2), then Carol.
    logs = [mint(0, ALICE, 1), mint(1, BOB, 5), awarded(2, 2, 1), mint(3, CAROL, 1)]
    logs.append(awarded(4, 1, 2))

    assert summary(decode_logs(EMITTERS, logs)) == [
        ("award", 0, 1, ALICE, 1),
        ("award", 1, 2, BOB, 5),
        ("award", 3, 1, CAROL, 1),
    ]


def test_mints_no_batch_accounts_for_stay_movements_in_chain_order() -> None:
    logs = [mint(0, ALICE, 1), mint(1, BOB, 1, tx="0x02"), awarded(2, 3, 1, tx="0x02")]

    assert summary(decode_logs(EMITTERS, logs)) == [
        ("move", 0, "0x" + "00" * 20, ALICE, 1),
        ("award", 1, 3, BOB, 1),
    ]


def test_without_the_badges_address_mints_are_movements_and_the_batch_adds_nothing() -> None:
    logs = [mint(0, ALICE, 1), awarded(1, 3, 1)]

    records = decode_logs(HubAndToken(HUB, TOKEN), logs)

    assert [type(r) for r in records] == [BadgeMovement]
