"""``audit recompute``'s checks on facts built here (no chain): the ``late_issuance``
notice.

One purchase input, encoded as the gateway encodes it, minted for what the engine gives,
committed alone in its batch.  An op issued more than a day after its acceptance, when a
newer rule version than its input's was already in effect, is noted (``late_issuance``,
not an error: the version was in effect when the event was accepted); a day exactly, no
newer version, or one taking effect only after the issuance, is not.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from chain import merkle
from chain.audit.rules import Published
from gateway.rules.disclosure import EngineArgs, Stamp, encode_input, input_hash
from gateway.rules.engine import evaluate
from gateway.rules.model import canonical_json, default_rule_set, rule_set_hash
from gateway.services.recompute import build_report, check_lines
from gateway.services.recompute.chain import ChainFacts, Minted
from gateway.services.recompute.checks import LATE_SECONDS
from gateway.services.recompute.disclosure import DisclosureLine
from tests.gateway.rules.rules_factories import FX, member, merchant, purchase

HUB = "0x" + "11" * 20
TX = "0x" + "22" * 32
REF = "0x" + "ab" * 32
MERCHANT = 7
ACCEPTED_AT = 1_796_000_000
ACCEPTED_BLOCK = 40
V1 = default_rule_set("USD")
V2 = V1.model_copy(update={"currency": "EUR"})


def _published(version: int, rules_text: str, digest: bytes, effective_at: int) -> Published:
    return Published(
        merchant=MERCHANT, version=version, hash="0x" + digest.hex(), effective_at=effective_at,
        raw=rules_text.encode(), block=version, time=effective_at, tx_hash="0x" + "33" * 32,
    )  # fmt: skip


def _line_and_facts(
    issued_after: int, v2_effective_at: int | None
) -> tuple[DisclosureLine, ChainFacts]:
    """The line of a purchase accepted at ACCEPTED_AT under v1 and minted
    ``issued_after`` seconds later; v2 published with that effective time (or never)."""
    args = EngineArgs(
        event=purchase(120), member=member(), merchant=merchant(), original=None, fx=FX
    )
    points = evaluate(V1, FX, args.event, args.member, args.merchant, None).points
    assert points > 0
    stamp = Stamp(
        part="points", merchant_id=MERCHANT, ref=REF, rule_version=1,
        rule_set_hash="0x" + rule_set_hash(V1).hex(), accepted_at=ACCEPTED_AT,
        accepted_block=ACCEPTED_BLOCK, received_at=datetime.fromtimestamp(ACCEPTED_AT, UTC),
    )  # fmt: skip
    text = encode_input(stamp, args, bytes(32))
    digest = input_hash(text)
    root = "0x" + merkle.input_root([(REF, digest)]).hex()
    issued_at = ACCEPTED_AT + issued_after
    facts = ChainFacts(hub=HUB, to_block=100)
    facts.ops[(TX, REF)] = Minted(
        merchant=MERCHANT, seq=1, amount=points, root=root, block=ACCEPTED_BLOCK + 5,
        time=issued_at, rule_version=1, mint_kind=0,
    )  # fmt: skip
    facts.rule_refs[MERCHANT] = {REF}
    facts.admitted[MERCHANT] = ACCEPTED_AT - 600
    facts.rules[(MERCHANT, 1)] = _published(
        1, canonical_json(V1), rule_set_hash(V1), ACCEPTED_AT - 600
    )
    if v2_effective_at is not None:
        facts.rules[(MERCHANT, 2)] = _published(
            2, canonical_json(V2), rule_set_hash(V2), v2_effective_at
        )
    facts.block_times[ACCEPTED_BLOCK] = ACCEPTED_AT
    line = DisclosureLine(
        line_no=1, hub=HUB, merchant_id=MERCHANT, event_id="event-1", kind="issue",
        part="points", ref=REF, seq=1, tx_hash=TX, block=ACCEPTED_BLOCK + 5, amount=points,
        input=text, input_hash=digest, proof=(), root=root, erased=False, reason=None,
    )  # fmt: skip
    return line, facts


def test_an_issuance_over_a_day_late_under_a_superseded_version_is_noted() -> None:
    late = LATE_SECONDS + 1
    line, facts = _line_and_facts(late, v2_effective_at=ACCEPTED_AT + 3600)
    findings = check_lines([line], [], facts, require_all=True)
    assert [(f.code, f.error, f.ref, f.merchant) for f in findings] == [
        ("late_issuance", False, REF, MERCHANT)
    ]
    assert f"issued {late:,} s after acceptance, under v1" in findings[0].message
    report = build_report(facts.hub, facts.to_block, [line], findings)
    assert (report.ok, report.passed) == (True, {MERCHANT: 1})  # a notice, not an error


@pytest.mark.parametrize(
    ("issued_after", "v2_effective_at"),
    [
        (LATE_SECONDS, ACCEPTED_AT + 3600),  # a day exactly is not late
        (LATE_SECONDS + 1, None),  # no newer version: nothing superseded
        (LATE_SECONDS * 3, ACCEPTED_AT + LATE_SECONDS * 3 + 1),  # v2 only after the mint
        (60, ACCEPTED_AT + 30),  # v2 in effect at the mint, but within the day
    ],
)
def test_an_issuance_that_is_not_late_is_not_noted(
    issued_after: int, v2_effective_at: int | None
) -> None:
    line, facts = _line_and_facts(issued_after, v2_effective_at)
    assert check_lines([line], [], facts, require_all=True) == []


def test_an_input_accepted_after_its_version_was_superseded_is_an_error_not_late() -> None:
    """The other side of the notice: accepted once v2 was in effect, v1's input is wrong."""
    line, facts = _line_and_facts(LATE_SECONDS + 1, v2_effective_at=ACCEPTED_AT - 1)
    found = [(f.code, f.error) for f in check_lines([line], [], facts)]
    assert found == [("version_not_in_effect", True)]
