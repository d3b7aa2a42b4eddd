"""Programme days: the calendar day an event falls on under a rule set.

Daily caps, check-in streaks and the birthday month use the calendar day at
the rule set's fixed ``utc_offset_minutes`` (no time-zone database: the engine
reads no files).  The gateway counts "today" with :func:`programme_day` too, so
both sides agree on where a day ends.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING

from gateway.rules.errors import InvalidEvent

if TYPE_CHECKING:
    from gateway.rules.model import RuleSet


def programme_day(rules: RuleSet, at: datetime) -> date:
    """The calendar day of ``at`` (aware) at ``rules.utc_offset_minutes`` from UTC."""
    if at.utcoffset() is None:
        raise InvalidEvent(f"time {at.isoformat()} has no timezone")
    offset = timezone(timedelta(minutes=rules.utc_offset_minutes))
    return at.astimezone(offset).date()


def consecutive_days_ending(day: date, days: set[date]) -> int:
    """How many consecutive days end at ``day`` if ``day`` is added to ``days``."""
    count = 1
    previous = day - timedelta(days=1)
    while previous in days:
        count += 1
        previous -= timedelta(days=1)
    return count
