"""Two-factor sign-in in a real browser, on a phone: the setup page's QR code fits the screen, the key can
be read off the page, and signing in goes through the code page. (Real clock: the sign-in uses a recovery
code, so it does not wait for the next 30-second step.)"""

from __future__ import annotations

import re

import pyotp
import pytest

from tests.support.clock import cheap_password_hashing
from tests.support.live_server import artifact_dir, have_chromium
from tests.support.viewport import page_extent

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not have_chromium(), reason="Debian chromium is not installed")]


def test_enrol_and_sign_in_with_the_code_page_on_a_phone(make_member, browser, server, tmp_path) -> None:
    with cheap_password_hashing():
        make_member("ada@example.org", name="Ada")
    out = artifact_dir(tmp_path)
    ctx = browser.new_context(viewport={"width": 360, "height": 740}, is_mobile=True, has_touch=True)
    page = ctx.new_page()
    page.goto(f"{server.url}/login")
    page.fill("input[name=email]", "ada@example.org")
    page.fill("input[name=password]", "correct-horse-9")
    page.click("main button[type=submit]")
    page.goto(f"{server.url}/account")
    page.click("#two-factor a.button")
    page.click("text=Start the setup")
    qr = page.locator("[data-qr] svg")
    box = qr.bounding_box()
    assert box and box["width"] >= 150 and box["x"] >= 0 and box["x"] + box["width"] <= 360, box
    assert page_extent(page)["sw"] <= 360
    page.screenshot(path=str(out / "two-factor-setup-360.png"), full_page=True)
    secret = page.locator("[data-secret]").inner_text().replace(" ", "")
    page.fill("input[name=code]", pyotp.TOTP(secret).now())
    page.click("text=Turn on two-factor sign-in")
    codes = [c.strip() for c in page.locator("[data-recovery-codes] code").all_inner_texts()]
    assert len(codes) == 10 and all(re.fullmatch(r"[a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4}", c) for c in codes)

    page.click("form.signout button")
    page.goto(f"{server.url}/login")
    page.fill("input[name=email]", "ada@example.org")
    page.fill("input[name=password]", "correct-horse-9")
    page.click("main button[type=submit]")
    page.wait_for_url(re.compile(r"/login/2fa$"))
    page.screenshot(path=str(out / "two-factor-code-360.png"), full_page=True)
    page.fill("input[name=code]", "000000")
    page.click("main button[type=submit]")
    assert page.locator(".error").inner_text().startswith("That code is not right")
    page.fill("input[name=code]", codes[0])
    page.click("main button[type=submit]")
    page.wait_for_load_state()
    assert "/login" not in page.url
    assert "9 left" in page.content()
    ctx.close()
