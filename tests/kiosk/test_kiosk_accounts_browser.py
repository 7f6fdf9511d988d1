"""The kiosk in Chromium: wrong PINs lock that member number, not the kiosk; signing out ends the kiosk
member's session on the server (a copied cookie no longer works)."""

from __future__ import annotations

import pytest

from tests.kiosk.test_kiosk_browser import _kiosk_page, _scan, lab  # noqa: F401
from tests.support.live_server import have_chromium

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not have_chromium(), reason="Debian chromium is not installed")]


def _pin(page, member_no: int, pin: str) -> None:
    if page.locator("#panel .k-keypad").count() == 0:
        page.click("text=Sign in with member number + PIN")
    page.wait_for_selector("#panel .k-keypad")
    for key in [*str(member_no), "ok", *pin]:
        page.click(f'#panel .k-key[data-key="{key}"]')
    with page.expect_response(lambda r: r.url.endswith("/kiosk/identify")):
        page.click('#panel .k-key[data-key="ok"]')
    page.wait_for_function("() => !document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling')")


def test_wrong_pins_lock_that_number_not_the_kiosk(browser, server, lab) -> None:  # noqa: F811
    page = _kiosk_page(browser, server)
    ada_no, bo_no = lab["ada"].member_no, lab["bo"].member_no
    for _ in range(5):
        _pin(page, ada_no, "9999")
        assert "Member number or PIN is wrong" in page.inner_text("#panel .k-error")
    error = page.inner_text("#panel .k-error")
    # everybody else, and every badge, still gets in
    _scan(page, "04FFEE11")
    page.wait_for_selector("text=Hello, Bo")
    assert f"Member number {ada_no} is locked for 30 seconds" in error and "Use your badge" in error
    page.click("#panel >> text=Sign out")
    page.wait_for_selector("text=Hold your badge to the reader")
    _pin(page, bo_no, "1357")
    page.wait_for_selector("text=Hello, Bo")
    page.click("#panel >> text=Sign out")
    page.wait_for_selector("text=Hold your badge to the reader")
    # Ada's number waits out its lock even with the right PIN, and the kiosk says how long
    _pin(page, ada_no, "2468")
    page.wait_for_selector(f"text=Member number {ada_no} is locked for")
    assert "Hello" not in page.inner_text("#panel")
    assert "seconds" in page.inner_text("#panel .k-error")
    _scan(page, "04A1B2C3")  # her badge works
    page.wait_for_selector("text=Hello, Ada")


def test_kiosk_sign_out_ends_the_session_a_copied_cookie_is_worthless(browser, server, lab) -> None:  # noqa: F811
    page = _kiosk_page(browser, server)
    _scan(page, "04A1B2C3")
    page.wait_for_selector("text=Hello, Ada")
    copied = page.context.cookies()  # the device cookie and the session cookie, as someone could copy them
    assert {c["name"] for c in copied} >= {"session", "fablab_kiosk"}
    page.click("#panel >> text=Sign out")
    page.wait_for_selector("text=Hold your badge to the reader")
    other = browser.new_context(viewport={"width": 1280, "height": 800})
    other.add_cookies(copied)
    thief = other.new_page()
    thief.goto(f"{server.url}/kiosk/")
    thief.wait_for_selector("#board")
    assert "Hold your badge to the reader" in thief.inner_text("#panel")
    assert "Ada" not in thief.inner_text("#panel")
    other.close()
