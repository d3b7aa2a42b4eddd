"""Merchants' rule sets from the chain alone: every version, its checks, and its diff.

The hub's ``RuleSetPublished`` carries a version's full canonical JSON text, its hash
and the time it takes effect (publication time for a merchant's first version,
publication plus the network's notice period after that). From those logs alone this
module rebuilds, per merchant:

- each version's hash, block, time, ``effective_at``, ``superseded_at`` (the next
  version's ``effective_at``) and status at a given time (``pending``, ``in_effect``,
  ``superseded``);
- its checks: keccak(text) equals the published hash, the text is UTF-8 JSON of an
  object, and it is canonical (re-dumped with sorted keys, no whitespace, ASCII only it
  gives the same bytes); versions count from 1 without gaps; the first takes effect at
  publication, later ones no earlier than publication plus the notice then in force,
  and none is published while the one before it is still pending;
- the diff from the version before (:mod:`chain.audit.ruleset_diff`);
- what was issued under it (batches, events, points of ``PointsIssued``).

Pure: :func:`rule_history` works on :class:`Published` values, :func:`rules_report` on
the decoded records of :mod:`chain.audit.reader`.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from eth_utils import keccak

from chain.audit.ruleset_diff import DiffLine, diff_rule_sets
from chain.records import (
    IssuanceBatch,
    MerchantChange,
    ParameterChange,
    Record,
    RuleSetPublication,
    iso_time,
)

#: Problem codes of one version (each makes the audit fail).
PROBLEMS = {
    "hash_mismatch": "keccak of the published text is not the published hash",
    "not_utf8": "the published text is not UTF-8",
    "not_json": "the published text is not a JSON object",
    "not_canonical": "the published text is not canonical JSON",
    "version_gap": "versions do not count up from 1 by one",
    "effective_before_publication": "takes effect before it was published",
    "notice_too_short": "takes effect sooner than the notice period after publication",
    "published_while_pending": "published while the version before it was still pending",
}


def canonical_text(value: Any) -> str:
    """The canonical JSON text of a parsed value: keys sorted, no whitespace, ASCII only
    (the form the gateway publishes: ``gateway.rules.model.canonical_json``)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_rule_text(raw: bytes) -> tuple[str | None, Any, list[str]]:
    """``(text, parsed, problems)`` of published bytes: UTF-8, a JSON object, canonical."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None, None, ["not_utf8"]
    try:
        parsed = json.loads(text, parse_constant=_reject_constant)
    except ValueError:
        return text, None, ["not_json"]
    if not isinstance(parsed, dict):
        return text, None, ["not_json"]
    return text, parsed, [] if canonical_text(parsed) == text else ["not_canonical"]


@dataclass(frozen=True)
class Published:
    """One ``RuleSetPublished`` as the chain states it."""

    merchant: int
    version: int
    hash: str  # 0x-prefixed, lower-case
    effective_at: int
    raw: bytes  # the rule set exactly as logged
    block: int
    time: int
    tx_hash: str
    log_index: int = 0


@dataclass(frozen=True)
class Issued:
    """What was issued under one version: ``PointsIssued`` batches, events, points."""

    batches: int = 0
    events: int = 0
    points: int = 0

    def to_dict(self) -> dict[str, int]:
        return {"batches": self.batches, "events": self.events, "points": self.points}


@dataclass(frozen=True)
class RuleVersion:
    """One version of a merchant's rule set, checked, with its diff from the one before."""

    published: Published
    status: str  # pending / in_effect / superseded, at the report's time
    superseded_at: int | None  # the next version's effective_at
    text: str | None
    content: dict[str, Any] | None
    problems: tuple[str, ...]
    diff: tuple[DiffLine, ...] | None  # None: first version, or either side unreadable
    issued: Issued = Issued()

    @property
    def version(self) -> int:
        return self.published.version

    @property
    def hash_ok(self) -> bool:
        return "hash_mismatch" not in self.problems

    def to_dict(self, *, with_text: bool = True) -> dict[str, Any]:
        p = self.published
        out: dict[str, Any] = {
            "merchant": p.merchant,
            "version": p.version,
            "hash": p.hash,
            "computed_hash": "0x" + keccak(p.raw).hex(),
            "hash_ok": self.hash_ok,
            "block": p.block,
            "time": iso_time(p.time),
            "tx_hash": p.tx_hash,
            "effective_at": iso_time(p.effective_at),
            "superseded_at": iso_time(self.superseded_at)
            if self.superseded_at is not None
            else None,
            "status": self.status,
            "size": len(p.raw),
            "problems": [{"code": c, "message": PROBLEMS[c]} for c in self.problems],
            "diff": [line.to_dict() for line in self.diff] if self.diff is not None else None,
            "issued": self.issued.to_dict(),
        }
        if with_text:
            out["text"] = self.text if self.text is not None else "0x" + p.raw.hex()
        return out


