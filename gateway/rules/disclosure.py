"""Issuance inputs, format 1: everything the engine was told, as one canonical text.

Each issue or clawback op an accepted event yields gets an input: the engine's
arguments (event, member snapshot, merchant snapshot, original outcome of a
refund, the FX rate used, points netted against an earlier shortfall), the rule
version and its hash, the chain block whose time chose that version
(``accepted_at`` / ``accepted_block``) and a random 32-byte ``salt``.  The text
is canonical JSON (:mod:`gateway.rules.canonical`; amounts keep their decimal
places, ``124.20``, so the engine's breakdown lines recompute word for word);
``input_hash`` is its keccak-256, the leaf the op's batch commits to on chain.
Whoever holds the text can re-run :func:`gateway.rules.engine.evaluate` on
:func:`decode_input`'s arguments under the published rules and compare with what
was minted.

What is left out: the device id and IP address are written as present or not
(the engine reads nothing more of them; decoding gives :data:`WITHHELD`), and
the FX table is the one rate the purchase used.  The inviter's ``referral`` /
``referral-clawback`` parts get a reduced input (:func:`encode_reduced`) naming
the invitee's input by its hash only: an inviter's proof reveals nothing of the
invitee's order.  The salt makes the hash reveal nothing once the text is erased.

This module is pure: no clock, no randomness (the caller passes the salt).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal, get_args

from eth_hash.auto import keccak

from gateway.rules.canonical import instant_text
from gateway.rules.disclosure_codec import (
    WITHHELD,
    InvalidInput,
    event_of,
    event_text,
    fx_of,
    fx_text,
    instant_of,
    int_of,
    member_of,
    member_text,
    original_of,
    original_text,
    text_of,
)
from gateway.rules.errors import InvalidEvent
from gateway.rules.fx import FxTable
from gateway.rules.inputs import (
    EventInput,
    MemberSnapshot,
    MerchantSnapshot,
    OriginalOutcome,
)

#: The input format this module writes and reads.
FORMAT: Final = 1
#: The engine semantics the inputs were decided under; a recomputation refuses others.
ENGINE: Final = 1

Part = Literal["points", "referral", "clawback", "referral-clawback"]
PARTS: Final[tuple[str, ...]] = get_args(Part)
#: The parts whose input is the inviter's reduced one.
REDUCED_PARTS: Final = frozenset({"referral", "referral-clawback"})

__all__ = [
    "ENGINE", "FORMAT", "PARTS", "REDUCED_PARTS", "WITHHELD", "EngineArgs", "Input",
    "InvalidInput", "Part", "ReducedInput", "Stamp", "decode_input", "encode_input",
    "encode_reduced", "input_hash",
]  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class Stamp:
    """Where an input belongs: its op, the rule version that decided it, and when.

    ``accepted_at`` / ``accepted_block``: the chain head (unix seconds, block number)
    whose time chose ``rule_version``; ``received_at``: the gateway's wall clock.
    """

    part: Part
    merchant_id: int
    ref: str
    rule_version: int
    rule_set_hash: str
    accepted_at: int
    accepted_block: int
    received_at: datetime


@dataclass(frozen=True, kw_only=True)
class EngineArgs:
    """The engine's arguments for one event (``fx``: the table the engine is given)."""

    event: EventInput
    member: MemberSnapshot
    merchant: MerchantSnapshot
    original: OriginalOutcome | None
    fx: FxTable
    netted: int = 0


@dataclass(frozen=True)
class Input:
    """A decoded full input: its stamp, the engine's arguments, the salt."""

    stamp: Stamp
    args: EngineArgs
    salt: bytes


@dataclass(frozen=True)
class ReducedInput:
    """A decoded inviter's input: the invitee's input hash and the inviter's member id."""

    stamp: Stamp
    event_input_hash: str
    inviter: str
    salt: bytes


def input_hash(text: str) -> str:
    """keccak-256 of an input's text, 0x-hex (the leaf committed on chain)."""
    return "0x" + keccak(text.encode()).hex()


def encode_input(stamp: Stamp, args: EngineArgs, salt: bytes) -> str:
    """The canonical text of a full input (parts ``points`` and ``clawback``)."""
    if stamp.part in REDUCED_PARTS:
        raise ValueError(f"part {stamp.part!r} takes a reduced input (encode_reduced)")
    event, merchant, original = args.event, args.merchant, args.original
    head, tail = _stamp_texts(stamp, salt)
    # Keys in sorted order, the stamp's around the arguments' (see disclosure_codec).
    return (
        f'{head},"event":{event_text(event)},"format":{FORMAT},"fx":{fx_text(args.fx, event)},'
        f'"member":{member_text(args.member)},"merchant":{{"events_last_minute":'
        f'{int.__repr__(merchant.events_last_minute)},"points_issued_today":'
        f"{int.__repr__(merchant.points_issued_today)}}},{tail[0]},"
        f'"netted":{int.__repr__(args.netted)},'
        f'"original":{"null" if original is None else original_text(original)},'
        f'{tail[1]},"unit":{text_of(args.fx.unit)}}}'
    )


