"""The rule timeline: every rule change, timelock operation, pause and merchant change
in a range, in chain order, with each scheduled call's status (executed, cancelled,
pending, ready) and each rule-set version's time of effect (pending, in effect)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from chain.audit.reader import Contracts
from chain.audit.settlement import format_money
from chain.records import (
    BadgeDefinition,
    MerchantChange,
    ParameterChange,
    PointValueChange,
    Record,
    RoleChange,
    RuleSetPublication,
    TimelockCall,
    TimelockCancel,
    checksum,
    iso_time,
)


@dataclass(frozen=True)
class TimelineEntry:
    """A rule or governance change, in chain order."""

    block: int
    log_index: int
    time: int
    tx_hash: str
    kind: str
    subject: str
    description: str
    operation_id: str | None = None
    #: scheduled calls: earliest execution (schedule time + delay); rule sets: effective_at
    ready_at: int | None = None
    #: scheduled calls: executed / cancelled / pending / ready; rule sets: pending / in effect
    status: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "block": self.block,
            "log_index": self.log_index,
            "time": iso_time(self.time),
            "tx_hash": self.tx_hash,
            "kind": self.kind,
            "subject": self.subject,
            "description": self.description,
            "operation_id": self.operation_id,
            "ready_at": iso_time(self.ready_at) if self.ready_at is not None else None,
            "status": self.status,
        }


_TIMELINE_KINDS = frozenset(
    {
        "merchant_added",
        "merchant_status_changed",
        "merchant_cap_changed",
        "merchant_signer_changed",
        "rule_set_published",
        "rule_notice_changed",
        "point_value_changed",
        "transfer_policy_changed",
        "cap_period_changed",
        "sunset",
        "paused",
        "unpaused",
        "min_delay_changed",
        "role_granted",
        "role_revoked",
        "call_scheduled",
        "call_executed",
        "call_cancelled",
        "badge_defined",
    }
)


def rule_timeline(
    records: Sequence[Record],
    from_block: int,
    to_block: int,
    now: int | None = None,
    contracts: Contracts | None = None,
) -> list[TimelineEntry]:
    """Every rule change, timelock operation, pause and merchant change in the range.

    A scheduled call's status looks at the whole history up to ``to_block`` (executed or
    cancelled later than it was scheduled); ``now`` (the time of ``to_block``) tells
    pending operations that are ready from those still waiting.
    """
    labels = contracts.labels() if contracts else {}
    outcome: dict[str, str] = {}
    for r in records:
        if r.block > to_block:
            break
        if isinstance(r, TimelockCall) and r.kind == "call_executed":
            outcome[f"{r.operation_id}:{r.index}"] = f"executed at block {r.block}"
        elif isinstance(r, TimelockCancel):
            outcome[r.operation_id] = f"cancelled at block {r.block}"
    entries: list[TimelineEntry] = []
    for r in records:
        if r.block > to_block:
            break
        if r.block < from_block or r.kind not in _TIMELINE_KINDS:
            continue
        head = (r.block, r.log_index, r.time, r.tx_hash, r.kind)
        if isinstance(r, TimelockCall):
            target = labels.get(r.target, checksum(r.target))
            if r.kind == "call_scheduled":
                ready = r.time + (r.delay or 0)
                status = outcome.get(f"{r.operation_id}:{r.index}") or outcome.get(r.operation_id)
                if status is None:
                    status = "pending" if now is None or now < ready else "ready, not executed"
                entries.append(
                    TimelineEntry(
                        *head,
                        target,
                        f"scheduled {r.function} with a {r.delay}s delay",
                        r.operation_id,
                        ready,
                        status,
                    )
                )
            else:
                entries.append(
                    TimelineEntry(*head, target, f"executed {r.function}", r.operation_id)
                )
        elif isinstance(r, RuleSetPublication):
            if r.effective_at <= r.time:
                when = "in effect at once"
            else:
                when = f"in effect from {iso_time(r.effective_at)}"
            seen_at = r.time if now is None else now
            status = "pending" if seen_at < r.effective_at else "in effect"
            entries.append(
                TimelineEntry(
                    *head,
                    f"merchant {r.merchant}",
                    f"published rule set v{r.rule_version} {r.rule_set_hash} ({when})",
                    ready_at=r.effective_at,
                    status=status,
                )
            )
        elif isinstance(r, TimelockCancel):
            entries.append(
                TimelineEntry(
                    *head, "timelock", f"cancelled operation {r.operation_id}", r.operation_id
                )
            )
        else:
            subject, description = _describe_change(r)
            entries.append(TimelineEntry(*head, subject, description))
    return entries


def _describe_change(r: Record) -> tuple[str, str]:
    if isinstance(r, MerchantChange):
        subject = f"merchant {r.merchant}"
        if r.kind == "merchant_added":
            signer = checksum(r.signer) if r.signer else ""
            return subject, f"admitted {r.name!r}, signer {signer}, cap {r.cap:,} per period"
        if r.kind == "merchant_status_changed":
            return subject, f"status -> {r.status}"
        if r.kind == "merchant_cap_changed":
            return subject, f"cap -> {r.cap:,} per period"
        return subject, f"signer -> {checksum(r.signer) if r.signer else ''}"
    if isinstance(r, PointValueChange):
        return "hub", f"point value -> {format_money(r.micro_units, r.currency)}"
    if isinstance(r, RoleChange):
        return r.contract, f"{r.kind.replace('_', ' ')} {r.role_name} to {checksum(r.account)}"
    if isinstance(r, BadgeDefinition):
        soulbound = ", soulbound" if r.soulbound else ""
        return "badges", f"defined badge {r.badge_id} {r.name!r} (max {r.max_supply:,}{soulbound})"
    if isinstance(r, ParameterChange):
        if r.kind == "transfer_policy_changed":
            return "hub", "member transfers " + ("allowed" if r.value else "forbidden")
        if r.kind == "cap_period_changed":
            return "hub", f"cap period -> {r.value:,}s"
        if r.kind == "sunset":
            return "hub", "sunset: minting stopped for good"
        if r.kind == "rule_notice_changed":
            return "hub", f"rule-change notice -> {r.value:,}s"
        if r.kind == "min_delay_changed":
            return "timelock", f"minimum delay {r.old_value}s -> {r.value}s"
        return "hub", f"{r.kind} by {checksum(r.account) if r.account else '?'}"
    return r.contract, r.kind
