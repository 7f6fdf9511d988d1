"""Refusals on the booking pages reach the member where they acted, with the reason and one-tap ways out;
the form offers only what the rules accept; staff see who booked; the policy form names the right field
and lists the bookings a change would break."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from fablab.extensions import db
from fablab.models import Booking, Machine
from fablab.services import bookings as svc
from fablab.services import machines as machine_service
from tests.conftest import csrf_token, login

pytestmark = pytest.mark.dates

HX = {"HX-Request": "true"}
BERLIN = ZoneInfo("Europe/Berlin")
WEEK = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def next_week(weekday: int, at: str) -> datetime:
    """A local wall time in next week (Monday = 0), as UTC: always inside a 14-day horizon, in one week."""
    today = datetime.now(UTC).astimezone(BERLIN).date()
    day = today - timedelta(days=today.weekday()) + timedelta(days=7 + weekday)
    hh, mm = (int(x) for x in at.split(":"))
    return datetime.combine(day, time(hh, mm), tzinfo=BERLIN).astimezone(UTC)


def _form(client, slug: str, start: datetime) -> str:
    return client.get(f"/machines/{slug}/book", query_string={"start": start.isoformat()},
                      headers=HX).get_data(as_text=True)


def _post_book(client, slug: str, start: datetime, minutes: int):
    token = csrf_token(client, f"/machines/{slug}")
    return client.post(f"/machines/{slug}/book", data={"csrf_token": token, "start": start.isoformat(),
                                                      "minutes": str(minutes)}, headers=HX)


def test_form_offers_only_the_quota_left_and_refusal_offers_a_shorter_length(
        client, make_member, open_machine, qualified) -> None:
    machine = open_machine("laser-1", max_hours_per_week=2)
    ada = make_member("ada@example.org")
    qualified(ada, machine)
    svc.create_booking(ada, machine, next_week(1, "08:00"), next_week(1, "09:30"))
    login(client, "ada@example.org")
    start = next_week(1, "12:00")
    form = _form(client, "laser-1", start)
    offered = re.findall(r'<option value="(\d+)"', form)
    assert offered == ["30"], "only what is left of the weekly quota"
    # The form was opened earlier with more left; the member books 2 h: refused, with the shorter way out.
    resp = _post_book(client, "laser-1", start, 120)
    body = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert resp.headers["HX-Retarget"] == "#book-panel"
    assert 'data-refusal="quota_week_hours"' in body and "Max 2 h per week" in body
    assert "Book 30 min instead" in body
    assert 'name="minutes" value="30"' in body
    assert db.session.scalar(select(Booking).where(Booking.start_at == start)) is None


def test_quota_used_up_explains_before_the_member_tries(client, make_member, open_machine, qualified) -> None:
    machine = open_machine("laser-1", max_hours_per_week=1)
    ada = make_member("ada@example.org")
    qualified(ada, machine)
    svc.create_booking(ada, machine, next_week(2, "08:00"), next_week(2, "09:00"))
    login(client, "ada@example.org")
    start = next_week(2, "14:00")
    body = _form(client, "laser-1", start)
    assert "<select" not in body
    assert 'data-refusal="quota_week_hours"' in body and "Max 1 h per week" in body


def test_overlap_after_the_form_was_open_offers_next_free_and_waitlist(
        client, make_member, open_machine, qualified) -> None:
    machine = open_machine("laser-1")
    ada, bo = make_member("ada@example.org"), make_member("bo@example.org")
    qualified(ada, machine)
    qualified(bo, machine)
    login(client, "ada@example.org")
    start = next_week(3, "10:00")
    client.get("/machines/laser-1/book", query_string={"start": start.isoformat()}, headers=HX)
    svc.create_booking(bo, machine, start, start + timedelta(hours=1))  # someone else, meanwhile
    resp = _post_book(client, "laser-1", start, 60)
    body = resp.get_data(as_text=True)
    assert resp.status_code == 409
    assert 'data-refusal="overlap"' in body and "already booked" in body
    nxt = re.search(r'name="start" value="([^"]+)"><input type="hidden" name="minutes" value="60">', body)
    assert nxt and datetime.fromisoformat(nxt.group(1)) == start + timedelta(hours=1)
    assert "Book the next free time" in body and "Join the waitlist for this time" in body
    # the waitlist way out is a real form the scheduling page accepts
    wait_form = body[body.index('action="/scheduling/waitlist"'):]
    wait_form = wait_form[:wait_form.index("</form>")]
    fields = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', wait_form))
    joined = client.post("/scheduling/waitlist", data=fields)
    assert joined.status_code == 302
    from fablab.models.scheduling import WaitlistEntry

    entry = db.session.scalar(select(WaitlistEntry).where(WaitlistEntry.member_id == ada.id))
    assert entry is not None and entry.start_at == start and entry.end_at == start + timedelta(hours=1)
    # the one tap books it
    token = csrf_token(client, "/machines/laser-1")
    ok = client.post("/machines/laser-1/book", data={"csrf_token": token, "start": nxt.group(1), "minutes": "60"},
                     headers=HX)
    assert ok.status_code == 200 and "Booked" in ok.get_data(as_text=True)


def test_start_passed_while_the_form_was_open(client, make_member, open_machine, qualified) -> None:
    machine = open_machine("laser-1")
    ada = make_member("ada@example.org")
    qualified(ada, machine)
    login(client, "ada@example.org")
    now = datetime.now(UTC)
    start = now.replace(minute=0 if now.minute < 30 else 30, second=0, microsecond=0) - timedelta(hours=1)
    resp = _post_book(client, "laser-1", start, 60)
    body = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert 'data-refusal="in_the_past"' in body and "cannot start in the past" in body
    assert "Book the next free time" in body


def test_expired_qualification_is_explained_with_the_way_out(
        client, app, make_member, open_machine, monkeypatch) -> None:
    machine = open_machine("printer-1")
    ada = make_member("ada@example.org")
    steward = make_member("sam@example.org", role="steward", name="Sam Steward")
    machine_service.grant(ada, by=None, machine=machine, expires_at=datetime.now(UTC) - timedelta(days=3))
    machine_service.grant(steward, by=None, machine=machine)
    db.session.commit()
    login(client, "ada@example.org")
    page = client.get("/machines/printer-1").get_data(as_text=True)
    assert "You are qualification expired" not in page
    assert "Your qualification for Laser Cutter machines expired on" in page
    assert "Tap a free slot" not in page
    assert "A steward grants it" in page and "Sam Steward" not in page  # names only where the lab shows them
    start = next_week(1, "10:00")
    form = _form(client, "printer-1", start)
    assert "<select" not in form
    assert 'data-refusal="qualification_expired"' in form and "steward" in form
    monkeypatch.setitem(app.config, "FABLAB_CALENDAR_SHOW_NAMES", True)
    form = _form(client, "printer-1", start)
    assert "Ask:" in form and "Sam Steward" in form
    resp = _post_book(client, "printer-1", start, 60)
    assert resp.status_code == 422 and "Sam Steward" in resp.get_data(as_text=True)


def test_check_in_shown_only_when_it_would_succeed(client, make_member, open_machine, qualified) -> None:
    machine = open_machine("laser-1")
    ada = make_member("ada@example.org")
    qualified(ada, machine)
    b = svc.create_booking(ada, machine, next_week(4, "10:00"), next_week(4, "11:00"))
    login(client, "ada@example.org")
    page = client.get("/bookings").get_data(as_text=True)
    row = page[page.index(f'id="booking-{b.id}"'):]
    row = row[:row.index("</article>")]
    assert "Check in</button>" not in row and "Check-in opens" in row
    # pressed anyway (a page left open, a replayed request): refused in the row, with when it opens
    token = csrf_token(client, "/bookings")
    resp = client.post(f"/bookings/{b.id}/checkin", data={"csrf_token": token}, headers=HX)
    body = resp.get_data(as_text=True)
    assert resp.status_code == 422 and resp.headers.get("X-Fablab-Refusal") == "1"
    assert f'id="booking-{b.id}"' in body and 'data-refusal="checkin_closed"' in body
    assert "Check-in opens 15 minutes before the start" in body and "Come back at" in body


def test_staff_see_who_booked_members_do_not(client, app, make_member, open_machine, qualified,
                                             monkeypatch) -> None:
    machine = open_machine("laser-1")
    ada = make_member("ada@example.org", name="Ada Lovelace")
    make_member("bo@example.org", name="Bo Berg")
    make_member("sam@example.org", role="steward")
    qualified(ada, machine)
    now = datetime.now(UTC)
    start = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=2)
    b = svc.create_booking(ada, machine, start, start + timedelta(hours=1))
    login(client, "bo@example.org")
    page = client.get("/machines/laser-1").get_data(as_text=True)
    assert "Ada Lovelace" not in page and ">Booked<" in page.replace("\n", "").replace(" ", "")
    monkeypatch.setitem(app.config, "FABLAB_CALENDAR_SHOW_NAMES", True)
    assert "Ada Lovelace" in client.get("/machines/laser-1").get_data(as_text=True)
    monkeypatch.setitem(app.config, "FABLAB_CALENDAR_SHOW_NAMES", False)
    client.post("/logout", data={"csrf_token": csrf_token(client, "/machines/laser-1")})
    login(client, "sam@example.org")
    page = client.get("/machines/laser-1").get_data(as_text=True)
    assert f'href="/bookings/{b.id}"' in page and "Ada Lovelace" in page
    assert f'href="/admin/members/{ada.id}"' in page and f"#{ada.member_no}" in page


def test_week_folds_night_hours_and_shows_opening_hours(client, make_member, open_machine, qualified) -> None:
    machine = open_machine("laser-1")
    ada = make_member("ada@example.org")
    qualified(ada, machine)
    login(client, "ada@example.org")
    page = client.get("/machines/laser-1").get_data(as_text=True)
    assert "Open around the clock." in page
    machine.policy = {**machine.policy, "opening_hours": {**machine.policy["opening_hours"], "sat": [], "sun": []}}
    db.session.commit()
    page = client.get("/machines/laser-1").get_data(as_text=True)
    assert "Open: <span>Mon–Fri all day</span>; <span>Sat, Sun closed</span>." in page
    machine.policy = {**machine.policy, "opening_hours": {d: [["00:00", "24:00"]] for d in WEEK}}
    db.session.commit()
    page = client.get("/machines/laser-1").get_data(as_text=True)
    assert "Night hours" in page and "Show night hours" in page
    visible = len(re.findall(r"<tr><th scope=\"row\">", page))
    assert visible <= 32, "night rows (23:00–07:00) fold away"
    monday = re.search(r'week=([0-9-]+)&amp;night=1', page)
    assert monday
    full = client.get(f"/machines/laser-1/week?week={monday.group(1)}&night=1", headers=HX).get_data(as_text=True)
    assert len(re.findall(r"<tr><th scope=\"row\">", full)) == 48
    assert "Fold the night hours again" in full and "night=1" in full.split('aria-label="Next week"')[0][-200:]
    # a night booking keeps its row in view
    svc.create_booking(ada, machine, next_week(0, "02:00"), next_week(0, "03:00"))
    nxt = client.get(f"/machines/laser-1/week?week={next_week(0, '12:00').astimezone(BERLIN).date()}",
                     headers=HX).get_data(as_text=True)
    assert '<tr><th scope="row">02:00</th>' in nxt


def _policy_data(token: str, **over: str) -> dict[str, str]:
    data = {"csrf_token": token, "slot_minutes": "30", "min_minutes": "30", "max_minutes": "240",
            "horizon_days": "14", "buffer_minutes": "0", "checkin_grace_minutes": "15", "max_hours_per_day": "",
            "max_hours_per_week": "", "max_future_bookings": "", "qualification_required": "y", "mode": "open",
            **{d: "00:00-24:00" for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}}
    data.update(over)
    return data


def test_policy_error_is_shown_under_its_field(client, make_member, open_machine) -> None:
    open_machine("laser-1")
    make_member("root@example.org", role="admin")
    login(client, "root@example.org")
    token = csrf_token(client, "/admin/machines/laser-1/policy")
    resp = client.post("/admin/machines/laser-1/policy", data=_policy_data(token, tue="09:00-25:00"))
    body = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert 'id="tue-err"' in body and 'id="slot_minutes-err"' not in body
    assert "opening_hours.tue" not in body
    resp = client.post("/admin/machines/laser-1/policy", data=_policy_data(token, wed="nine to five"))
    assert 'id="wed-err"' in resp.get_data(as_text=True)
    resp = client.post("/admin/machines/laser-1/policy", data=_policy_data(token, min_minutes="300"))
    body = resp.get_data(as_text=True)
    assert 'id="max_minutes-err"' in body and "min_minutes" not in body.split('id="max_minutes-err"')[1][:200]


def test_lowering_a_limit_lists_the_bookings_it_breaks(client, make_member, open_machine, qualified) -> None:
    machine = open_machine("laser-1")
    ada = make_member("ada@example.org", name="Ada Lovelace")
    make_member("root@example.org", role="admin")
    qualified(ada, machine)
    first = svc.create_booking(ada, machine, next_week(1, "08:00"), next_week(1, "10:00"))
    second = svc.create_booking(ada, machine, next_week(2, "08:00"), next_week(2, "10:00"))
    login(client, "root@example.org")
    token = csrf_token(client, "/admin/machines/laser-1/policy")
    data = _policy_data(token, max_hours_per_week="3")
    resp = client.post("/admin/machines/laser-1/policy", data=data)
    body = resp.get_data(as_text=True)
    assert resp.status_code == 409, "not saved silently"
    assert 'id="broken-bookings"' in body and "Ada Lovelace" in body
    assert f'/bookings/{second.id}"' in body and f'/bookings/{first.id}"' not in body  # the one past the limit
    assert db.session.get(Machine, machine.id).policy["max_hours_per_week"] is None
    ids = re.search(r'name="broken_ids" value="([^"]*)"', body).group(1)
    # cancelling needs a reason
    resp = client.post("/admin/machines/laser-1/policy", data={**data, "broken_ids": ids, "existing": "cancel"})
    assert resp.status_code == 422 and "Say why" in resp.get_data(as_text=True)
    resp = client.post("/admin/machines/laser-1/policy", data={**data, "broken_ids": ids, "existing": "cancel",
                                                               "cancel_reason": "fewer hours for everyone"})
    assert resp.status_code == 302
    db.session.expire_all()
    assert db.session.get(Machine, machine.id).policy["max_hours_per_week"] == 3
    assert db.session.get(Booking, second.id).status == "cancelled"
    assert "fewer hours" in db.session.get(Booking, second.id).cancel_reason
    assert db.session.get(Booking, first.id).status == "confirmed"


def test_lowering_a_limit_may_keep_the_bookings(client, make_member, open_machine, qualified) -> None:
    machine = open_machine("laser-1")
    ada = make_member("ada@example.org")
    make_member("root@example.org", role="admin")
    qualified(ada, machine)
    long_one = svc.create_booking(ada, machine, next_week(3, "08:00"), next_week(3, "12:00"))
    login(client, "root@example.org")
    token = csrf_token(client, "/admin/machines/laser-1/policy")
    data = _policy_data(token, max_minutes="120")
    body = client.post("/admin/machines/laser-1/policy", data=data).get_data(as_text=True)
    assert "Max 2 h on this machine" in body
    ids = re.search(r'name="broken_ids" value="([^"]*)"', body).group(1)
    resp = client.post("/admin/machines/laser-1/policy", data={**data, "broken_ids": ids, "existing": "keep"})
    assert resp.status_code == 302
    db.session.expire_all()
    assert db.session.get(Machine, machine.id).policy["max_minutes"] == 120
    assert db.session.get(Booking, long_one.id).status == "confirmed"


def test_without_javascript_the_refusal_is_a_page_with_plain_forms(client, make_member, open_machine,
                                                                   qualified) -> None:
    machine = open_machine("laser-1")
    ada, bo = make_member("ada@example.org"), make_member("bo@example.org")
    qualified(ada, machine)
    qualified(bo, machine)
    start = next_week(4, "15:00")
    svc.create_booking(bo, machine, start, start + timedelta(hours=1))
    login(client, "ada@example.org")
    token = csrf_token(client, "/machines/laser-1")
    resp = client.post("/machines/laser-1/book", data={"csrf_token": token, "start": start.isoformat(),
                                                      "minutes": "60"})
    body = resp.get_data(as_text=True)
    assert resp.status_code == 409 and "<html" in body
    assert 'data-refusal="overlap"' in body and "Book the next free time" in body
    assert "hx-post" not in body.split('data-refusal="overlap"')[1], "no htmx target on this page"
    nxt = re.search(r'name="start" value="([^"]+)"><input type="hidden" name="minutes" value="60">', body)
    ok = client.post("/machines/laser-1/book", data={"csrf_token": token, "start": nxt.group(1), "minutes": "60"})
    assert ok.status_code == 302 and "/bookings/" in ok.location


def test_staff_see_the_stewards_to_ask_linked(client, make_member, open_machine) -> None:
    machine = open_machine("laser-1")
    make_member("root@example.org", role="admin", name="Root Admin")
    sam = make_member("sam@example.org", role="steward", name="Sam Steward")
    make_member("tim@example.org", role="steward", name="Tim Untrained")  # not qualified here: not listed
    machine_service.grant(sam, by=None, machine=machine)
    db.session.commit()
    login(client, "root@example.org")  # admins are not exempt from the qualification of a machine
    body = _form(client, "laser-1", next_week(1, "10:00"))
    assert 'data-refusal="not_qualified"' in body
    assert f'<a href="/admin/members/{sam.id}">Sam Steward</a>' in body
    assert "Tim Untrained" not in body


def test_a_slot_taken_before_the_tap_says_so_with_the_next_free_time(client, make_member, open_machine,
                                                                      qualified) -> None:
    machine = open_machine("laser-1")
    ada, bo = make_member("ada@example.org"), make_member("bo@example.org")
    qualified(ada, machine)
    qualified(bo, machine)
    start = next_week(2, "16:00")
    svc.create_booking(bo, machine, start, start + timedelta(hours=1))
    login(client, "ada@example.org")
    body = _form(client, "laser-1", start)
    assert "<select" not in body and 'data-refusal="overlap"' in body
    assert "Book the next free time" in body
