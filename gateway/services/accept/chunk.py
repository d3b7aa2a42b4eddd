"""One chunk of events, decided in memory against the chunk's state.

:class:`Chunk` takes the chunk's events one by one, in order: it builds the
member's snapshot from :class:`~gateway.services.accept.reads.ChunkState`, lets
the pure rules engine decide, and on acceptance adds the event's rows (a new
member and link, the event, its chain ops, counter deltas) to the chunk's
:class:`~gateway.services.accept.writes.Pending` rows and its effects to the
state, so the next event of the same member sees them.  A refused event
changes nothing but raises the refusal; its answer is stored by the caller.

Each issue or clawback op gets its canonical input
(:mod:`gateway.services.accept.inputs`), staged with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from gateway.context import GatewayContext
from gateway.errors import InvalidRequest, NotFound, RuleRejected
from gateway.models import Merchant, new_id
from gateway.rules import disclosure
from gateway.rules import engine as rules_engine
from gateway.rules.days import programme_day
from gateway.rules.errors import RuleError
from gateway.rules.model import RuleSet
from gateway.schemas import EventCreate
from gateway.services.accept import counters
from gateway.services.accept.inputs import ChunkStamp, stage_inputs
from gateway.services.accept.ops import StagedOp, build_ops
from gateway.services.accept.reads import ChunkState, LinkState, MemberState, Original
from gateway.services.accept.writes import Pending

#: The breakdown line of points withheld to cover an earlier refund's shortfall.
SHORTFALL_LINE = "netted against points an earlier refund could not claw back"
#: Event types whose rules refuse an inviter when the link already has one (or the
#: member already purchased): they must see the link's inviter from before the event.
LINK_RECORDING = frozenset({"referral", "signup"})


@dataclass
class Accepted:
    """An event the chunk stored: its row and its member's address (for the answer)."""

    row: dict[str, Any]
    address: str


