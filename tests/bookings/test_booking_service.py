from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from fablab.extensions import db
from fablab.models import Booking
from fablab.services import bookings as svc
from tests.bookings.conftest import slot

pytestmark = pytest.mark.dates  # runs once per frozen clock (tests/support/clock.py)


def test_book_and_refuse_overlap_with_suggestion(make_member, open_machine, qualified) -> None:
    machine = open_machine()
    ada, bo = make_member(), make_member()
    qualified(ada, machine)
    qualified(bo, machine)
    start, end = slot(2, 2)
    booking = svc.create_booking(ada, machine, start, end)
    assert booking.id and booking.status == "confirmed"
    with pytest.raises(svc.BookingRejected) as err:
        svc.create_booking(bo, machine, start + timedelta(hours=1), end + timedelta(hours=1))
    assert err.value.status == 409 and err.value.code == "overlap"
    assert err.value.suggestion is not None and err.value.suggestion.start >= end


def test_rule_rejections_name_the_rule(make_member, open_machine, qualified) -> None:
    machine = open_machine(max_minutes=120)
    ada = make_member()
    start, end = slot(2, 3)
    with pytest.raises(svc.BookingRejected) as err:
        svc.create_booking(ada, machine, start, end)
    codes = [v.code for v in err.value.violations]
    assert "too_long" in codes and "not_qualified" in codes
    assert err.value.status == 422
    assert any("3 h" in v.message for v in err.value.violations)
    assert db.session.scalar(select(Booking)) is None  # nothing half-written


def test_expired_qualification(make_member, open_machine, qualified) -> None:
    machine = open_machine()
    ada = make_member()
    qualified(ada, machine, expires_at=datetime.now(UTC) - timedelta(days=2))
    with pytest.raises(svc.BookingRejected) as err:
        svc.create_booking(ada, machine, *slot(2))
    assert err.value.code == "qualification_expired"


def test_cancel_own_and_others(make_member, open_machine, qualified) -> None:
    machine = open_machine()
    ada, bo = make_member(), make_member()
    steward = make_member(role="steward")
    qualified(ada, machine)
    b = svc.create_booking(ada, machine, *slot(3))
    with pytest.raises(svc.NotAllowed):
        svc.cancel_booking(b, bo)
    with pytest.raises(svc.BookingRejected) as err:
        svc.cancel_booking(b, steward)
    assert err.value.code == "reason_required"
    svc.cancel_booking(b, steward, reason="laser tube replacement")
    db.session.refresh(b)
    assert b.status == "cancelled" and b.cancel_reason == "laser tube replacement"
    # the time is free again
    qualified(bo, machine)
    assert svc.create_booking(bo, machine, b.start_at, b.end_at).id


def test_shorten_extend_checkin_end_early(make_member, open_machine, qualified) -> None:
    machine = open_machine()
    ada = make_member()
    qualified(ada, machine)
    wall = datetime.now(UTC)
    start = wall.replace(minute=0 if wall.minute < 30 else 30, second=0, microsecond=0)
    now = start + timedelta(minutes=5)
    b = svc.create_booking(ada, machine, start, start + timedelta(hours=2), now=start - timedelta(minutes=10))
    svc.check_in(b, ada, now=now)
    assert b.status == "checked_in"
    svc.extend_booking(b, ada, start + timedelta(hours=3), now=now)
    assert b.end_at == start + timedelta(hours=3)
    svc.shorten_booking(b, ada, start + timedelta(hours=2, minutes=30), now=now)
    assert b.end_at == start + timedelta(hours=2, minutes=30)
    svc.end_early(b, ada, now=now)
    assert b.status == "completed" and b.end_at <= start + timedelta(minutes=30)
    assert b.booked_end_at == start + timedelta(hours=3)


