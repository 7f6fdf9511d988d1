"""A completed booking keeps the time it used: the rules, availability, cancelling and maintenance blocks
agree with the database constraint (no 500, a refusal with a way out)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from fablab.models import Role
from fablab.services import bookings as booking_service
from fablab.services.bookings import BookingRejected
from tests.bookings.conftest import slot


@pytest.fixture
def running(make_member, open_machine, qualified):
    machine = open_machine()
    ada, bo = make_member(), make_member()
    for m in (ada, bo):
        qualified(m, machine)
    start, end = slot(1, 2)
    b = booking_service.create_booking(ada, machine, start, end, now=start - timedelta(hours=1))
    booking_service.check_in(b, ada, now=start + timedelta(minutes=1))
    return machine, ada, bo, b, start


def test_ending_early_frees_from_the_slot_it_ended_in(running) -> None:
    machine, ada, bo, b, start = running
    ended_at = start + timedelta(minutes=37)  # slots are 30 min: the booking ends at start + 60 min
    b = booking_service.end_early(b, ada, now=ended_at)
    assert b.status == "completed" and b.end_at == start + timedelta(hours=1)
    free = booking_service.availability(machine, ended_at, ended_at + timedelta(hours=3), now=ended_at)
    assert free and free[0].start >= b.end_at
    with pytest.raises(BookingRejected) as err:  # a clear refusal, not a database error
        booking_service.create_booking(bo, machine, start + timedelta(minutes=30), start + timedelta(hours=2),
                                       now=ended_at)
    assert err.value.code == "overlap"
    later = booking_service.create_booking(bo, machine, b.end_at, b.end_at + timedelta(hours=1), now=ended_at)
    assert later.start_at == b.end_at


def test_cancelling_a_running_booking_after_its_end_never_extends_it(running, make_member, open_machine) -> None:
    machine, ada, bo, b, start = running
    nxt = booking_service.create_booking(bo, machine, b.end_at, b.end_at + timedelta(hours=1), now=start)
    late = b.end_at + timedelta(minutes=10)
    done = booking_service.cancel_booking(b, ada, now=late)
    assert done.status == "completed" and done.end_at == start + timedelta(hours=2) <= nxt.start_at


def test_a_block_over_finished_use_is_refused_with_where_it_may_start(running, make_member) -> None:
    machine, ada, bo, b, start = running
    b = booking_service.end_early(b, ada, now=start + timedelta(minutes=40))
    steward = make_member(role=Role.STEWARD)
    with pytest.raises(BookingRejected) as err:
        booking_service.create_block(machine, steward, start, start + timedelta(hours=3), "nozzle",
                                     now=start + timedelta(minutes=45))
    assert err.value.code == "overlaps_finished_use" and "or later" in str(err.value.violations[0].message)
    block, _ = booking_service.create_block(machine, steward, b.end_at, start + timedelta(hours=3), "nozzle",
                                            now=start + timedelta(minutes=45))
    assert block.start_at == b.end_at


def test_the_block_page_shows_the_refusal_where_the_steward_acted(running, make_member, client) -> None:
    from zoneinfo import ZoneInfo

    from tests.conftest import csrf_token, login

    machine, ada, bo, b, start = running
    booking_service.end_early(b, ada, now=start + timedelta(minutes=40))
    make_member("s@example.org", role=Role.STEWARD)
    login(client, "s@example.org")
    token = csrf_token(client, f"/machines/{machine.slug}/block")
    tz = ZoneInfo("Europe/Berlin")
    resp = client.post(f"/machines/{machine.slug}/block", data={
        "csrf_token": token, "start": (start - timedelta(hours=1)).astimezone(tz).strftime("%Y-%m-%dT%H:%M"),
        "end": (start + timedelta(hours=3)).astimezone(tz).strftime("%Y-%m-%dT%H:%M"), "reason": "nozzle"})
    page = resp.get_data(as_text=True)
    assert resp.status_code == 422 and "already been used" in page and "or later" in page
