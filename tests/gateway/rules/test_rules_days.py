"""Programme days (:mod:`gateway.rules.days`): where a day starts, at any fixed offset."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from rules_factories import rules

from gateway.rules.days import day_start_at, programme_day, programme_day_start
from gateway.rules.errors import InvalidEvent

OFFSETS = [0, 480, -300, 345, -570, 840, -720]


@pytest.mark.parametrize("offset", OFFSETS)
def test_a_programme_day_starts_at_its_local_midnight(offset: int) -> None:
    programme = rules(utc_offset_minutes=offset)
    start = programme_day_start(programme, date(2026, 12, 1))
    assert start.tzinfo == UTC
    assert start == datetime(2026, 12, 1, tzinfo=timezone(timedelta(minutes=offset)))
    assert programme_day(programme, start) == date(2026, 12, 1)
    assert programme_day(programme, start - timedelta(microseconds=1)) == date(2026, 11, 30)


@pytest.mark.parametrize("offset", OFFSETS)
def test_the_day_an_instant_falls_on_starts_at_or_before_it(offset: int) -> None:
    programme = rules(utc_offset_minutes=offset)
    moment = datetime(2026, 11, 30, 16, 30, tzinfo=UTC)
    for step in range(0, 48 * 60, 37):  # two days, minute by 37 minutes
        now = moment + timedelta(minutes=step)
        start = day_start_at(programme, now)
        assert start <= now < start + timedelta(days=1)
        assert programme_day(programme, start) == programme_day(programme, now)


def test_one_utc_instant_is_two_programme_days() -> None:
    at = datetime(2026, 11, 30, 16, 30, tzinfo=UTC)
    assert programme_day(rules(utc_offset_minutes=480), at) == date(2026, 12, 1)
    assert programme_day(rules(utc_offset_minutes=-300), at) == date(2026, 11, 30)


def test_a_time_without_a_zone_is_refused() -> None:
    with pytest.raises(InvalidEvent):
        programme_day(rules(), datetime(2026, 11, 30, 16, 30))
