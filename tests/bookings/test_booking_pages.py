from __future__ import annotations

import re
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar
from sqlalchemy import select

from fablab.extensions import db
from fablab.models import Booking, Member
from fablab.services import bookings as svc
from tests.bookings.conftest import slot
from tests.conftest import csrf_token, login

pytestmark = pytest.mark.dates  # runs once per frozen clock (tests/support/clock.py)

HX = {"HX-Request": "true"}


def test_calendar_book_from_a_free_slot(client, make_member, open_machine, qualified) -> None:
    machine = open_machine("laser-1")
    ada = make_member("ada@example.org")
    qualified(ada, machine)
    login(client, "ada@example.org")
    page = client.get("/machines/laser-1").get_data(as_text=True)
    assert 'id="week"' in page and "Tap a free slot" in page
    starts = re.findall(r'hx-get="/machines/laser-1/book\?start=([^"]+)"', page)
    assert starts, "free slots are clickable"
    start = starts[3].replace("%2B", "+").replace("%3A", ":")
    form = client.get(f"/machines/laser-1/book?start={starts[3]}", headers=HX).get_data(as_text=True)
    assert "For how long?" in form
    token = csrf_token(client, "/machines/laser-1")
    resp = client.post("/machines/laser-1/book", data={"csrf_token": token, "start": start, "minutes": "90"},
                       headers=HX)
    body = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "Booked" in body and 'id="week"' in body
    booking = db.session.scalar(select(Booking))
    assert booking.end_at - booking.start_at == timedelta(minutes=90)
    # the calendar shows it as mine
    assert "cell mine" in body


def test_refusal_is_shown_in_place(client, make_member, open_machine) -> None:
    open_machine("laser-1")
    make_member("ada@example.org")  # not qualified
    login(client, "ada@example.org")
    start, _ = slot(2)
    token = csrf_token(client, "/machines/laser-1")
    resp = client.post("/machines/laser-1/book", data={"csrf_token": token, "start": start.isoformat(),
                                                      "minutes": "60"}, headers=HX)
    assert resp.status_code == 422
    assert "qualif" in resp.get_data(as_text=True)


def test_week_navigation_partial(client, make_member, open_machine) -> None:
    open_machine("laser-1")
    make_member("ada@example.org")
    login(client, "ada@example.org")
    page = client.get("/machines/laser-1").get_data(as_text=True)
    nxt = re.search(r'hx-get="(/machines/laser-1/week\?week=[^"]+)"[^>]*aria-label="Next week"', page)
    assert nxt
    part = client.get(nxt.group(1), headers=HX)
    assert part.status_code == 200
    text = part.get_data(as_text=True)
    assert text.lstrip().startswith("<section") and "<html" not in text  # a partial, not a page


def test_my_bookings_actions_and_feed(client, make_member, open_machine, qualified) -> None:
    machine = open_machine("laser-1")
    ada = make_member("ada@example.org")
    qualified(ada, machine)
    b = svc.create_booking(ada, machine, *slot(5))
    login(client, "ada@example.org")
    page = client.get("/bookings").get_data(as_text=True)
    assert "Laser-1" in page and "Cancel" in page
    token = csrf_token(client, "/bookings")
    resp = client.post(f"/bookings/{b.id}/cancel", data={"csrf_token": token}, headers=HX)
    assert resp.status_code == 200 and "cancelled" in resp.get_data(as_text=True)
    # private feed
    resp = client.post("/bookings/feed", data={"csrf_token": token})
    assert resp.location == "/bookings"  # the token stays out of URLs (access logs, history)
    feed = re.search(r'value="(http[^"]+\.ics)"', client.get("/bookings").get_data(as_text=True))
    assert feed

    url = feed.group(1)
    path = url.split("://", 1)[1].split("/", 1)[1]
    ics = client.get("/" + path)
    assert ics.status_code == 200 and ics.mimetype == "text/calendar"
    cal = Calendar.from_ical(ics.data)
    events = [c for c in cal.walk("VEVENT")]
    assert len(events) == 1 and str(events[0]["status"]) == "CANCELLED"
    assert str(events[0]["uid"]).startswith(f"booking-{b.id}@")
    assert int(events[0]["sequence"]) >= 1


