"""The accept path keeps each issue and clawback op's canonical input; the op carries its
hash, and re-running the engine on the decoded input gives the op's amount."""

from __future__ import annotations

import uuid
from typing import Any

from gateway_kit import Gateway, purchase
from sqlalchemy import select

from gateway.models import ChainOp, CustomerLink, Event, IssuanceInput, RuleSetVersion
from gateway.rules.disclosure import Input, ReducedInput, decode_input, input_hash
from gateway.rules.engine import evaluate
from gateway.rules.model import parse_rule_set


def post(gateway: Gateway, body: dict[str, Any]) -> dict[str, Any]:
    answer = gateway.client.post("/v1/events", json=body, headers=gateway.headers())
    assert answer.status_code == 202, answer.text
    return dict(answer.json())


def kept(gateway: Gateway, event_ids: list[str]) -> tuple[list[ChainOp], dict[str, IssuanceInput]]:
    with gateway.context.sessions() as session:
        ops = list(session.scalars(select(ChainOp).where(ChainOp.event_id.in_(event_ids))))
        inputs = session.scalars(select(IssuanceInput).where(IssuanceInput.event_id.in_(event_ids)))
        return ops, {row.ref: row for row in inputs}


def recompute(gateway: Gateway, decoded: Input) -> Any:
    """The engine on the decoded input, under the published text of its version."""
    stamp, args = decoded.stamp, decoded.args
    with gateway.context.sessions() as session:
        version = session.scalars(
            select(RuleSetVersion).where(
                RuleSetVersion.merchant_id == stamp.merchant_id,
                RuleSetVersion.version == stamp.rule_version,
            )
        ).one()
    assert version.hash == stamp.rule_set_hash
    rules = parse_rule_set(version.canonical)
    return evaluate(rules, args.fx, args.event, args.member, args.merchant, args.original)


def member_of(gateway: Gateway, customer: str) -> str:
    with gateway.context.sessions() as session:
        return session.scalars(
            select(CustomerLink.member_id).where(CustomerLink.customer_id == customer)
        ).one()


def test_a_referred_purchase_and_its_refund_keep_inputs_that_recompute(gateway: Gateway) -> None:
    run = uuid.uuid4().hex[:8]
    inviter, invitee = f"{run}-ann", f"{run}-bob"
    post(gateway, purchase(inviter, f"{run}-A1"))
    bought = post(
        gateway, {**purchase(invitee, f"{run}-B1", "200.00"), "referrer_customer_id": inviter}
    )
    refunded = post(gateway, {
        "type": "refund", "customer_id": invitee, "occurred_at": "2026-11-21T10:00:00Z",
        "refund": {"order_id": f"{run}-B1"},
    })  # fmt: skip
    head = gateway.context.link.w3.eth.get_block("latest")
    ops, inputs = kept(gateway, [bought["id"], refunded["id"]])
    parts = {row.part: row for row in inputs.values()}

    assert set(parts) == {"points", "referral", "clawback", "referral-clawback"}
    for op in ops:
        if op.kind in ("issue", "clawback"):
            row = inputs[op.ref]
            assert op.input_hash == row.input_hash == input_hash(row.body)
        else:
            assert op.input_hash is None and op.ref not in inputs
    amounts = {inputs[op.ref].part: op.amount for op in ops if op.ref in inputs}
    for part in ("points", "clawback"):
        decoded = decode_input(parts[part].body)
        assert isinstance(decoded, Input)
        assert decoded.stamp.part == part and decoded.stamp.ref == parts[part].ref
        assert decoded.stamp.accepted_block <= head["number"]
        assert decoded.stamp.accepted_at <= head["timestamp"]
        decision = recompute(gateway, decoded)
        minted = decision.points - decoded.args.netted if part == "points" else decision.clawback
        assert minted == amounts[part]
    ann = member_of(gateway, inviter)
    for part, own in (("referral", "points"), ("referral-clawback", "clawback")):
        reduced = decode_input(parts[part].body)
        assert isinstance(reduced, ReducedInput)
        assert reduced.event_input_hash == parts[own].input_hash
        assert reduced.inviter == ann and parts[part].member_id == ann
        assert f"{run}-B1" not in parts[part].body  # nothing of the invitee's order
    assert amounts["referral"] == amounts["referral-clawback"] > 0


def held_event(gateway: Gateway) -> dict[str, Any]:
    """A purchase the device clustering holds for review (customers sharing a device)."""
    device = f"shared-{uuid.uuid4().hex[:6]}"
    for i in range(12):
        answer = post(gateway, purchase(f"{device}-{i}", f"{device}-{i}", device_id=device))
        if answer["status"] == "held":
            return answer
    raise AssertionError("clustering never held an event")


def test_a_held_events_inputs_are_kept_at_acceptance_and_named_on_release(
    gateway: Gateway,
) -> None:
    held = held_event(gateway)
    ops, inputs = kept(gateway, [held["id"]])
    assert ops == [] and [row.part for row in inputs.values()] == ["points"]
    decoded = decode_input(next(iter(inputs.values())).body)
    assert isinstance(decoded, Input) and decoded.args.event.device_id == "withheld"

    released = gateway.client.post(f"/v1/events/{held['id']}/release", headers=gateway.headers())
    assert released.status_code == 200, released.text
    ops, inputs = kept(gateway, [held["id"]])
    issue = next(op for op in ops if op.kind == "issue")
    assert issue.input_hash == inputs[issue.ref].input_hash
    assert recompute(gateway, decoded).points == issue.amount
    with gateway.context.sessions() as session:
        event = session.get(Event, held["id"])
        assert event is not None and event.rule_version == decoded.stamp.rule_version


def test_a_rejected_held_events_inputs_are_deleted_with_it(gateway: Gateway) -> None:
    held = held_event(gateway)
    assert [row.part for row in kept(gateway, [held["id"]])[1].values()] == ["points"]
    rejected = gateway.client.post(f"/v1/events/{held['id']}/reject", headers=gateway.headers())
    assert rejected.status_code == 200, rejected.text
    assert rejected.json()["status"] == "rejected"
    assert kept(gateway, [held["id"]]) == ([], {})
