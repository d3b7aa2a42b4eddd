"""Rule errors: one stable code each, and the values needed to diagnose them."""

from __future__ import annotations

from datetime import date

from gateway.rules.decision import REASONS
from gateway.rules.errors import (
    ERROR_CODES,
    FxRateUnavailable,
    InvalidCurrency,
    InvalidEvent,
    InvalidRuleSet,
    RuleError,
    UnknownCurrency,
)


def test_every_rule_error_is_a_value_error_with_a_unique_code() -> None:
    assert {
        "rule_error": RuleError,
        "invalid_rule_set": InvalidRuleSet,
        "invalid_currency": InvalidCurrency,
        "unknown_currency": UnknownCurrency,
        "fx_rate_unavailable": FxRateUnavailable,
        "invalid_event": InvalidEvent,
    } == ERROR_CODES
    assert all(issubclass(cls, ValueError) for cls in ERROR_CODES.values())


def test_event_content_errors_are_decision_reasons() -> None:
    for cls in (InvalidCurrency, UnknownCurrency, FxRateUnavailable, InvalidEvent):
        assert cls.code in REASONS


def test_invalid_rule_set_lists_problems() -> None:
    error = InvalidRuleSet([{"loc": "earn_rate", "message": "Input should be greater than 0"}])

    assert error.errors == [{"loc": "earn_rate", "message": "Input should be greater than 0"}]
    assert str(error) == "invalid rule set: earn_rate: Input should be greater than 0"


def test_invalid_currency_names_the_code() -> None:
    error = InvalidCurrency("usd")

    assert (error.code, error.currency) == ("invalid_currency", "usd")
    assert str(error) == "'usd' is not an ISO 4217 currency code"


def test_unknown_currency_names_the_code_and_the_known_ones() -> None:
    error = UnknownCurrency("CHF", ["USD", "EUR"])

    assert (error.code, error.currency, error.known) == ("unknown_currency", "CHF", ("EUR", "USD"))
    assert str(error) == "no FX rate for CHF; the table knows EUR, USD"


def test_fx_rate_unavailable_names_the_day_and_the_earliest_rate() -> None:
    error = FxRateUnavailable("EUR", date(2024, 12, 31), date(2025, 1, 1))

    assert (error.code, error.currency, error.day, error.earliest) == (
        "fx_rate_unavailable",
        "EUR",
        date(2024, 12, 31),
        date(2025, 1, 1),
    )
    assert "2024-12-31" in str(error) and "2025-01-01" in str(error)


def test_invalid_event_names_the_problem() -> None:
    error = InvalidEvent("order_id must not be empty")

    assert (error.code, error.problem) == ("invalid_event", "order_id must not be empty")
