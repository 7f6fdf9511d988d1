"""The kiosk fits the screens by the door: at 800×480 and 1280×800 every key of the keypad, "Hello" and
"Sign out", and the booking buttons of the free machines are on the screen without scrolling (Debian's
Chromium through Playwright, the real app server). Screenshots are kept as test artifacts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fablab.domain import policy as pol
from fablab.extensions import db
from fablab.services import bookings as svc
from fablab.services import kiosk as kiosk_service
from fablab.services import machines as machine_service
from tests.support.live_server import LiveServer, artifact_dir, have_chromium
from tests.support.viewport import off_screen, page_extent

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not have_chromium(), reason="Debian chromium is not installed")]

ALL_DAY = {d: [["00:00", "24:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
RULES = {"slot_minutes": 30, "min_minutes": 30, "max_minutes": 240, "opening_hours": ALL_DAY, "horizon_days": 14,
         "buffer_minutes": 0, "checkin_grace_minutes": 15, "max_hours_per_day": None, "max_hours_per_week": None,
         "max_future_bookings": None, "qualification_required": True}
SIZES = [(800, 480), (1280, 800)]
KEYS = [str(d) for d in range(10)] + ["back", "ok"]


@pytest.fixture
def lab(app_ctx, make_member, make_machine):
    """Six machines as in a small lab: four free for Ada, one in use by Bo, one she is not qualified for."""
    ada = make_member("ada@example.org", name="Ada Lovelace", badge="04A1B2C3", pin="2468")
    bo = make_member("bo@example.org", name="Bo Berg", badge="04FFEE11", pin="1357")
    names = [("prusa-1", "Prusa MK4 #1", "3d_printer"), ("prusa-2", "Prusa MK4 #2", "3d_printer"),
             ("laser-epilog", "Epilog Fusion Pro 32", "laser_cutter"), ("laser-k40", "K40 laser", "laser_cutter"),
             ("solder-1", "Soldering station 1", "electronics"), ("cnc", "Shapeoko 4 XXL", "cnc_mill")]
    machines = {slug: make_machine(slug, name=name, type_slug=t, policy=RULES) for slug, name, t in names}
    for slug in ("prusa-1", "prusa-2", "laser-epilog", "laser-k40", "solder-1"):
        machine_service.grant(ada, by=None, machine=machines[slug])
    machine_service.grant(bo, by=None, machine=machines["solder-1"])
    db.session.commit()
    now = datetime.now(UTC)
    solder = machines["solder-1"]
    start = pol.current_slot_start(svc.policy_for(solder), now, svc.lab_tz())
    svc.create_booking(bo, solder, start, start + timedelta(hours=2), now=now)
    db.session.commit()
    return {"ada": ada, "machines": machines}


def _kiosk(browser, server: LiveServer, size: tuple[int, int]):
    _device, token = kiosk_service.register_kiosk(f"door-{size[0]}")
    db.session.commit()
    ctx = browser.new_context(viewport={"width": size[0], "height": size[1]}, has_touch=True)
    page = ctx.new_page()
    page.goto(f"{server.url}/kiosk/activate/{token}")
    page.wait_for_selector("#board")
    return page


def _assert_fits(page, *selectors: str) -> None:
    ext = page_extent(page)
    assert ext["sw"] <= ext["w"] and ext["sh"] <= ext["h"], f"the kiosk page scrolls: {ext}"
    problems = [p for s in selectors for p in off_screen(page, s)]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
def test_kiosk_flow_fits_the_screen(browser, server, lab, size, tmp_path) -> None:
    out = artifact_dir(tmp_path)
    tag = f"{size[0]}x{size[1]}"
    page = _kiosk(browser, server, size)
    page.screenshot(path=str(out / f"kiosk-{tag}-board.png"))
    _assert_fits(page, "text=Hold your badge to the reader", "text=Sign in with member number + PIN")

    page.click("text=Sign in with member number + PIN")
    page.wait_for_selector(".k-keypad")
    page.screenshot(path=str(out / f"kiosk-{tag}-keypad.png"))
    _assert_fits(page, ".k-keypad-title", "[data-role=display]", *[f'.k-key[data-key="{k}"]' for k in KEYS])
    for digit in str(lab["ada"].member_no):
        page.click(f'.k-key[data-key="{digit}"]')
    page.click('.k-key[data-key="ok"]')
    for digit in "2468":
        page.click(f'.k-key[data-key="{digit}"]')
    page.click('.k-key[data-key="ok"]')
    page.wait_for_selector("text=Hello, Ada")

    # Every machine Ada may book now shows its buttons on screen; the one in use and the one she is not
    # qualified for say why, without buttons.
    free = ["prusa-1", "prusa-2", "laser-epilog", "laser-k40"]
    for slug in free:
        assert page.locator(f'.k-book-row[data-machine="{slug}"] .k-book-form button').count() >= 1, slug
    page.screenshot(path=str(out / f"kiosk-{tag}-member.png"))
    _assert_fits(page, ".k-member-head h1", ".k-member-head button",
                 *[f'.k-book-row[data-machine="{slug}"] .k-book-form button' for slug in free])
    print("screenshots:", *sorted(out.glob(f"kiosk-{tag}-*.png")))


def test_signed_in_panel_opens_at_its_top(browser, server, lab, tmp_path) -> None:
    """A panel scrolled down by the last member opens at "Hello" for the next one."""
    page = _kiosk(browser, server, (800, 480))
    page.keyboard.type("04A1B2C3")
    page.keyboard.press("Enter")
    page.wait_for_selector("text=Hello, Ada")
    page.evaluate("document.getElementById('panel').scrollTop = 10000")
    page.click(".k-member-head button")  # sign out
    page.wait_for_selector("text=Hold your badge to the reader")
    page.keyboard.type("04A1B2C3")
    page.keyboard.press("Enter")
    page.wait_for_selector("text=Hello, Ada")
    assert page.evaluate("document.getElementById('panel').scrollTop") == 0
    _assert_fits(page, ".k-member-head h1", ".k-member-head button")


def test_manifest_lets_the_kiosk_run_full_screen(browser, server, lab, client) -> None:
    page = _kiosk(browser, server, (1280, 800))
    href = page.locator("link[rel=manifest]").get_attribute("href")
    assert href
    manifest = page.evaluate("href => fetch(href).then(r => r.json())", href)
    assert manifest["display"] in ("fullscreen", "standalone")
    assert manifest["start_url"] == "/kiosk/"
    assert manifest["icons"] and all(client.get(i["src"]).status_code == 200 for i in manifest["icons"])
