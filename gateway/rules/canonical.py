"""Canonical JSON: one text for one value, whatever the spelling of the input.

Keys sorted, no whitespace, ASCII only, Decimals as plain strings without
trailing zeros (``"1.10"`` and ``"1.1"`` are one value, zero is ``"0"``),
datetimes and dates in ISO 8601 (callers pass instants in UTC), tuples as lists.
Rule sets (:func:`gateway.rules.model.canonical_json`) and issuance inputs
(:mod:`gateway.rules.disclosure`) are both hashed over this text, so anyone
re-dumping the parsed JSON gets the same bytes and the same keccak-256.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any


def decimal_text(value: Decimal) -> str:
    """A Decimal's canonical text: plain notation, no trailing zeros, ``"0"`` for zero."""
    return "0" if value == 0 else format(value.normalize(), "f")


def instant_text(value: datetime) -> str:
    """An aware datetime as ISO 8601 in UTC (``...+00:00``), as rule sets write them."""
    return value.astimezone(UTC).isoformat()


def canonical_value(value: Any) -> Any:
    """``value`` with Decimals, datetimes, dates and tuples in their canonical JSON form."""
    if isinstance(value, Decimal):
        return decimal_text(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(key): canonical_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [canonical_value(item) for item in value]
    return value


def canonical_dumps(value: Any) -> str:
    """The canonical JSON text of ``value`` (see the module docstring)."""
    return plain_dumps(canonical_value(value))


def plain_dumps(value: Any) -> str:
    """The canonical JSON text of a value already made of JSON types only (strings,
    ints, bools, None, lists, dicts): what :func:`canonical_dumps` writes, without
    walking the value first.  Issuance inputs write this same text directly, field by
    field (:mod:`gateway.rules.disclosure_codec`)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
