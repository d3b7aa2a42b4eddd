"""The demo network's traffic: every kind of event at each demo partner, settled on chain.

``pointsnet demo`` (``make run``) runs :func:`run_demo_traffic` once its partners are
admitted, before it serves: the events go through the same accept path as
``POST /v1/events`` (:func:`gateway.services.events.submit_many`), a held one is released
as ``POST /v1/events/{id}/release`` does, and an outbox worker in this process puts
everything on chain between the phases (refunds only after their purchases are minted).
``tests/audit_page/test_recompute_demo.py`` runs the very same function and checks every
issuance with ``audit recompute --require-all``.

At each partner, amounts scaled to its currency:

- a sign-up (the seed programme gives it no points) and four purchases by ``ava``: the
  first order's bonus, then Silver from the fourth on (tiers); one in the network unit
  (USD) and one in GBP beside the home currency (FX rates);
- ``bo``: a review, two shares and seven daily check-ins in a row (the streak);
- ``cy`` invited by ``ava`` (a referral) and cy's first purchase: the invitee's and the
  inviter's bonus;
- four customers on one device: the fourth purchase is held (``device_cluster``) and
  released;
- ``ben`` earns with one large order and spends the points on the cheapest reward of the
  next partner (a redemption he signs with his custodial key, relayed by the gateway);
- then refunds: one of ava's orders in full, part of another, cy's first order (its
  clawback and the inviter's) and ben's order, whose points are spent: the shortfall is
  owed and netted from ben's next order, sent last.

Every event has a fixed Idempotency-Key and body, so a restart of the demo replays the
stored answers and adds nothing (a held event already released stays released, a member
who has redeemed does not redeem again).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select

from gateway.context import GatewayContext
from gateway.models import ChainOp, Event, Member, Merchant, Redemption, Reward
from gateway.outbox.worker import OutboxWorker
from gateway.schemas import EventCreate, RedemptionCreate
from gateway.services import events, rewards
from gateway.services.consent import custodial_deadline, sign_as_custodian
from gateway.services.member_state import member_state

Progress = Callable[[str], None]

#: The demo's business days start here (in the past of any run: fixed bodies replay).
DEMO_START = datetime(2026, 11, 2, tzinfo=UTC)
#: Order amounts are written in EUR and scaled to each partner's currency.
_SCALE = {"EUR": Decimal(1), "JPY": Decimal(160), "HKD": Decimal("8.1")}
#: The device (one per partner) the clustering guard sees four customers on; three are
#: allowed, and devices are counted network-wide (a shared one would hold them all).
SHARED_DEVICE = "demo-tablet-{currency}"
#: Every demo event's Idempotency-Key starts so (only those are released by the demo).
KEY_PREFIX = "demo-"


@dataclass
class TrafficResult:
    """What the traffic did: events answered per status, and held events released."""

    statuses: dict[str, int] = field(default_factory=dict)
    released: int = 0
    redeemed: int = 0
    refused: list[str] = field(default_factory=list)  # "key: error code" of refusals

    def summary(self) -> str:
        """One line: events answered (by their first answer), released, refused."""
        total = sum(self.statuses.values())
        counts = ", ".join(f"{n} {status}" for status, n in sorted(self.statuses.items()))
        refused = f"; refused: {', '.join(self.refused)}" if self.refused else ""
        return (
            f"{total} events ({counts} when answered), {self.released} held released, "
            f"{self.redeemed} rewards redeemed at another partner, all settled on chain"
            f"{refused}"
        )


def _at(day: int, hour: int = 0) -> str:
    return (DEMO_START + timedelta(days=day, hours=hour)).isoformat().replace("+00:00", "Z")


def _amount(eur: str, currency: str) -> str:
    value = Decimal(eur) * _SCALE.get(currency, Decimal(1))
    return f"{value.quantize(Decimal('0.01'))}"


def _purchase(
    customer: str, order: str, eur: str, currency: str, day: int, **extra: Any
) -> dict[str, Any]:
    amount = _amount(eur, currency) if currency in _SCALE else eur
    return {
        "type": "purchase",
        "customer_id": customer,
        "occurred_at": _at(day, 10),
        "order": {
            "id": order,
            "amount": amount,
            "currency": currency,
            "items": [
                {"sku": f"{order}-a", "category": "apparel", "amount": amount, "eco": day % 2 == 0}
            ],
        },
        **extra,
    }


def _event(kind: str, customer: str, day: int, **extra: Any) -> dict[str, Any]:
    return {"type": kind, "customer_id": customer, "occurred_at": _at(day, 12), **extra}


def _refund(customer: str, order: str, day: int, amount: str | None = None) -> dict[str, Any]:
    refund: dict[str, Any] = {"order_id": order}
    if amount is not None:
        refund["amount"] = amount
    return _event("refund", customer, day, refund=refund)


def accept_phase(currency: str) -> list[tuple[str, dict[str, Any]]]:
    """The first phase at a partner selling in ``currency``: (Idempotency-Key, body)."""
    home = currency
    items: list[tuple[str, dict[str, Any]]] = [
        ("signup-ava", _event("signup", "ava", 0, birth_month=3)),
        ("order-ava-1", _purchase("ava", "ava-1", "120.00", home, 1)),
        ("order-ava-2", _purchase("ava", "ava-2", "95.50", "USD", 2)),
        ("order-ava-3", _purchase("ava", "ava-3", "140.00", "GBP", 3)),
        ("order-ava-4", _purchase("ava", "ava-4", "210.00", home, 4)),  # Silver by now
        ("review-bo", _event("review", "bo", 1)),
        ("share-bo-1", _event("share", "bo", 1)),
        ("share-bo-2", _event("share", "bo", 2)),
    ]
    items += [(f"check-in-bo-{day}", _event("check_in", "bo", day)) for day in range(7)]
    items += [
        ("referral-cy", _event("referral", "cy", 5, referrer_customer_id="ava")),
        ("order-cy-1", _purchase("cy", "cy-1", "80.00", home, 6)),
    ]
    device = SHARED_DEVICE.format(currency=currency.lower())
    items += [
        (f"order-{who}-1", _purchase(who, f"{who}-1", "45.00", home, 7, device_id=device))
        for who in ("dee", "eli", "fay", "gus")  # gus is the fourth on the device: held
    ]
    items.append(("order-ben-1", _purchase("ben", "ben-1", "450.00", home, 7)))
    return items


def refund_phase(currency: str) -> list[tuple[str, dict[str, Any]]]:
    """The refunds, sent once their purchases are on chain (and ben's points spent)."""
    return [
        ("refund-ava-1", _refund("ava", "ava-1", 8)),
        ("refund-ava-4", _refund("ava", "ava-4", 9, _amount("70.00", currency))),
        ("refund-cy-1", _refund("cy", "cy-1", 9)),
        ("refund-ben-1", _refund("ben", "ben-1", 9)),
    ]


def netting_phase(currency: str) -> list[tuple[str, dict[str, Any]]]:
    """Ben's next order, once his refund's shortfall is known: what he owes is netted."""
    return [("order-ben-2", _purchase("ben", "ben-2", "300.00", currency, 10))]


def settle(context: GatewayContext, timeout: float = 120.0) -> None:
    """Drive an outbox worker here until no chain op is pending or in flight."""
    worker = OutboxWorker(context.link, context.sessions)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        worker.run_once()
        with context.sessions() as session:
            busy = session.scalar(
                select(func.count(ChainOp.id)).where(ChainOp.status.in_(("pending", "sent")))
            )
        if not busy:
            return
        time.sleep(0.05)
    raise TimeoutError(f"the demo's chain ops were not all mined within {timeout:.0f} s")


def _merchant(context: GatewayContext, merchant_id: int) -> Merchant:
    with context.sessions() as session:
        merchant = session.get(Merchant, merchant_id)
        if merchant is None:
            raise LookupError(f"demo partner {merchant_id} is not in the database")
        session.expunge(merchant)
    return merchant


def _send(
    context: GatewayContext,
    merchant: Merchant,
    items: Sequence[tuple[str, dict[str, Any]]],
    result: TrafficResult,
) -> dict[str, dict[str, Any]]:
    """Accept ``items``; the answers by (demo) key."""
    bodies = [(KEY_PREFIX + key, EventCreate.model_validate(body)) for key, body in items]
    answers: dict[str, dict[str, Any]] = {}
    for (key, _body), (status, answer) in zip(
        bodies, events.submit_many(context, merchant, bodies), strict=True
    ):
        if status >= 400:
            result.refused.append(f"{key}: {answer['error']['code']}")
            continue
        result.statuses[answer["status"]] = result.statuses.get(answer["status"], 0) + 1
        answers[key.removeprefix(KEY_PREFIX)] = answer
    return answers


def _redeem_elsewhere(
    context: GatewayContext, address: str, partner_id: int, result: TrafficResult
) -> bool:
    """The member at ``address`` redeems ``partner_id``'s cheapest reward, signing with
    the custodial key as the wallet does; False for a member who has redeemed already."""
    with context.sessions() as session:
        if session.scalar(select(Redemption.id).where(Redemption.member_address == address)):
            return False
        member = session.scalars(select(Member).where(Member.address == address)).one()
        reward = session.scalars(
            select(Reward).where(Reward.merchant_id == partner_id).order_by(Reward.cost_points)
        ).first()
        if reward is None:
            raise LookupError(f"demo partner {partner_id} has no reward")
        nonce = member_state(context, session, address).next_nonce
        message = rewards.redemption_message(context, reward, address, nonce, custodial_deadline())
        signature = sign_as_custodian(context, member, "Redemption", message)
        reward_id, deadline = reward.id, int(message["deadline"])
    body = RedemptionCreate(
        reward_id=reward_id, member=address, nonce=nonce, deadline=deadline, signature=signature
    )
    rewards.redeem(context, partner_id, body)
    result.redeemed += 1
    return True


def _release_held(context: GatewayContext, merchant: Merchant, result: TrafficResult) -> None:
    """Release every demo event still held (as its partner's reviewer would)."""
    with context.sessions() as session:
        held = session.scalars(
            select(Event.id).where(
                Event.merchant_id == merchant.id,
                Event.status == "held",
                Event.idempotency_key.startswith(KEY_PREFIX),
            )
        ).all()
    for event_id in held:
        events.release(context, merchant, event_id, approve=True)
        result.released += 1


def run_demo_traffic(
    context: GatewayContext,
    partners: Sequence[dict[str, Any]],
    progress: Progress | None = None,
) -> TrafficResult:
    """Every kind of event at each partner (``ensure_demo``'s list), settled on chain."""
    say = progress or (lambda _m: None)
    result = TrafficResult()
    merchants = [(_merchant(context, int(p["id"])), str(p["currency"])) for p in partners]
    settle(context)  # the partners' first rule sets are published before events
    spenders: list[str] = []
    for merchant, currency in merchants:
        say(f"demo traffic at {merchant.name}: purchases, activities, a referral, a hold")
        answers = _send(context, merchant, accept_phase(currency), result)
        _release_held(context, merchant, result)
        if "order-ben-1" in answers:
            spenders.append(str(answers["order-ben-1"]["member_address"]))
    settle(context)
    for index, address in enumerate(spenders):  # at the next partner (its points minted)
        other = merchants[(index + 1) % len(merchants)][0]
        if _redeem_elsewhere(context, address, other.id, result):
            say(f"demo traffic: a customer of {merchants[index][0].name} redeemed at {other.name}")
    settle(context)
    for merchant, currency in merchants:
        say(f"demo traffic at {merchant.name}: refunds")
        _send(context, merchant, refund_phase(currency), result)
    settle(context)
    for merchant, currency in merchants:
        _send(context, merchant, netting_phase(currency), result)
    settle(context)
    return result
