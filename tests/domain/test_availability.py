"""Availability of one machine: free intervals, next free slot, and the kiosk's "book now for up to N"."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from fablab.domain.availability import free_intervals, longest_bookable_from, next_free_slot
from fablab.domain.booking_rules import ExistingBooking, MemberContext, Qualification
from fablab.domain.intervals import Interval, merge, subtract
from fablab.domain.policy import BookingPolicy, current_slot_start, week_hours

TZ = ZoneInfo("Europe/Berlin")


def L(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=TZ).astimezone(UTC)


POLICY = BookingPolicy(
    slot_minutes=30, min_minutes=30, max_minutes=180, opening_hours=week_hours([("09:00", "21:00")]),
    horizon_days=14, buffer_minutes=0, checkin_grace_minutes=15, max_hours_per_day=4,
    max_hours_per_week=10, max_future_bookings=3,
)
NOW = L(2026, 3, 16, 8, 0)  # Monday 08:00 Berlin
_ids = iter(range(1, 10**6))


def booking(start, end, member_id=2, status="confirmed", checked_in_at=None):
    return ExistingBooking(next(_ids), 1, member_id, start, end, status, checked_in_at)


def local(intervals):
    return [(iv.start.astimezone(TZ).strftime("%d %H:%M"), iv.end.astimezone(TZ).strftime("%d %H:%M"))
            for iv in intervals]


def free(existing=(), blocks=(), start=None, end=None, now=NOW, policy=POLICY):
    start = start or L(2026, 3, 17)
    end = end or L(2026, 3, 18)
    return free_intervals(policy, list(existing), list(blocks), start, end, now, TZ)


# --- interval helpers ----------------------------------------------------------------------------------


def test_merge_and_subtract():
    a = Interval(L(2026, 3, 17, 9), L(2026, 3, 17, 12))
    b = Interval(L(2026, 3, 17, 11), L(2026, 3, 17, 13))
    c = Interval(L(2026, 3, 17, 13), L(2026, 3, 17, 14))
    assert merge([c, a, b]) == [Interval(a.start, c.end)]
    hole = Interval(L(2026, 3, 17, 10), L(2026, 3, 17, 11))
    assert subtract([a], [hole, Interval(L(2026, 3, 17, 11, 30), L(2026, 3, 17, 15))]) == [
        Interval(a.start, hole.start), Interval(hole.end, L(2026, 3, 17, 11, 30))
    ]
    with pytest.raises(ValueError):
        Interval(b.end, b.start)


# --- free_intervals ------------------------------------------------------------------------------------


def test_empty_machine_is_free_during_opening_hours():
    assert local(free()) == [("17 09:00", "17 21:00")]


def test_bookings_are_cut_out():
    existing = [booking(L(2026, 3, 17, 10), L(2026, 3, 17, 12)),
                booking(L(2026, 3, 17, 12), L(2026, 3, 17, 13)),
                booking(L(2026, 3, 17, 20), L(2026, 3, 17, 20, 30))]
    assert local(free(existing)) == [("17 09:00", "17 10:00"), ("17 13:00", "17 20:00"),
                                     ("17 20:30", "17 21:00")]


def test_buffer_widens_bookings_and_gaps_shorter_than_min_vanish():
    p = BookingPolicy(opening_hours=POLICY.opening_hours, slot_minutes=15, min_minutes=30,
                      buffer_minutes=15)
    existing = [booking(L(2026, 3, 17, 10), L(2026, 3, 17, 11)),
                booking(L(2026, 3, 17, 12), L(2026, 3, 17, 13))]
    assert local(free(existing, policy=p)) == [("17 09:00", "17 09:45"), ("17 11:15", "17 11:45"),
                                               ("17 13:15", "17 21:00")]
    p60 = BookingPolicy(opening_hours=POLICY.opening_hours, slot_minutes=15, min_minutes=60,
                        buffer_minutes=15)
    assert local(free(existing, policy=p60)) == [("17 13:15", "17 21:00")]


def test_unaligned_busy_edges_round_inwards():
    existing = [booking(L(2026, 3, 17, 10, 10), L(2026, 3, 17, 11, 50))]
    assert local(free(existing)) == [("17 09:00", "17 10:00"), ("17 12:00", "17 21:00")]


def test_released_no_show_and_cancelled_are_free_but_checked_in_is_not():
    now = L(2026, 3, 17, 10, 20)
    no_show = booking(L(2026, 3, 17, 10), L(2026, 3, 17, 12))
    cancelled = booking(L(2026, 3, 17, 13), L(2026, 3, 17, 14), status="cancelled")
    assert local(free([no_show, cancelled], now=now)) == [("17 10:00", "17 21:00")]
    running = booking(L(2026, 3, 17, 10), L(2026, 3, 17, 12), status="checked_in")
    assert local(free([running, cancelled], now=now)) == [("17 12:00", "17 21:00")]
    early = booking(L(2026, 3, 17, 10), L(2026, 3, 17, 12), checked_in_at=L(2026, 3, 17, 9, 55))
    assert local(free([early], now=now)) == [("17 12:00", "17 21:00")]


def test_maintenance_blocks():
    blocks = [Interval(L(2026, 3, 17, 8), L(2026, 3, 17, 12, 10))]
    assert local(free(blocks=blocks)) == [("17 12:30", "17 21:00")]


def test_not_in_the_past_but_current_slot_included():
    assert local(free(now=L(2026, 3, 17, 14, 10))) == [("17 14:00", "17 21:00")]
    assert free(now=L(2026, 3, 18, 1)) == []


def test_clipped_to_the_horizon_and_the_period():
    span = free(start=L(2026, 3, 29), end=L(2026, 4, 5))
    assert local(span)[-1] == ("30 09:00", "30 21:00")  # horizon ends with Mon 30 March
    # the period's start is rounded down to its slot (the running slot is bookable), its end is not widened
    assert local(free(start=L(2026, 3, 17, 10, 15), end=L(2026, 3, 17, 12, 15))) == [("17 10:00", "17 12:00")]


def test_24h_machine_over_the_spring_dst_day():
    p = BookingPolicy(opening_hours=week_hours([("00:00", "24:00")]))
    got = free(start=L(2026, 3, 29), end=L(2026, 3, 30), now=L(2026, 3, 27), policy=p)
    assert len(got) == 1 and got[0].duration == timedelta(hours=23)


def test_closed_weekend():
    p = BookingPolicy(opening_hours=week_hours([("09:00", "21:00")], range(5)))
    got = free(start=L(2026, 3, 20), end=L(2026, 3, 24), policy=p)
    assert local(got) == [("20 09:00", "20 21:00"), ("23 09:00", "23 21:00")]


# --- next_free_slot ------------------------------------------------------------------------------------


def test_next_free_slot_skips_too_small_gaps_and_closed_time():
    existing = [booking(L(2026, 3, 16, 9), L(2026, 3, 16, 20)),
                booking(L(2026, 3, 16, 20, 30), L(2026, 3, 16, 21))]
    slot = next_free_slot(POLICY, existing, [], NOW, timedelta(hours=1), NOW, TZ)
    assert slot == Interval(L(2026, 3, 17, 9), L(2026, 3, 17, 10))
    assert next_free_slot(POLICY, existing, [], NOW, None, NOW, TZ) == Interval(L(2026, 3, 16, 20),
                                                                                 L(2026, 3, 16, 20, 30))


def test_next_free_slot_none_when_fully_booked_and_rejects_bad_lengths():
    p = BookingPolicy(opening_hours=POLICY.opening_hours, horizon_days=0)
    existing = [booking(L(2026, 3, 16, 9), L(2026, 3, 16, 21))]
    assert next_free_slot(p, existing, [], NOW, None, NOW, TZ) is None
    with pytest.raises(ValueError, match="between 30 and 180"):
        next_free_slot(POLICY, [], [], NOW, timedelta(hours=5), NOW, TZ)


# --- longest_bookable_from (kiosk) ---------------------------------------------------------------------


def test_longest_bookable_now_is_limited_by_the_next_booking_and_max_length():
    now = L(2026, 3, 17, 10, 7)
    start = current_slot_start(POLICY, now, TZ)
    assert start == L(2026, 3, 17, 10)
    assert longest_bookable_from(POLICY, [], [], start, now, TZ) == timedelta(hours=3)
    nxt = [booking(L(2026, 3, 17, 11, 30), L(2026, 3, 17, 13))]
    assert longest_bookable_from(POLICY, nxt, [], start, now, TZ) == timedelta(minutes=90)
    busy = [booking(L(2026, 3, 17, 9, 30), L(2026, 3, 17, 10, 30), status="checked_in")]
    assert longest_bookable_from(POLICY, busy, [], start, now, TZ) == timedelta(0)
    closing = L(2026, 3, 17, 20, 0)
    assert longest_bookable_from(POLICY, [], [], closing, L(2026, 3, 17, 19, 50), TZ) == timedelta(hours=1)
    assert longest_bookable_from(POLICY, [], [], L(2026, 3, 17, 10, 10), now, TZ) == timedelta(0)


def test_longest_bookable_applies_member_quota_and_qualification():
    now = L(2026, 3, 17, 10, 7)
    start = current_slot_start(POLICY, now, TZ)
    m = MemberContext(1, qualification=Qualification("valid"))
    used = [booking(L(2026, 3, 17, 9), L(2026, 3, 17, 9, 30), member_id=1, status="completed"),
            booking(L(2026, 3, 17, 15), L(2026, 3, 17, 17), member_id=1)]  # 2.5 h of the 4 h day quota
    assert longest_bookable_from(POLICY, used, [], start, now, TZ, member=m) == timedelta(minutes=90)
    assert longest_bookable_from(POLICY, used, [], start, now, TZ) == timedelta(hours=3)
    unqualified = MemberContext(1)
    assert longest_bookable_from(POLICY, [], [], start, now, TZ, member=unqualified) == timedelta(0)
    staff = MemberContext(1, "admin", Qualification("valid"), quota_exempt=True)
    assert longest_bookable_from(POLICY, used, [], start, now, TZ, member=staff) == timedelta(hours=3)
