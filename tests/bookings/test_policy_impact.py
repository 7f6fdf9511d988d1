"""Which upcoming bookings a new policy would refuse (pure), and policy errors naming their field."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from fablab.domain.booking_rules import ExistingBooking, MemberContext, Qualification
from fablab.domain.policy import BookingPolicy, PolicyError
from fablab.domain.policy_impact import broken_by

TZ = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 6, 1, 8, 0, tzinfo=TZ).astimezone(UTC)  # a Monday morning
ALL_DAY = {d: [["00:00", "24:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
BASE = BookingPolicy.from_dict({"slot_minutes": 30, "min_minutes": 30, "max_minutes": 240, "opening_hours": ALL_DAY,
                                "horizon_days": 14, "buffer_minutes": 0, "max_hours_per_day": None,
                                "max_hours_per_week": None, "max_future_bookings": None,
                                "qualification_required": True})
ADA = MemberContext(1, qualification=Qualification("valid"))


def at(day: int, hour: int, hours: float = 2, bid: int = 0, member: int = 1,
       status: str = "confirmed") -> ExistingBooking:
    start = NOW + timedelta(days=day, hours=hour - 8)
    return ExistingBooking(bid, 1, member, start, start + timedelta(hours=hours), status)


def test_nothing_breaks_under_the_same_rules() -> None:
    bookings = [at(1, 10, bid=1), at(2, 10, bid=2)]
    assert broken_by(BASE, bookings, {1: ADA}, NOW, TZ) == []


def test_a_lowered_week_quota_flags_only_the_bookings_past_the_limit() -> None:
    bookings = [at(1, 10, bid=1), at(2, 10, bid=2), at(3, 10, bid=3)]
    broken = broken_by(replace(BASE, max_hours_per_week=3.0), bookings, {1: ADA}, NOW, TZ)
    assert [b.booking.id for b in broken] == [2, 3]
    assert broken[0].violations[0].code == "quota_week_hours"


def test_shorter_max_length_and_closed_days() -> None:
    policy = replace(BASE, max_minutes=60)
    broken = broken_by(policy, [at(1, 10, bid=1), at(2, 10, hours=1, bid=2)], {1: ADA}, NOW, TZ)
    assert [(b.booking.id, b.violations[0].code) for b in broken] == [(1, "too_long")]
    closed_tue = BookingPolicy.from_dict({"opening_hours": {**ALL_DAY, "tue": []}}, base=BASE)
    broken = broken_by(closed_tue, [at(1, 10, bid=1), at(2, 10, bid=2)], {1: ADA}, NOW, TZ)  # day 1 is Tuesday
    assert [(b.booking.id, b.violations[0].code) for b in broken] == [(1, "outside_opening_hours")]


def test_past_running_and_cancelled_bookings_and_a_shorter_horizon_are_left_alone() -> None:
    bookings = [at(-1, 10, bid=1), at(0, 7, bid=2, status="checked_in"), at(1, 10, bid=3, status="cancelled"),
                at(12, 10, bid=4)]
    assert broken_by(replace(BASE, horizon_days=3), bookings, {1: ADA}, NOW, TZ) == []
    broken = broken_by(replace(BASE, max_minutes=60, horizon_days=3), bookings, {1: ADA}, NOW, TZ)
    assert [(b.booking.id, [v.code for v in b.violations]) for b in broken] == [(4, ["too_long"])]


def test_a_longer_buffer_flags_the_later_neighbour() -> None:
    bo = MemberContext(2, qualification=Qualification("valid"))
    bookings = [at(1, 10, bid=1), at(1, 12, bid=2, member=2)]
    broken = broken_by(replace(BASE, buffer_minutes=15), bookings, {1: ADA, 2: bo}, NOW, TZ)
    assert [(b.booking.id, b.violations[0].code) for b in broken] == [(2, "buffer")]


def test_requiring_a_qualification_flags_the_unqualified() -> None:
    nobody = MemberContext(2)
    open_policy = replace(BASE, qualification_required=False)
    bookings = [at(1, 10, bid=1), at(2, 10, bid=2, member=2)]
    assert broken_by(open_policy, bookings, {1: ADA, 2: nobody}, NOW, TZ) == []
    broken = broken_by(BASE, bookings, {1: ADA, 2: nobody}, NOW, TZ)
    assert [(b.booking.id, b.violations[0].code) for b in broken] == [(2, "not_qualified")]


@pytest.mark.parametrize(("data", "field"), [
    ({"opening_hours": {"tue": [["09:00", "25:00"]]}}, "opening_hours.tue"),
    ({"opening_hours": {"sun": [["24:00", "10:00"]]}}, "opening_hours.sun"),
    ({"min_minutes": 45, "slot_minutes": 60}, "min_minutes"),
    ({"max_minutes": 20}, "max_minutes"),
    ({"horizon_days": 999}, "horizon_days"),
    ({"nonsense": 1}, ""),
])
def test_policy_errors_name_their_field(data, field) -> None:
    with pytest.raises(PolicyError) as err:
        BookingPolicy.from_dict(data, base=BASE)
    assert err.value.field == field
