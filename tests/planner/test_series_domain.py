"""Occurrences of a weekly or fortnightly series: same local wall-clock time across DST, the gap moved."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from fablab.domain.series import SeriesError, SeriesSpec, occurrences, rest_of_series

TZ = ZoneInfo("Europe/Berlin")
TODAY = date(2026, 3, 1)


def spec(**kw) -> SeriesSpec:
    base = dict(weekday=1, at=time(19, 0), minutes=120, every_weeks=1, first_day=date(2026, 3, 10),
                until=date(2026, 4, 7))
    base.update(kw)
    return SeriesSpec(**base)


def test_weekly_series_keeps_the_wall_clock_across_spring_forward() -> None:
    occs = occurrences(spec(), TZ, TODAY)
    assert [o.day for o in occs] == [date(2026, 3, 10), date(2026, 3, 17), date(2026, 3, 24), date(2026, 3, 31),
                                     date(2026, 4, 7)]
    assert {o.start.astimezone(TZ).time() for o in occs} == {time(19, 0)}
    # the UTC start moves by an hour when summer time begins (29 March)
    assert occs[2].start == datetime(2026, 3, 24, 18, 0, tzinfo=UTC)
    assert occs[3].start == datetime(2026, 3, 31, 17, 0, tzinfo=UTC)
    assert all(o.end - o.start == occs[0].end - occs[0].start for o in occs)
    assert not any(o.shifted for o in occs)


def test_fall_back_keeps_the_wall_clock_too() -> None:
    occs = occurrences(spec(weekday=5, at=time(10, 0), first_day=date(2026, 10, 17), until=date(2026, 10, 31)),
                       TZ, date(2026, 10, 1))
    assert [o.start.astimezone(TZ).strftime("%d %H:%M") for o in occs] == ["17 10:00", "24 10:00", "31 10:00"]
    assert occs[1].start.utcoffset() == occs[2].start.utcoffset()  # both UTC
    assert occs[2].start - occs[1].start == (datetime(2026, 10, 31, 9, tzinfo=UTC) - datetime(2026, 10, 24, 8,
                                                                                                  tzinfo=UTC))


def test_a_start_in_the_spring_gap_moves_forward_and_says_so() -> None:
    occs = occurrences(spec(weekday=6, at=time(2, 30), minutes=60, first_day=date(2026, 3, 22),
                            until=date(2026, 4, 5)), TZ, TODAY)
    assert [o.shifted for o in occs] == [False, True, False]
    assert occs[1].start.astimezone(TZ).strftime("%H:%M") == "03:30"
    assert occs[0].start.astimezone(TZ).strftime("%H:%M") == "02:30"


def test_fortnightly_starts_on_the_first_weekday_on_or_after_the_first_day() -> None:
    occs = occurrences(spec(weekday=3, every_weeks=2, first_day=date(2026, 3, 10), until=date(2026, 4, 30)), TZ, TODAY)
    assert [o.day for o in occs] == [date(2026, 3, 12), date(2026, 3, 26), date(2026, 4, 9), date(2026, 4, 23)]
    assert [o.index for o in occs] == [0, 1, 2, 3]


@pytest.mark.parametrize("kw,code", [
    ({"until": date(2026, 3, 1)}, "until_before_start"),
    ({"until": date(2027, 6, 1)}, "until_too_far"),
    ({"every_weeks": 3}, "bad_repeat"),
    ({"minutes": 0}, "bad_length"),
    ({"minutes": 24 * 60 + 1}, "bad_length"),
    ({"weekday": 7}, "bad_weekday"),
    ({"weekday": 0, "first_day": date(2026, 3, 10), "until": date(2026, 3, 15)}, "no_occurrence"),
])
def test_series_that_cannot_be_meant_are_refused_with_a_reason(kw, code) -> None:
    with pytest.raises(SeriesError) as err:
        occurrences(spec(**kw), TZ, TODAY)
    assert err.value.code == code and err.value.message


def test_a_year_ahead_is_the_limit() -> None:
    occs = occurrences(spec(first_day=date(2026, 3, 1), until=date(2027, 3, 2)), TZ, TODAY)
    assert len(occs) == 53 and occs[-1].day == date(2027, 3, 2)


def test_rest_of_series_is_this_and_every_later_one() -> None:
    s = [(7, datetime(2026, 3, 17, 18, tzinfo=UTC)), (5, datetime(2026, 3, 10, 18, tzinfo=UTC)),
         (9, datetime(2026, 3, 24, 18, tzinfo=UTC))]
    assert rest_of_series(s, datetime(2026, 3, 17, 18, tzinfo=UTC)) == [7, 9]
    assert rest_of_series(s, datetime(2026, 3, 10, 18, tzinfo=UTC)) == [5, 7, 9]
