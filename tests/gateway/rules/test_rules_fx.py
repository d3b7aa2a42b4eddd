"""FX: dated rates to the network unit, and what happens without one."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from pydantic import ValidationError
from rules_factories import decide, purchase

from gateway.rules.currencies import ISO_4217, validate_currency
from gateway.rules.errors import FxRateUnavailable, InvalidCurrency, InvalidEvent, UnknownCurrency
from gateway.rules.fx import (
    DEFAULT_FX_DATE,
    DEFAULT_FX_SOURCE,
    FxRate,
    FxTable,
    default_fx_table,
)

JAN = date(2025, 1, 1)
FEB = date(2025, 2, 1)
EUR_TABLE = FxTable(
    rates=(
        FxRate(currency="EUR", rate=Decimal("1.03"), source="ECB", as_of=JAN),
        FxRate(currency="EUR", rate=Decimal("1.05"), source="ECB", as_of=FEB),
    )
)


def test_default_table_covers_the_seed_currencies_with_a_named_source_and_date() -> None:
    table = default_fx_table()

    assert table.unit == "USD"
    assert table.currencies() == {"USD", "EUR", "GBP", "CNY", "JPY", "SGD", "HKD", "AUD", "CAD"}
    assert {(r.source, r.as_of) for r in table.rates} == {(DEFAULT_FX_SOURCE, DEFAULT_FX_DATE)}


@pytest.mark.parametrize(
    ("currency", "low", "high"),
    [
        ("EUR", "0.9", "1.3"),
        ("GBP", "1.1", "1.5"),
        ("CNY", "0.12", "0.16"),
        ("JPY", "0.005", "0.01"),
        ("SGD", "0.65", "0.85"),
        ("HKD", "0.12", "0.135"),
        ("AUD", "0.55", "0.8"),
        ("CAD", "0.6", "0.85"),
    ],
)
def test_default_rates_are_plausible(currency: str, low: str, high: str) -> None:
    rate = default_fx_table().rate_at(currency, DEFAULT_FX_DATE).rate

    assert Decimal(low) < rate < Decimal(high)


def test_network_unit_converts_at_one() -> None:
    rate = EUR_TABLE.rate_at("USD", JAN)

    assert rate.rate == 1
    assert EUR_TABLE.convert(Decimal("12.34"), "USD", JAN) == Decimal("12.34")


@pytest.mark.parametrize(
    ("at", "rate"),
    [
        (datetime(2025, 1, 31, 23, 59, tzinfo=UTC), "1.03"),
        (datetime(2025, 2, 1, 0, 0, tzinfo=UTC), "1.05"),
        (datetime(2025, 2, 1, 7, 0, tzinfo=timezone(timedelta(hours=8))), "1.03"),
        (datetime(2026, 1, 1, tzinfo=UTC), "1.05"),
        (JAN, "1.03"),
    ],
    ids=["day before", "on the day", "UTC day of a +08:00 time", "long after", "a date"],
)
def test_rate_used_is_the_latest_dated_on_or_before_the_event(
    at: datetime | date, rate: str
) -> None:
    assert EUR_TABLE.rate_at("EUR", at).rate == Decimal(rate)


def test_conversion_is_exact() -> None:
    assert EUR_TABLE.convert(Decimal("0.01"), "EUR", FEB) == Decimal("0.0105")


def test_rate_before_the_first_date_is_unavailable() -> None:
    with pytest.raises(FxRateUnavailable) as missing:
        EUR_TABLE.rate_at("EUR", date(2024, 12, 31))

    assert (missing.value.currency, missing.value.day, missing.value.earliest) == (
        "EUR",
        date(2024, 12, 31),
        JAN,
    )


def test_unknown_currency_names_what_the_table_knows() -> None:
    with pytest.raises(UnknownCurrency) as unknown:
        EUR_TABLE.convert(Decimal(1), "GBP", JAN)

    assert unknown.value.code == "unknown_currency"
    assert (unknown.value.currency, unknown.value.known) == ("GBP", ("EUR", "USD"))


@pytest.mark.parametrize("code", ["usd", "EURO", "ZZZ", "", "XAU"])
def test_non_iso_4217_code_is_invalid(code: str) -> None:
    with pytest.raises(InvalidCurrency):
        EUR_TABLE.rate_at(code, JAN)


def test_iso_4217_list_holds_the_seed_currencies() -> None:
    assert {"USD", "EUR", "GBP", "CNY", "JPY", "SGD", "HKD", "AUD", "CAD"} <= ISO_4217
    assert validate_currency("CHF") == "CHF"


def test_naive_time_is_refused() -> None:
    with pytest.raises(InvalidEvent):
        EUR_TABLE.rate_at("EUR", datetime(2025, 2, 1))


@pytest.mark.parametrize(
    "rates",
    [
        [{"currency": "EUR", "rate": "0", "source": "ECB", "as_of": "2025-01-01"}],
        [{"currency": "EUR", "rate": "-1", "source": "ECB", "as_of": "2025-01-01"}],
        [{"currency": "EUR", "rate": "1", "source": "", "as_of": "2025-01-01"}],
        [{"currency": "eur", "rate": "1", "source": "ECB", "as_of": "2025-01-01"}],
        [{"currency": "USD", "rate": "2", "source": "ECB", "as_of": "2025-01-01"}],
        [{"currency": "EUR", "rate": "1", "source": "ECB", "as_of": "2025-01-01"}] * 2,
        [{"currency": "EUR", "rate": "1", "source": "ECB", "as_of": "2025-01-01", "x": 1}],
    ],
    ids=["zero", "negative", "no source", "bad code", "unit not 1", "same day twice", "extra"],
)
def test_bad_fx_table_is_refused(rates: list[dict[str, str]]) -> None:
    with pytest.raises(ValidationError):
        FxTable.model_validate({"rates": rates})


def test_cross_border_purchase_records_the_rate_and_the_network_amount() -> None:
    decision = decide(purchase(10000, "JPY"))

    assert decision.network_amount == Decimal("63.5")
    assert decision.fx_rate is not None
    assert (decision.fx_rate.currency, decision.fx_rate.as_of) == ("JPY", DEFAULT_FX_DATE)
    assert DEFAULT_FX_SOURCE in decision.breakdown[0].description


def test_purchase_before_any_rate_is_rejected() -> None:
    decision = decide(purchase(100, "EUR", at=datetime(2024, 12, 1, tzinfo=UTC)))

    assert (decision.status, decision.reason) == ("rejected", "fx_rate_unavailable")
    assert "2025-01-02" in decision.message