def test_ical_round_trip_across_dst(client, app, make_member, open_machine, qualified) -> None:
    """A booking on the night the clocks go back keeps its real times in the feed."""
    from datetime import datetime

    machine = open_machine("laser-1")
    ada = make_member("ada@example.org")
    qualified(ada, machine)
    berlin = ZoneInfo("Europe/Berlin")
    # Last Sunday of October 2027, 01:30 to 04:00 local: 3.5 h of real time (02:00-03:00 happens twice).
    start = datetime(2027, 10, 31, 1, 30, tzinfo=berlin)
    end = datetime(2027, 10, 31, 4, 0, tzinfo=berlin)
    b = svc.create_booking(ada, machine, start, end, now=start - timedelta(days=3))
    ics = client.get("/ical/machine/laser-1.ics")
    cal = Calendar.from_ical(ics.data)
    ev = next(iter(cal.walk("VEVENT")))
    assert ev.decoded("dtstart") == b.start_at and ev.decoded("dtend") == b.end_at
    assert ev.decoded("dtend") - ev.decoded("dtstart") == timedelta(hours=3, minutes=30)
    assert "ada" not in ics.get_data(as_text=True).lower()  # public feed: no names


def test_policy_editor(client, make_member, open_machine) -> None:
    open_machine("laser-1")
    make_member("root@example.org", role="admin")
    login(client, "root@example.org")
    page = client.get("/admin/machines/laser-1/policy").get_data(as_text=True)
    assert "Opening hours" in page
    token = csrf_token(client, "/admin/machines/laser-1/policy")
    data = {"csrf_token": token, "slot_minutes": "30", "min_minutes": "30", "max_minutes": "120",
            "horizon_days": "7", "buffer_minutes": "15", "checkin_grace_minutes": "10", "max_hours_per_day": "2",
            "max_hours_per_week": "", "max_future_bookings": "2", "qualification_required": "y", "mode": "open",
            "mon": "09:00-21:00", "tue": "09:00-21:00", "wed": "09:00-21:00", "thu": "09:00-21:00",
            "fri": "09:00-13:00, 14:00-18:00", "sat": "", "sun": ""}
    resp = client.post("/admin/machines/laser-1/policy", data=data)
    assert resp.status_code == 302
    from fablab.models import Machine

    machine = db.session.scalar(select(Machine).where(Machine.slug == "laser-1"))
    assert machine.policy["max_minutes"] == 120 and machine.policy["opening_hours"]["sat"] == []
    assert machine.policy["max_hours_per_week"] is None
    bad = client.post("/admin/machines/laser-1/policy", data={**data, "mon": "nine to five"})
    assert bad.status_code == 422 and "nine to five" in bad.get_data(as_text=True)


def test_steward_blocks_machine(client, make_member, open_machine, qualified) -> None:
    machine = open_machine("laser-1")
    ada = make_member("ada@example.org")
    qualified(ada, machine)
    b = svc.create_booking(ada, machine, *slot(3))
    make_member("s@example.org", role="steward")
    login(client, "s@example.org")
    token = csrf_token(client, "/machines/laser-1/block")
    tz = ZoneInfo("Europe/Berlin")
    resp = client.post("/machines/laser-1/block", data={
        "csrf_token": token, "start": b.start_at.astimezone(tz).strftime("%Y-%m-%dT%H:%M"),
        "end": (b.end_at + timedelta(hours=1)).astimezone(tz).strftime("%Y-%m-%dT%H:%M"), "reason": "new tube"})
    assert resp.status_code == 302
    db.session.refresh(b)
    assert b.status == "cancelled" and "new tube" in b.cancel_reason
    assert db.session.scalar(select(Member).where(Member.email == "s@example.org")) is not None
