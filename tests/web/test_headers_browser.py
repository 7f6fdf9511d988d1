"""The script policy without 'unsafe-inline' in a real Chromium: the main pages (machines, a design with
its 3D viewer, the kiosk, account, kiosk admin, fairness report) report no CSP violation, and the small
behaviours moved from inline handlers into static/js/app.js still work."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest

from fablab.extensions import db
from fablab.services import designs as design_service
from fablab.services import kiosk as kiosk_service
from tests.designs.conftest import data
from tests.support.live_server import have_chromium

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not have_chromium(), reason="Debian chromium is not installed")]

# Runs before any page script: records every CSP violation, and counts print() calls (headless Chromium
# has no print dialog to look at).
WATCH = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push(e.violatedDirective + " " + (e.blockedURI || "inline") + " " + (e.sourceFile || ""));
});
window.__printed = 0;
window.print = () => { window.__printed += 1; };
"""


class Watched:
    """A page whose CSP violations, console errors and uncaught errors are collected."""

    def __init__(self, browser, base: str) -> None:
        self.ctx = browser.new_context(viewport={"width": 1280, "height": 900})
        self.ctx.add_init_script(WATCH)
        self.page = self.ctx.new_page()
        self.base = base
        self.problems: list[str] = []
        self.page.on("console", self._console)
        self.page.on("response", self._response)
        self.page.on("pageerror", lambda err: self.problems.append(f"pageerror: {err}"))

    def _console(self, msg) -> None:
        # A failed load shows as a console error without its URL; _response names it instead.
        if msg.type == "error" and not msg.text.startswith("Failed to load resource"):
            self.problems.append(f"console: {msg.text}")

    def _response(self, resp) -> None:
        if resp.status >= 400 and not resp.url.endswith("/favicon.ico"):  # no favicon is not a CSP matter
            self.problems.append(f"{resp.status} {resp.url}")

    def goto(self, path: str) -> None:
        resp = self.page.goto(self.base + path)
        assert resp is not None and resp.status == 200, (path, resp and resp.status)
        self.page.wait_for_load_state("load")

    def violations(self) -> list[str]:
        return list(self.page.evaluate("window.__csp")) + self.problems

    def sign_in(self, email: str) -> None:
        self.goto("/login")
        self.page.fill("input[name=email]", email)
        self.page.fill("input[name=password]", "correct-horse-9")
        self.page.click("button[type=submit]")
        self.page.wait_for_url(lambda url: "/login" not in url)


def _selected(page, selector: str) -> tuple[int, int, int]:
    return tuple(page.evaluate("(s) => { const el = document.querySelector(s);"
                               " return [el.selectionStart, el.selectionEnd, el.value.length]; }", selector))


def test_main_pages_run_without_inline_script(browser, server, app_ctx, make_member, make_machine) -> None:
    make_machine("laser-1", name="Laser One")
    ada = make_member("ada@example.org", name="Ada", role="admin")
    stl = design_service.Upload("part.stl", io.BytesIO(data("part_binary.stl")))
    design = design_service.create_design(ada, title="Viewer part", licence="CC-BY-4.0", files=[stl])
    db.session.commit()
    w = Watched(browser, server.url)
    w.sign_in("ada@example.org")

    w.goto("/")
    assert w.page.locator("text=Laser One").count() >= 1

    # The 3D viewer: three.js through the import map, which only its nonce lets run.
    w.goto(f"/designs/{design.id}")
    w.page.wait_for_selector('.design-viewer[data-viewer-state="ready"]', timeout=30_000)

    # Account: a new API token, selected on click for copying.
    w.goto("/account")
    w.page.fill("input[name='t-name']", "script")
    w.page.get_by_role("button", name="Create token").click()
    token_input = "input[aria-label='New API token']"
    w.page.wait_for_selector(token_input)
    w.page.click(token_input)
    start, end, length = _selected(w.page, token_input)
    assert length > 20 and (start, end) == (0, length)

    # Kiosk admin: the activation link, selected on click.
    w.goto("/kiosk/admin")
    w.page.fill("input[name=name]", "Front door")
    w.page.get_by_role("button", name="Register").click()
    link_input = "input[aria-label='Activation link']"
    w.page.wait_for_selector(link_input)
    w.page.click(link_input)
    start, end, length = _selected(w.page, link_input)
    assert length > 20 and (start, end) == (0, length)

    # Fairness report: Print opens the print dialog.
    w.goto("/fairness/report")
    w.page.get_by_role("button", name="Print").click()
    assert w.page.evaluate("window.__printed") == 1

    # data-close-form (the booking form's Close button) removes its form, also in content swapped in later.
    w.page.evaluate("""() => { const f = document.createElement('form'); f.id = 'swapped';
        f.innerHTML = '<button type="button" data-close-form>Close</button>'; document.body.append(f); }""")
    w.page.click("#swapped [data-close-form]")
    assert w.page.locator("#swapped").count() == 0

    assert w.violations() == []


def test_the_kiosk_runs_without_inline_script(browser, server, app_ctx, make_machine) -> None:
    make_machine("laser-1", name="Laser One")
    _, token = kiosk_service.register_kiosk("front", datetime.now(UTC))
    db.session.commit()
    w = Watched(browser, server.url)
    w.goto(f"/kiosk/activate/{token}")
    w.page.wait_for_selector("#board")
    assert "Laser One" in w.page.inner_text("#board")
    w.page.wait_for_timeout(300)  # kiosk.js has set up its listeners and timers
    assert w.violations() == []


def test_an_inline_script_is_blocked_and_reported(browser, server) -> None:
    """The watch above is not blind: an inline script and an on*= handler are refused and show up."""
    w = Watched(browser, server.url)
    w.goto("/login")
    w.page.evaluate("""() => { const s = document.createElement('script'); s.textContent = 'window.__ran = 1';
        document.body.append(s); const b = document.createElement('button'); b.id = 'inline';
        b.setAttribute('onclick', 'window.__ran = 2'); document.body.append(b); }""")
    w.page.click("#inline")
    assert w.page.evaluate("window.__ran") is None
    found = w.violations()
    assert any("script-src" in v for v in found), found
    assert len([v for v in found if v.startswith("script-src")]) >= 2, found