@dataclass(frozen=True)
class MerchantRules:
    merchant: int
    name: str
    versions: tuple[RuleVersion, ...]

    def in_effect(self) -> RuleVersion | None:
        return next((v for v in self.versions if v.status == "in_effect"), None)

    def pending(self) -> RuleVersion | None:
        return next((v for v in self.versions if v.status == "pending"), None)

    def to_dict(self, *, with_text: bool = True) -> dict[str, Any]:
        current, pending = self.in_effect(), self.pending()
        return {
            "merchant": self.merchant,
            "name": self.name,
            "current_version": current.version if current else None,
            "pending_version": pending.version if pending else None,
            "versions": [v.to_dict(with_text=with_text) for v in self.versions],
        }


@dataclass(frozen=True)
class NoticeChange:
    block: int
    time: int
    seconds: int


@dataclass(frozen=True)
class RulesReport:
    """Every merchant's rule history at ``at`` (unix seconds)."""

    at: int
    merchants: tuple[MerchantRules, ...]
    notices: tuple[NoticeChange, ...] = ()

    @property
    def notice_seconds(self) -> int | None:
        return self.notices[-1].seconds if self.notices else None

    def problems(self) -> list[tuple[int, int, str]]:
        """``(merchant, version, code)`` of every failed check."""
        return [
            (m.merchant, v.version, code)
            for m in self.merchants
            for v in m.versions
            for code in v.problems
        ]

    @property
    def ok(self) -> bool:
        return not self.problems()

    def to_dict(self, *, with_text: bool = True) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "at": iso_time(self.at),
            "notice_seconds": self.notice_seconds,
            "notice_changes": [
                {"block": n.block, "time": iso_time(n.time), "seconds": n.seconds}
                for n in self.notices
            ],
            "merchants": [m.to_dict(with_text=with_text) for m in self.merchants],
            "problems": [
                {"merchant": m, "version": v, "code": c, "message": PROBLEMS[c]}
                for m, v, c in self.problems()
            ],
        }


def _status(p: Published, following: Published | None, at: int) -> str:
    if at < p.effective_at:
        return "pending"
    if following is not None and at >= following.effective_at:
        return "superseded"
    return "in_effect"


def _notice_at(notices: Sequence[NoticeChange], time: int) -> int:
    """The notice period in force at ``time`` (0 before any was set)."""
    seconds = 0
    for n in notices:
        if n.time > time:
            break
        seconds = n.seconds
    return seconds


def _timing_problems(
    p: Published, before: Published | None, expected: int, notices: Sequence[NoticeChange]
) -> list[str]:
    found: list[str] = []
    if p.version != expected:
        found.append("version_gap")
    if p.effective_at < p.time:
        found.append("effective_before_publication")
    elif before is not None and p.effective_at < p.time + _notice_at(notices, p.time):
        found.append("notice_too_short")
    if before is not None and p.time < before.effective_at:
        found.append("published_while_pending")
    return found


