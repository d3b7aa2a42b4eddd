"""Anti-abuse: frozen members, velocity limits, device and IP clustering.

Checked in this order, after the event's outcome is computed (so a held event
carries the points it will issue once a reviewer releases it):

1. a frozen member's events are rejected (``member_frozen``) before anything;
2. velocity: the member's events in the last hour or points today, then the
   merchant's events in the last minute or points today (member and inviter
   points both count for the merchant); exceeding a limit holds or rejects the
   event as ``velocity.action`` says (``velocity_member`` / ``velocity_merchant``).
   "Today" is the programme day (:mod:`gateway.rules.days`): the snapshots count
   from its local midnight at the in-effect version's ``utc_offset_minutes``, not
   a rolling 24 hours; the hour and the minute are rolling windows;
3. clustering: more distinct members on the event's device or IP than the
   threshold holds the event (``device_cluster`` / ``ip_cluster``).

Refunds skip these guards (see :mod:`gateway.rules.refunds`).
"""

from __future__ import annotations

from dataclasses import replace

from gateway.rules.decision import Decision, rejected
from gateway.rules.inputs import EventInput, MemberSnapshot, MerchantSnapshot
from gateway.rules.model import RuleSet


def frozen_rejection(member: MemberSnapshot, tier: int) -> Decision | None:
    """The rejection of a frozen member's event, or None."""
    if not member.frozen:
        return None
    why = f": {member.frozen_reason}" if member.frozen_reason else ""
    return rejected("member_frozen", f"member {member.member_id} is frozen{why}", tier)


def _over(limit: int | None, value: int) -> bool:
    return limit is not None and value > limit


def velocity_breach(
    rules: RuleSet, member: MemberSnapshot, merchant: MerchantSnapshot, decision: Decision
) -> tuple[str, str] | None:
    """``(reason, message)`` for the first velocity limit this event exceeds, or None."""
    limits = rules.velocity
    inviter_points = decision.referral_bonus.points if decision.referral_bonus else 0
    checks = (
        ("velocity_member", "member events per hour", limits.member_events_per_hour,
         member.events_last_hour + 1),
        ("velocity_member", "member points per day", limits.member_points_per_day,
         member.points_today + decision.points),
        ("velocity_merchant", "merchant events per minute", limits.merchant_events_per_minute,
         merchant.events_last_minute + 1),
        ("velocity_merchant", "merchant points per day", limits.merchant_points_per_day,
         merchant.points_issued_today + decision.points + inviter_points),
    )  # fmt: skip
    for reason, what, limit, value in checks:
        if _over(limit, value):
            return reason, f"{what}: {value} would exceed the limit of {limit}"
    return None


def cluster_flag(
    rules: RuleSet, event: EventInput, member: MemberSnapshot
) -> tuple[str, str] | None:
    """``(reason, message)`` when the event's device or IP is shared by too many members."""
    limits = rules.clustering
    if event.device_id and _over(limits.max_accounts_per_device, member.accounts_on_device):
        return "device_cluster", (
            f"{member.accounts_on_device} members on device {event.device_id}; "
            f"more than {limits.max_accounts_per_device} are held for review"
        )
    if event.ip and _over(limits.max_accounts_per_ip, member.accounts_on_ip):
        return "ip_cluster", (
            f"{member.accounts_on_ip} members on IP {event.ip}; "
            f"more than {limits.max_accounts_per_ip} are held for review"
        )
    return None


def apply_guards(
    rules: RuleSet,
    event: EventInput,
    member: MemberSnapshot,
    merchant: MerchantSnapshot,
    decision: Decision,
) -> Decision:
    """``decision`` held or rejected by velocity or clustering rules, else unchanged."""
    if decision.status != "accepted":
        return decision
    breach = velocity_breach(rules, member, merchant, decision)
    if breach is not None and rules.velocity.action == "reject":
        return rejected(*breach, tier=decision.tier_before)
    flag = breach or cluster_flag(rules, event, member)
    if flag is None:
        return decision
    reason, message = flag
    return replace(decision, status="held", reason=reason, message=message)
