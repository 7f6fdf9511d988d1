"""Accessibility: axe-core (vendored from npm, injected from its file; never served to visitors) runs in
Debian's Chromium on every main page of the demo lab, for the role that uses it; no serious or critical
violation may remain. Full-page screenshots are kept as test artifacts."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from fablab.demo.lab import DEMO_PASSWORD, seed
from fablab.extensions import db
from fablab.models.designs import Design
from fablab.services import kiosk as kiosk_service
from tests.support.live_server import artifact_dir, have_chromium
from tests.support.viewport import sign_in

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not have_chromium(), reason="Debian chromium is not installed")]

AXE = Path(__file__).resolve().parents[2] / "static" / "vendor" / "axe-core" / "axe.min.js"
BAD = ("serious", "critical")


@pytest.fixture
def demo(app_ctx) -> dict[str, int]:
    seed()
    design = db.session.scalar(select(Design).order_by(Design.id).limit(1))
    assert design is not None
    return {"design": design.id}


def _axe(page) -> list[str]:
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("""() => axe.run(document, {resultTypes: ['violations']}).then(r => r.violations.map(v => ({
        id: v.id, impact: v.impact, help: v.help,
        nodes: v.nodes.slice(0, 3).map(n => n.target.join(' ') + ' :: ' + (n.failureSummary || '').split('\\n')[1])
      })))""")
    return [f"{v['impact']} {v['id']}: {v['help']} at {v['nodes']}" for v in result if v["impact"] in BAD]


def _check(page, url: str, name: str, out: Path, problems: list[str]) -> None:
    resp = page.goto(url)
    assert resp is not None and resp.status == 200, f"{url}: {resp and resp.status}"
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(out / f"a11y-{name}.png"), full_page=True)
    problems.extend(f"{name} ({url}): {p}" for p in _axe(page))


def test_axe_finds_no_serious_violations_on_main_pages(browser, server, demo, tmp_path) -> None:
    out = artifact_dir(tmp_path)
    problems: list[str] = []
    base = server.url
    # bypass_csp: the test injects axe as a script of its own; the pages keep their policy otherwise.
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    page = ctx.new_page()
    _check(page, f"{base}/login", "login", out, problems)
    _check(page, f"{base}/designs", "designs-anonymous", out, problems)
    sign_in(page, base, "ada@fablab.example", DEMO_PASSWORD)
    for name, path in [("machines", "/"), ("machine", "/machines/laser-epilog"), ("designs", "/designs"),
                       ("design", f"/designs/{demo['design']}"), ("my-bookings", "/bookings"),
                       ("account", "/account"), ("day-view", "/day"),
                       ("find-a-time", "/find?what=type:laser_cutter&minutes=60"),
                       ("scheduling", "/scheduling"), ("tasks", "/tasks"), ("usage", "/usage")]:
        _check(page, base + path, name, out, problems)
    ctx.close()

    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    page = ctx.new_page()
    sign_in(page, base, "admin@fablab.example", DEMO_PASSWORD)
    _check(page, f"{base}/fairness", "fairness-review", out, problems)
    _check(page, f"{base}/series/new", "series-form", out, problems)
    _check(page, f"{base}/day", "day-view-staff", out, problems)
    ctx.close()

    # End this session's read snapshot first: the server wrote since (sign-ins open server-side sessions),
    # and SQLite refuses to turn a stale read transaction into a write.
    db.session.rollback()
    _device, token = kiosk_service.register_kiosk("a11y")
    db.session.commit()
    ctx = browser.new_context(viewport={"width": 1280, "height": 800}, bypass_csp=True)
    page = ctx.new_page()
    page.goto(f"{base}/kiosk/activate/{token}")
    page.wait_for_selector("#board")
    problems.extend(f"kiosk: {p}" for p in _axe(page))
    page.click("text=Sign in with member number + PIN")
    page.wait_for_selector(".k-keypad")
    problems.extend(f"kiosk keypad: {p}" for p in _axe(page))
    page.screenshot(path=str(out / "a11y-kiosk-keypad.png"))
    ctx.close()
    assert not problems, "\n".join(problems)


def test_axe_is_not_served_to_visitors(client) -> None:
    assert AXE.is_file()
    for path in ("/static/vendor/axe-core/axe.min.js", "/static/vendor/./axe-core/axe.min.js"):
        assert client.get(path).status_code == 404, path
    assert client.get("/static/vendor/htmx/htmx.min.js").status_code == 200
