"""The lab clock on its own: weeks named by their local Monday, DST changes found once."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import numpy as np

from fablab.domain.fairness.clock import LabClock, week_start

from .lab import BERLIN


def ts(*args: int) -> float:
    return datetime(*args, tzinfo=UTC).timestamp()


def test_a_zone_without_changes_has_one_offset() -> None:
    clock = LabClock(ZoneInfo("UTC"), ts(2026, 1, 1), ts(2027, 1, 1))
    assert clock.offsets == [0.0] and clock.local(ts(2026, 6, 1)) == ts(2026, 6, 1)


def test_the_changes_of_a_year_are_found_to_the_quarter_hour() -> None:
    clock = LabClock(BERLIN, ts(2026, 1, 1), ts(2027, 1, 1))
    assert clock.offsets == [3600.0, 7200.0, 3600.0]
    assert clock.points[1:] == [ts(2026, 3, 29, 1), ts(2026, 10, 25, 1)]


def test_the_repeated_autumn_hour_maps_to_both_wall_clock_times() -> None:
    clock = LabClock(BERLIN, ts(2026, 10, 20), ts(2026, 10, 30))
    assert clock.naive(ts(2026, 10, 25, 0, 30)) == datetime(2026, 10, 25, 2, 30)  # CEST
    assert clock.naive(ts(2026, 10, 25, 1, 30)) == datetime(2026, 10, 25, 2, 30)  # CET, an hour later


def test_weeks_start_on_the_local_monday() -> None:
    clock = LabClock(BERLIN, ts(2026, 3, 1), ts(2026, 4, 1))
    sunday_late = ts(2026, 3, 29, 21, 59)  # 23:59 CEST, Sunday
    monday_early = ts(2026, 3, 29, 22, 0)  # 00:00 CEST, Monday
    assert week_start(clock.week(sunday_late)) == date(2026, 3, 23)
    assert week_start(clock.week(monday_early)) == date(2026, 3, 30)
    times = np.array([sunday_late, monday_early, ts(2026, 3, 2)])
    assert clock.weeks(times).tolist() == [clock.week(t) for t in times.tolist()]
    assert clock.naive_array(times) == [clock.naive(t) for t in times.tolist()]


def test_week_start_of_the_epoch_week() -> None:
    assert week_start(-3) == date(1969, 12, 29)  # 1 January 1970 was a Thursday
