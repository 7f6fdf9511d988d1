"""Direct tests of the booking policy and every rule code (pure: no app, no database)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from fablab.domain.booking_rules import (
    CODES,
    BookingRequest,
    ExistingBooking,
    MemberContext,
    Qualification,
    check_booking,
    check_extension,
    check_shorten,
    http_status,
    is_effectively_active,
    may_check_in,
)
from fablab.domain.intervals import Interval
from fablab.domain.policy import (
    MACHINE_TYPES,
    BookingPolicy,
    PolicyError,
    ceil_to_slot,
    defaults_for,
    floor_to_slot,
    horizon_end,
    is_aligned,
    local_week_bounds,
    opening_pairs,
    week_hours,
)

TZ = ZoneInfo("Europe/Berlin")


def L(y: int, mo: int, d: int, h: int = 0, mi: int = 0, fold: int = 0) -> datetime:
    """A Berlin wall-clock time as aware UTC."""
    return datetime(y, mo, d, h, mi, tzinfo=TZ, fold=fold).astimezone(UTC)


POLICY = BookingPolicy(
    slot_minutes=30, min_minutes=30, max_minutes=180, opening_hours=week_hours([("09:00", "21:00")]),
    horizon_days=14, buffer_minutes=0, checkin_grace_minutes=15, max_hours_per_day=4,
    max_hours_per_week=10, max_future_bookings=3, qualification_required=True,
)
NOW = L(2026, 3, 16, 8, 0)  # Monday 16 March 2026, 08:00 Berlin
QUALIFIED = Qualification("valid")
_ids = iter(range(1000, 10**6))


def member(member_id: int = 1, **kw) -> MemberContext:
    kw.setdefault("qualification", QUALIFIED)
    return MemberContext(member_id, **kw)


def booking(start, end, member_id=2, status="confirmed", machine_id=1, checked_in_at=None, id=None):
    return ExistingBooking(id if id is not None else next(_ids), machine_id, member_id, start, end, status,
                           checked_in_at)


def check(start, end, existing=(), m=None, now=NOW, policy=POLICY, **kw):
    m = m or member()
    return check_booking(policy, BookingRequest(1, m.member_id, start, end), list(existing), m, now, TZ, **kw)


def codes(violations) -> list[str]:
    return [v.code for v in violations]


# --- policy --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("machine_type", MACHINE_TYPES)
def test_defaults_round_trip_through_json(machine_type):
    policy = defaults_for(machine_type)
    assert BookingPolicy.from_dict(policy.to_dict()) == policy
    assert policy.min_minutes <= policy.max_minutes


def test_unknown_machine_type_gets_other_defaults():
    assert defaults_for("loom") == defaults_for("other")


def test_printer_is_open_around_the_clock_and_serialises_24h():
    d = defaults_for("3d_printer").to_dict()
    assert d["opening_hours"]["sun"] == [["00:00", "24:00"]]


def test_from_dict_fills_missing_fields_from_base():
    base = defaults_for("laser_cutter")
    p = BookingPolicy.from_dict({"max_minutes": 120, "opening_hours": {"mon": [["08:00", "12:00"]]}}, base)
    assert p.max_minutes == 120 and p.buffer_minutes == base.buffer_minutes
    assert p.opening_hours[0] == ((time(8), time(12)),) and p.opening_hours[1] == ()


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"slot_minutes": 7}, "slot_minutes must divide a day"),
        ({"min_minutes": 240, "max_minutes": 60}, "max_minutes (60) must be at least min_minutes"),
        ({"min_minutes": 10}, "min_minutes (10) must be at least slot_minutes"),
        ({"mode": "auction"}, "mode must be one of open, window, hybrid"),
        ({"max_hours_per_day": -1}, "max_hours_per_day must not be negative"),
        ({"max_hours_per_week": "ten"}, "max_hours_per_week must be a number"),
        ({"horizon_days": True}, "horizon_days must be a whole number"),
        ({"max_future_bookings": 2.5}, "max_future_bookings must be a whole number"),
        ({"qualification_required": "yes"}, "qualification_required must be true or false"),
        ({"colour": "red"}, "unknown policy field(s): colour"),
        ({"opening_hours": {"mon": [["25:00", "26:00"]]}}, "'25:00' is not a time"),
        ({"opening_hours": {"moon": []}}, "unknown weekday(s) moon"),
        ({"opening_hours": {"tue": [["10:00", "10:00"]]}}, "empty range"),
        ({"opening_hours": "always"}, "opening_hours must map mon..sun"),
    ],
)
def test_from_dict_rejects_bad_values_with_clear_errors(data, fragment):
    with pytest.raises(PolicyError) as err:
        BookingPolicy.from_dict(data)
    assert fragment in str(err.value)


def test_opening_hours_list_form_and_night_ranges():
    p = BookingPolicy.from_dict({"opening_hours": [[["22:00", "02:00"]]] + [[]] * 6})
    pairs = opening_pairs(p, L(2026, 3, 16), L(2026, 3, 18), TZ)
    # Monday 22:00 to Tuesday 02:00 local
    assert pairs == [(L(2026, 3, 16, 22), L(2026, 3, 17, 2))]


# --- local clock and DST -------------------------------------------------------------------------------


def test_opening_hours_on_dst_change_days_are_local():
    spring = opening_pairs(POLICY, L(2026, 3, 29), L(2026, 3, 30), TZ)
    autumn = opening_pairs(POLICY, L(2026, 10, 25), L(2026, 10, 26), TZ)
    assert spring == [(datetime(2026, 3, 29, 7, tzinfo=UTC), datetime(2026, 3, 29, 19, tzinfo=UTC))]
    assert autumn == [(datetime(2026, 10, 25, 8, tzinfo=UTC), datetime(2026, 10, 25, 20, tzinfo=UTC))]


def test_slot_grid_follows_the_wall_clock_across_dst():
    p = BookingPolicy(slot_minutes=60, min_minutes=60)
    # 01:00 UTC on 29 March is 03:00 CEST (02:00 never happens): on the grid
    assert is_aligned(p, datetime(2026, 3, 29, 1, tzinfo=UTC), TZ)
    one_utc = datetime(2026, 3, 29, 1, tzinfo=UTC)
    assert floor_to_slot(p, datetime(2026, 3, 29, 1, 40, tzinfo=UTC), TZ) == one_utc
    assert ceil_to_slot(p, datetime(2026, 3, 29, 0, 40, tzinfo=UTC), TZ) == one_utc
    p90 = BookingPolicy(slot_minutes=90, min_minutes=90)
    for t in (datetime(2026, 10, 25, 0, 10, tzinfo=UTC), datetime(2026, 10, 25, 1, 10, tzinfo=UTC),
              datetime(2026, 3, 29, 1, 10, tzinfo=UTC)):
        f, c = floor_to_slot(p90, t, TZ), ceil_to_slot(p90, t, TZ)
        assert is_aligned(p90, f, TZ) and is_aligned(p90, c, TZ) and f <= t <= c


@pytest.mark.parametrize(("day", "month"), [(29, 3), (25, 10)])
def test_opening_hours_9_to_21_on_dst_change_days(day, month):
    now = L(2026, month, day - 3, 8)
    assert check(L(2026, month, day, 9), L(2026, month, day, 11), now=now) == []
    assert check(L(2026, month, day, 19), L(2026, month, day, 21), now=now) == []
    early = check(L(2026, month, day, 8), L(2026, month, day, 10), now=now)
    late = check(L(2026, month, day, 20), L(2026, month, day, 21, 30), now=now)
    assert codes(early) == ["outside_opening_hours"] and codes(late) == ["outside_opening_hours"]
    assert "09:00–21:00 (Europe/Berlin)" in early[0].message


def test_booking_spanning_spring_change_is_as_long_as_real_time():
    p = BookingPolicy(opening_hours=week_hours([("00:00", "24:00")]), max_minutes=120, max_hours_per_day=2)
    now = L(2026, 3, 27, 12)
    # 01:00 to 04:00 local on 29 March is only 2 real hours
    assert check(L(2026, 3, 29, 1), L(2026, 3, 29, 4), now=now, policy=p) == []
    # and it uses the whole day quota: another 30 minutes that day is refused
    first = booking(L(2026, 3, 29, 1), L(2026, 3, 29, 4), member_id=1)
    assert codes(check(L(2026, 3, 29, 10), L(2026, 3, 29, 10, 30), [first], now=now, policy=p)) == [
        "quota_day_hours"
    ]


def test_booking_spanning_autumn_change_is_as_long_as_real_time():
    p = BookingPolicy(opening_hours=week_hours([("00:00", "24:00")]), max_minutes=180, max_hours_per_day=24)
    now = L(2026, 10, 23, 12)
    # 01:00 to 04:00 local on 25 October is 4 real hours
    v = check(L(2026, 10, 25, 1), L(2026, 10, 25, 4), now=now, policy=p)
    assert codes(v) == ["too_long"] and "you asked for 4 h" in v[0].message
    # the repeated hour can be booked on its second occurrence
    second_two = L(2026, 10, 25, 2, fold=1)
    assert check(second_two, second_two + timedelta(hours=1), now=now, policy=p) == []


def test_week_quota_uses_local_monday():
    start, end = local_week_bounds(L(2026, 3, 22, 23, 30), TZ)  # Sunday 23:30 local
    assert start == L(2026, 3, 16) and end == L(2026, 3, 23)


# --- every rule code -----------------------------------------------------------------------------------


def test_a_valid_booking_has_no_violations():
    assert check(L(2026, 3, 17, 10), L(2026, 3, 17, 12)) == []


def test_machine_unavailable():
    v = check(L(2026, 3, 17, 10), L(2026, 3, 17, 12), machine_out_of_order=True)
    assert codes(v) == ["machine_unavailable"] and "out of order" in v[0].message


def test_end_before_start_is_reported_alone():
    v = check(L(2026, 3, 17, 12), L(2026, 3, 17, 10))
    assert codes(v) == ["end_before_start"]
    assert codes(check(L(2026, 3, 17, 12), L(2026, 3, 17, 12))) == ["end_before_start"]


def test_in_the_past_but_the_current_slot_is_bookable():
    now = L(2026, 3, 17, 10, 7)
    v = check(L(2026, 3, 17, 9, 30), L(2026, 3, 17, 11), now=now)
    assert codes(v) == ["in_the_past"] and "Tue 17 Mar 10:00" in v[0].message
    assert check(L(2026, 3, 17, 10), L(2026, 3, 17, 11), now=now) == []  # "book now"


def test_not_aligned_suggests_grid_times():
    v = check(L(2026, 3, 17, 10, 10), L(2026, 3, 17, 11, 10))
    assert codes(v) == ["not_aligned"]
    assert v[0].allowed["suggested_start"] == L(2026, 3, 17, 10).isoformat()
    assert v[0].allowed["suggested_end"] == L(2026, 3, 17, 11, 30).isoformat()
    assert "30 min steps" in v[0].message


def test_too_short():
    p = BookingPolicy(opening_hours=POLICY.opening_hours, min_minutes=60)
    v = check(L(2026, 3, 17, 10), L(2026, 3, 17, 10, 30), policy=p)
    assert codes(v) == ["too_short"] and v[0].message == "Min 1 h on this machine; you asked for 30 min."


def test_too_long_message_names_the_limit_and_the_request():
    v = check(L(2026, 3, 17, 10), L(2026, 3, 17, 14), policy=BookingPolicy(
        opening_hours=POLICY.opening_hours, max_minutes=180, max_hours_per_day=None))
    assert codes(v) == ["too_long"]
    assert v[0].message == "Max 3 h on this machine; you asked for 4 h."
    assert v[0].allowed == {"max_minutes": 180} and v[0].http_status == 422


def test_absurdly_long_request_is_just_too_long():
    v = check(L(2026, 3, 17, 10), L(2126, 3, 17, 10))
    assert codes(v) == ["too_long"] and "Max 3 h" in v[0].message


def test_beyond_horizon():
    assert horizon_end(POLICY, NOW, TZ) == L(2026, 3, 31)
    assert check(L(2026, 3, 30, 19), L(2026, 3, 30, 21)) == []
    v = check(L(2026, 3, 31, 10), L(2026, 3, 31, 11))
    assert codes(v) == ["beyond_horizon"] and "14 days ahead" in v[0].message


def test_outside_opening_hours_closed_day():
    p = BookingPolicy(opening_hours=week_hours([("09:00", "21:00")], range(5)))
    v = check(L(2026, 3, 21, 10), L(2026, 3, 21, 11), policy=p)  # Saturday
    assert codes(v) == ["outside_opening_hours"] and "on Sat 21 Mar this machine is closed;" in v[0].message
    assert v[0].allowed == {"opening_hours": []}


def test_booking_across_midnight_on_a_24h_machine():
    p = BookingPolicy(opening_hours=week_hours([("00:00", "24:00")]), max_hours_per_day=None)
    assert check(L(2026, 3, 17, 23), L(2026, 3, 18, 1), policy=p) == []


def test_maintenance_block():
    blocks = [Interval(L(2026, 3, 17, 11), L(2026, 3, 17, 15))]
    v = check(L(2026, 3, 17, 10), L(2026, 3, 17, 12), blocks=blocks)
    assert codes(v) == ["maintenance"] and "maintenance" in v[0].message
    assert check(L(2026, 3, 17, 10), L(2026, 3, 17, 11), blocks=blocks) == []


def test_overlap_is_a_conflict_409():
    other = booking(L(2026, 3, 17, 11), L(2026, 3, 17, 13))
    v = check(L(2026, 3, 17, 10), L(2026, 3, 17, 12), [other])
    assert codes(v) == ["overlap"] and v[0].http_status == 409 and http_status(v) == 409
    assert v[0].allowed["conflicts"][0]["id"] == other.id
    # touching is not overlapping
    assert check(L(2026, 3, 17, 9), L(2026, 3, 17, 11), [other]) == []


def test_cancelled_and_other_machines_do_not_block():
    cancelled = booking(L(2026, 3, 17, 10), L(2026, 3, 17, 12), status="cancelled")
    elsewhere = booking(L(2026, 3, 17, 10), L(2026, 3, 17, 12), machine_id=2)
    requested = booking(L(2026, 3, 17, 10), L(2026, 3, 17, 12), status="requested")
    assert check(L(2026, 3, 17, 10), L(2026, 3, 17, 12), [cancelled, elsewhere, requested]) == []


def test_buffer_between_bookings():
    p = BookingPolicy(opening_hours=POLICY.opening_hours, buffer_minutes=30, slot_minutes=15, min_minutes=15)
    other = booking(L(2026, 3, 17, 12), L(2026, 3, 17, 13))
    v = check(L(2026, 3, 17, 13), L(2026, 3, 17, 14), [other], policy=p)
    assert codes(v) == ["buffer"] and "30 min free between bookings" in v[0].message
    assert http_status(v) == 422
    assert check(L(2026, 3, 17, 13, 30), L(2026, 3, 17, 14), [other], policy=p) == []
    assert codes(check(L(2026, 3, 17, 11), L(2026, 3, 17, 11, 45), [other], policy=p)) == ["buffer"]


def test_not_qualified_and_not_required():
    m = member(qualification=Qualification("none"))
    v = check(L(2026, 3, 17, 10), L(2026, 3, 17, 11), m=m)
    assert codes(v) == ["not_qualified"]
    p = BookingPolicy(opening_hours=POLICY.opening_hours, qualification_required=False)
    assert check(L(2026, 3, 17, 10), L(2026, 3, 17, 11), m=m, policy=p) == []


def test_qualification_expired_or_expiring_before_the_booking():
    expired = member(qualification=Qualification("expired", L(2026, 3, 1)))
    v = check(L(2026, 3, 17, 10), L(2026, 3, 17, 11), m=expired)
    assert codes(v) == ["qualification_expired"] and "expired at Sun 01 Mar" in v[0].message
    expiring = member(qualification=Qualification("valid", L(2026, 3, 17, 9)))
    assert codes(check(L(2026, 3, 17, 10), L(2026, 3, 17, 11), m=expiring)) == ["qualification_expired"]
    assert check(L(2026, 3, 16, 10), L(2026, 3, 16, 11), m=expiring) == []


def test_quota_day_hours_counts_own_bookings_on_the_local_day():
    mine = [booking(L(2026, 3, 17, 9), L(2026, 3, 17, 12), member_id=1)]
    v = check(L(2026, 3, 17, 14), L(2026, 3, 17, 16), mine)
    assert codes(v) == ["quota_day_hours"]
    assert v[0].allowed["remaining_minutes"] == 60 and "3 h booked" in v[0].message
    assert check(L(2026, 3, 17, 14), L(2026, 3, 17, 15), mine) == []
    # other members' bookings and cancelled ones do not count
    theirs = [booking(L(2026, 3, 17, 9), L(2026, 3, 17, 12), member_id=5),
              booking(L(2026, 3, 17, 12), L(2026, 3, 17, 14), member_id=1, status="cancelled")]
    assert check(L(2026, 3, 17, 14), L(2026, 3, 17, 17), theirs) == []


def test_quota_counts_completed_and_no_show_time():
    now = L(2026, 3, 17, 15)
    done = booking(L(2026, 3, 17, 9), L(2026, 3, 17, 11), member_id=1, status="completed")
    no_show = booking(L(2026, 3, 17, 11), L(2026, 3, 17, 13), member_id=1)  # never checked in: released
    assert codes(check(L(2026, 3, 17, 15), L(2026, 3, 17, 15, 30), [done, no_show], now=now)) == [
        "quota_day_hours"
    ]


def test_quota_week_hours():
    mine = [booking(L(2026, 3, 16 + i, 10), L(2026, 3, 16 + i, 13), member_id=1) for i in range(3)]  # 9 h
    p = BookingPolicy(opening_hours=POLICY.opening_hours, max_hours_per_week=10, max_future_bookings=None)
    v = check(L(2026, 3, 20, 10), L(2026, 3, 20, 12), mine, policy=p)
    assert codes(v) == ["quota_week_hours"] and "per week" in v[0].message
    assert check(L(2026, 3, 20, 10), L(2026, 3, 20, 11), mine, policy=p) == []
    # next week (local Monday) starts fresh
    assert check(L(2026, 3, 23, 10), L(2026, 3, 23, 12), mine, policy=p) == []


def test_quota_future_bookings():
    mine = [booking(L(2026, 3, 20 + i, 10), L(2026, 3, 20 + i, 11), member_id=1) for i in range(3)]
    v = check(L(2026, 3, 25, 10), L(2026, 3, 25, 11), mine)
    assert codes(v) == ["quota_future_bookings"] and v[0].allowed["current"] == 3
    # a booking that is over no longer counts
    later = L(2026, 3, 20, 12)
    assert check(L(2026, 3, 25, 10), L(2026, 3, 25, 11), mine, now=later) == []


def test_staff_may_be_exempt_from_quotas_but_not_other_rules():
    steward = MemberContext.for_staff(1, "steward", QUALIFIED)
    assert steward.quota_exempt and not MemberContext.for_staff(1, "member", QUALIFIED).quota_exempt
    mine = [booking(L(2026, 3, 17, 9), L(2026, 3, 17, 12), member_id=1)]
    assert check(L(2026, 3, 17, 14), L(2026, 3, 17, 17), mine, m=steward) == []
    assert codes(check(L(2026, 3, 17, 14), L(2026, 3, 17, 18), mine, m=steward)) == ["too_long"]


def test_all_violations_are_returned_in_code_order():
    other = booking(L(2026, 3, 31, 9), L(2026, 3, 31, 14))
    v = check(L(2026, 3, 31, 8, 10), L(2026, 3, 31, 13, 10), [other], m=member(qualification=Qualification()),
              machine_out_of_order=True)
    got = codes(v)
    assert got == sorted(got, key=CODES.index)
    assert set(got) >= {"machine_unavailable", "not_aligned", "too_long", "beyond_horizon",
                        "outside_opening_hours", "not_qualified", "quota_day_hours", "overlap"}
    assert http_status(v) == 422  # a rule problem comes before the conflict


def test_naive_datetimes_are_a_caller_error():
    with pytest.raises(ValueError, match="timezone-aware"):
        check(datetime(2026, 3, 17, 10), L(2026, 3, 17, 11))


# --- effective state: no-shows are released by time alone ----------------------------------------------


def test_unchecked_booking_is_released_after_grace():
    b = booking(L(2026, 3, 17, 10), L(2026, 3, 17, 12))
    assert is_effectively_active(b, POLICY, L(2026, 3, 17, 10, 15))
    assert not is_effectively_active(b, POLICY, L(2026, 3, 17, 10, 16))
    checked = booking(L(2026, 3, 17, 10), L(2026, 3, 17, 12), status="checked_in")
    assert is_effectively_active(checked, POLICY, L(2026, 3, 17, 11))
    now = L(2026, 3, 17, 10, 20)
    assert check(L(2026, 3, 17, 10), L(2026, 3, 17, 11), [b], now=now) == []
    assert codes(check(L(2026, 3, 17, 10), L(2026, 3, 17, 11), [checked], now=now)) == ["overlap"]


def test_check_in_window_closes_with_the_grace():
    b = booking(L(2026, 3, 17, 10), L(2026, 3, 17, 12))
    assert not may_check_in(b, POLICY, L(2026, 3, 17, 9, 40))
    assert may_check_in(b, POLICY, L(2026, 3, 17, 9, 50))
    assert may_check_in(b, POLICY, L(2026, 3, 17, 10, 15))
    assert not may_check_in(b, POLICY, L(2026, 3, 17, 10, 16))


# --- extension and shortening --------------------------------------------------------------------------


def test_extension_allowed_and_its_rules():
    now = L(2026, 3, 17, 10, 20)
    mine = booking(L(2026, 3, 17, 10), L(2026, 3, 17, 11), member_id=1, status="checked_in")
    nxt = booking(L(2026, 3, 17, 12), L(2026, 3, 17, 13))
    m = member()

    def ext(new_end, existing=(mine,)):
        return codes(check_extension(POLICY, mine, new_end, list(existing), m, now, TZ))

    assert ext(L(2026, 3, 17, 12), [mine, nxt]) == []
    assert ext(L(2026, 3, 17, 12, 30), [mine, nxt]) == ["overlap"]
    assert ext(L(2026, 3, 17, 11)) == ["end_before_start"]
    assert ext(L(2026, 3, 17, 11, 45)) == ["not_aligned"]
    v = check_extension(POLICY, mine, L(2026, 3, 17, 13, 30), [mine], m, now, TZ)
    assert codes(v) == ["too_long"] and "you asked for 3 h 30 min" in v[0].message
    late = booking(L(2026, 3, 17, 19), L(2026, 3, 17, 20), member_id=1, status="checked_in")
    assert codes(check_extension(POLICY, late, L(2026, 3, 17, 21, 30), [late], m, L(2026, 3, 17, 19, 5),
                                 TZ)) == ["outside_opening_hours"]


def test_extension_counts_the_whole_booking_against_quotas_once():
    now = L(2026, 3, 17, 10, 20)
    mine = booking(L(2026, 3, 17, 10), L(2026, 3, 17, 12), member_id=1, status="checked_in")
    earlier = booking(L(2026, 3, 17, 8, 0), L(2026, 3, 17, 9, 30), member_id=1, status="completed")
    assert check_extension(POLICY, mine, L(2026, 3, 17, 12, 30), [mine, earlier], member(), now, TZ) == []
    v = check_extension(POLICY, mine, L(2026, 3, 17, 13), [mine, earlier], member(), now, TZ)
    assert codes(v) == ["quota_day_hours"]


def test_released_booking_cannot_be_extended():
    b = booking(L(2026, 3, 17, 10), L(2026, 3, 17, 11), member_id=1)
    v = check_extension(POLICY, b, L(2026, 3, 17, 12), [b], member(), L(2026, 3, 17, 10, 30), TZ)
    assert codes(v) == ["booking_not_active"]


def test_shorten():
    b = booking(L(2026, 3, 17, 10), L(2026, 3, 17, 12), member_id=1, status="checked_in")
    now = L(2026, 3, 17, 10, 7)
    assert check_shorten(POLICY, b, ceil_to_slot(POLICY, now, TZ), now, TZ) == []  # "end now"
    assert codes(check_shorten(POLICY, b, L(2026, 3, 17, 11, 10), now, TZ)) == ["not_aligned"]
    assert codes(check_shorten(POLICY, b, L(2026, 3, 17, 12, 30), now, TZ)) == ["end_before_start"]
    late = L(2026, 3, 17, 11, 20)
    assert codes(check_shorten(POLICY, b, L(2026, 3, 17, 10, 30), late, TZ)) == ["in_the_past"]
    future = booking(L(2026, 3, 18, 10), L(2026, 3, 18, 12), member_id=1)
    p = BookingPolicy(opening_hours=POLICY.opening_hours, min_minutes=60)
    assert codes(check_shorten(p, future, L(2026, 3, 18, 10, 30), now, TZ)) == ["too_short"]
    assert check_shorten(p, future, L(2026, 3, 18, 11), now, TZ) == []
    done = booking(L(2026, 3, 17, 8), L(2026, 3, 17, 9), member_id=1, status="completed")
    assert codes(check_shorten(POLICY, done, L(2026, 3, 17, 8, 30), now, TZ)) == ["booking_not_active"]
