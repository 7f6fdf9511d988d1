"""The kiosk in a real Chromium (Debian's, driven by Playwright) against the real app server."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from fablab.domain import policy as pol
from fablab.extensions import db
from fablab.models import Booking
from fablab.services import bookings as svc
from fablab.services import kiosk as kiosk_service
from fablab.services import machines as machine_service
from fablab.services.members import create_api_token
from tests.support.live_server import LiveServer, artifact_dir, have_chromium

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not have_chromium(), reason="Debian chromium is not installed")]

ALL_DAY = {d: [["00:00", "24:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
RULES = {"slot_minutes": 30, "min_minutes": 30, "max_minutes": 240, "opening_hours": ALL_DAY, "horizon_days": 14,
         "buffer_minutes": 0, "checkin_grace_minutes": 15, "max_hours_per_day": None, "max_hours_per_week": None,
         "max_future_bookings": None, "qualification_required": True}


@pytest.fixture
def lab(app_ctx, make_member, make_machine):
    """Two all-day machines, a qualified member with badge and PIN, one with an expired qualification."""
    laser = make_machine("laser-1", name="Laser One", type_slug="laser_cutter", policy=RULES)
    printer = make_machine("printer-1", name="Printer One", type_slug="3d_printer", policy=RULES)
    ada = make_member("ada@example.org", name="Ada Lovelace", badge="04A1B2C3", pin="2468")
    bo = make_member("bo@example.org", name="Bo Berg", badge="04FFEE11", pin="1357")
    for m in (laser, printer):
        machine_service.grant(ada, by=None, machine=m)
    machine_service.grant(bo, by=None, machine=laser)
    machine_service.grant(bo, by=None, machine=printer, expires_at=datetime.now(UTC) - timedelta(days=3))
    db.session.commit()
    return {"laser": laser, "printer": printer, "ada": ada, "bo": bo}


def _kiosk_page(browser, server: LiveServer, name: str = "front"):
    device, token = kiosk_service.register_kiosk(name)
    db.session.commit()
    ctx = browser.new_context(viewport={"width": 1280, "height": 800}, has_touch=True)
    page = ctx.new_page()
    page.goto(f"{server.url}/kiosk/activate/{token}")
    page.wait_for_selector("#board")
    return page


def _scan(page, uid: str) -> None:
    page.keyboard.type(uid)
    page.keyboard.press("Enter")


def test_unregistered_screen_shows_nothing(browser, server, lab) -> None:
    page = browser.new_page()
    resp = page.goto(f"{server.url}/kiosk/")
    assert resp.status == 403
    assert "not registered" in page.content()
    assert "Laser One" not in page.content()


def test_badge_book_now_and_sign_out(browser, server, lab, tmp_path) -> None:
    page = _kiosk_page(browser, server)
    out = artifact_dir(tmp_path)
    page.screenshot(path=str(out / "kiosk-board.png"))
    assert "Ada" not in page.content()  # nobody's data before someone identifies
    _scan(page, "04A1B2C3")
    page.wait_for_selector("text=Hello, Ada")
    page.screenshot(path=str(out / "kiosk-member.png"))
    print("screenshots:", out / "kiosk-board.png", out / "kiosk-member.png")
    row = page.locator('.k-book-row[data-machine="laser-1"]')
    row.locator("button", has_text="1 h").first.click()
    page.wait_for_selector(".k-done")
    assert "Booked Laser One" in page.inner_text("#panel")
    db.session.commit()
    booking = db.session.scalar(select(Booking).where(Booking.member_id == lab["ada"].id))
    assert booking is not None and booking.source == "kiosk"
    # signed out after the action: the confirmation clears itself and no member data remains
    page.wait_for_selector("text=Hold your badge to the reader", timeout=10000)
    assert "Ada" not in page.inner_text("#panel")


def test_unknown_badge_and_lockout(browser, server, lab) -> None:
    page = _kiosk_page(browser, server)
    _scan(page, "DEADBEEF")
    page.wait_for_selector(".k-error")
    assert "not known" in page.inner_text(".k-error")
    for _ in range(4):
        _scan(page, "DEADBEEF")
        page.wait_for_timeout(150)
    page.wait_for_selector("text=locked for")
    _scan(page, "04A1B2C3")  # even a good badge waits out the lock
    page.wait_for_selector("text=locked for")
    assert "Hello" not in page.inner_text("#panel")


def test_pin_login_check_in_and_extend(browser, server, lab) -> None:
    # 15-minute slots: the next slot starts within check-in reach (check-in opens 15 min before).
    lab["laser"].policy = {**RULES, "slot_minutes": 15, "min_minutes": 15}
    db.session.commit()
    now = datetime.now(UTC)
    policy = svc.policy_for(lab["laser"])
    start = pol.ceil_to_slot(policy, now + timedelta(seconds=1), svc.lab_tz())
    booking = svc.create_booking(lab["ada"], lab["laser"], start, start + timedelta(hours=1), now=now)
    assert booking.status == "confirmed"
    page = _kiosk_page(browser, server)
    page.click("text=Sign in with member number + PIN")
    for digit in str(lab["ada"].member_no):
        page.click(f'.k-key[data-key="{digit}"]')
    page.click('.k-key[data-key="ok"]')
    assert page.inner_text(".k-keypad-title") == "PIN"
    for digit in "2468":
        page.click(f'.k-key[data-key="{digit}"]')
    assert page.inner_text("[data-role=display]") == "••••"  # the PIN is never shown
    page.click('.k-key[data-key="ok"]')
    page.wait_for_selector("text=Hello, Ada")
    page.click(f'[data-booking="{booking.id}"] >> text=Check in')
    page.wait_for_selector(".k-done")
    assert "Checked in on Laser One" in page.inner_text("#panel")
    _scan(page, "04A1B2C3")
    page.wait_for_selector("text=Hello, Ada")
    page.locator(f'[data-booking="{booking.id}"] button', has_text="Extend to").first.click()
    page.wait_for_selector(".k-done")
    assert "Extended Laser One" in page.inner_text("#panel")
    db.session.commit()  # end the test's read snapshot: the server wrote since
    db.session.expire_all()
    b = db.session.get(Booking, booking.id)
    assert b.status == "checked_in" and b.end_at == start + timedelta(hours=1, minutes=15)


def test_wrong_pin(browser, server, lab) -> None:
    page = _kiosk_page(browser, server)
    page.click("text=Sign in with member number + PIN")
    for digit in str(lab["ada"].member_no) + "o" + "1111" + "o":
        page.click(f'.k-key[data-key="{"ok" if digit == "o" else digit}"]')
    page.wait_for_selector(".k-error")
    assert "Member number or PIN is wrong" in page.inner_text(".k-error")


def test_expired_qualification_and_rule_shown(browser, server, lab) -> None:
    page = _kiosk_page(browser, server)
    _scan(page, "04FFEE11")
    page.wait_for_selector("text=Hello, Bo")
    row = page.locator('.k-book-row[data-machine="printer-1"]')
    assert "expired" in row.inner_text().lower()
    assert row.locator("button").count() == 0


def test_two_kiosks_same_slot_one_wins_other_sees_next_free(browser, server, lab) -> None:
    a = _kiosk_page(browser, server, "door")
    b = _kiosk_page(browser, server, "workshop")
    _scan(a, "04A1B2C3")
    _scan(b, "04FFEE11")
    a.wait_for_selector("text=Hello, Ada")
    b.wait_for_selector("text=Hello, Bo")
    a.locator('.k-book-row[data-machine="laser-1"] button', has_text="1 h").first.click()
    a.wait_for_selector(".k-done")
    b.locator('.k-book-row[data-machine="laser-1"] button', has_text="1 h").first.click()
    b.wait_for_selector(".k-error")
    text = b.inner_text(".k-error")
    assert "booked by someone else" in text or "overlap" in text.lower() or "booked" in text
    assert "Book the next free slot" in text
    b.click("text=Book the next free slot")
    b.wait_for_selector(".k-done")
    assert "Booked Laser One" in b.inner_text("#panel")


def test_auto_sign_out_after_inactivity(app, browser, server, lab) -> None:
    app.config["FABLAB_KIOSK_IDLE_SECONDS"] = 2
    try:
        page = _kiosk_page(browser, server)
        _scan(page, "04A1B2C3")
        page.wait_for_selector("text=Hello, Ada")
        page.wait_for_selector("text=Hold your badge to the reader", timeout=8000)
        assert "Ada" not in page.inner_text("body")
    finally:
        app.config["FABLAB_KIOSK_IDLE_SECONDS"] = 60


def test_board_updates_after_api_booking_and_survives_restart(app, browser, server, lab, client) -> None:
    page = _kiosk_page(browser, server)
    row = page.locator('.k-machine[data-machine="printer-1"]')
    assert row.get_attribute("data-state") == "free"
    token = create_api_token(lab["ada"])
    db.session.commit()
    now = datetime.now(UTC)
    start = pol.current_slot_start(svc.policy_for(lab["printer"]), now, svc.lab_tz())
    resp = client.post("/api/v1/bookings", headers={"Authorization": f"Bearer {token}"},
                       json={"machine": "printer-1", "start": start.isoformat(), "minutes": 60})
    assert resp.status_code == 201, resp.json
    expect(row).not_to_have_attribute("data-state", "free", timeout=12000)  # polled, no reload
    assert "In use" in row.inner_text() or "until" in row.inner_text()
    assert re.search(r"\d\d:\d\d:\d\d", page.inner_text("#updated"))
    # the server goes away: the page says so and keeps polling; it recovers when the server is back
    port = server.port
    server.stop()
    page.wait_for_selector("text=Reconnecting", timeout=15000)
    server.port = port
    server.start()
    expect(page.locator("#conn")).to_have_text("", timeout=15000)
    assert page.locator('.k-machine[data-machine="printer-1"]').count() == 1


def test_out_of_order_machine_is_shown_and_not_bookable(browser, server, lab) -> None:
    lab["printer"].status = "out_of_order"
    db.session.commit()
    page = _kiosk_page(browser, server)
    row = page.locator('.k-machine[data-machine="printer-1"]')
    assert row.get_attribute("data-state") == "out_of_order" and "Out of order" in row.inner_text()
    _scan(page, "04A1B2C3")
    page.wait_for_selector("text=Hello, Ada")
    book_row = page.locator('.k-book-row[data-machine="printer-1"]')
    assert "Out of order" in book_row.inner_text() and book_row.locator("button").count() == 0
