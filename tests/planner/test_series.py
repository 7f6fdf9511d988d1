"""Recurring series for staff: preview with every occurrence checked, save the OK ones after confirmation,
the skipped ones listed, cancel one occurrence or the rest."""

from __future__ import annotations

import re
from datetime import date, time, timedelta

import pytest
from sqlalchemy import select

from fablab.domain.series import SeriesSpec
from fablab.extensions import db
from fablab.models import Booking
from fablab.models.series import BookingSeries, SeriesKind
from fablab.models.types import utcnow
from fablab.services import booking_series
from fablab.services import bookings as svc
from tests.conftest import csrf_token, login
from tests.planner.conftest import EVENINGS, at, lab_today, soon

pytestmark = pytest.mark.dates


@pytest.fixture
def lab(machine, make_member, qualified):
    laser = machine("laser-1", name="Laser One", opening_hours=EVENINGS, max_future_bookings=2)
    steward = make_member("steward@example.org", role="steward", name="Stew Ard")
    ada = make_member("ada@example.org", name="Ada Lovelace")
    for m in (steward, ada):
        qualified(m, laser)
    return {"laser": laser, "steward": steward, "ada": ada}


def _form(client, first: date, until: date, **kw) -> dict[str, str]:
    data = {"csrf_token": csrf_token(client, "/series/new"), "machine": "laser-1", "kind": "course",
            "title": "Laser induction", "weekday": str(first.weekday()), "start_time": "18:00", "minutes": "60",
            "every_weeks": "1", "first_day": first.isoformat(), "until": until.isoformat(), "action": "preview"}
    data.update({k: str(v) for k, v in kw.items()})
    return data


def _rows(page: str) -> list[tuple[str, str]]:
    return re.findall(r'<tr class="(ok|conflict)" data-index="(\d+)">', page)


def test_a_course_series_with_a_conflict_is_previewed_then_saved_after_confirmation(client, lab) -> None:
    first = soon(1)
    clash = svc.create_booking(lab["ada"], lab["laser"], at(first + timedelta(weeks=1), 18, 30),
                               at(first + timedelta(weeks=1), 19, 30))
    login(client, "steward@example.org")
    data = _form(client, first, first + timedelta(weeks=3))
    resp = client.post("/series/new", data=data)
    page = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "Preview: 3 of 4 can be created" in page
    assert [r[0] for r in _rows(page)] == ["ok", "conflict", "ok", "ok"]
    assert "This time is already booked" in page
    assert db.session.scalar(select(BookingSeries)) is None  # a preview saves nothing
    expected = re.search(r'name="expected" value="([^"]*)"', page).group(1)
    assert expected == "0,2,3"
    # saving with conflicts needs the explicit confirmation
    resp = client.post("/series/new", data={**data, "action": "save", "expected": expected})
    assert resp.status_code == 422 and "Tick the box" in resp.get_data(as_text=True)
    assert db.session.scalar(select(BookingSeries)) is None
    resp = client.post("/series/new", data={**data, "action": "save", "expected": expected, "confirm": "y"})
    assert resp.status_code == 302
    series = db.session.scalar(select(BookingSeries))
    occurrences = list(db.session.scalars(select(Booking).where(Booking.series_id == series.id)
                                          .order_by(Booking.start_at)))
    assert len(occurrences) == 3 and all(b.kind == "induction" and b.note == "Laser induction" for b in occurrences)
    assert {b.start_at.astimezone(svc.lab_tz()).strftime("%H:%M") for b in occurrences} == {"18:00"}
    assert [s["code"] for s in series.skipped] == ["overlap"]
    assert db.session.get(Booking, clash.id).status == "confirmed"  # the member's booking is untouched
    detail = client.get(resp.location).get_data(as_text=True)
    assert "3 occurrence(s) created, 1 skipped" in detail and "Skipped when saved" in detail
    assert "This time is already booked" in detail


