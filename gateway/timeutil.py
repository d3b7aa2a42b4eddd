"""Time helpers shared by the gateway: the current UTC time, and naive database
timestamps read back as UTC (SQLite returns them without a time zone)."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    """The current time, time-zone aware, in UTC."""
    return datetime.now(UTC)


def aware(moment: datetime) -> datetime:
    """``moment`` with UTC as its time zone when it has none (as SQLite returns it)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
