"""The planner in a real Chromium (Debian's, driven by Playwright) against the real app server: the day
view and a tap on a free cell, find-a-time, and a series with a conflict. Screenshots are kept as artifacts."""

from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from fablab.extensions import db
from fablab.models import Booking
from fablab.models.series import BookingSeries
from fablab.services import bookings as svc
from tests.planner.conftest import EVENINGS, at, soon
from tests.support.live_server import LiveServer, artifact_dir, have_chromium

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not have_chromium(), reason="Debian chromium is not installed")]


@pytest.fixture
def lab(machine, make_member, qualified):
    laser = machine("laser-1", name="Laser One", opening_hours=EVENINGS)
    laser2 = machine("laser-2", name="Laser Two", opening_hours=EVENINGS)
    printer = machine("printer-1", type_slug="3d_printer", name="Printer One")
    ada = make_member("ada@example.org", name="Ada Lovelace")
    bo = make_member("bo@example.org", name="Bo Berg")
    steward = make_member("steward@example.org", role="steward", name="Stew Ard")
    for m in (laser, laser2, printer):
        for who in (ada, bo, steward):
            qualified(who, m)
    day = soon(1)
    svc.create_booking(bo, laser, at(day, 17), at(day, 20))
    svc.create_booking(bo, laser2, at(day, 17), at(day, 18, 30))
    svc.create_booking(ada, printer, at(day, 18), at(day, 21))
    return {"laser": laser, "ada": ada, "bo": bo, "steward": steward, "day": day}


def _page(browser, server: LiveServer, email: str):
    ctx = browser.new_context(viewport={"width": 1400, "height": 900})
    page = ctx.new_page()
    errors: list[str] = []
    # script errors (a CSP refusal included) and failed loads of our own files; the favicon is not ours
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}")
            if r.status >= 400 and "favicon" not in r.url and r.request.resource_type != "document" else None)
    page.on("console", lambda m: errors.append(m.text)
            if m.type == "error" and "Failed to load resource" not in m.text else None)
    page.goto(f"{server.url}/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", "correct-horse-9")
    page.click("button[type=submit]")
    page.wait_for_url(f"{server.url}/")
    return page, errors


def test_day_view_navigate_and_tap_a_free_cell(browser, server, lab, tmp_path) -> None:
    out = artifact_dir(tmp_path)
    page, errors = _page(browser, server, "ada@example.org")
    page.goto(f"{server.url}/day")
    expect(page.locator("#day h1")).to_contain_text("today")
    # the next day, through the htmx navigation (the URL follows)
    page.click("a[rel=next]")
    expect(page.locator("#day h1")).to_contain_text(lab["day"].strftime("%A %d %B"))
    assert f"date={lab['day'].isoformat()}" in page.url
    laser = page.locator('tr[data-machine="laser-1"]')
    expect(laser.locator("td.booked")).to_have_text("Booked")
    expect(page.locator('tr[data-machine="printer-1"] td.mine a')).to_have_text("You")
    assert "Bo Berg" not in page.inner_text("#day")
    page.screenshot(path=str(out / "planner-day-member.png"), full_page=True)
    # the date picker shows another day at once (planner.js)
    later = lab["day"] + timedelta(days=1)
    page.fill("#pl-date", later.isoformat())
    page.dispatch_event("#pl-date", "change")
    expect(page.locator("#day h1")).to_contain_text(later.strftime("%A %d %B"))
    page.go_back()
    page.goto(f"{server.url}/day?date={lab['day'].isoformat()}")
    cell = laser.get_by_label("Book Laser One from 20:00")
    cell.click()
    page.wait_for_url("**/machines/laser-1?**")
    assert f"week={lab['day'].isoformat()}" in page.url and "start=" in page.url
    expect(page.locator("#week")).to_be_visible()
    # the tapped time opens the booking dialog at once, for that start
    expect(page.locator("#book-dialog")).to_be_visible()
    expect(page.locator("#book-dialog")).to_contain_text("20:00")
    assert errors == [], errors


