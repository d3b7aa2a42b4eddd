"""Each disclosed op checked against the chain: pure over :class:`~.chain.ChainFacts`.

Errors (each named, with the line's ref and sequence number): ``bad_line``,
``wrong_network`` (another hub), ``input_hash_mismatch`` (keccak(input) is not the
disclosed hash), ``not_on_chain`` (no such op in that transaction), ``not_committed``
(the leaf and its path do not lead to the root the op's batch logged: a changed input,
or the path of another batch), ``ref_mismatch`` / ``merchant_mismatch`` (the input names
another op or merchant), ``rule_version_mismatch`` (the input names another version than
the batch, or one never published), ``rule_hash_mismatch`` (not the published hash),
``version_not_in_effect`` (accepted outside ``[effective(v), effective(v+1))``),
``accepted_block_mismatch`` (the block's time is not ``accepted_at``, or it is later than
the issuance), ``engine_error`` (the input or the published rules do not run) and
``amount_mismatch`` (the engine on the input under the published rules does not yield what
was minted or clawed back). Notices: ``not_rule_output`` (a mint of another kind),
``no_input`` (before inputs were kept, or erased), ``late_issuance`` (issued more than a day
after acceptance, when a newer version than the input's was already in effect),
``coverage`` (rule issuances of the disclosed merchants without a line: an error with
``require_all``), ``fx_rate_differs`` (given the auditor's FX table, an input converted at
another rate than the table's: an error with ``strict_fx``; :mod:`.fx`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth_hash.auto import keccak

from chain import merkle
from chain.abi import ZERO32
from gateway.rules.disclosure import Input, InvalidInput, ReducedInput, decode_input
from gateway.rules.engine import evaluate
from gateway.rules.fx import FxTable
from gateway.rules.model import RuleSet, parse_rule_set
from gateway.services.recompute.chain import ChainFacts, Minted
from gateway.services.recompute.disclosure import BadLine, DisclosureLine
from gateway.services.recompute.fx import CODE as FX_RATE_DIFFERS
from gateway.services.recompute.fx import rate_difference

ERRORS = frozenset(
    {
        "bad_line",
        "wrong_network",
        "input_hash_mismatch",
        "not_on_chain",
        "not_committed",
        "ref_mismatch",
        "merchant_mismatch",
        "rule_version_mismatch",
        "rule_hash_mismatch",
        "version_not_in_effect",
        "accepted_block_mismatch",
        "engine_error",
        "amount_mismatch",
    }
)
#: After this long between acceptance and issuance a newer version in effect is noted.
LATE_SECONDS = 86_400


@dataclass(frozen=True)
class Finding:
    code: str
    message: str
    merchant: int | None = None
    ref: str | None = None
    seq: int | None = None
    line_no: int | None = None
    error: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "error": self.error,
            "message": self.message,
            "merchant": self.merchant,
            "ref": self.ref,
            "seq": self.seq,
            "line": self.line_no,
        }


class _Rules:
    """Published rule texts parsed once each."""

    def __init__(self, facts: ChainFacts) -> None:
        self.facts = facts
        self.parsed: dict[tuple[int, int], RuleSet] = {}

    def get(self, merchant: int, version: int) -> RuleSet:
        key = (merchant, version)
        if key not in self.parsed:
            self.parsed[key] = parse_rule_set(self.facts.rules[key].raw)
        return self.parsed[key]


def _expected(rules: RuleSet, decoded: Input | ReducedInput, kind: str) -> int | None:
    """What the engine says this op must mint (issue) or claw back (clawback); None where
    the input cannot say (an inviter's refund: its amount follows the invitee's)."""
    if isinstance(decoded, ReducedInput):
        return rules.bonuses.referral_inviter if decoded.stamp.part == "referral" else None
    a = decoded.args
    decision = evaluate(rules, a.fx, a.event, a.member, a.merchant, a.original)
    if kind == "clawback":
        return decision.clawback
    return decision.points - a.netted


def check_line(
    line: DisclosureLine,
    facts: ChainFacts,
    rules: _Rules,
    *,
    fx: FxTable | None = None,
    strict_fx: bool = False,
) -> list[Finding]:
    """Every finding of one line (empty: it checks out); ``fx``: the auditor's rates."""
    found: list[Finding] = []

    def add(code: str, message: str, *, error: bool = True) -> None:
        found.append(
            Finding(code, message, line.merchant_id, line.ref, line.seq, line.line_no, error)
        )

    if line.hub != facts.hub:
        add("wrong_network", f"the line is of hub {line.hub}, not {facts.hub}")
        return found
    op = facts.ops.get((line.tx_hash, line.ref))
    if op is None:
        add("not_on_chain", f"transaction {line.tx_hash} has no {line.kind} of ref {line.ref}")
        return found
    if op.merchant != line.merchant_id:
        add("merchant_mismatch", f"the chain's op is merchant {op.merchant}'s")
    if line.kind == "issue" and op.mint_kind != 0:
        add("not_rule_output", f"a mint of kind {op.mint_kind}, not by the rules", error=False)
        return found
    if line.input is None:
        add("no_input", f"no input disclosed ({line.reason or 'no reason given'})", error=False)
        _committed(line, op, line.input_hash or "0x" + ZERO32.hex(), add)
        return found
    if line.input_hash is None or "0x" + keccak(line.input.encode()).hex() != line.input_hash:
        add("input_hash_mismatch", "keccak-256 of the input is not the disclosed input_hash")
        return found
    _committed(line, op, line.input_hash, add)
    try:
        decoded = decode_input(line.input)
    except InvalidInput as exc:
        add("engine_error", f"the input does not decode: {exc}")
        return found
    _stamp_checks(line, op, decoded, facts, add)
    if any(f.error for f in found):
        return found
    try:
        published = rules.get(line.merchant_id, decoded.stamp.rule_version)
        expected = _expected(published, decoded, line.kind)
    except Exception as exc:  # the engine or the published rules refuse: named, not raised
        add("engine_error", f"the engine did not run on the input: {exc}")
        return found
    if fx is not None and isinstance(decoded, Input):
        why = rate_difference(decoded.args, fx, published)
        if why is not None:
            add(FX_RATE_DIFFERS, why, error=strict_fx)
    if expected is not None and expected != op.amount:
        what = "clawed back" if line.kind == "clawback" else "minted"
        add("amount_mismatch", f"the engine gives {expected:,}; the chain {what} {op.amount:,}")
    return found