def test_a_changed_answer_since_the_preview_is_shown_again(client, lab) -> None:
    first = soon(1)
    login(client, "steward@example.org")
    data = _form(client, first, first + timedelta(weeks=1))
    page = client.post("/series/new", data=data).get_data(as_text=True)
    expected = re.search(r'name="expected" value="([^"]*)"', page).group(1)
    assert expected == "0,1"
    svc.create_booking(lab["ada"], lab["laser"], at(first, 18), at(first, 19))  # taken meanwhile
    resp = client.post("/series/new", data={**data, "action": "save", "expected": expected})
    body = resp.get_data(as_text=True)
    assert resp.status_code == 409 and "changed since the preview" in body
    assert [r[0] for r in _rows(body)] == ["conflict", "ok"]
    assert db.session.scalar(select(BookingSeries)) is None


def test_a_members_series_follows_member_rules_and_a_course_may_plan_ahead(client, lab) -> None:
    first = soon(1)
    login(client, "steward@example.org")
    until = first + timedelta(weeks=5)
    member = client.post("/series/new", data=_form(client, first, until, kind="booking",
                                                   member_no=lab["ada"].member_no)).get_data(as_text=True)
    states = [r[0] for r in _rows(member)]
    assert states[:2] == ["ok", "ok"] and set(states[2:]) == {"conflict"}
    assert "Max 2 open bookings" in member and "days ahead" in member  # quota, then the horizon
    course = client.post("/series/new", data=_form(client, first, until)).get_data(as_text=True)
    assert {r[0] for r in _rows(course)} == {"ok"} and len(_rows(course)) == 6


def test_maintenance_series_asks_before_displacing_members(client, lab) -> None:
    first = soon(2)
    theirs = svc.create_booking(lab["ada"], lab["laser"], at(first, 18), at(first, 19))
    login(client, "steward@example.org")
    data = _form(client, first, first + timedelta(weeks=1), kind="maintenance", title="Clean the optics")
    page = client.post("/series/new", data=data).get_data(as_text=True)
    assert [r[0] for r in _rows(page)] == ["conflict", "ok"] and "Booked by Ada Lovelace" in page
    data["displace"] = "y"
    page = client.post("/series/new", data=data).get_data(as_text=True)
    assert [r[0] for r in _rows(page)] == ["ok", "ok"] and "cancels Ada Lovelace" in page
    resp = client.post("/series/new", data={**data, "action": "save", "expected": "0,1"})
    assert resp.status_code == 302
    blocks = list(db.session.scalars(select(Booking).where(Booking.kind == "maintenance")))
    assert len(blocks) == 2 and all(b.series_id is not None for b in blocks)
    gone = db.session.get(Booking, theirs.id)
    assert gone.status == "cancelled" and gone.cancel_reason == "Maintenance: Clean the optics"


def test_cancel_one_occurrence_or_this_and_the_rest(client, lab) -> None:
    first = soon(1)
    login(client, "steward@example.org")
    resp = client.post("/series/new", data={**_form(client, first, first + timedelta(weeks=3)), "action": "save"})
    series = db.session.scalar(select(BookingSeries))
    assert resp.status_code == 302
    ids = [b.id for b in db.session.scalars(select(Booking).where(Booking.series_id == series.id)
                                            .order_by(Booking.start_at))]
    token = csrf_token(client, f"/series/{series.id}")
    url = f"/series/{series.id}/occurrences/{{}}/cancel"
    assert client.post(url.format(ids[1]), data={"csrf_token": token, "scope": "one"}).status_code == 302
    status = {b.id: b.status for b in db.session.scalars(select(Booking))}
    assert [status[i] for i in ids] == ["confirmed", "cancelled", "confirmed", "confirmed"]
    resp = client.post(url.format(ids[2]), data={"csrf_token": token, "scope": "rest"})
    assert resp.status_code == 302 and "2 occurrence(s) cancelled" in client.get(resp.location).get_data(as_text=True)
    db.session.expire_all()
    status = {b.id: b.status for b in db.session.scalars(select(Booking))}
    assert [status[i] for i in ids] == ["confirmed", "cancelled", "cancelled", "cancelled"]
    assert db.session.get(BookingSeries, series.id).status == "active"
    client.post(url.format(ids[0]), data={"csrf_token": token, "scope": "rest"})
    db.session.expire_all()
    assert db.session.get(BookingSeries, series.id).status == "cancelled"
    # an occurrence of another series is not found here
    assert client.post(f"/series/{series.id + 1}/occurrences/{ids[0]}/cancel",
                       data={"csrf_token": token, "scope": "one"}).status_code == 404


