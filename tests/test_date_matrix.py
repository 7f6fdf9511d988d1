"""The date matrix itself (tests/support/clock.py): each marked test runs once per clock, at that clock."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime

import pytest

from fablab.models.types import utcnow
from fablab.services import bookings as booking_service
from tests.support import clock


@pytest.mark.dates  # runs once per frozen clock
def test_the_clock_is_the_one_the_id_names(request: pytest.FixtureRequest, _date_clock: str | None,
                                           make_member) -> None:
    assert _date_clock in clock.CLOCKS
    if clock.env_clock() is None:  # FABLAB_TEST_CLOCK runs every test once, unparametrized
        assert request.node.name.endswith(f"[{clock.clock_id(_date_clock)}]")
    instant = clock.CLOCKS[_date_clock]
    if instant is None:  # today: the real clock
        assert utcnow().year >= 2026
        return
    # Ticking from the instant: every way the code reads the clock agrees, and fixtures were made under it.
    for now in (utcnow(), datetime.now(UTC), datetime.fromtimestamp(time.time(), UTC)):
        assert 0 <= (now - instant).total_seconds() < 120
    assert date.today() == instant.astimezone(UTC).date()  # the process's local zone stays UTC
    member = make_member()
    assert 0 <= (member.created_at - instant).total_seconds() < 120
    lab_now = utcnow().astimezone(booking_service.lab_tz())
    assert (lab_now.date(), lab_now.hour) == (instant.date(), instant.hour)


def test_the_matrix_covers_dst_both_ways_a_year_end_a_sunday_and_today() -> None:
    frozen = {n: t for n, t in clock.CLOCKS.items() if t is not None}
    offsets = {t.utcoffset().total_seconds() / 3600 for t in frozen.values()}
    assert offsets == {1.0, 2.0}
    assert frozen["dst-spring-0130"].utcoffset() != frozen["dst-spring-0330"].utcoffset()
    assert frozen["dst-fall"].fold == 1 and frozen["dst-fall"].astimezone(UTC).hour == 1
    assert frozen["year-end"].date() == date(2026, 12, 31)
    assert frozen["new-year"].date() != frozen["new-year"].astimezone(UTC).date()
    assert frozen["sunday"].isoweekday() == 7 and frozen["sunday"].hour == 23
    assert clock.CLOCKS[clock.TODAY] is None
