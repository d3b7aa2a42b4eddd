"""The canonical inputs of a chunk's issue and clawback ops (disclosure format 1).

Each op that issues or claws back points gets the text of what the engine was
told (:mod:`gateway.rules.disclosure`): the engine's arguments, the rule version
and the chain head whose time chose it, and a fresh 32-byte salt.  The row is
staged with the chunk's other rows (one multi-row insert) and the op carries the
text's keccak, the leaf its batch commits to on chain.  The inviter's referral
parts get a reduced input naming the invitee's by hash.  A held event's inputs are
written at acceptance; its ops find them by reference when it is released.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from gateway.clock import ChainTime
from gateway.rules import disclosure
from gateway.rules.decision import Decision
from gateway.services.accept.ops import StagedOp, event_ref

#: The op kinds whose inputs are kept and committed on chain.
INPUT_KINDS = frozenset({"issue", "clawback"})


@dataclass(frozen=True)
class ChunkStamp:
    """What a chunk was decided at: the chain head (whose time chose the rule version),
    the wall time, and the hash of that version."""

    head: ChainTime
    now: datetime
    rule_set_hash: str


def stage_inputs(
    staged: list[dict[str, Any]], at: ChunkStamp, merchant_id: int, rule_version: int,
    row: dict[str, Any], member_id: str, decision: Decision, args: disclosure.EngineArgs,
    netted: int, ops: list[StagedOp],
) -> None:  # fmt: skip
    """Add to ``staged`` the ``issuance_inputs`` rows of the event ``row``: one per issue
    or clawback op (of a held event: per part its release will issue), and put each
    input's hash on its op.  ``args``: what the engine was given; ``netted``: points
    withheld against an earlier refund's shortfall."""
    key = row["idempotency_key"]
    wanted: list[tuple[str, str, StagedOp | None]] = [
        (op.row["ref"], op.part, op) for op in ops if op.row["kind"] in INPUT_KINDS
    ]
    if row["status"] == "held":  # released later as a stored decision: no referral
        if row["points"] > 0:
            wanted.append((event_ref(merchant_id, key, "points"), "points", None))
        if row["type"] == "refund" and row["clawback"] > 0:
            wanted.append((event_ref(merchant_id, key, "clawback"), "clawback", None))
    if not wanted:
        return
    full = _netted(args, netted)
    texts: dict[str, str] = {}  # part -> full input text of this event

    def stamp(part: str, ref: str) -> disclosure.Stamp:
        return disclosure.Stamp(
            part=cast(disclosure.Part, part), merchant_id=merchant_id, ref=ref,
            rule_version=rule_version, rule_set_hash=at.rule_set_hash,
            accepted_at=at.head.timestamp, accepted_block=at.head.block, received_at=at.now,
        )  # fmt: skip

    for ref, part, op in wanted:
        salt = secrets.token_bytes(32)
        owner = member_id
        if part in disclosure.REDUCED_PARTS:
            bonus = decision.referral_clawback
            if part == "referral":
                bonus = decision.referral_bonus
            assert bonus is not None
            owner = bonus.member
            # The invitee's input this one names: the purchase's points, the refund's clawback.
            own = "points" if part == "referral" else "clawback"
            if own not in texts:  # no op of its own: hashed, not kept
                own_ref = event_ref(merchant_id, key, own)
                texts[own] = disclosure.encode_input(stamp(own, own_ref), full, salt)
            event_hash = disclosure.input_hash(texts[own])
            text = disclosure.encode_reduced(stamp(part, ref), event_hash, bonus.member, salt)
        else:
            text = texts[part] = disclosure.encode_input(stamp(part, ref), full, salt)
        digest = disclosure.input_hash(text)
        if op is not None:
            op.row["input_hash"] = digest
        staged.append({
            "ref": ref, "event_id": row["id"], "member_id": owner,
            "merchant_id": merchant_id, "part": part, "format": disclosure.FORMAT,
            "body": text, "input_hash": digest, "created_at": at.now,
        })  # fmt: skip


def _netted(args: disclosure.EngineArgs, netted: int) -> disclosure.EngineArgs:
    """``args`` with the points netted against an earlier refund's shortfall."""
    if not netted:
        return args
    return disclosure.EngineArgs(
        event=args.event, member=args.member, merchant=args.merchant,
        original=args.original, fx=args.fx, netted=netted,
    )  # fmt: skip
