"""Errors raised by the rules engine.

Every error derives from :class:`RuleError` (a :class:`ValueError`: each one
means that some input, a rule set, an FX table or an event, is not acceptable)
and carries a stable machine-readable ``code`` plus the values needed to
diagnose it.  :data:`ERROR_CODES` is the table of codes the gateway may map to
its error body.

:func:`gateway.rules.engine.evaluate` does not raise these for problems of one
event's content (an unknown currency, a refund of an unknown order): it returns
a rejected :class:`~gateway.rules.decision.Decision` whose ``reason`` is the
error's code.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any, ClassVar


class RuleError(ValueError):
    """Root of every error raised by ``gateway.rules``."""

    code: ClassVar[str] = "rule_error"


class InvalidRuleSet(RuleError):
    """A rule set failed validation; ``errors`` lists each problem (loc, message)."""

    code: ClassVar[str] = "invalid_rule_set"

    def __init__(self, errors: Sequence[dict[str, Any]]) -> None:
        self.errors = [dict(e) for e in errors]
        problems = "; ".join(f"{e.get('loc', '')}: {e.get('message', '')}" for e in self.errors)
        super().__init__(f"invalid rule set: {problems}")


class InvalidCurrency(RuleError):
    """A currency code is not an ISO 4217 code (three upper-case letters, in the list)."""

    code: ClassVar[str] = "invalid_currency"

    def __init__(self, currency: str) -> None:
        super().__init__(f"{currency!r} is not an ISO 4217 currency code")
        self.currency = currency


class UnknownCurrency(RuleError):
    """A valid ISO 4217 currency for which the FX table has no rate at all."""

    code: ClassVar[str] = "unknown_currency"

    def __init__(self, currency: str, known: Sequence[str]) -> None:
        super().__init__(
            f"no FX rate for {currency}; the table knows {', '.join(sorted(known)) or 'nothing'}"
        )
        self.currency = currency
        self.known = tuple(sorted(known))


class FxRateUnavailable(RuleError):
    """The FX table knows the currency but has no rate dated on or before the day asked."""

    code: ClassVar[str] = "fx_rate_unavailable"

    def __init__(self, currency: str, day: date, earliest: date) -> None:
        super().__init__(
            f"no {currency} rate dated on or before {day.isoformat()}; "
            f"the earliest is dated {earliest.isoformat()}"
        )
        self.currency = currency
        self.day = day
        self.earliest = earliest


class InvalidEvent(RuleError):
    """An event input is structurally wrong (naive time, purchase without an order...)."""

    code: ClassVar[str] = "invalid_event"

    def __init__(self, problem: str) -> None:
        super().__init__(f"invalid event: {problem}")
        self.problem = problem


#: Every error code of this package, with the error class raising it.
ERROR_CODES: dict[str, type[RuleError]] = {
    cls.code: cls
    for cls in (
        RuleError,
        InvalidRuleSet,
        InvalidCurrency,
        UnknownCurrency,
        FxRateUnavailable,
        InvalidEvent,
    )
}
