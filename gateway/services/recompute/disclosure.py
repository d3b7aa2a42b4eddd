"""Disclosure lines (format 1, :mod:`gateway.services.disclosures`) read back, strictly.

A line that is not JSON, not format 1 or lacks a field is a ``bad_line`` finding, never
an exception; lines are deduplicated by ``ref`` (the same op disclosed twice, e.g. by
the merchant and by the member, counts once; two different lines for one ref are a
``bad_line``)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

#: The line format this reader knows.
DISCLOSURE = 1
KINDS = ("issue", "clawback")


@dataclass(frozen=True)
class DisclosureLine:
    line_no: int
    hub: str  # 0x, lower-case
    merchant_id: int
    event_id: str | None
    kind: str  # issue / clawback
    part: str | None
    ref: str  # 0x, lower-case
    seq: int
    tx_hash: str  # 0x, lower-case
    block: int
    amount: int
    input: str | None
    input_hash: str | None
    proof: tuple[str, ...]
    root: str | None
    erased: bool
    reason: str | None


@dataclass(frozen=True)
class BadLine:
    line_no: int
    message: str


def _hex(value: Any, size: int, name: str) -> str:
    if not (isinstance(value, str) and value.startswith("0x") and len(value) == 2 + 2 * size):
        raise ValueError(f"{name} is not 0x and {size} bytes of hex")
    bytes.fromhex(value[2:])
    return value.lower()


def _int(value: Any, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{name} is not a non-negative integer")
    return value


def parse_line(line_no: int, text: str) -> DisclosureLine:
    """One line; ValueError says what is wrong with it."""
    body = json.loads(text)
    if not isinstance(body, dict):
        raise ValueError("a line is a JSON object")
    if body.get("disclosure") != DISCLOSURE:
        raise ValueError(f"unknown disclosure format {body.get('disclosure')!r}")
    kind = body.get("kind")
    if kind not in KINDS:
        raise ValueError(f"kind {kind!r} is not issue or clawback")
    text_in = body.get("input")
    if text_in is not None and not isinstance(text_in, str):
        raise ValueError("input is not a text")
    proof = body.get("proof", [])
    if not isinstance(proof, list):
        raise ValueError("proof is not a list")
    input_hash = body.get("input_hash")
    root = body.get("root")
    return DisclosureLine(
        line_no=line_no,
        hub=_hex(body.get("hub"), 20, "hub"),
        merchant_id=_int(body.get("merchant_id"), "merchant_id"),
        event_id=str(body["event_id"]) if body.get("event_id") is not None else None,
        kind=kind,
        part=str(body["part"]) if body.get("part") is not None else None,
        ref=_hex(body.get("ref"), 32, "ref"),
        seq=_int(body.get("seq"), "seq"),
        tx_hash=_hex(body.get("tx_hash"), 32, "tx_hash"),
        block=_int(body.get("block"), "block"),
        amount=_int(body.get("amount"), "amount"),
        input=text_in,
        input_hash=_hex(input_hash, 32, "input_hash") if input_hash is not None else None,
        proof=tuple(_hex(p, 32, "a proof node") for p in proof),
        root=_hex(root, 32, "root") if root is not None else None,
        erased=body.get("erased") is True,
        reason=str(body["reason"]) if body.get("reason") is not None else None,
    )


def parse_disclosures(lines: Iterable[str]) -> tuple[list[DisclosureLine], list[BadLine]]:
    """Every readable line (deduplicated by ref) and every unreadable one."""
    found: dict[str, DisclosureLine] = {}
    raw: dict[str, str] = {}
    bad: list[BadLine] = []
    for line_no, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            line = parse_line(line_no, text)
        except (ValueError, KeyError, TypeError) as exc:
            bad.append(BadLine(line_no, str(exc)))
            continue
        canonical = json.dumps(json.loads(text), sort_keys=True)
        if line.ref in found:
            if raw[line.ref] != canonical:
                bad.append(BadLine(line_no, f"ref {line.ref} was disclosed with other content"))
            continue
        found[line.ref] = line
        raw[line.ref] = canonical
    return list(found.values()), bad