class Chunk:
    """The events of one write transaction, decided against ``state``, written by ``pending``."""

    def __init__(
        self, ctx: GatewayContext, merchant: Merchant, rule_version: int,
        rules: RuleSet, state: ChunkState, pending: Pending, stamp: ChunkStamp,
    ) -> None:  # fmt: skip
        self.ctx, self.merchant, self.rule_version, self.rules = ctx, merchant, rule_version, rules
        self.state, self.pending, self.stamp = state, pending, stamp

    def accept(self, key: str, body: EventCreate) -> Accepted:
        """Decide and stage one event; raises the refusal (a GatewayError) and stages nothing."""
        state = self.state
        link = state.links.get(body.customer_id)
        member = state.members[link.member_id] if link is not None else self._new_member(body)
        before = link.referred_by if link is not None else None
        referrer_member, referred_by = None, before
        if body.referrer_customer_id is not None:
            referrer = state.links.get(body.referrer_customer_id)
            if referrer is None:
                raise NotFound(
                    f"referrer {body.referrer_customer_id!r} is not a customer of this merchant",
                    referrer_customer_id=body.referrer_customer_id,
                )
            referrer_member = referrer.member_id
            if referred_by is None and referrer.member_id != member.id:
                referred_by = referrer.member_id
        original = None
        if body.refund is not None:
            original = state.originals.get((body.customer_id, body.refund.order_id))
        rewarded = link.referral_rewarded if link is not None else False
        # The rules judge a referral (or a sign-up naming an inviter) against the link as
        # it was: the inviter it names is recorded only once it is accepted.  A purchase
        # naming one is rewarded for it on that very purchase, so the rules see it set.
        seen = referred_by if body.type not in LINK_RECORDING else before
        decision, args = self._decide(body, member, referrer_member, seen, rewarded, original)
        # Accepted: from here on the event's effects are staged.
        if link is None:
            link = LinkState(id=None, customer_id=body.customer_id, member_id=member.id)
            state.links[body.customer_id] = link
            self.pending.new_links.append(link)
            if member.new and member.id not in state.members:
                state.members[member.id] = member
                self.pending.new_members.append(member)
        if referred_by != link.referred_by:
            link.referred_by = referred_by
            link.changed.add("referred_by")
        if body.birth_month is not None and member.birth_month is None:
            member.birth_month = body.birth_month
            member.changed.add("birth_month")
        accepted = self._stage(key, body, member, link, decision, original, args)
        self.pending.changed(member, link)
        return accepted

    def _new_member(self, body: EventCreate) -> MemberState:
        """The custodial member a new customer gets (staged only if its event is accepted)."""
        address = self.state.addresses[body.customer_id]
        known = self.state.by_address.get(address)
        if known is not None:
            return known
        return MemberState(
            id=new_id(), address=address, new=True,
            key_origin=(self.merchant.id, body.customer_id),
        )  # fmt: skip

    def _decide(
        self, body: EventCreate, member: MemberState, referrer_member: str | None,
        referred_by: str | None, rewarded: bool, original: Original | None,
    ) -> tuple[rules_engine.Decision, disclosure.EngineArgs]:  # fmt: skip
        at = body.occurred_at
        today = programme_day(self.rules, at)
        here = member.buckets.get((self.merchant.id, today), counters.Bucket())
        inviter = self.state.members.get(referred_by) if referred_by else None
        snapshot = rules_engine.MemberSnapshot(
            member_id=member.id,
            birth_month=member.birth_month,
            frozen=member.frozen,
            is_first_purchase_at_merchant=not counters.ordered_here(
                member.buckets, self.merchant.id
            ),
            purchases=counters.tier_purchases(member.buckets, at),
            check_in_days=counters.check_in_days(member.buckets, self.merchant.id, today),
            shares_today=here.shares,
            reviews_today=here.reviews,
            referred_by=referred_by,
            referral_rewarded=rewarded,
            referrer_referrals=self.state.referrals.get(referred_by, 0) if referred_by else 0,
            referrer_badges=frozenset(inviter.badges) if inviter else frozenset(),
            held_badges=frozenset(member.badges),
            current_tier=member.tier,
            events_last_hour=member.events_last_hour,
            points_today=member.points_today,
            accounts_on_device=_accounts(self.state.devices, body.device_id, member.id),
            accounts_on_ip=_accounts(self.state.ips, body.ip, member.id),
        )
        args = disclosure.EngineArgs(
            event=_event_input(body, referrer_member), member=snapshot,
            merchant=self.state.merchant, fx=self.ctx.fx,
            original=self._outcome(original) if original is not None else None,
        )  # fmt: skip
        try:
            decision = rules_engine.evaluate(
                self.rules, args.fx, args.event, args.member, args.merchant, args.original
            )
        except RuleError as exc:
            raise InvalidRequest(str(exc), code=getattr(exc, "code", "invalid_event")) from exc
        if decision.status == "rejected":
            raise RuleRejected(
                f"event rejected: {decision.message or decision.reason}", reason=decision.reason
            )
        return decision, args

    def _outcome(self, original: Original) -> rules_engine.OriginalOutcome:
        earlier = self.state.refunds_of.get(original.order_id, [])
        refunded = sum(
            (amount if amount is not None else original.order_amount for _c, amount in earlier),
            Decimal(0),
        )
        referral = next((op for op in original.ops if op.payload.get("referral")), None)
        bonus = None
        if referral is not None:
            bonus = rules_engine.ReferralBonus(
                member=str(referral.payload["inviter_id"]), points=referral.amount
            )
        return rules_engine.OriginalOutcome(
            order_id=original.order_id,
            points=original.points,
            order_amount=original.order_amount,
            network_amount=original.network_amount,
            breakdown=[rules_engine.BreakdownLine(**line) for line in original.breakdown],
            already_clawed_back=sum(clawback for clawback, _a in earlier),
            refunded_amount=min(refunded, original.order_amount),
            occurred_at=original.occurred_at,
            referral_bonus=bonus,
        )

    def _stage(
        self, key: str, body: EventCreate, member: MemberState, link: LinkState,
        decision: rules_engine.Decision, original: Original | None,
        args: disclosure.EngineArgs,
    ) -> Accepted:  # fmt: skip
        merchant_id = self.merchant.id
        network_amount = Decimal(0)
        if body.order is not None:
            network_amount = self.ctx.fx.convert(
                body.order.amount, body.order.currency, body.occurred_at
            )
        breakdown = [line_dict(line) for line in decision.breakdown]
        points, clawback = decision.points, decision.clawback
        netted = min(member.owed, points) if body.type != "refund" else 0
        if netted:
            # An earlier refund could not claw back points already spent: net them here.
            points, clawback = points - netted, netted
            member.owed -= netted
            breakdown.append(
                {"rule": "refund_shortfall", "points": -netted, "description": SHORTFALL_LINE}
            )
        now = self.stamp.now
        status = "held" if decision.status == "held" else "accepted"
        row: dict[str, Any] = {
            "id": new_id(), "created_at": now, "updated_at": now, "merchant_id": merchant_id,
            "idempotency_key": key, "type": body.type, "customer_id": body.customer_id,
            "member_id": member.id, "occurred_at": body.occurred_at,
            "order_id": body.order.id if body.order else (
                body.refund.order_id if body.refund else None),
            "network_amount": network_amount, "payload": body.model_dump(mode="json"),
            "status": status, "reason": decision.reason, "points": points,
            "clawback": clawback, "breakdown": breakdown, "badges": list(decision.badges),
            "rule_version": self.rule_version, "tx_hash": None, "block_number": None,
            "device_id": body.device_id, "ip": body.ip,
        }  # fmt: skip
        self.pending.events.append(row)
        ops: list[StagedOp] = []
        if status == "accepted":
            ops = self._ops(row, member, link, decision, original)
            if not ops:
                row["status"] = "confirmed"  # nothing to put on chain
        stage_inputs(
            self.pending.inputs, self.stamp, self.merchant.id, self.rule_version,
            row, member.id, decision, args, netted, ops,
        )  # fmt: skip
        self._count(body, member, row, network_amount)
        if body.type == "purchase" and row["status"] != "held" and body.order is not None:
            self.state.originals.setdefault(
                (body.customer_id, body.order.id),
                Original(
                    event_id=row["id"], order_id=body.order.id, points=points,
                    network_amount=network_amount, order_amount=body.order.amount,
                    breakdown=breakdown, occurred_at=body.occurred_at,
                    ops=[op.ref for op in ops],
                ),
            )  # fmt: skip
        if body.refund is not None:
            amount = body.refund.amount
            self.state.refunds_of.setdefault(body.refund.order_id, []).append((clawback, amount))
        return Accepted(row, member.address)

    def _ops(
        self, row: dict[str, Any], member: MemberState, link: LinkState,
        decision: Any, original: Original | None,
    ) -> list[StagedOp]:  # fmt: skip
        state = self.state
        ops = build_ops(self.merchant.id, row, member.address, decision, original, state.members)
        self.pending.ops.extend(ops)
        member.badges.update(decision.badges)
        bonus = decision.referral_bonus
        inviter = state.members.get(bonus.member) if bonus is not None else None
        if bonus is not None and inviter is not None:
            inviter.badges.update(bonus.badges)
            if not link.referral_rewarded:
                state.referrals[inviter.id] = state.referrals.get(inviter.id, 0) + 1
            link.referral_rewarded = True
            link.changed.add("referral_rewarded")
        if decision.tier_after is not None and decision.tier_after != member.tier:
            old, member.tier = member.tier, decision.tier_after
            member.changed.add("tier")
            self.pending.tier_changes.append(
                {"customer_id": row["customer_id"], "member": member.address,
                 "old_tier": old, "new_tier": decision.tier_after}
            )  # fmt: skip
        return ops

    def _count(
        self, body: EventCreate, member: MemberState, row: dict[str, Any], amount: Decimal
    ) -> None:
        """The stored event counts in its bucket, the velocity limits and the clusters."""
        kind, points = row["type"], row["points"]
        delta = counters.event_delta(kind, row["status"], points, amount, body.occurred_at)
        day = programme_day(self.rules, body.occurred_at)
        member.buckets.setdefault((self.merchant.id, day), counters.Bucket()).add(delta)
        self.pending.add_delta(member.id, self.merchant.id, day, delta)
        member.events_last_hour += 1
        member.points_today += points
        snapshot = self.state.merchant
        self.state.merchant = rules_engine.MerchantSnapshot(
            merchant_id=snapshot.merchant_id,
            points_issued_today=snapshot.points_issued_today + points,
            events_last_minute=snapshot.events_last_minute + 1,
        )
        if body.device_id and body.device_id in self.state.devices:
            self.state.devices[body.device_id].add(member.id)
        if body.ip and body.ip in self.state.ips:
            self.state.ips[body.ip].add(member.id)


def _accounts(seen: dict[str, set[str]], value: str | None, member_id: str) -> int:
    """How many distinct members (this one included) used this device id or IP."""
    if not value:
        return 1
    return len(seen.get(value, set()) - {member_id}) + 1


def _event_input(body: EventCreate, referrer_member: str | None) -> rules_engine.EventInput:
    order = None
    if body.order is not None:
        order = rules_engine.OrderInput(
            order_id=body.order.id,
            amount=body.order.amount,
            currency=body.order.currency,
            items=[
                rules_engine.ItemInput(sku=i.sku, category=i.category, amount=i.amount, eco=i.eco)
                for i in body.order.items
            ],
        )
    refund = None
    if body.refund is not None:
        refund = rules_engine.RefundInput(order_id=body.refund.order_id, amount=body.refund.amount)
    return rules_engine.EventInput(
        type=body.type, occurred_at=body.occurred_at, order=order, refund=refund,
        referrer_member=referrer_member, device_id=body.device_id, ip=body.ip,
    )  # fmt: skip


def line_dict(line: Any) -> dict[str, Any]:
    return {"rule": line.rule, "description": line.description, "points": int(line.points)}
