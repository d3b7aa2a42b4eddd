"""Dated FX rates to the network unit, and conversion of order amounts.

A rate says how many network units (USD by default) one unit of a currency is
worth, where the figure comes from (``source``) and the day it applies from
(``as_of``).  The rate used for an event is the latest one dated on or before
the event's day (the UTC calendar day of ``occurred_at``); a currency the table
has never heard of is :class:`~gateway.rules.errors.UnknownCurrency`, one whose
rates all start later is :class:`~gateway.rules.errors.FxRateUnavailable`.

Conversion is exact: the product is not rounded (points are rounded once, by
the engine, at the end).
"""

from __future__ import annotations

import decimal
from collections import Counter
from datetime import UTC, date, datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gateway.rules.currencies import validate_currency
from gateway.rules.errors import FxRateUnavailable, InvalidEvent, UnknownCurrency

#: Unit in which points are earned and settled unless a table says otherwise.
NETWORK_UNIT = "USD"
#: Decimal precision of every conversion: wide enough to keep products exact.
PRECISION = 60


class FxRate(BaseModel):
    """``rate`` network units per unit of ``currency``, from ``source``, valid from ``as_of``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    currency: str
    rate: Decimal = Field(gt=0)
    source: str = Field(min_length=1)
    as_of: date

    @field_validator("currency")
    @classmethod
    def _iso_4217(cls, value: str) -> str:
        return validate_currency(value)


def fx_day(at: date | datetime) -> date:
    """The day whose rate applies at ``at``: a date as given, a datetime's UTC calendar day."""
    if isinstance(at, datetime):
        if at.utcoffset() is None:
            raise InvalidEvent(f"time {at.isoformat()} has no timezone")
        return at.astimezone(UTC).date()
    return at


class FxTable(BaseModel):
    """Dated rates of several currencies to ``unit`` (which itself is always worth 1)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    unit: str = NETWORK_UNIT
    rates: tuple[FxRate, ...] = ()

    @field_validator("unit")
    @classmethod
    def _unit_iso_4217(cls, value: str) -> str:
        return validate_currency(value)

    @model_validator(mode="after")
    def _consistent(self) -> FxTable:
        for rate in self.rates:
            if rate.currency == self.unit and rate.rate != 1:
                raise ValueError(
                    f"the network unit {self.unit} is worth 1 by definition, not {rate.rate}"
                )
        dated = Counter((r.currency, r.as_of) for r in self.rates)
        duplicates = sorted(f"{c} {d.isoformat()}" for (c, d), n in dated.items() if n > 1)
        if duplicates:
            raise ValueError(f"more than one rate for the same day: {', '.join(duplicates)}")
        return self

    def currencies(self) -> frozenset[str]:
        """Every currency the table converts (the unit included)."""
        return frozenset({self.unit, *(r.currency for r in self.rates)})

    def rate_at(self, currency: str, at: date | datetime) -> FxRate:
        """The rate of ``currency`` dated on or before ``at``'s day (see :func:`fx_day`)."""
        validate_currency(currency)
        day = fx_day(at)
        if currency == self.unit:
            return FxRate(currency=currency, rate=Decimal(1), source="network unit", as_of=day)
        candidates = [r for r in self.rates if r.currency == currency]
        if not candidates:
            raise UnknownCurrency(currency, sorted(self.currencies()))
        usable = [r for r in candidates if r.as_of <= day]
        if not usable:
            raise FxRateUnavailable(currency, day, min(r.as_of for r in candidates))
        return max(usable, key=lambda r: r.as_of)

    def convert(self, amount: Decimal, currency: str, at: date | datetime) -> Decimal:
        """``amount`` of ``currency`` in network units at the rate applying at ``at`` (exact)."""
        rate = self.rate_at(currency, at)
        with decimal.localcontext(prec=PRECISION):
            return amount * rate.rate


#: Source named on every rate of :func:`default_fx_table`.
DEFAULT_FX_SOURCE = "pointsnet seed table: indicative mid-market rates, not for settlement"
#: Day the rates of :func:`default_fx_table` apply from.
DEFAULT_FX_DATE = date(2025, 1, 2)
_DEFAULT_RATES: dict[str, str] = {
    "EUR": "1.0350",
    "GBP": "1.2450",
    "CNY": "0.1370",
    "JPY": "0.006350",
    "SGD": "0.7330",
    "HKD": "0.1287",
    "AUD": "0.6210",
    "CAD": "0.6950",
}


def default_fx_table() -> FxTable:
    """USD-based table for USD, EUR, GBP, CNY, JPY, SGD, HKD, AUD and CAD (seed, indicative)."""
    return FxTable(
        unit=NETWORK_UNIT,
        rates=tuple(
            FxRate(
                currency=code, rate=Decimal(rate), source=DEFAULT_FX_SOURCE, as_of=DEFAULT_FX_DATE
            )
            for code, rate in _DEFAULT_RATES.items()
        ),
    )
