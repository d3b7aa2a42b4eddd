"""Programme days: the calendar day an event falls on under a rule set.

One definition, used by the engine and by every count the gateway keeps per
day.  A programme day is the calendar day at the rule set's fixed
``utc_offset_minutes`` (no time-zone database: the engine reads no files).

- The engine: daily caps (shares, reviews), check-in days and streaks, the
  birthday month (:func:`programme_day` of the event's ``occurred_at``).
- The gateway: the members' counter buckets (:func:`programme_day` of
  ``occurred_at``, at the offset of the version that decided the event), and
  the "per day" velocity limits (``member_points_per_day``,
  ``merchant_points_per_day``), which count what was accepted since
  :func:`day_start_at` of the gateway's clock at the in-effect version's offset.
  The velocity limits per hour and per minute stay rolling windows.

A version that changes ``utc_offset_minutes`` re-buckets new events only: on
the day of the switch, the hours between the old and the new midnight may count
in both days.  Past buckets are never moved.

Not programme days, on purpose: FX rates are dated by the UTC day
(:func:`gateway.rules.fx.fx_day`: rates are network-wide, not a merchant's),
and the network-wide audit chart counts UTC days.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import TYPE_CHECKING

from gateway.rules.errors import InvalidEvent

if TYPE_CHECKING:
    from gateway.rules.model import RuleSet


def programme_offset(rules: RuleSet) -> timezone:
    """The fixed UTC offset the programme's days are cut at."""
    return timezone(timedelta(minutes=rules.utc_offset_minutes))


def programme_day(rules: RuleSet, at: datetime) -> date:
    """The calendar day of ``at`` (aware) at ``rules.utc_offset_minutes`` from UTC."""
    if at.utcoffset() is None:
        raise InvalidEvent(f"time {at.isoformat()} has no timezone")
    return at.astimezone(programme_offset(rules)).date()


def programme_day_start(rules: RuleSet, day: date) -> datetime:
    """The instant (aware, in UTC) the programme day ``day`` starts: its local midnight."""
    return datetime.combine(day, time(), tzinfo=programme_offset(rules)).astimezone(UTC)


def day_start_at(rules: RuleSet, now: datetime) -> datetime:
    """The start (aware, in UTC) of the programme day ``now`` falls on."""
    return programme_day_start(rules, programme_day(rules, now))


def consecutive_days_ending(day: date, days: set[date]) -> int:
    """How many consecutive days end at ``day`` if ``day`` is added to ``days``."""
    count = 1
    previous = day - timedelta(days=1)
    while previous in days:
        count += 1
        previous -= timedelta(days=1)
    return count