def test_staff_see_names_in_the_day_view(browser, server, lab, tmp_path) -> None:
    page, errors = _page(browser, server, "steward@example.org")
    page.goto(f"{server.url}/day?date={lab['day'].isoformat()}")
    link = page.locator('tr[data-machine="laser-1"] td.booked a')
    expect(link).to_contain_text(f"Bo Berg · {lab['bo'].member_no}")
    page.screenshot(path=str(artifact_dir(tmp_path) / "planner-day-staff.png"), full_page=True)
    link.click()
    page.wait_for_url(f"**/admin/members/{lab['bo'].id}")
    assert errors == [], errors


def test_find_a_time_offers_the_earliest_slot_on_any_laser(browser, server, lab, tmp_path) -> None:
    page, errors = _page(browser, server, "ada@example.org")
    page.goto(f"{server.url}/find")
    page.select_option("#what", "type:laser_cutter")
    page.select_option("#minutes", "120")
    page.fill("#from", f"{lab['day'].isoformat()}T17:00")
    page.click("#find-form button[type=submit]")
    first = page.locator(".pl-results li").first
    expect(first).to_have_attribute("data-machine", "laser-2")
    expect(first).to_contain_text("18:30–20:30")
    page.screenshot(path=str(artifact_dir(tmp_path) / "planner-find.png"), full_page=True)
    first.get_by_role("link", name="Book").click()
    page.wait_for_url("**/machines/laser-2?**")
    assert errors == [], errors


def test_a_series_with_a_conflict_is_saved_after_confirmation(browser, server, lab, tmp_path) -> None:
    out = artifact_dir(tmp_path)
    page, errors = _page(browser, server, "steward@example.org")
    page.goto(f"{server.url}/series/new")
    expect(page.locator(".pl-for-booking")).to_be_hidden()  # the course needs no member number
    page.select_option("#machine", "laser-1")
    page.select_option("#kind", "booking")
    expect(page.locator(".pl-for-booking")).to_be_visible()
    page.select_option("#kind", "course")
    page.fill("#title", "Laser induction")
    day = lab["day"]
    page.select_option("#weekday", str(day.weekday()))
    page.fill("#start_time", "18:00")
    page.fill("#minutes", "60")
    page.fill("#first_day", day.isoformat())
    page.fill("#until", (day + timedelta(weeks=2)).isoformat())
    page.click("button[value=preview]")
    expect(page.locator("h2", has_text="Preview")).to_contain_text("2 of 3 can be created")
    conflict = page.locator("tr.conflict")
    expect(conflict).to_have_count(1)
    expect(conflict).to_contain_text("already booked")
    page.screenshot(path=str(out / "planner-series-preview.png"), full_page=True)
    page.click("button[value=save]")  # without the confirmation: refused, with the reason
    expect(page.locator(".flash-error")).to_contain_text("Tick the box")
    db.session.commit()
    assert db.session.scalar(select(BookingSeries)) is None
    page.check("#confirm")
    page.click("button[value=save]")
    expect(page.locator(".flash-ok")).to_contain_text("2 occurrence(s) created, 1 skipped")
    expect(page.locator(".pl-skipped")).to_contain_text("already booked")
    page.screenshot(path=str(out / "planner-series-saved.png"), full_page=True)
    # cancel the rest from the first occurrence; the browser asks first (planner.js)
    page.once("dialog", lambda d: d.accept())
    page.locator(".pl-occurrences tbody tr").first.locator("button[value=rest]").click()
    expect(page.locator(".flash-ok")).to_contain_text("2 occurrence(s) cancelled")
    db.session.commit()
    assert {b.status for b in db.session.scalars(select(Booking).where(Booking.series_id.is_not(None)))} == {
        "cancelled"}
    print("screenshots:", *sorted(p.name for p in out.glob("planner-*.png")))
    assert errors == [], errors
