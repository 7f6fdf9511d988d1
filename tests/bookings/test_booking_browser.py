"""The booking pages in a real Chromium (Debian's, driven by Playwright) against the real app server:
the dialog opens in view, and every refusal shows its message where the member acted.

The server runs in this process, so time_machine moves its clock too: a form left open while the start
passes, or a check-in pressed after its grace, is a clock move between two taps (the browser keeps the
real clock; it only shows what the server says)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from sqlalchemy import select

from fablab.extensions import db
from fablab.models import Booking
from fablab.services import bookings as svc
from fablab.services import machines as machine_service
from tests.support.live_server import LiveServer, artifact_dir, have_chromium

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not have_chromium(), reason="Debian chromium is not installed")]

BERLIN = ZoneInfo("Europe/Berlin")
ALL_DAY = {d: [["00:00", "24:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
RULES = {"slot_minutes": 30, "min_minutes": 30, "max_minutes": 240, "opening_hours": ALL_DAY, "horizon_days": 14,
         "buffer_minutes": 0, "checkin_grace_minutes": 15, "max_hours_per_day": None, "max_hours_per_week": None,
         "max_future_bookings": None, "qualification_required": True}


@pytest.fixture
def lab(app_ctx, make_member, make_machine):
    laser = make_machine("laser-1", name="Laser One", policy=RULES)
    ada = make_member("ada@example.org", name="Ada Lovelace")
    bo = make_member("bo@example.org", name="Bo Berg")
    machine_service.grant(ada, by=None, machine=laser)
    machine_service.grant(bo, by=None, machine=laser)
    db.session.commit()
    return {"laser": laser, "ada": ada, "bo": bo}


def local(day_offset: int, at: time) -> datetime:
    """A wall time `day_offset` days from today in Berlin, as UTC."""
    day = datetime.now(UTC).astimezone(BERLIN).date() + timedelta(days=day_offset)
    return datetime.combine(day, at, tzinfo=BERLIN).astimezone(UTC)


def _page(browser, server: LiveServer, email: str, *, width: int = 1280, height: int = 800, touch: bool = False):
    ctx = browser.new_context(viewport={"width": width, "height": height}, has_touch=touch, is_mobile=touch)
    page = ctx.new_page()
    page.goto(f"{server.url}/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", "correct-horse-9")
    page.click("button[type=submit]")
    page.wait_for_selector("text=Sign out")
    return page


def _label(t: datetime) -> str:
    return f"Book from {t.astimezone(BERLIN):%a %H:%M}"


def _in_viewport(page, selector: str) -> None:
    box = page.locator(selector).bounding_box()
    vp = page.viewport_size
    assert box is not None, f"{selector} is not shown"
    assert box["y"] >= 0 and box["y"] + box["height"] <= vp["height"] + 1, (box, vp)
    assert box["x"] >= 0 and box["x"] + box["width"] <= vp["width"] + 1, (box, vp)


@pytest.mark.parametrize("size", [(1280, 800), (390, 844)], ids=["desktop", "phone"])
def test_dialog_opens_in_view_from_the_last_row(browser, server, lab, tmp_path, size) -> None:
    width, height = size
    page = _page(browser, server, "ada@example.org", width=width, height=height, touch=width < 600)
    page.goto(f"{server.url}/machines/laser-1")
    last = page.locator("table.calendar tbody tr:not(.fold)").last.locator("button.slot").last
    last.scroll_into_view_if_needed()
    assert page.evaluate("window.scrollY") > 400, "the last row is far below the top of the calendar"
    if width < 600:
        last.tap()
    else:
        last.click()
    page.wait_for_selector("#book-dialog[open] select#minutes")
    _in_viewport(page, "#book-dialog")
    assert page.evaluate("document.activeElement.id") == "minutes", "the choice has the focus"
    out = artifact_dir(tmp_path)
    page.screenshot(path=str(out / f"booking-dialog-{width}.png"))
    page.keyboard.press("Escape")
    page.wait_for_selector("#book-dialog", state="hidden")
    assert page.evaluate("document.activeElement.classList.contains('slot')"), "focus back on the slot"
    # folded night hours: a 24 h machine's week is not 2,000 px tall
    assert page.locator("tr.fold-night").count() >= 1


def test_overlap_refusal_in_the_dialog_and_next_free_in_one_tap(browser, server, lab, tmp_path) -> None:
    page = _page(browser, server, "ada@example.org")
    start = local(1, time(10, 0))
    page.goto(f"{server.url}/machines/laser-1")
    page.get_by_label(_label(start)).click()
    page.wait_for_selector("#book-dialog[open] select#minutes")
    page.select_option("#minutes", "60")
    svc.create_booking(lab["bo"], lab["laser"], start, start + timedelta(hours=1))  # meanwhile, someone else
    page.click("#book-dialog button.primary:has-text('Book')")
    refusal = page.locator("#book-dialog [data-refusal=overlap]")
    refusal.wait_for()
    assert "already booked" in refusal.inner_text()
    _in_viewport(page, "#book-dialog")
    page.screenshot(path=str(artifact_dir(tmp_path) / "booking-refusal-overlap.png"))
    refusal.locator("button", has_text="Book the next free time").click()
    page.wait_for_selector("#week .flash-ok")
    assert "Booked Laser One" in page.inner_text("#week")
    db.session.expire_all()
    mine = db.session.scalar(select(Booking).where(Booking.member_id == lab["ada"].id))
    assert mine is not None and mine.start_at == start + timedelta(hours=1)


def test_weekly_quota_refusal_offers_the_length_left(browser, server, lab, app_ctx, tmp_path) -> None:
    lab["laser"].policy = {**RULES, "max_hours_per_week": 2}
    db.session.commit()
    today = datetime.now(UTC).astimezone(BERLIN).date()
    monday = today - timedelta(days=today.weekday()) + timedelta(days=7)
    start = datetime.combine(monday + timedelta(days=1), time(12, 0), tzinfo=BERLIN).astimezone(UTC)
    page = _page(browser, server, "ada@example.org")
    page.goto(f"{server.url}/machines/laser-1?week={monday.isoformat()}")
    page.get_by_label(_label(start)).click()
    page.wait_for_selector("#book-dialog[open] select#minutes")
    page.select_option("#minutes", "120")
    # booked elsewhere (the kiosk, another tab) while this form was open: 30 min of the quota remain
    early = start - timedelta(hours=3)
    svc.create_booking(lab["ada"], lab["laser"], early, early + timedelta(minutes=90))
    page.click("#book-dialog button.primary:has-text('Book')")
    refusal = page.locator("#book-dialog [data-refusal=quota_week_hours]")
    refusal.wait_for()
    assert "Max 2 h per week" in refusal.inner_text()
    assert page.locator("#minutes option").all_inner_texts()[-1].startswith("30 min"), "only what is left"
    page.screenshot(path=str(artifact_dir(tmp_path) / "booking-refusal-quota.png"))
    refusal.locator("button", has_text="Book 30 min instead").click()
    page.wait_for_selector("#week .flash-ok")
    db.session.expire_all()
    assert db.session.scalar(select(Booking).where(Booking.start_at == start)).end_at == start + timedelta(minutes=30)


def test_expired_qualification_shows_the_way_out(browser, server, lab, app_ctx, tmp_path) -> None:
    machine_service.grant(lab["bo"], by=None, machine=lab["laser"], expires_at=datetime.now(UTC) - timedelta(days=2))
    db.session.commit()
    page = _page(browser, server, "bo@example.org")
    page.goto(f"{server.url}/machines/laser-1")
    note = page.locator("#week [data-refusal=qualification]")
    assert "expired on" in note.inner_text() and "steward" in note.inner_text()
    assert "Tap a free slot" not in page.inner_text("#week")
    assert "You are qualification expired" not in page.content()
    page.get_by_label(_label(local(1, time(10, 0)))).click()
    refusal = page.locator("#book-dialog[open] [data-refusal=qualification_expired]")
    refusal.wait_for()
    assert "steward" in refusal.inner_text()
    assert page.locator("#book-dialog select").count() == 0, "no lengths offered that would be refused"
    page.screenshot(path=str(artifact_dir(tmp_path) / "booking-refusal-qualification.png"))


def test_start_passed_and_check_in_closed_while_the_page_was_open(browser, server, lab, tmp_path) -> None:
    # The clock only moves forward here: a session cookie signed "later" is not valid "earlier".
    ten = local(1, time(10, 0))
    out = artifact_dir(tmp_path)
    with time_machine.travel(ten + timedelta(minutes=10), tick=True):
        b = svc.create_booking(lab["ada"], lab["laser"], ten + timedelta(minutes=30), ten + timedelta(minutes=90))
        page = _page(browser, server, "ada@example.org")
        page.goto(f"{server.url}/machines/laser-1")
        page.get_by_label(_label(ten)).click()  # the slot running now may still be booked
        page.wait_for_selector("#book-dialog[open] select#minutes")
        with time_machine.travel(ten + timedelta(minutes=31), tick=True):
            page.click("#book-dialog button.primary:has-text('Book')")
            refusal = page.locator("#book-dialog [data-refusal=in_the_past]")
            refusal.wait_for()
            assert "cannot start in the past" in refusal.inner_text()
            assert refusal.locator("button", has_text="Book the next free time").count() == 1
            page.screenshot(path=str(out / "booking-refusal-start-passed.png"))
            page.goto(f"{server.url}/bookings")
            row = page.locator(f"#booking-{b.id}")
            check_in = row.locator("button", has_text="Check in")
            assert check_in.count() == 1
            with time_machine.travel(ten + timedelta(minutes=50), tick=True):  # the grace ran out meanwhile
                check_in.click()
                refusal = row.locator("[data-refusal=checkin_closed]")
                refusal.wait_for()
                assert "Check-in closed" in refusal.inner_text()
                page.screenshot(path=str(out / "booking-refusal-checkin.png"))


def test_check_in_not_offered_days_before(browser, server, lab) -> None:
    b = svc.create_booking(lab["ada"], lab["laser"], local(3, time(10, 0)), local(3, time(11, 0)))
    page = _page(browser, server, "ada@example.org")
    page.goto(f"{server.url}/bookings")
    row = page.locator(f"#booking-{b.id}")
    assert row.locator("button", has_text="Check in").count() == 0
    assert "Check-in opens" in row.inner_text()
