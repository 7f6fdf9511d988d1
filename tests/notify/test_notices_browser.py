"""Notices in a real Chromium against the real app: the top bar's badge counts, the page marks read and the
badge follows; the kiosk shows a signed-in member's pending offer and warnings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import expect

from fablab.extensions import db
from fablab.models.types import utcnow
from fablab.services import kiosk as kiosk_service
from fablab.services import machines as machine_service
from fablab.services import notify
from fablab.services import waitlist as waitlist_service
from tests.support.live_server import artifact_dir, have_chromium
from tests.support.viewport import sign_in

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not have_chromium(), reason="Debian chromium is not installed")]

START = "2026-06-10T12:00:00+00:00"
AXE = Path(__file__).resolve().parents[2] / "static" / "vendor" / "axe-core" / "axe.min.js"
ALL_DAY = {d: [["00:00", "24:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
RULES = {"slot_minutes": 30, "min_minutes": 30, "max_minutes": 240, "opening_hours": ALL_DAY, "horizon_days": 14,
         "buffer_minutes": 0, "checkin_grace_minutes": 15, "max_hours_per_day": None, "max_hours_per_week": None,
         "max_future_bookings": None, "qualification_required": True}


def _tell(member, machine: str, kind: str = "booking_confirmed") -> None:
    notify.notify(member, kind, {"machine": machine, "start": START, "end": START}, now=utcnow(), link="/bookings")
    db.session.commit()


def test_badge_counts_and_follows_marking_read(browser, server, make_member) -> None:
    ada = make_member("ada@example.org", name="Ada Lovelace")
    bo = make_member("bo@example.org", name="Bo Berg")
    _tell(ada, "Laser One")
    _tell(ada, "Printer One")
    _tell(bo, "Bo's Lathe")
    page = browser.new_page()
    sign_in(page, server.url, "ada@example.org", "correct-horse-9")
    badge = page.locator("#notice-badge")
    expect(badge).to_contain_text("2 unread notices")
    expect(badge.locator(".notice-count")).to_have_text("2")
    badge.locator("a").click()
    page.wait_for_url("**/notices")
    items = page.locator("li.notice")
    expect(items).to_have_count(2)
    assert "Lathe" not in page.content()
    items.filter(has_text="Laser One").get_by_role("button", name="Mark read").click()
    expect(items.filter(has_text="Laser One")).to_have_class("notice read")
    expect(badge).to_contain_text("1 unread notice")  # the HX-Trigger from the answer refreshed the badge
    # A new notice arrives; the next poll (here: the tab becoming visible, as after switching back) shows it.
    _tell(ada, "Mill One")
    page.evaluate("htmx.trigger('#notice-badge', 'notices-visible')")
    expect(badge).to_contain_text("2 unread notices")
    # A hidden tab does not poll.
    polls: list[str] = []
    page.on("request", lambda r: polls.append(r.url) if r.url.endswith("/notices/count") else None)
    page.evaluate("""() => { Object.defineProperty(document, 'visibilityState', {value: 'hidden', configurable: true});
                             htmx.trigger('#notice-badge', 'notices-visible'); }""")
    page.wait_for_timeout(500)
    assert polls == []
    page.evaluate("() => { delete document.visibilityState; }")
    page.get_by_role("button", name="Mark all read").click()
    page.wait_for_load_state()
    expect(badge).to_contain_text("no unread notices")
    expect(page.locator("li.notice.unread")).to_have_count(0)


def _serious_axe_violations(page) -> list[str]:
    page.add_script_tag(path=str(AXE))
    found = page.evaluate("() => axe.run(document).then(r => r.violations.map(v => [v.impact, v.id, v.help]))")
    return [f"{i} {v}: {h}" for i, v, h in found if i in ("serious", "critical")]


def test_notices_pages_pass_axe(browser, server, make_member, tmp_path) -> None:
    ada = make_member("ada@example.org", name="Ada Lovelace")
    _tell(ada, "Laser One")
    ctx = browser.new_context(bypass_csp=True)  # the test injects axe; the pages keep their policy otherwise
    page = ctx.new_page()
    sign_in(page, server.url, "ada@example.org", "correct-horse-9")
    for path in ("/notices", "/notices/preferences"):
        page.goto(server.url + path)
        page.screenshot(path=str(artifact_dir(tmp_path) / f"notices{path.replace('/', '-')}.png"), full_page=True)
        assert _serious_axe_violations(page) == [], path
    ctx.close()


def test_kiosk_sign_in_shows_a_pending_offer_and_a_warning(browser, server, make_member, make_machine) -> None:
    laser = make_machine("laser-1", name="Laser One", policy=RULES)
    ada = make_member("ada@example.org", name="Ada Lovelace", badge="04A1B2C3", pin="2468")
    bo = make_member("bo@example.org", name="Bo Berg", badge="04FFEE11", pin="1357")
    for m in (ada, bo):
        machine_service.grant(m, by=None, machine=laser)
    db.session.commit()
    now = datetime.now(UTC)
    start = (now + timedelta(hours=3)).replace(minute=0, second=0, microsecond=0)
    waitlist_service.join_waitlist(ada, laser, kind="slot", start=start, end=start + timedelta(hours=1), now=now)
    db.session.commit()
    freed = waitlist_service.record_freed(laser, start, start + timedelta(hours=1), now)
    db.session.commit()
    assert freed is not None and waitlist_service.member_offers(ada, now)
    notify.notify(ada, "booking_cancelled_by_staff", {"machine": "Printer One", "start": START, "end": START,
                                                      "reason": "maintenance"}, now=utcnow())
    _tell(ada, "Laser One")  # not a warning: it stays off the kiosk
    db.session.commit()

    _device, token = kiosk_service.register_kiosk("front")
    db.session.commit()
    ctx = browser.new_context(viewport={"width": 1280, "height": 800}, has_touch=True)
    page = ctx.new_page()
    page.goto(f"{server.url}/kiosk/activate/{token}")
    page.wait_for_selector("#board")
    page.keyboard.type("04A1B2C3")
    page.keyboard.press("Enter")
    page.wait_for_selector("text=Hello, Ada")
    offer = page.locator(".k-offer")
    expect(offer).to_contain_text("Laser One")
    expect(offer.locator("[data-offer-left]")).to_contain_text("min left")
    claim = offer.get_by_role("button", name="Claim it")
    box = claim.bounding_box()
    assert box is not None and box["height"] >= 44  # touch-sized
    warnings = page.locator(".k-warning")
    expect(warnings).to_have_count(1)
    panel = page.inner_text("#panel")
    assert "Berg" not in panel  # nobody else's name
    claim.click()
    page.wait_for_selector(".k-done")
    assert "Booked Laser One" in page.inner_text("#panel")
    ctx.close()
