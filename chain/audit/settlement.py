"""Settlement: per merchant, the points issued, redeemed and clawed back over a range,
each valued at the point value published when it happened, and who owes whom."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from chain.records import (
    Clawback,
    IssuanceBatch,
    MerchantChange,
    PointValueChange,
    Record,
    Redemption,
    iso_time,
)


@dataclass(frozen=True)
class MerchantSettlement:
    """A merchant's points and their value (micro-units of ``currency``) over a range."""

    merchant: int
    name: str
    issued: int
    redeemed: int
    clawed_back: int
    issued_value: int
    redeemed_value: int
    clawed_back_value: int

    @property
    def net(self) -> int:
        """Points it put into circulation in the range and that are still out."""
        return self.issued - self.redeemed - self.clawed_back

    @property
    def net_value(self) -> int:
        return self.issued_value - self.redeemed_value - self.clawed_back_value

    @property
    def position(self) -> str:
        """Issued more than was redeemed at it: it owes the network; the reverse: it is owed."""
        if self.net_value > 0:
            return "owes the network"
        if self.net_value < 0:
            return "owed by the network"
        return "even"

    def to_dict(self, currency: str) -> dict[str, Any]:
        return {
            "merchant": self.merchant,
            "name": self.name,
            "issued": self.issued,
            "redeemed": self.redeemed,
            "clawed_back": self.clawed_back,
            "net": self.net,
            "issued_value_micros": self.issued_value,
            "redeemed_value_micros": self.redeemed_value,
            "clawed_back_value_micros": self.clawed_back_value,
            "net_value_micros": self.net_value,
            "position": self.position,
            "amount": format_money(abs(self.net_value), currency),
        }


@dataclass(frozen=True)
class SettlementReport:
    from_block: int
    to_block: int
    from_time: int | None
    to_time: int | None
    currency: str
    point_value_micros: int  # in force at the end of the range
    merchants: list[MerchantSettlement]

    @property
    def outstanding(self) -> int:
        """Points issued in the range and neither redeemed nor clawed back (Σ net)."""
        return sum(m.net for m in self.merchants)

    def to_dict(self) -> dict[str, Any]:
        return {
            "from_block": self.from_block,
            "to_block": self.to_block,
            "from_time": iso_time(self.from_time) if self.from_time is not None else None,
            "to_time": iso_time(self.to_time) if self.to_time is not None else None,
            "currency": self.currency,
            "point_value_micros": self.point_value_micros,
            "outstanding": self.outstanding,
            "merchants": [m.to_dict(self.currency) for m in self.merchants],
        }


def format_money(micros: int, currency: str) -> str:
    """``12345678`` micro-units -> ``"USD 12.345678"`` trimmed to at least cents."""
    sign = "-" if micros < 0 else ""
    whole, frac = divmod(abs(micros), 1_000_000)
    digits = f"{frac:06d}".rstrip("0").ljust(2, "0")
    return f"{currency} {sign}{whole:,}.{digits}"


def settlement_report(
    records: Sequence[Record], from_block: int, to_block: int
) -> SettlementReport:
    """Per merchant issued / redeemed / clawed back / net in ``from_block .. to_block``,
    each event valued at the point value published when it happened."""
    value, currency = 0, ""
    names: dict[int, str] = {}
    rows: dict[int, list[int]] = {}
    first_time: int | None = None
    last_time: int | None = None
    for r in records:
        if r.block > to_block:
            break
        if isinstance(r, PointValueChange):
            value, currency = r.micro_units, r.currency
            continue
        if isinstance(r, MerchantChange) and r.kind == "merchant_added":
            names[r.merchant] = r.name or ""
        if r.block < from_block:
            continue
        if first_time is None:
            first_time = r.time
        last_time = r.time
        if isinstance(r, IssuanceBatch):
            row = rows.setdefault(r.merchant, [0] * 6)
            row[0] += r.amount
            row[3] += r.amount * value
        elif isinstance(r, Redemption):
            row = rows.setdefault(r.merchant, [0] * 6)
            row[1] += r.amount
            row[4] += r.amount * value
        elif isinstance(r, Clawback):
            row = rows.setdefault(r.merchant, [0] * 6)
            row[2] += r.amount
            row[5] += r.amount * value
    for merchant in names:
        rows.setdefault(merchant, [0] * 6)
    merchants = [MerchantSettlement(m, names.get(m, ""), *rows[m]) for m in sorted(rows)]
    return SettlementReport(from_block, to_block, first_time, last_time, currency, value, merchants)