def _committed(line: DisclosureLine, op: Minted, leaf_hash: str, add: Any) -> None:
    """``not_committed`` unless the leaf (ref, hash) and the path lead to the op's root."""
    if op.root is None:
        add("not_committed", "the chain holds no input root for this op's batch")
        return
    leaf = merkle.input_leaf(line.ref, leaf_hash)
    proof = [bytes.fromhex(p[2:]) for p in line.proof]
    if line.root is not None and line.root != op.root:
        add("not_committed", f"the line's root {line.root} is not its batch's {op.root}")
    elif not merkle.verify(leaf, proof, bytes.fromhex(op.root[2:])):
        add("not_committed", f"the input and its path do not lead to its batch's root {op.root}")


def _stamp_checks(
    line: DisclosureLine, op: Minted, decoded: Input | ReducedInput, facts: ChainFacts, add: Any
) -> None:
    stamp = decoded.stamp
    if stamp.ref.lower() != line.ref:
        add("ref_mismatch", f"the input is of ref {stamp.ref}")
    if stamp.merchant_id != line.merchant_id:
        add("merchant_mismatch", f"the input is of merchant {stamp.merchant_id}")
    version = stamp.rule_version
    if line.kind == "issue" and version != op.rule_version:
        add("rule_version_mismatch", f"the input names v{version}; the batch v{op.rule_version}")
    published = facts.rules.get((line.merchant_id, version))
    if published is None:
        add("rule_version_mismatch", f"v{version} was never published")
        return
    if stamp.rule_set_hash.lower() != published.hash:
        add(
            "rule_hash_mismatch",
            f"the input names {stamp.rule_set_hash}; v{version} is {published.hash}",
        )
    window = facts.effective_window(line.merchant_id, version)
    assert window is not None
    start, until = window
    if stamp.accepted_at < start or (until is not None and stamp.accepted_at >= until):
        add(
            "version_not_in_effect",
            f"accepted at {stamp.accepted_at}, outside v{version}'s [{start}, {until or '…'})",
        )
    elif until is not None and op.time >= until and op.time - stamp.accepted_at > LATE_SECONDS:
        # Issued under v once v+1 was in effect, over a day after acceptance.
        add(
            "late_issuance",
            f"issued {op.time - stamp.accepted_at:,} s after acceptance, under v{version}, "
            f"superseded at {until}",
            error=False,
        )
    block_time = facts.block_times.get(stamp.accepted_block)
    if block_time is None or block_time != stamp.accepted_at:
        add(
            "accepted_block_mismatch",
            f"block {stamp.accepted_block}'s time is not {stamp.accepted_at}",
        )
    elif stamp.accepted_block > op.block:
        add(
            "accepted_block_mismatch",
            f"accepted at block {stamp.accepted_block}, after the issuance",
        )


def check_lines(
    lines: Sequence[DisclosureLine],
    bad: Sequence[BadLine],
    facts: ChainFacts,
    *,
    require_all: bool = False,
    fx: FxTable | None = None,
    strict_fx: bool = False,
) -> list[Finding]:
    """Every finding of the disclosure, then the rule issuances it leaves out; with ``fx``
    (the auditor's rates) every input converted at another rate (an error if ``strict_fx``)."""
    found = [Finding("bad_line", b.message, line_no=b.line_no) for b in bad]
    rules = _Rules(facts)
    for line in lines:
        found += check_line(line, facts, rules, fx=fx, strict_fx=strict_fx)
    disclosed = {line.ref for line in lines}
    for merchant in sorted({line.merchant_id for line in lines}):
        missing = facts.rule_refs.get(merchant, set()) - disclosed
        if missing:
            found.append(
                Finding(
                    "coverage",
                    f"{len(missing):,} rule issuance(s) of merchant {merchant} have no line",
                    merchant,
                    error=require_all,
                )
            )
    return found