def encode_reduced(stamp: Stamp, event_input_hash: str, inviter: str, salt: bytes) -> str:
    """The canonical text of an inviter's ``referral`` / ``referral-clawback`` input."""
    if stamp.part not in REDUCED_PARTS:
        raise ValueError(f"part {stamp.part!r} takes a full input (encode_input)")
    head, tail = _stamp_texts(stamp, salt)
    return (
        f'{head},"event_input_hash":{text_of(event_input_hash)},"format":{FORMAT},'
        f'"inviter":{text_of(inviter)},{tail[0]},{tail[1]}}}'
    )


def decode_input(text: str) -> Input | ReducedInput:
    """The input ``text`` encodes; :class:`InvalidInput` says what is wrong with it.

    The text must be canonical: a re-encoding of what is decoded gives the same
    bytes (so its hash is the one committed), or it is refused.
    """
    try:
        body = json.loads(text)
        if not isinstance(body, dict):
            raise InvalidInput("an input is a JSON object")
        if body.get("format") != FORMAT:
            raise InvalidInput(f"unknown input format {body.get('format')!r}")
        if body.get("engine") != ENGINE:
            raise InvalidInput(f"unknown engine version {body.get('engine')!r}")
        stamp = Stamp(
            part=_part(body["part"]),
            merchant_id=int_of(body["merchant_id"]),
            ref=str(body["ref"]),
            rule_version=int_of(body["rule_version"]),
            rule_set_hash=str(body["rule_set_hash"]),
            accepted_at=int_of(body["accepted_at"]),
            accepted_block=int_of(body["accepted_block"]),
            received_at=instant_of(body["received_at"]),
        )
        salt = bytes.fromhex(str(body["salt"]).removeprefix("0x"))
        decoded: Input | ReducedInput
        if stamp.part in REDUCED_PARTS:
            decoded = ReducedInput(stamp, str(body["event_input_hash"]), str(body["inviter"]), salt)
            again = encode_reduced(stamp, decoded.event_input_hash, decoded.inviter, salt)
        else:
            args = EngineArgs(
                event=event_of(body["event"]),
                member=member_of(body["member"]),
                merchant=MerchantSnapshot(
                    merchant_id=str(stamp.merchant_id),
                    points_issued_today=int_of(body["merchant"]["points_issued_today"]),
                    events_last_minute=int_of(body["merchant"]["events_last_minute"]),
                ),
                original=original_of(body["original"]) if body["original"] is not None else None,
                fx=fx_of(body["fx"], str(body["unit"])),
                netted=int_of(body["netted"]),
            )
            decoded = Input(stamp, args, salt)
            again = encode_input(stamp, args, salt)
    except InvalidInput:
        raise
    except (KeyError, TypeError, ValueError, ArithmeticError, AttributeError, InvalidEvent) as exc:
        raise InvalidInput(f"not an issuance input: {exc}") from None
    if again != text:
        raise InvalidInput("the text is not canonical (its hash would not be the one committed)")
    return decoded


# ------------------------------------------------------------------ encoding


def _stamp_texts(stamp: Stamp, salt: bytes) -> tuple[str, tuple[str, str]]:
    """The stamp's members as canonical JSON text, in the three runs the sorted keys of
    an input put them: ``{`` to ``engine``; ``merchant_id``; ``part`` to ``salt``."""
    if len(salt) != 32:
        raise ValueError("the salt is 32 bytes")
    head = (
        f'{{"accepted_at":{int.__repr__(stamp.accepted_at)},'
        f'"accepted_block":{int.__repr__(stamp.accepted_block)},"engine":{ENGINE}'
    )
    rest = (
        f'"part":{text_of(stamp.part)},"received_at":"{instant_text(stamp.received_at)}",'
        f'"ref":{text_of(stamp.ref)},"rule_set_hash":{text_of(stamp.rule_set_hash)},'
        f'"rule_version":{int.__repr__(stamp.rule_version)},"salt":"0x{salt.hex()}"'
    )
    return head, (f'"merchant_id":{int.__repr__(stamp.merchant_id)}', rest)


def _part(value: Any) -> Part:
    if value not in PARTS:
        raise InvalidInput(f"unknown part {value!r}")
    part: Part = value
    return part
