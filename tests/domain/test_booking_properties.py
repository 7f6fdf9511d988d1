"""Property tests: generated booking sequences, applied through check_booking, never overlap, never exceed
a quota, and agree with free_intervals. The window covers a DST change and a week boundary."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import combinations
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fablab.domain.availability import free_intervals
from fablab.domain.booking_rules import (
    QUOTA_STATUSES,
    BookingRequest,
    ExistingBooking,
    MemberContext,
    Qualification,
    check_booking,
    is_effectively_active,
    is_open_booking,
    may_check_in,
)
from fablab.domain.intervals import Interval, overlap_seconds
from fablab.domain.policy import (
    BookingPolicy,
    combine_week_hours,
    floor_to_slot,
    horizon_end,
    local_day_bounds,
    local_week_bounds,
    week_hours,
)

TZ = ZoneInfo("Europe/Berlin")
POLICY = BookingPolicy(
    slot_minutes=30, min_minutes=30, max_minutes=180,
    # weekdays 09-21, Saturday 10-18, Sunday (the DST day) around the clock
    opening_hours=combine_week_hours(
        week_hours([("09:00", "21:00")], range(5)), week_hours([("10:00", "18:00")], (5,)),
        week_hours([("00:00", "24:00")], (6,)),
    ),
    horizon_days=4, buffer_minutes=30, checkin_grace_minutes=15,
    max_hours_per_day=3, max_hours_per_week=6, max_future_bookings=3,
)
NOW = datetime(2026, 10, 23, 10, 7, tzinfo=TZ).astimezone(UTC)  # Friday before the autumn DST change
GRID0 = floor_to_slot(POLICY, NOW, TZ)
# a little beyond the horizon, to hit that rule too
SLOTS = int((horizon_end(POLICY, NOW, TZ) - GRID0) / POLICY.slot) + 4
BLOCK = Interval(datetime(2026, 10, 26, 12, tzinfo=UTC), datetime(2026, 10, 26, 14, tzinfo=UTC))
MEMBER_RULES = {"not_qualified", "qualification_expired", "quota_day_hours", "quota_week_hours",
                "quota_future_bookings"}
MEMBERS = {
    1: MemberContext(1, qualification=Qualification("valid")),
    2: MemberContext(2, qualification=Qualification("valid")),
    9: MemberContext(9, "steward", Qualification("valid"), quota_exempt=True),
}

requests = st.tuples(
    st.sampled_from(sorted(MEMBERS)),
    st.integers(-2, SLOTS),  # start slot (negative: in the past)
    st.integers(1, 8),  # length in slots (7 and 8 are too long)
    st.sampled_from([0, 0, 0, 0, 10]),  # minutes off the grid, sometimes
)


def to_request(member_id: int, slot: int, length: int, off: int, grid0: datetime = GRID0) -> BookingRequest:
    start = grid0 + slot * POLICY.slot + timedelta(minutes=off)
    return BookingRequest(1, member_id, start, start + length * POLICY.slot)


def assert_invariants(bookings: list[ExistingBooking], now: datetime) -> None:
    active = sorted((b for b in bookings if is_effectively_active(b, POLICY, now)), key=lambda b: b.start)
    for a, b in zip(active, active[1:], strict=False):
        assert a.end + POLICY.buffer <= b.start, f"overlap or buffer broken: {a} / {b}"
    for member_id, ctx in MEMBERS.items():
        if ctx.quota_exempt:
            continue
        mine = [b for b in bookings if b.member_id == member_id and b.status in QUOTA_STATUSES]
        for bounds, limit in ((local_day_bounds, POLICY.max_hours_per_day),
                              (local_week_bounds, POLICY.max_hours_per_week)):
            for w_start, w_end in {bounds(b.start, TZ) for b in mine} | {bounds(b.end, TZ) for b in mine}:
                used = sum(overlap_seconds(b.start, b.end, w_start, w_end) for b in mine)
                assert used <= limit * 3600, f"member {member_id}: {used / 3600} h in {w_start}"
        assert sum(is_open_booking(b, POLICY, now) for b in mine) <= POLICY.max_future_bookings


def checked_against_availability(req, on_grid, bookings, now):
    """check_booking's verdict, after asserting that availability agrees with it: the machine-level rules
    pass exactly when the request is a valid length on the grid inside a free interval."""
    violations = check_booking(POLICY, req, bookings, MEMBERS[req.member_id], now, TZ, blocks=[BLOCK])
    free = free_intervals(POLICY, bookings, [BLOCK], now, horizon_end(POLICY, now, TZ), now, TZ)
    machine_ok = not [v for v in violations if v.code not in MEMBER_RULES]
    fits = (on_grid and POLICY.min_length <= req.end - req.start <= POLICY.max_length
            and any(iv.start <= req.start and req.end <= iv.end for iv in free))
    assert machine_ok == fits, (req, now, [v.code for v in violations], free)
    return violations


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(requests, min_size=1, max_size=60))
def test_accepted_sequences_never_overlap_or_exceed_quotas(seq):
    bookings: list[ExistingBooking] = []
    for n, (member_id, slot, length, off) in enumerate(seq):
        req = to_request(member_id, slot, length, off)
        violations = checked_against_availability(req, off == 0, bookings, NOW)
        if not violations:
            bookings.append(ExistingBooking(n, 1, member_id, req.start, req.end, "confirmed"))
        assert_invariants(bookings, NOW)
    assert all(v.start < v.end for v in bookings)


# requests near the moving `now`, so that released no-shows get rebooked
near_requests = st.tuples(
    st.sampled_from(sorted(MEMBERS)), st.one_of(st.integers(-1, 3), st.integers(-4, 24)), st.integers(1, 6),
    st.sampled_from([0, 0, 0, 10]),
)
actions = st.one_of(
    st.tuples(st.just("book"), near_requests),
    st.tuples(st.just("advance"), st.one_of(st.integers(10, 45), st.integers(1, 240))),  # minutes
    st.tuples(st.just("check_in"), st.integers(0, 200)),
    st.tuples(st.just("cancel"), st.integers(0, 200)),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(actions, min_size=1, max_size=80))
def test_with_time_passing_no_shows_release_but_active_bookings_never_overlap(seq):
    now = NOW
    bookings: list[ExistingBooking] = []
    for n, (kind, arg) in enumerate(seq):
        if kind == "advance":
            now += timedelta(minutes=arg)
        elif kind == "book":
            member_id, slot, length, off = arg
            req = to_request(member_id, slot, length, off, floor_to_slot(POLICY, now, TZ))
            if not checked_against_availability(req, off == 0, bookings, now):
                bookings.append(ExistingBooking(n, 1, member_id, req.start, req.end, "confirmed"))
        elif bookings:
            i = arg % len(bookings)
            b = bookings[i]
            if kind == "check_in" and may_check_in(b, POLICY, now):
                bookings[i] = ExistingBooking(b.id, 1, b.member_id, b.start, b.end, "checked_in", now)
            elif kind == "cancel" and b.status == "confirmed" and b.start > now:
                bookings[i] = ExistingBooking(b.id, 1, b.member_id, b.start, b.end, "cancelled")
        assert_invariants(bookings, now)
    # pairwise, not just neighbours: no two bookings active right now share any time
    active = [b for b in bookings if is_effectively_active(b, POLICY, now)]
    for a, b in combinations(active, 2):
        assert not (a.start < b.end and b.start < a.end)
