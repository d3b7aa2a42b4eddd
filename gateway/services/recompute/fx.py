"""The auditor's FX rates beside the ones the inputs carry (``recompute --fx-table FILE``).

An input of a purchase in a currency other than the network unit carries the one rate
the gateway converted it at, with its source and the day it applies from
(:func:`gateway.rules.disclosure_codec.fx_text`), and it is recomputed with that rate: it
is part of what was committed on chain, and the check is that the published rules were
applied to what the gateway declared.  Whether the rate was a fair one is the auditor's
judgement: with a table of the rates they trust (the gateway's format,
:class:`gateway.rules.fx.FxTable` as JSON: ``{"unit": "USD", "rates": [{"currency":
"EUR", "rate": "1.0350", "source": "...", "as_of": "2025-01-02"}]}``), each input whose
rate is not the table's for that currency on the event's day (the latest one dated on or
before it), whose unit is not the table's, or whose currency the table has no rate for
that day, is named ``fx_rate_differs``, with what the engine would give at the auditor's
rate.  A notice by default (a different source quoting another rate is no proof of a
wrong issuance); ``--strict-fx`` makes it an error.  Only the rate is compared: the
same figure under another source or date is no difference.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from gateway.rules.disclosure import EngineArgs
from gateway.rules.engine import evaluate
from gateway.rules.errors import RuleError
from gateway.rules.fx import FxTable, fx_day
from gateway.rules.model import RuleSet

CODE = "fx_rate_differs"


class FxTableError(ValueError):
    """The auditor's table does not read (the recomputation cannot run)."""


def load_fx_table(path: Path) -> FxTable:
    """The auditor's table from a JSON file; :class:`FxTableError` says what is wrong."""
    try:
        return FxTable.model_validate_json(path.read_bytes())
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'table'}: {e['msg']}" for e in exc.errors()
        )
        raise FxTableError(f"--fx-table {path} is not an FX table: {problems}") from None


def rate_difference(args: EngineArgs, table: FxTable, rules: RuleSet) -> str | None:
    """Why the input's rate is not the auditor's (None: the same, or no rate used)."""
    order = args.event.order
    used = args.fx.rates[0] if args.fx.rates else None
    if order is None or used is None:
        return None  # no conversion: nothing to compare
    if args.fx.unit != table.unit:
        return f"the input converts to {args.fx.unit}; the auditor's table to {table.unit}"
    day = fx_day(args.event.occurred_at).isoformat()
    try:
        trusted = table.rate_at(order.currency, args.event.occurred_at)
    except RuleError as exc:
        return f"the auditor's table has no {order.currency} rate for {day} ({exc})"
    if trusted.rate == used.rate:
        return None
    said = (
        f"{order.currency} converted at {used.rate} ({used.source}, as of {used.as_of}); "
        f"the auditor's table gives {trusted.rate} ({trusted.source}, as of {trusted.as_of}) "
        f"for {day}"
    )
    try:
        decision = evaluate(rules, table, args.event, args.member, args.merchant, args.original)
    except Exception as exc:  # the engine refuses the auditor's table: said, not raised
        return f"{said}; the engine does not run at that rate: {exc}"
    return f"{said}: at that rate the engine gives {decision.points - args.netted:,} points"
