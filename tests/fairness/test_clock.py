"""The review's fast paths against the domain's reference functions: the lab clock across DST, the hour-of-week
grid, and opening hours converted from a policy."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from fablab.domain import capacity as cap
from fablab.domain import policy as pol
from fablab.domain.fairness.clock import LabClock
from fablab.domain.fairness.heatmap import add_by_hour_of_week
from fablab.domain.fairness.opening import opening_of

BERLIN = ZoneInfo("Europe/Berlin")


def _ts(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> float:
    return datetime(y, mo, d, h, mi, tzinfo=UTC).timestamp()


@pytest.mark.parametrize("tz", [BERLIN, ZoneInfo("America/New_York"), ZoneInfo("Asia/Kolkata"), ZoneInfo("UTC")])
def test_lab_clock_matches_zoneinfo_across_a_year(tz) -> None:
    lo, hi = _ts(2026, 1, 1), _ts(2027, 1, 1)
    clock = LabClock(tz, lo, hi)
    rng = random.Random(3)
    samples = [rng.uniform(lo, hi) for _ in range(2000)]
    samples += [_ts(2026, 3, 29, 0, 59), _ts(2026, 3, 29, 1, 0), _ts(2026, 10, 25, 0, 59), _ts(2026, 10, 25, 1, 0)]
    for ts in samples:
        expected = datetime.fromtimestamp(ts, tz).replace(tzinfo=None)
        assert clock.naive(ts) == expected
        monday = expected.date() - timedelta(days=expected.weekday())
        assert date(1970, 1, 1) + timedelta(days=clock.week(ts)) == monday


def test_hour_of_week_grid_equals_the_capacity_model() -> None:
    lo, hi = _ts(2026, 3, 20), _ts(2026, 4, 10)  # across the spring DST change
    clock = LabClock(BERLIN, lo, hi)
    rng = random.Random(5)
    spans = []
    for _ in range(300):
        s = rng.uniform(lo, hi - 86400)
        spans.append((s, s + rng.uniform(600, 6 * 3600)))
    fast = [[0.0] * 24 for _ in range(7)]
    add_by_hour_of_week(fast, spans, clock)
    records = [cap.BookedInterval(1, clock.naive(s), clock.naive(e)) for s, e in spans]
    ref = cap.hour_of_week_matrix(records, 0, cap.OpeningHours({}), date(2026, 3, 20), date(2026, 3, 20))
    for d in range(7):
        for h in range(24):
            assert fast[d][h] == pytest.approx(ref.demand[d][h], abs=1e-6)


def test_opening_hours_from_a_policy_split_night_ranges() -> None:
    policy = pol.BookingPolicy(opening_hours=pol.combine_week_hours(
        pol.week_hours([("10:00", "22:00")], range(5)), pol.week_hours([("20:00", "02:00")], [5]),
        pol.week_hours([("00:00", "24:00")], [6])))
    o = opening_of(policy)
    assert o.weekly[0] == ((10.0, 22.0),) and o.weekly[5] == ((20.0, 24.0),)
    assert o.weekly[6] == ((0.0, 24.0),)  # Saturday night's 00-02 merges into Sunday's whole day
    assert o.contains(datetime(2026, 3, 7, 21), datetime(2026, 3, 7, 23, 30))  # a Saturday evening
