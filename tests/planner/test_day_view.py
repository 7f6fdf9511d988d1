"""The day view across all machines: cells, who booked (staff only), links to book, refusals in the page."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from fablab.domain import policy as pol
from fablab.extensions import db
from fablab.models.types import utcnow
from fablab.services import bookings as svc
from tests.conftest import login
from tests.planner.conftest import EVENINGS, at, lab_today, soon

pytestmark = pytest.mark.dates  # runs once per frozen clock (tests/support/clock.py)


@pytest.fixture
def lab(machine, make_member, qualified):
    laser = machine("laser-1", name="Laser One", opening_hours=EVENINGS)
    printer = machine("printer-1", type_slug="3d_printer", name="Printer One")
    ada = make_member("ada@example.org", name="Ada Lovelace")
    bo = make_member("bo@example.org", name="Bo Berg")
    steward = make_member("steward@example.org", role="steward", name="Stew Ard")
    for m in (laser, printer):
        qualified(ada, m)
        qualified(bo, m)
    day = soon(1)
    mine = svc.create_booking(ada, laser, at(day, 18), at(day, 19))
    theirs = svc.create_booking(bo, printer, at(day, 19), at(day, 20, 30))
    svc.create_block(laser, steward, at(day, 20), at(day, 21), "Clean the lens")
    night = svc.create_booking(bo, printer, at(day, 2), at(day, 4))
    return {"laser": laser, "printer": printer, "ada": ada, "bo": bo, "steward": steward, "day": day,
            "mine": mine, "theirs": theirs, "night": night}


def _row(page: str, slug: str) -> str:
    found = re.search(rf'<tr data-machine="{slug}">(.*?)</tr>', page, re.S)
    assert found, f"no row for {slug}"
    return found.group(1)


def test_member_sees_free_booked_own_and_maintenance_but_no_names(client, lab) -> None:
    login(client, "ada@example.org")
    resp = client.get(f"/day?date={lab['day'].isoformat()}")
    page = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert ">Laser Cutter</th>" in page and ">3D Printer</th>" in page  # grouped by type
    laser, printer = _row(page, "laser-1"), _row(page, "printer-1")
    assert f'href="/bookings/{lab["mine"].id}">You</a>' in laser
    assert "Maintenance" in laser
    assert "Booked" in printer
    assert "Bo Berg" not in page and str(lab["bo"].member_no) not in printer
    # the lab's hours are the laser's (10-22); the printer's night folds into one column, with its booking
    assert ">00–10</th>" in page and ">22–00</th>" in page
    assert re.search(r'<td class="booked"[^>]*>Booked</td>', printer)
    # a free cell links to the machine page's calendar of that day, with the start
    links = re.findall(r'<a class="pl-slot" href="([^"]+)" aria-label="Book Laser One from (\d\d:\d\d)"', laser)
    assert links, "free cells are links"
    href, label = next((h, lbl) for h, lbl in links if lbl == "17:00")
    assert href.startswith(f"/machines/laser-1?week={lab['day'].isoformat()}&amp;start=")
    start = href.split("start=")[1]
    assert start == f"{at(lab['day'], 17).astimezone(pol.UTC):%Y-%m-%dT%H:%MZ}"
    assert client.get(href.replace("&amp;", "&")).status_code == 200


def test_staff_see_who_booked_with_member_number_and_a_link(client, lab) -> None:
    login(client, "steward@example.org")
    page = client.get(f"/day?date={lab['day'].isoformat()}").get_data(as_text=True)
    printer = _row(page, "printer-1")
    assert f'href="/admin/members/{lab["bo"].id}"' in printer
    assert f"Bo Berg · {lab['bo'].member_no}" in printer
    assert f"Ada Lovelace · {lab['ada'].member_no}" in _row(page, "laser-1")


def test_whole_day_unfolds_the_night(client, lab) -> None:
    login(client, "ada@example.org")
    page = client.get(f"/day?date={lab['day'].isoformat()}&hours=all").get_data(as_text=True)
    assert "pl-fold" not in page
    assert ">02</th>" in page and "Lab hours only" in page


def test_in_use_now_from_a_checked_in_booking_and_from_the_machine_itself(client, lab) -> None:
    now = utcnow()
    printer, laser = lab["printer"], lab["laser"]
    start = pol.current_slot_start(svc.policy_for(printer), now, svc.lab_tz())
    running = svc.create_booking(lab["ada"], printer, start, start + timedelta(hours=1), now=now)
    assert running.status == "checked_in"
    laser.live_state = "printing"
    db.session.commit()
    login(client, "bo@example.org")
    page = client.get("/day").get_data(as_text=True)
    assert re.search(r'<td class="inuse"[^>]*>In use</td>', _row(page, "printer-1"))
    if laser_open_now := any(a <= now < b for a, b in pol.opening_pairs(svc.policy_for(laser), now - timedelta(hours=1),
                                                                       now + timedelta(hours=1), svc.lab_tz())):
        assert "In use" in _row(page, "laser-1")
    assert laser_open_now or "laser-1" in page


def test_htmx_navigation_gets_the_partial(client, lab) -> None:
    login(client, "ada@example.org")
    resp = client.get(f"/day?date={lab['day'].isoformat()}", headers={"HX-Request": "true"})
    body = resp.get_data(as_text=True)
    assert resp.status_code == 200 and body.lstrip().startswith("{#") is False
    assert '<section id="day"' in body and "<html" not in body


@pytest.mark.parametrize("raw,expect", [("2026-13-40", "is not a date"), ("yesterday", "is not a date")])
def test_a_bad_date_is_refused_in_the_page(client, lab, raw, expect) -> None:
    login(client, "ada@example.org")
    resp = client.get(f"/day?date={raw}")
    page = resp.get_data(as_text=True)
    assert resp.status_code == 400 and expect in page and 'type="date"' in page


def test_a_day_too_far_away_says_which_days_can_be_shown(client, lab) -> None:
    login(client, "ada@example.org")
    far = lab_today() + timedelta(days=400)
    resp = client.get(f"/day?date={far.isoformat()}")
    assert resp.status_code == 400 and "a year ahead" in resp.get_data(as_text=True)
    assert client.get(f"/day?date={(lab_today() - timedelta(days=10)).isoformat()}").status_code == 200


def test_anonymous_visitors_are_sent_to_sign_in(client, lab) -> None:
    resp = client.get("/day")
    assert resp.status_code == 302 and "/login" in resp.location


@pytest.mark.parametrize("day,columns", [("2026-03-29", 46), ("2026-10-25", 50), ("2026-06-14", 48)])
def test_dst_days_have_as_many_half_hours_as_the_day_has(app_ctx, machine, make_member, day, columns) -> None:
    from datetime import date

    from fablab.services import day_view

    machine("printer-1", type_slug="3d_printer")
    viewer = make_member("ada@example.org")
    d = date.fromisoformat(day)
    now = pol.local_midnight(d, svc.lab_tz()) - timedelta(days=1)
    view = day_view.build_day(viewer, d, now, svc.lab_tz())
    labels = [c.start.astimezone(svc.lab_tz()).strftime("%H:%M") for c in view.columns]
    assert len(view.columns) == columns and not any(c.collapsed for c in view.columns)  # open around the clock
    assert labels[0] == "00:00" and labels[-1] == "23:30"
    assert view.columns[-1].end == pol.local_midnight(d + timedelta(days=1), svc.lab_tz())
    row = view.groups[0].rows[0]
    assert sum(c.span for c in row.cells) == columns and row.free_count == columns


def test_out_of_order_machines_say_so(client, lab) -> None:
    lab["laser"].status = "out_of_order"
    db.session.commit()
    login(client, "ada@example.org")
    laser = _row(client.get(f"/day?date={lab['day'].isoformat()}").get_data(as_text=True), "laser-1")
    assert "out of order" in laser and "pl-slot" not in laser and "Out of order</td>" in laser