def merchant_history(
    merchant: int,
    name: str,
    publications: Sequence[Published],
    *,
    at: int,
    notices: Sequence[NoticeChange] = (),
    issued: dict[int, Issued] | None = None,
) -> MerchantRules:
    """One merchant's versions (``publications`` in chain order), checked and diffed."""
    versions: list[RuleVersion] = []
    previous: dict[str, Any] | None = None
    for i, p in enumerate(publications):
        before = publications[i - 1] if i else None
        following = publications[i + 1] if i + 1 < len(publications) else None
        text, content, problems = parse_rule_text(p.raw)
        if "0x" + keccak(p.raw).hex() != p.hash.lower():
            problems.insert(0, "hash_mismatch")
        problems += _timing_problems(p, before, i + 1, notices)
        diff = None
        if previous is not None and content is not None:
            diff = tuple(diff_rule_sets(previous, content))
        previous = content
        versions.append(
            RuleVersion(
                published=p,
                status=_status(p, following, at),
                superseded_at=following.effective_at if following is not None else None,
                text=text,
                content=content,
                problems=tuple(problems),
                diff=diff,
                issued=(issued or {}).get(p.version, Issued()),
            )
        )
    return MerchantRules(merchant, name, tuple(versions))


def rule_history(
    publications: Iterable[Published],
    *,
    at: int,
    names: dict[int, str] | None = None,
    notices: Sequence[NoticeChange] = (),
    issued: dict[tuple[int, int], Issued] | None = None,
    merchant: int | None = None,
) -> RulesReport:
    """Every merchant's history (or ``merchant``'s only) at time ``at``.

    Merchants admitted without a rule set are listed with no versions."""
    names = names or {}
    by_merchant: defaultdict[int, list[Published]] = defaultdict(list)
    for p in publications:
        by_merchant[p.merchant].append(p)
    ids = sorted(set(by_merchant) | set(names))
    if merchant is not None:
        ids = [m for m in ids if m == merchant]
    per_version: defaultdict[int, dict[int, Issued]] = defaultdict(dict)
    for (m, version), amounts in (issued or {}).items():
        per_version[m][version] = amounts
    merchants = tuple(
        merchant_history(
            m,
            names.get(m, ""),
            by_merchant.get(m, []),
            at=at,
            notices=notices,
            issued=per_version.get(m),
        )
        for m in ids
    )
    return RulesReport(at, merchants, tuple(notices))


# ---------------------------------------------------------------- from records


def published(record: RuleSetPublication) -> Published:
    """A decoded ``RuleSetPublished`` as :class:`Published` (its exact logged bytes)."""
    return Published(
        merchant=record.merchant,
        version=record.rule_version,
        hash=record.rule_set_hash.lower(),
        effective_at=record.effective_at,
        raw=bytes.fromhex(record.rule_set.removeprefix("0x")),
        block=record.block,
        time=record.time,
        tx_hash=record.tx_hash,
        log_index=record.log_index,
    )


@dataclass
class _Collected:
    publications: list[Published] = field(default_factory=list)
    names: dict[int, str] = field(default_factory=dict)
    notices: list[NoticeChange] = field(default_factory=list)
    issued: dict[tuple[int, int], Issued] = field(default_factory=dict)


def _collect(records: Iterable[Record], to_block: int | None) -> _Collected:
    found = _Collected()
    for r in records:
        if to_block is not None and r.block > to_block:
            break
        if isinstance(r, RuleSetPublication):
            found.publications.append(published(r))
        elif isinstance(r, MerchantChange) and r.kind == "merchant_added":
            found.names[r.merchant] = r.name or ""
        elif isinstance(r, ParameterChange) and r.kind == "rule_notice_changed":
            found.notices.append(NoticeChange(r.block, r.time, r.value or 0))
        elif isinstance(r, IssuanceBatch) and r.rule_version:
            key = (r.merchant, r.rule_version)
            before = found.issued.get(key, Issued())
            found.issued[key] = Issued(
                before.batches + 1, before.events + r.count, before.points + r.amount
            )
    return found


def rules_report(
    records: Iterable[Record],
    *,
    at: int,
    merchant: int | None = None,
    to_block: int | None = None,
) -> RulesReport:
    """:func:`rule_history` over decoded records (chain order) up to ``to_block``."""
    found = _collect(records, to_block)
    return rule_history(
        found.publications,
        at=at,
        names=found.names,
        notices=found.notices,
        issued=found.issued,
        merchant=merchant,
    )


def effective_times(records: Iterable[Record]) -> dict[tuple[int, int], int]:
    """``(merchant, version) -> effective_at`` of every published version."""
    return {
        (r.merchant, r.rule_version): r.effective_at
        for r in records
        if isinstance(r, RuleSetPublication)
    }
