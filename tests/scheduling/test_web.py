"""Fair scheduling pages: a member ranks slots, the admin closes the window, results show seed and reasons."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from fablab.domain import lottery
from fablab.extensions import db
from fablab.models import Booking
from fablab.models.scheduling import RequestWindow, SlotRequest, WaitlistEntry
from fablab.services import windows as window_service
from tests.conftest import csrf_token, login
from tests.scheduling.conftest import hour

pytestmark = pytest.mark.dates  # runs once per frozen clock (tests/support/clock.py)


def _window(machine, now=None):
    now = now or datetime.now(UTC)
    p0 = hour(now) + timedelta(days=2)
    return window_service.open_window(machine, None, now, period_start=p0, period_end=p0 + timedelta(hours=6),
                                      closes_at=now + timedelta(days=1))


def test_member_ranks_slots_admin_closes_and_results_explain(client, make_member, window_machine,
                                                             qualified_members) -> None:
    machine = window_machine()
    window_service.update_policy(machine, "window", request_minutes=120, quota_slots=1)
    alice, bob = qualified_members(machine, 2)
    make_member("admin@example.org", role="admin")
    w = _window(machine)
    slots = window_service.window_slots(w)
    assert [s.end - s.start for s in slots] == [timedelta(hours=2)] * 3

    login(client, alice.email)
    page = client.get(f"/scheduling/machines/{machine.slug}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert w.commitment in html and "Your rank" in html
    token = csrf_token(client, f"/scheduling/machines/{machine.slug}")
    resp = client.post(f"/scheduling/windows/{w.id}/requests",
                       data={"csrf_token": token, f"rank:{slots[0].key}": "1", f"rank:{slots[1].key}": "2",
                             f"rank:{slots[2].key}": ""})
    assert resp.status_code == 302
    assert sorted(r.rank for r in db.session.scalars(select(SlotRequest).where(SlotRequest.member_id == alice.id))) \
        == [1, 2]
    # saving again replaces the preference list
    client.post(f"/scheduling/windows/{w.id}/requests", data={"csrf_token": token, f"rank:{slots[0].key}": "1"})
    assert [r.start_at for r in db.session.scalars(select(SlotRequest).where(SlotRequest.member_id == alice.id))] \
        == [slots[0].start]
    window_service.add_request(bob, w, slots[0].start, slots[0].end, 1)
    client.post("/logout", data={"csrf_token": token})

    login(client, "admin@example.org")
    admin_page = client.get(f"/admin/scheduling/{machine.slug}")
    assert admin_page.status_code == 200
    token = csrf_token(client, f"/admin/scheduling/{machine.slug}")
    resp = client.post(f"/admin/scheduling/windows/{w.id}/close", data={"csrf_token": token})
    assert resp.status_code == 302 and f"/scheduling/windows/{w.id}" in resp.location
    client.post("/logout", data={"csrf_token": token})

    db.session.expire_all()
    w = db.session.get(RequestWindow, w.id)
    assert w.status == "closed" and lottery.verify(w.revealed_seed, w.commitment)
    loser = next(r for r in w.requests if r.status == "waitlisted")
    login(client, loser.member.email)
    html = client.get(f"/scheduling/windows/{w.id}").get_data(as_text=True)
    assert w.revealed_seed in html and w.commitment in html
    assert "SHA-256(seed) = commitment" in html and "re-running the draw gives this result" in html
    assert "lost the lottery" in html  # equal F (no use yet): the lottery decided, and the loser is told
    assert "you are on the waitlist" in html
    trace = client.get(f"/scheduling/windows/{w.id}/trace.json").json
    assert trace["seed"] == w.revealed_seed and trace["trace"]["requests"]
    # the other member's name is never on the page
    winner = next(r for r in w.requests if r.status == "granted").member
    assert winner.email not in html and winner.name not in html
    wl_page = client.get("/scheduling/waitlist").get_data(as_text=True)
    assert machine.name in wl_page


def test_lazy_close_on_read_when_the_worker_is_down(client, window_machine, qualified_members) -> None:
    machine = window_machine()
    (alice,) = qualified_members(machine, 1)
    now = datetime.now(UTC) - timedelta(hours=2)
    p0 = hour(now) + timedelta(days=2)
    w = window_service.open_window(machine, None, now, period_start=p0, period_end=p0 + timedelta(hours=6),
                                   closes_at=now + timedelta(hours=1))
    window_service.add_request(alice, w, p0, p0 + timedelta(hours=1), now=now)
    login(client, alice.email)
    html = client.get(f"/scheduling/windows/{w.id}").get_data(as_text=True)  # its close passed an hour ago
    assert "granted" in html and w.secret_seed in html
    assert db.session.scalar(select(Booking).where(Booking.member_id == alice.id)) is not None


def test_fair_share_page_explains_in_plain_words(client, window_machine, qualified_members) -> None:
    machine = window_machine()
    (alice,) = qualified_members(machine, 1)
    login(client, alice.email)
    html = client.get("/scheduling").get_data(as_text=True)
    assert machine.name in html and "Your priority is 1.00" in html and "first in line" in html


def test_waitlist_join_leave_and_claim_via_pages(client, window_machine, qualified_members) -> None:
    from fablab.services import bookings as booking_service

    machine = window_machine(mode="open")
    owner, alice = qualified_members(machine, 2)
    now = datetime.now(UTC)
    start = hour(now) + timedelta(hours=4)
    bk = booking_service.create_booking(owner, machine, start, start + timedelta(hours=1), now=now)
    login(client, alice.email)
    token = csrf_token(client, "/scheduling/waitlist")
    local = start.astimezone(client.application.config["TZ"])
    resp = client.post("/scheduling/waitlist", data={
        "csrf_token": token, "machine": machine.slug, "kind": "slot", "start": local.strftime("%Y-%m-%dT%H:%M"),
        "end": (local + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"), "min_hours": "0"})
    assert resp.status_code == 302
    entry = db.session.scalar(select(WaitlistEntry).where(WaitlistEntry.member_id == alice.id))
    assert entry.kind == "slot" and entry.start_at == start
    booking_service.cancel_booking(bk, owner)
    html = client.get("/scheduling/waitlist").get_data(as_text=True)
    assert "Claim it" in html
    offer_id = re.search(r"/scheduling/offers/(\d+)/claim", html).group(1)
    resp = client.post(f"/scheduling/offers/{offer_id}/claim", data={"csrf_token": token})
    assert resp.status_code == 302
    got = db.session.scalar(select(Booking).where(Booking.member_id == alice.id))
    assert got is not None and got.source == "waitlist" and got.start_at == start
    partial = client.get("/scheduling/offers", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "No offers for you" in partial


def test_task_board_claim_complete_and_profile(client, make_member) -> None:
    make_member("steward@example.org", role="steward")
    alice = make_member("alice@example.org")
    login(client, "steward@example.org")
    token = csrf_token(client, "/tasks/new")
    resp = client.post("/tasks/new", data={"csrf_token": token, "title": "Clean the laser bed", "kind": "cleaning",
                                           "machine": "", "base_hours": "1.5", "people_needed": "1",
                                           "rise_per_day": "0.1", "max_factor": "2", "description": "Honeycomb too"})
    assert resp.status_code == 302
    client.post("/logout", data={"csrf_token": token})
    login(client, "alice@example.org")
    html = client.get("/tasks").get_data(as_text=True)
    assert "Clean the laser bed" in html and "1.5 h" in html
    task_id = re.search(r"/tasks/(\d+)/claim", html).group(1)
    token = csrf_token(client, "/tasks")
    partial = client.post(f"/tasks/{task_id}/claim", data={"csrf_token": token}, headers={"HX-Request": "true"})
    assert partial.status_code == 200 and "Done" in partial.get_data(as_text=True)
    client.post(f"/tasks/{task_id}/complete", data={"csrf_token": token})
    profile = client.get(f"/scheduling/members/{alice.id}/contributions").get_data(as_text=True)
    assert "Clean the laser bed" in profile and "1 h 30 min" in profile


def test_members_cannot_use_admin_or_steward_pages(client, make_member, window_machine) -> None:
    machine = window_machine()
    make_member("m@example.org")
    login(client, "m@example.org")
    token = csrf_token(client, "/tasks")
    assert client.get("/admin/scheduling").status_code == 403
    assert client.get(f"/admin/scheduling/{machine.slug}").status_code == 403
    assert client.post(f"/admin/scheduling/{machine.slug}/open", data={"csrf_token": token}).status_code == 403
    assert client.get("/tasks/new").status_code == 403
    assert db.session.scalar(select(RequestWindow)) is None


def test_admin_edits_policy_and_opens_a_window(client, make_member, window_machine) -> None:
    machine = window_machine(mode="open")
    make_member("admin@example.org", role="admin")
    login(client, "admin@example.org")
    url = f"/admin/scheduling/{machine.slug}"
    token = csrf_token(client, url)
    form = {"csrf_token": token, "p-mode": "window", "p-open_weekday": "0", "p-open_time": "00:00",
            "p-close_weekday": "3", "p-close_time": "20:00", "p-request_minutes": "60", "p-quota_hours": "4",
            "p-quota_slots": "", "p-band_width": "0.1", "p-half_life_days": "14", "p-hold_minutes": "15",
            "p-first_come_minutes": "120"}
    assert client.post(url, data=dict(form, **{"p-open_weekday": "4"})).status_code == 422  # closes before it opens
    assert client.post(url, data=form).status_code == 302
    db.session.expire_all()
    assert window_service.mode_of(machine) == "window"
    resp = client.post(f"{url}/open", data={"csrf_token": token, "w-period_days": "7"})
    assert resp.status_code == 302
    w = db.session.scalar(select(RequestWindow))
    assert w is not None and w.status == "open" and w.revealed_seed is None
    assert w.commitment in client.get(url).get_data(as_text=True)