def test_cancelling_a_members_occurrence_needs_a_reason(client, lab, make_member) -> None:
    first = soon(1)
    login(client, "steward@example.org")
    client.post("/series/new", data={**_form(client, first, first, kind="booking", member_no=lab["ada"].member_no),
                                     "action": "save"})
    series = db.session.scalar(select(BookingSeries))
    b = db.session.scalar(select(Booking).where(Booking.series_id == series.id))
    token = csrf_token(client, f"/series/{series.id}")
    resp = client.post(f"/series/{series.id}/occurrences/{b.id}/cancel", data={"csrf_token": token, "scope": "one"})
    assert resp.status_code == 422 and "Say why you cancel" in resp.get_data(as_text=True)
    resp = client.post(f"/series/{series.id}/occurrences/{b.id}/cancel",
                       data={"csrf_token": token, "scope": "one", "reason": "Course moved"})
    assert resp.status_code == 302 and db.session.get(Booking, b.id).cancel_reason == "Course moved"


@pytest.mark.parametrize("change,message", [
    ({"until": "first-1"}, "must end on or after its first day"),
    ({"kind": "booking", "member_no": "999999"}, "member number of an active member"),
    ({"kind": "booking"}, "needs their number"),
    ({"kind": "maintenance", "title": ""}, "Say what the maintenance is"),
    ({"minutes": "0"}, "Number must be between"),
    ({"machine": "nope"}, "Not a valid choice"),
])
def test_bad_series_are_refused_in_the_form(client, lab, change, message) -> None:
    first = soon(1)
    login(client, "steward@example.org")
    data = _form(client, first, first + timedelta(weeks=2))
    if change.get("until") == "first-1":
        change = {"until": (first - timedelta(days=1)).isoformat()}
    data.update(change)
    resp = client.post("/series/new", data=data)
    assert resp.status_code == 422 and message in resp.get_data(as_text=True)
    assert db.session.scalar(select(BookingSeries)) is None


def test_members_cannot_plan_series(client, lab) -> None:
    login(client, "ada@example.org")
    assert client.get("/series").status_code == 403
    assert client.get("/series/new").status_code == 403
    token = csrf_token(client, "/day")
    assert client.post("/series/new", data={"csrf_token": token}).status_code == 403


def test_occurrences_keep_the_wall_clock_over_the_spring_switch(app_ctx, lab) -> None:
    today = lab_today()
    year = today.year + (1 if today >= date(today.year, 3, 20) else 0)
    switch = max(date(year, 3, d) for d in range(25, 32) if date(year, 3, d).weekday() == 6)  # last Sunday
    first = switch - timedelta(days=6)  # the Monday before
    spec = SeriesSpec(first.weekday(), time(19, 0), 90, 1, first, first + timedelta(weeks=1))
    plan = booking_series.SeriesPlan(lab["laser"], SeriesKind.COURSE, lab["steward"], lab["steward"], spec, "Open lab")
    series = booking_series.save(plan, utcnow(), None)
    rows = booking_series.occurrences_of(series)
    assert [b.start_at.astimezone(svc.lab_tz()).strftime("%a %H:%M") for b in rows] == ["Mon 19:00", "Mon 19:00"]
    assert rows[0].start_at.utcoffset() == rows[1].start_at.utcoffset()
    assert rows[1].start_at - rows[0].start_at == timedelta(days=7) - timedelta(hours=1)
