"""The rules engine: one merchant event in, one :class:`Decision` out.

:func:`evaluate` is pure: it reads only its arguments (the gateway passes the
time in ``event.occurred_at`` and everything it knows about the member and the
merchant in snapshots), never a clock, a file, a database or a random source,
so the same inputs always give the same decision.  Problems of one event's
content (an unknown currency, a refund of an unknown order, a self-referral)
come back as a rejected decision whose ``reason`` is a stable code; malformed
inputs raise :class:`~gateway.rules.errors.InvalidEvent` when constructed.

Input and output types are re-exported here: the gateway imports them from
this module.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from gateway.rules.activities import (
    evaluate_check_in,
    evaluate_referral,
    evaluate_review,
    evaluate_share,
    evaluate_signup,
)
from gateway.rules.decision import REASONS, BreakdownLine, Decision, ReferralBonus, rejected
from gateway.rules.earning import evaluate_purchase
from gateway.rules.errors import RuleError
from gateway.rules.fx import FxTable
from gateway.rules.guards import apply_guards, frozen_rejection
from gateway.rules.inputs import (
    EVENT_TYPES,
    EventInput,
    EventType,
    ItemInput,
    MemberSnapshot,
    MerchantSnapshot,
    OrderInput,
    OriginalOutcome,
    RefundInput,
)
from gateway.rules.model import RuleSet
from gateway.rules.refunds import evaluate_refund
from gateway.rules.tiers import TIER_NAMES, Purchase, compute_tier, tier_name

__all__ = [
    "EVENT_TYPES",
    "REASONS",
    "TIER_NAMES",
    "BreakdownLine",
    "Decision",
    "EventInput",
    "EventType",
    "ItemInput",
    "MemberSnapshot",
    "MerchantSnapshot",
    "OrderInput",
    "OriginalOutcome",
    "Purchase",
    "ReferralBonus",
    "RefundInput",
    "compute_tier",
    "evaluate",
    "tier_name",
]

Handler = Callable[[RuleSet, FxTable, EventInput, MemberSnapshot, int], Decision]

_EARNING_HANDLERS: dict[str, Handler] = {
    "purchase": evaluate_purchase,
    "signup": evaluate_signup,
    "review": evaluate_review,
    "share": evaluate_share,
    "referral": evaluate_referral,
    "check_in": evaluate_check_in,
}


def evaluate(
    rules: RuleSet,
    fx: FxTable,
    event: EventInput,
    member: MemberSnapshot,
    merchant: MerchantSnapshot,
    original: OriginalOutcome | None = None,
) -> Decision:
    """Points, clawback, badges, referral reward and tier for ``event`` under ``rules``.

    ``original`` is the recorded outcome of the purchase a refund refers to.
    The tier multiplier uses the tier ``member.purchases`` earn at the event's
    time (before this purchase); ``tier_after`` includes this purchase (or
    refund); ``tier_changed`` compares it with ``member.current_tier``.
    """
    tier = compute_tier(rules, member.purchases, event.occurred_at)
    if event.type == "refund":
        decision = evaluate_refund(rules, event, member, original, tier)
    else:
        decision = frozen_rejection(member, tier) or _earn(rules, fx, event, member, tier)
        decision = apply_guards(rules, event, member, merchant, decision)
    return replace(decision, tier_changed=decision.tier_after != member.current_tier)


def _earn(
    rules: RuleSet, fx: FxTable, event: EventInput, member: MemberSnapshot, tier: int
) -> Decision:
    try:
        return _EARNING_HANDLERS[event.type](rules, fx, event, member, tier)
    except RuleError as error:
        return rejected(error.code, str(error), tier)
