"""Signing up for an induction at the kiosk, in a real Chromium against the real app server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from fablab.domain import inductions as ind
from fablab.extensions import db
from fablab.models import Role
from fablab.models.inductions import InductionSignup
from fablab.services import inductions as svc
from fablab.services import kiosk as kiosk_service
from fablab.services import machines as machine_service
from tests.support.live_server import LiveServer, have_chromium

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not have_chromium(), reason="Debian chromium is not installed")]


@pytest.fixture
def lab(app_ctx, make_member, make_machine):
    """A printer session with one place; Bo's printer qualification expired, Ada's is valid."""
    printer = make_machine("printer-1", name="Printer One", type_slug="3d_printer")
    steward = make_member("steward@example.org", Role.STEWARD, name="Sam Steward")
    ada = make_member("ada@example.org", name="Ada Lovelace", badge="04A1B2C3", pin="2468")
    bo = make_member("bo@example.org", name="Bo Berg", badge="04FFEE11", pin="1357")
    cy = make_member("cy@example.org", name="Cy Clone", badge="04CCCC11", pin="1111")
    machine_service.grant(ada, by=None, machine_type=printer.machine_type)
    machine_service.grant(bo, by=None, machine_type=printer.machine_type,
                          expires_at=datetime.now(UTC) - timedelta(days=3))
    db.session.commit()
    start = (datetime.now(UTC) + timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
    s = svc.schedule(steward, printer.machine_type, start, start + timedelta(hours=2), capacity=1, place="Print corner")
    db.session.commit()
    return {"session": s, "ada": ada, "bo": bo, "cy": cy}


def _kiosk_page(browser, server: LiveServer):
    _, token = kiosk_service.register_kiosk("front")
    db.session.commit()
    page = browser.new_context(viewport={"width": 1280, "height": 800}, has_touch=True).new_page()
    page.goto(f"{server.url}/kiosk/activate/{token}")
    page.wait_for_selector("#board")
    return page


def _scan(page, uid: str, hello: str) -> None:
    page.keyboard.type(uid)
    page.keyboard.press("Enter")
    page.wait_for_selector(f"text=Hello, {hello}")


def _status(member_id: int) -> str | None:
    db.session.rollback()  # a fresh snapshot: the server wrote in another connection
    return db.session.scalar(select(InductionSignup.status).where(InductionSignup.member_id == member_id))


def test_sign_up_then_waitlist_at_the_kiosk(browser, server, lab) -> None:
    s = lab["session"]
    page = _kiosk_page(browser, server)
    _scan(page, "04A1B2C3", "Ada")  # qualified: the session is not offered to her
    assert page.locator(f'[data-induction="{s.id}"]').count() == 0
    page.click("text=Sign out")
    page.wait_for_selector("text=Hello, Ada", state="detached")

    _scan(page, "04FFEE11", "Bo")  # expired: he may take it
    row = page.locator(f'[data-induction="{s.id}"]')
    assert "1 places left" in row.inner_text()
    row.locator("button", has_text="Sign up").click()
    page.wait_for_selector(".k-done")
    assert "Signed up for the 3D Printer induction" in page.inner_text("#panel")
    assert _status(lab["bo"].id) == ind.CONFIRMED

    page.wait_for_selector("text=Hello, Bo", state="detached")  # signed out after the action
    _scan(page, "04CCCC11", "Cy")
    row = page.locator(f'[data-induction="{s.id}"]')
    assert "full: waitlist" in row.inner_text()
    row.locator("button", has_text="Join the waitlist").click()
    page.wait_for_selector(".k-done")
    assert "number 1 on the waitlist" in page.inner_text("#panel")
    assert _status(lab["cy"].id) == ind.WAITLISTED
