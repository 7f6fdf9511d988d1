"""The task board in a real Chromium (Debian's, driven by Playwright) against the real app server: work done
alone shows as unconfirmed, without a confirm button for its doer; a qualified peer confirms it in place."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from fablab.extensions import db
from fablab.models.scheduling import EffortTask
from fablab.services import effort as effort_service
from fablab.services import machines as machine_service
from tests.support.live_server import LiveServer, have_chromium

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not have_chromium(), reason="Debian chromium is not installed")]


def _signed_in(browser, server: LiveServer, email: str):
    page = browser.new_context().new_page()
    page.goto(f"{server.url}/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", "correct-horse-9")
    page.click("button[type=submit]")
    page.goto(f"{server.url}/tasks")
    return page


def test_unconfirmed_work_waits_for_a_peer_who_confirms_it_on_the_board(browser, server, make_member,
                                                                        make_machine) -> None:
    laser = make_machine("laser", name="Laser")
    make_member("alice@example.org", name="Alice Example")
    bob = make_member("bob@example.org", name="Bob Example")
    machine_service.grant(bob, by=None, machine=laser)
    db.session.commit()
    task = effort_service.create_task("Clean the laser lens", kind="cleaning", base_hours=1.0, machine=laser)
    task_id = task.id
    db.session.commit()

    alice = _signed_in(browser, server, "alice@example.org")
    card = alice.locator("article.task", has_text="Clean the laser lens")
    card.get_by_role("button", name="I'll do it").click()
    card.get_by_role("button", name="Done").click()
    waiting = alice.locator("section.awaiting")
    expect(waiting).to_contain_text("Clean the laser lens")
    expect(waiting.locator(".badge", has_text="unconfirmed")).to_be_visible()
    expect(alice.locator("#board .flash")).to_contain_text("they count once")
    expect(waiting.get_by_role("button", name="Confirm it was done")).to_have_count(0)  # not for one's own work

    peer = _signed_in(browser, server, "bob@example.org")
    peer.locator("section.awaiting").get_by_role("button", name="Confirm it was done").click()
    expect(peer.locator("#board .flash")).to_contain_text("the hours now count")
    expect(peer.locator("section.awaiting")).to_have_count(0)
    db.session.expire_all()
    assert db.session.get(EffortTask, task_id).confirmed_by_id == bob.id