def test_no_show_released_without_worker(make_member, open_machine, qualified) -> None:
    machine = open_machine()
    ada, bo = make_member(), make_member()
    qualified(ada, machine)
    qualified(bo, machine)
    wall = datetime.now(UTC)
    start = wall.replace(minute=0 if wall.minute < 30 else 30, second=0, microsecond=0)
    now = start - timedelta(minutes=10)
    b = svc.create_booking(ada, machine, start, start + timedelta(hours=2), now=now)
    later = start + timedelta(minutes=20)  # grace (15 min) has passed without check-in
    assert svc.effective_status(b, later) == "no_show"
    free = svc.availability(machine, start, start + timedelta(hours=3), now=later)
    assert free and free[0].start <= start + timedelta(minutes=30)
    with pytest.raises(svc.BookingRejected) as err:
        svc.check_in(b, ada, now=later)
    assert err.value.code == "checkin_closed"
    taken = svc.create_booking(bo, machine, start + timedelta(minutes=30), start + timedelta(hours=1, minutes=30),
                               now=later)
    assert taken.id
    db.session.refresh(b)
    assert b.status == "no_show"


def test_maintenance_block_cancels_and_blocks(make_member, open_machine, qualified) -> None:
    machine = open_machine()
    ada = make_member()
    steward = make_member(role="steward")
    qualified(ada, machine)
    start, end = slot(4, 2)
    b = svc.create_booking(ada, machine, start, end)
    block, cancelled = svc.create_block(machine, steward, start - timedelta(hours=1), end, "lens cleaning")
    assert [c.id for c in cancelled] == [b.id]
    db.session.refresh(b)
    assert b.status == "cancelled" and "lens cleaning" in b.cancel_reason
    with pytest.raises(svc.BookingRejected) as err:
        svc.create_booking(ada, machine, start, end)
    assert err.value.code == "maintenance"
    with pytest.raises(svc.NotAllowed):
        svc.create_block(machine, ada, start, end, "mine")


def test_out_of_order_machine(make_member, open_machine, qualified) -> None:
    machine = open_machine()
    machine.status = "out_of_order"
    db.session.commit()
    ada = make_member()
    qualified(ada, machine)
    with pytest.raises(svc.BookingRejected) as err:
        svc.create_booking(ada, machine, *slot(2))
    assert err.value.code == "machine_unavailable"
    assert svc.availability(machine, *slot(0, 24)) == []


def test_booking_the_running_slot_checks_in(make_member, open_machine, qualified) -> None:
    """Booking the slot already running means using it now: it must not be released by its own grace."""
    machine = open_machine()
    ada = make_member()
    qualified(ada, machine)
    wall = datetime.now(UTC)
    start = wall.replace(minute=0 if wall.minute < 30 else 30, second=0, microsecond=0)
    now = start + timedelta(minutes=25)  # later than start + grace
    b = svc.create_booking(ada, machine, start, start + timedelta(hours=1), now=now)
    assert b.status == "checked_in" and b.checked_in_at == now
    assert svc.effective_status(b, now + timedelta(minutes=5)) == "checked_in"


def test_quotas_count_own_bookings_far_from_the_request(make_member, open_machine, qualified) -> None:
    """Writes load other members' bookings only near the request, but all of the member's own."""
    machine = open_machine(max_future_bookings=2, max_hours_per_week=None)
    ada, bo = make_member(), make_member()
    qualified(ada, machine)
    qualified(bo, machine)
    svc.create_booking(ada, machine, *slot(2))
    svc.create_booking(ada, machine, *slot(100))  # days away
    svc.create_booking(bo, machine, *slot(50))
    with pytest.raises(svc.BookingRejected) as err:
        svc.create_booking(ada, machine, *slot(30))
    assert err.value.code == "quota_future_bookings"
    week = open_machine(max_hours_per_week=3)
    qualified(ada, week)
    now = datetime.now(UTC)
    from fablab.domain import policy as pol

    monday, _ = pol.local_week_bounds(now + timedelta(days=7), svc.lab_tz())
    svc.create_booking(ada, week, monday + timedelta(hours=10), monday + timedelta(hours=12))
    with pytest.raises(svc.BookingRejected) as err:
        svc.create_booking(ada, week, monday + timedelta(days=4, hours=10), monday + timedelta(days=4, hours=12))
    assert err.value.code == "quota_week_hours"
