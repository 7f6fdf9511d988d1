"""When timed notices are due (fablab/domain/notice_timing.py): pure, across DST and the year end."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from fablab.domain import notice_timing as t

BERLIN = ZoneInfo("Europe/Berlin")
START = datetime(2026, 3, 29, 12, 0, tzinfo=UTC)
LONG_AGO = START - timedelta(days=10)
MIN = timedelta(minutes=1)


def test_reminder_at_the_lead_time_until_the_start() -> None:
    assert t.reminder_at(START, 60) == START - timedelta(hours=1)
    assert t.reminder_at(START, 0) is None
    assert t.reminder_at(START, 10**6) == START - t.MAX_REMINDER_LEAD  # a silly lead is capped
    assert not t.reminder_due(START, LONG_AGO, 60, START - timedelta(minutes=61))
    assert t.reminder_due(START, LONG_AGO, 60, START - timedelta(minutes=60))
    assert t.reminder_due(START, LONG_AGO, 60, START - MIN)  # late (a worker was down) but still useful
    assert not t.reminder_due(START, LONG_AGO, 60, START)  # started: never
    assert not t.reminder_due(START, LONG_AGO, 60, START + timedelta(days=1))
    assert not t.reminder_due(START, LONG_AGO, 0, START - MIN)  # the member wants none


def test_a_booking_made_inside_its_lead_time_gets_no_reminder() -> None:
    made = START - timedelta(minutes=20)
    assert not t.reminder_due(START, made, 60, START - timedelta(minutes=10))
    assert t.reminder_due(START, made, 15, START - timedelta(minutes=10))


def test_naive_times_are_a_programming_error() -> None:
    with pytest.raises(ValueError):
        t.reminder_due(START.replace(tzinfo=None), LONG_AGO, 60, START)


def test_checkin_announcement_while_the_window_is_open_only() -> None:
    w = t.CheckinWindow(START - timedelta(minutes=15), START + timedelta(minutes=15))
    assert not t.checkin_announce_due(w, w.opens - MIN)
    assert t.checkin_announce_due(w, w.opens)
    assert t.checkin_announce_due(w, w.releases - MIN)
    assert not t.checkin_announce_due(w, w.releases)


@pytest.mark.parametrize(("utc", "wall"), [
    (datetime(2026, 3, 29, 0, 50, tzinfo=UTC), "01:50"),  # CET, before the gap
    (datetime(2026, 3, 29, 1, 20, tzinfo=UTC), "03:20"),  # CEST: 02:20 does not exist that night
    (datetime(2026, 10, 25, 0, 15, tzinfo=UTC), "02:15"),  # first pass of the repeated hour (CEST)
    (datetime(2026, 10, 25, 1, 15, tzinfo=UTC), "02:15"),  # second pass (CET)
    (datetime(2026, 10, 25, 2, 15, tzinfo=UTC), "03:15"),
    (datetime(2026, 12, 31, 23, 15, tzinfo=UTC), "00:15"),  # already 2027 in the lab
])
def test_the_release_time_is_the_lab_wall_clock(utc: datetime, wall: str) -> None:
    assert t.local_hhmm(utc, BERLIN) == wall


def test_stamp_is_one_key_per_instant_whatever_the_zone() -> None:
    a = datetime(2026, 10, 25, 2, 30, tzinfo=BERLIN, fold=1)
    assert t.stamp(a) == t.stamp(a.astimezone(UTC)) == "2026-10-25T01:30:00+00:00"
    assert t.stamp(datetime(2026, 10, 25, 2, 30, tzinfo=BERLIN, fold=0)) != t.stamp(a)


def test_qualification_expiring_within_30_days_then_expired_for_a_month() -> None:
    now = datetime(2026, 12, 31, 22, 30, tzinfo=UTC)
    assert t.qualification_notice(None, now) is None
    assert t.qualification_notice(now + timedelta(days=31), now) is None
    assert t.qualification_notice(now + timedelta(days=30), now) == "qualification_expiring"
    assert t.qualification_notice(now + MIN, now) == "qualification_expiring"
    assert t.qualification_notice(now, now) == "qualification_expired"
    assert t.qualification_notice(now - timedelta(days=29), now) == "qualification_expired"
    assert t.qualification_notice(now - timedelta(days=31), now) is None  # history, not news
    # The key's date is the lab's: 23:30 UTC on 31 Dec is 1 Jan in Berlin.
    assert t.expiry_day(datetime(2026, 12, 31, 23, 30, tzinfo=UTC), BERLIN) == date(2027, 1, 1)


def test_offline_for_more_than_ten_minutes() -> None:
    since = START
    assert not t.offline_alert_due(since, since + timedelta(minutes=9))
    assert not t.offline_alert_due(since, since + timedelta(minutes=10))
    assert t.offline_alert_due(since, since + timedelta(minutes=10, seconds=1))
    assert t.offline_alert_due(since, since + timedelta(days=6))
    assert not t.offline_alert_due(since, since + timedelta(days=8))


@pytest.mark.parametrize(("day", "key"), [
    (date(2026, 12, 28), "2026-W53"),  # 2026 has 53 ISO weeks
    (date(2027, 1, 3), "2026-W53"),  # a Sunday of the new year still in week 53
    (date(2027, 1, 4), "2027-W01"),
    (date(2025, 12, 29), "2026-W01"),  # a Monday of the old year in the new year's week 1
])
def test_iso_week_keys_across_the_year_end(day: date, key: str) -> None:
    assert t.iso_week_key(day) == key


def test_digest_week_is_due_at_monday_0800_local_across_dst() -> None:
    # The Monday after spring forward: 08:00 CEST is 06:00 UTC; the week it covers is 167 hours long.
    after = t.digest_week(datetime(2026, 3, 30, 9, 0, tzinfo=UTC), BERLIN)
    assert after.key == "2026-W14" and after.sent_at == datetime(2026, 3, 30, 6, 0, tzinfo=UTC)
    assert (after.first_day, after.last_day) == (date(2026, 3, 23), date(2026, 3, 29))
    assert after.end - after.start == timedelta(hours=167)
    # The Monday before: 08:00 CET is 07:00 UTC.
    before = t.digest_week(datetime(2026, 3, 23, 7, 0, tzinfo=UTC), BERLIN)
    assert before.sent_at == datetime(2026, 3, 23, 7, 0, tzinfo=UTC) and before.key == "2026-W13"
    # After fall back the week before was 169 hours long.
    fall = t.digest_week(datetime(2026, 10, 26, 7, 0, tzinfo=UTC), BERLIN)
    assert fall.end - fall.start == timedelta(hours=169) and fall.sent_at.hour == 7
    assert t.digest_due(datetime(2026, 3, 30, 5, 59, tzinfo=UTC), BERLIN) is None
    assert t.digest_due(datetime(2026, 3, 30, 6, 0, tzinfo=UTC), BERLIN) == after
    assert t.digest_due(datetime(2026, 3, 31, 5, 59, tzinfo=UTC), BERLIN) == after  # caught up for a day
    assert t.digest_due(datetime(2026, 3, 31, 6, 0, tzinfo=UTC), BERLIN) is None  # then skipped, not days late
    assert t.digest_due(datetime(2026, 4, 5, 21, 0, tzinfo=UTC), BERLIN) is None  # Sunday night


def test_digest_week_on_a_sunday_night_is_that_weeks_monday() -> None:
    # Sunday 23:30 Berlin (summer): still the week whose Monday was six days before.
    w = t.digest_week(datetime(2026, 6, 14, 21, 30, tzinfo=UTC), BERLIN)
    assert w.key == "2026-W24" and w.sent_at == datetime(2026, 6, 8, 6, 0, tzinfo=UTC)
    # New year's night, 00:30 in Berlin and 23:30 UTC the day before: the lab's week (53), not UTC's date.
    ny = t.digest_week(datetime(2026, 12, 31, 23, 30, tzinfo=UTC), BERLIN)
    assert ny.key == "2026-W53" and ny.first_day == date(2026, 12, 21)
