"""Refunds claw back what the refunded order earned, never more.

- Full refund (no amount, or the refunds of an order reaching its whole amount):
  everything the purchase issued and is not yet clawed back, bonuses included:
  the first-order and invitee bonuses were earned by an order that no longer
  exists, so they go too (otherwise order-then-refund would farm them).  The
  inviter's reward is returned as ``referral_clawback`` for the gateway to claw
  back from the inviter.  Badges are soulbound achievements and stay.
- Partial refund: the amount-based lines (base, tier, birthday, campaigns) in
  proportion to the refunded amount, rounded up; fixed bonuses stay because the
  order still exists.  Successive partial refunds are computed on the running
  total (``ceil(amount_based x refunded_so_far / order_amount)`` minus what was
  already clawed back), so splitting a refund never claws back more.

Refunds are not subject to frozen-member, velocity or clustering rules: taking
points back is always allowed.
"""

from __future__ import annotations

import decimal
from collections.abc import Sequence
from datetime import datetime
from decimal import ROUND_CEILING, Decimal

from gateway.rules.decision import (
    RULE_REFUND_FULL,
    RULE_REFUND_PARTIAL,
    BreakdownLine,
    Decision,
    is_amount_based,
    rejected,
)
from gateway.rules.fx import PRECISION
from gateway.rules.inputs import EventInput, MemberSnapshot, OriginalOutcome
from gateway.rules.model import RuleSet
from gateway.rules.tiers import compute_tier


def _ceil(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_CEILING))


def _history_after(
    purchases: Sequence[tuple[datetime, Decimal]],
    original: OriginalOutcome,
    refunded_network: Decimal,
) -> list[tuple[datetime, Decimal]]:
    """The purchase history with the refunded order reduced (dropped when fully refunded)."""
    history = list(purchases)
    for index, (when, amount) in enumerate(history):
        if when == original.occurred_at:
            left = amount - refunded_network
            if left > 0:
                history[index] = (when, left)
            else:
                del history[index]
            break
    return history


def evaluate_refund(
    rules: RuleSet,
    event: EventInput,
    member: MemberSnapshot,
    original: OriginalOutcome | None,
    tier: int,
) -> Decision:
    """The clawback for ``event.refund`` of the purchase whose outcome is ``original``."""
    refund = event.refund
    if refund is None:  # pragma: no cover - EventInput guarantees it
        raise AssertionError("a refund carries refund details")
    if original is None or original.order_id not in (None, refund.order_id):
        return rejected("refund_unknown_order", f"no recorded purchase {refund.order_id}", tier)
    left = original.order_amount - original.refunded_amount
    amount = left if refund.amount is None else refund.amount
    if amount <= 0 or amount > left:
        message = f"refund of {amount} exceeds the {left} left of order {refund.order_id}"
        return rejected("refund_exceeds_order", message, tier)
    with decimal.localcontext(prec=PRECISION):
        refunded = original.refunded_amount + amount
        remaining_points = original.points - original.already_clawed_back
        referral_clawback = None
        if refunded == original.order_amount:
            clawback = remaining_points
            line = BreakdownLine(
                RULE_REFUND_FULL,
                f"full refund of order {refund.order_id}: all {original.points} points it "
                f"earned, bonuses included, less {original.already_clawed_back} clawed back before",
                clawback,
            )
            if original.referral_bonus is not None and original.referral_bonus.points:
                referral_clawback = original.referral_bonus
        else:
            amount_based = sum(
                (ln.points for ln in original.breakdown if is_amount_based(ln.rule)), 0
            )
            if not original.breakdown:
                amount_based = original.points
            target = _ceil(amount_based * refunded / original.order_amount)
            clawback = min(max(target - original.already_clawed_back, 0), remaining_points)
            line = BreakdownLine(
                RULE_REFUND_PARTIAL,
                f"refund of {amount} of order {refund.order_id} ({refunded} of "
                f"{original.order_amount} refunded): that share of its {amount_based} "
                "amount-based points, rounded up",
                clawback,
            )
        history = list(member.purchases)
        if original.network_amount is not None:
            refunded_network = original.network_amount * amount / original.order_amount
            history = _history_after(history, original, refunded_network)
    return Decision(
        status="accepted",
        clawback=clawback,
        clawback_breakdown=(line,),
        referral_clawback=referral_clawback,
        tier_before=tier,
        tier_after=compute_tier(rules, history, event.occurred_at),
    )
