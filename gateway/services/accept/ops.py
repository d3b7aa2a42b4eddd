"""The chain ops of an accepted event: one row per on-chain effect of its decision.

Issue the points, claw back what a refund takes (from the member and, for a
referred purchase, the inviter's bonus), award badges, pay the inviter's
referral bonus, set a changed tier.  Each op carries the event's bytes32
reference on chain (:func:`event_ref`), which lets a gateway recover.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_hash.auto import keccak

from gateway.rules.badges import badge_id
from gateway.services.accept.reads import MemberState, OpRef, Original


def event_ref(merchant_id: int, idempotency_key: str, part: str) -> str:
    """The bytes32 reference of an event's issuance on chain (lets a gateway recover).

    ``eth_hash`` directly: ``eth_utils.keccak``'s argument checks doubled the cost of
    this hash, paid once per chain op."""
    return "0x" + keccak(f"{merchant_id}:{idempotency_key}:{part}".encode()).hex()


def op_row(
    merchant_id: int, event: dict[str, Any], kind: str, address: str, part: str, **fields: Any
) -> dict[str, Any]:
    """A ``chain_ops`` row with every column (one shape for a multi-row insert)."""
    return {
        "event_id": event["id"], "merchant_id": merchant_id, "kind": kind,
        "member_address": address, "amount": fields.get("amount", 0),
        "badge_id": fields.get("badge_id"), "tier": fields.get("tier"),
        "rule_version": event["rule_version"],
        "ref": event_ref(merchant_id, event["idempotency_key"], part),
        "original_seq": None, "seq": None, "status": "pending",
        "payload": fields.get("payload", {}), "burned": None, "tx_id": None, "error": None,
        "block_number": None, "input_hash": None,
    }  # fmt: skip


@dataclass
class StagedOp:
    """An op row to insert; ``part``: which effect of its event (``points``, ``clawback``,
    ``referral``, ``badge:<key>``, ...: its reference hashes it); ``origin``: the op its
    payload's ``original_op_id`` names, when that op is staged in the same chunk and
    has no id yet."""

    row: dict[str, Any]
    ref: OpRef
    part: str
    origin: OpRef | None = None


def build_ops(
    merchant_id: int, event: dict[str, Any], address: str, decision: Any,
    original: Original | None, members: dict[str, MemberState],
) -> list[StagedOp]:  # fmt: skip
    """The event's ops, each with the :class:`OpRef` a later refund of it will read.

    ``decision`` has ``badges``, ``referral_bonus``, ``referral_clawback`` and
    ``tier_after`` (a held event's stored decision has no bonus and no tier);
    ``members`` holds the inviters they name.
    """
    ops: list[StagedOp] = []

    def add(kind: str, to: str, part: str, origin: OpRef | None = None, **fields: Any) -> None:
        if origin is not None:
            fields["payload"] = {**fields.get("payload", {}), "original_op_id": origin.id}
        row = op_row(merchant_id, event, kind, to, part, **fields)
        ref = OpRef(kind, row["amount"], row["payload"], None, event["id"], row["ref"])
        waiting = origin if origin is not None and origin.id is None else None
        ops.append(StagedOp(row, ref, part, waiting))

    if event["points"] > 0:
        add("issue", address, "points", amount=event["points"])
    if event["type"] == "refund" and event["clawback"] > 0:
        assert original is not None
        issued = next(
            op for op in original.ops if op.kind == "issue" and not op.payload.get("referral")
        )
        add("clawback", address, "clawback", origin=issued, amount=event["clawback"])
    for key in decision.badges:
        add("badge", address, f"badge:{key}", badge_id=badge_id(key))
    bonus = decision.referral_bonus
    inviter = members.get(bonus.member) if bonus is not None else None
    if bonus is not None and inviter is not None:
        if bonus.points > 0:
            add("issue", inviter.address, "referral", amount=bonus.points,
                payload={"referral": True, "inviter_id": inviter.id})  # fmt: skip
        for key in bonus.badges:
            add("badge", inviter.address, f"referral-badge:{key}", badge_id=badge_id(key))
    claw = getattr(decision, "referral_clawback", None)
    if claw is not None and claw.points > 0 and original is not None:
        clawed = members.get(claw.member)
        referral = next((op for op in original.ops if op.payload.get("referral")), None)
        if clawed is not None and referral is not None:
            add("clawback", clawed.address, "referral-clawback", origin=referral,
                amount=claw.points)  # fmt: skip
    tier_after = getattr(decision, "tier_after", None)
    if tier_after is not None and tier_after != _tier_of(members, event["member_id"]):
        add("tier", address, "tier", tier=tier_after)
    return ops


def _tier_of(members: dict[str, MemberState], member_id: str) -> int | None:
    member = members.get(member_id)
    return member.tier if member is not None else None
