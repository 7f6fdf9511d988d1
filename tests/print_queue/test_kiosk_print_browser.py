"""The kiosk's "Start my print — I checked the bed" in a real Chromium against the real app server."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fablab.extensions import db
from fablab.models.print_jobs import PrintJob
from fablab.services import kiosk as kiosk_service
from fablab.services import print_offers, print_queue
from tests.support.live_server import have_chromium

from .conftest import BADGE, next_slot_booking

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not have_chromium(), reason="Debian chromium is not installed")]


def test_kiosk_starts_a_ready_print_only_after_the_bed_check(browser, server, lab) -> None:
    booking = next_slot_booking(lab["ada"], lab["printer"])
    job = print_queue.queue_job(lab["ada"], lab["printer"], print_queue.design_source(lab["file"].id),
                                booking_id=booking.id, now=datetime.now(UTC))
    print_offers.offer_due_jobs(booking.start_at)
    job.state = "ready"  # as the bridge's job/result ready does (end to end in test_print_flow)
    job.outbox = None
    db.session.commit()
    _, token = kiosk_service.register_kiosk("print corner")
    db.session.commit()
    page = browser.new_context(viewport={"width": 1280, "height": 800}, has_touch=True).new_page()
    page.goto(f"{server.url}/kiosk/activate/{token}")
    page.wait_for_selector("#board")
    page.keyboard.type(BADGE)
    page.keyboard.press("Enter")
    card = page.locator(f'[data-print="{job.id}"]')
    card.wait_for()
    card.locator("button", has_text="Start my print").click()  # the unticked box stops the form
    page.wait_for_timeout(500)
    db.session.commit()  # end the read snapshot: the server wrote meanwhile
    db.session.expire_all()
    assert db.session.get(PrintJob, job.id).state == "ready"
    card.locator('input[name="bed_checked"]').check()
    card.locator("button", has_text="Start my print").click()
    page.wait_for_selector(".k-done")
    assert "Starting benchy.gcode on Prusa Q" in page.inner_text("#panel")
    db.session.commit()  # end the read snapshot: the server wrote meanwhile
    db.session.expire_all()
    row = db.session.get(PrintJob, job.id)
    assert row.state == "started" and row.started_by == "kiosk" and row.outbox == "start"
