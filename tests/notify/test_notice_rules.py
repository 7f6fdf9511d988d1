"""Lab events become notices (fablab/services/notice_rules.py): through the real services, pages and API, the
notice and its outbox mail exist with the right kind and params after the commit, and nothing after a rollback."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta

import pytest
from sqlalchemy import func, select

from fablab.domain.series import SeriesSpec
from fablab.extensions import db
from fablab.models import Booking, Role
from fablab.models.notifications import Notice, OutboxMail
from fablab.models.scheduling import OfferStatus, WaitlistOffer
from fablab.models.series import SeriesKind
from fablab.services import booking_series, event_data, lab_events, window_draw
from fablab.services import bookings as svc
from fablab.services import effort as effort_service
from fablab.services import machines as machine_service
from fablab.services import members as member_service
from fablab.services import usage as usage_service
from fablab.services import waitlist as waitlist_service
from fablab.services import windows as window_service
from fablab.services.members import create_api_token
from fablab.services.notice_render import render
from tests.bookings.conftest import slot
from tests.conftest import csrf_token, login


def _notices(kind: str | None = None, member_id: int | None = None) -> list[Notice]:
    db.session.commit()
    stmt = select(Notice).order_by(Notice.id)
    if kind is not None:
        stmt = stmt.where(Notice.kind == kind)
    if member_id is not None:
        stmt = stmt.where(Notice.member_id == member_id)
    return list(db.session.scalars(stmt))


def _mail(notice: Notice) -> OutboxMail:
    return db.session.scalars(select(OutboxMail).where(OutboxMail.notice_id == notice.id)).one()


def _count(model) -> int:
    db.session.commit()
    return db.session.scalar(select(func.count()).select_from(model))


def _text(n: Notice) -> str:
    r = render(n.kind, n.params, n.member, n.link)
    return "\n".join((r.subject, r.summary, r.text))


ALL_DAY = {d: [["00:00", "24:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
RULES = {"slot_minutes": 30, "min_minutes": 30, "max_minutes": 240, "opening_hours": ALL_DAY, "horizon_days": 14,
         "buffer_minutes": 0, "checkin_grace_minutes": 15, "max_hours_per_day": None, "max_hours_per_week": None,
         "max_future_bookings": None, "qualification_required": True}


@pytest.fixture
def laser(make_machine, make_member):
    """An open-all-day laser and Ada, qualified on it."""
    machine = make_machine("laser-1", policy=RULES)
    ada = make_member("ada@example.org", name="Ada")
    machine_service.grant(ada, by=None, machine=machine)
    db.session.commit()
    return machine, ada


@pytest.fixture
def window_lab(make_machine, make_member):
    """A machine taking requests through windows, two qualified members."""
    machine = make_machine("laser-w", policy={**RULES, "mode": "window"})
    window_service.update_policy(machine, "window", quota_slots=1)
    members = [make_member() for _ in range(2)]
    for m in members:
        machine_service.grant(m, by=None, machine=machine)
    db.session.commit()
    return machine, members


# --- bookings ------------------------------------------------------------------------------------------


def test_a_booking_made_on_the_page_is_confirmed_with_an_invitation(client, laser) -> None:
    machine, ada = laser
    login(client, "ada@example.org")
    start, _ = slot(3)
    token = csrf_token(client, "/machines/laser-1")
    resp = client.post("/machines/laser-1/book", data={"csrf_token": token, "start": start.isoformat(),
                                                      "minutes": "60"})
    assert resp.status_code == 302, resp.get_data(as_text=True)
    booking = db.session.scalars(select(Booking)).one()
    [n] = _notices()
    assert (n.kind, n.member_id, n.link) == ("booking_confirmed", ada.id, f"/bookings/{booking.id}")
    assert n.params["booking_id"] == booking.id and n.params["machine"] == "Laser-1"
    assert n.dedupe_key == f"booking:{booking.id}:created"
    mail = _mail(n)
    assert mail.kind == "booking_confirmed" and mail.to_address == "ada@example.org"
    assert mail.params == {"ics": {"booking_id": booking.id, "method": "REQUEST", "sequence": 0}}
    assert "confirmed" in _text(n) and f"/bookings/{booking.id}" in _text(n)
    # the link in the mail opens the booking
    assert client.get(n.link).status_code == 200


def test_a_refused_booking_tells_nobody(client, laser) -> None:
    machine, ada = laser
    start, end = slot(3)
    svc.create_booking(ada, machine, start, end)
    bo_auth = _auth(_member("bo@example.org", machine))
    resp = client.post("/api/v1/bookings", json={"machine": "laser-1", "start": start.isoformat(),
                                                 "end": end.isoformat()}, headers=bo_auth)
    assert resp.status_code == 409
    assert [n.member_id for n in _notices()] == [ada.id]  # only Ada's own confirmation


def test_a_failure_after_the_notice_rolls_the_notice_back_with_the_booking(laser) -> None:
    machine, ada = laser

    def broken(event: lab_events.LabEvent) -> None:
        raise RuntimeError("a later listener fails")

    lab_events.subscribe(broken)
    try:
        with pytest.raises(RuntimeError):
            svc.create_booking(ada, machine, *slot(3))
    finally:
        lab_events._listeners.remove(broken)
    assert _count(Booking) == 0 and _count(Notice) == 0 and _count(OutboxMail) == 0


def _member(email: str, machine, role: Role = Role.MEMBER):
    m = member_service.create_member(email, email.split("@")[0].title(), role, "correct-horse-9")
    machine_service.grant(m, by=None, machine=machine)
    db.session.commit()
    return m


def _auth(member) -> dict[str, str]:
    token = create_api_token(member)
    db.session.commit()
    return {"Authorization": f"Bearer {token}"}


def test_a_staff_cancel_on_the_page_says_who_and_why_and_withdraws_the_invitation(client, laser) -> None:
    machine, ada = laser
    b = svc.create_booking(ada, machine, *slot(3))
    _member("sam@example.org", machine, Role.STEWARD)
    login(client, "sam@example.org")
    token = csrf_token(client, "/bookings")
    resp = client.post(f"/bookings/{b.id}/cancel", data={"csrf_token": token, "reason": "The tube is cracked"})
    assert resp.status_code == 302
    [n] = _notices("booking_cancelled_by_staff")
    assert n.member_id == ada.id and n.params["by"] == "Sam" and n.params["reason"] == "The tube is cracked"
    text = _text(n)
    assert "The tube is cracked" in text and "Sam" in text and "cancelled" in text
    assert _mail(n).params == {"ics": {"booking_id": b.id, "method": "CANCEL", "sequence": 1}}
    assert not _notices("booking_cancelled")


def test_a_staff_cancel_through_the_api_is_the_same_notice(client, laser) -> None:
    machine, ada = laser
    b = svc.create_booking(ada, machine, *slot(3))
    sam = _member("sam@example.org", machine, Role.STEWARD)
    resp = client.delete(f"/api/v1/bookings/{b.id}", json={"reason": "Lab closed for an event"}, headers=_auth(sam))
    assert resp.status_code == 200, resp.json
    [n] = _notices("booking_cancelled_by_staff")
    assert n.member_id == ada.id and "Lab closed for an event" in _text(n)


def test_own_cancel_change_and_no_show(laser) -> None:
    machine, ada = laser
    now = datetime.now(UTC)
    b = svc.create_booking(ada, machine, *slot(3), now=now)
    svc.shorten_booking(b, ada, b.start_at + timedelta(minutes=30), now=now)
    [changed] = _notices("booking_changed")
    assert changed.params["end"] == (b.start_at + timedelta(minutes=30)).isoformat()
    assert _mail(changed).params == {"ics": {"booking_id": b.id, "method": "REQUEST", "sequence": 1}}
    assert "now runs" in _text(changed)
    svc.cancel_booking(b, ada, now=now)
    [own] = _notices("booking_cancelled")
    assert own.member_id == ada.id and _mail(own).params["ics"] == {"booking_id": b.id, "method": "CANCEL",
                                                                      "sequence": 2}
    assert not _notices("booking_cancelled_by_staff")
    late = svc.create_booking(ada, machine, *slot(5), now=now)
    usage_service.record_no_shows(late.start_at + timedelta(minutes=20))
    [ns] = _notices("booking_no_show")
    assert ns.params["booking_id"] == late.id and _mail(ns).params["ics"]["method"] == "CANCEL"
    assert "no-show" in _text(ns) and ns.link == "/machines/laser-1/book"


def test_a_repeated_event_is_told_once(laser) -> None:
    machine, ada = laser
    b = svc.create_booking(ada, machine, *slot(3))
    for _ in range(2):
        lab_events.publish(event_data.booking("booking.created", b, datetime.now(UTC), actor_id=ada.id))
        lab_events.publish(event_data.booking("booking.cancelled", b, datetime.now(UTC), actor_id=ada.id))
    db.session.commit()
    assert [n.kind for n in _notices()] == ["booking_confirmed", "booking_cancelled"]
    assert _count(OutboxMail) == 2


def test_a_series_is_confirmed_once(laser, make_member) -> None:
    machine, ada = laser
    steward = make_member(role=Role.STEWARD)
    first = datetime.now(svc.lab_tz()).date() + timedelta(days=1)  # the lab's tomorrow
    spec = SeriesSpec(first.weekday(), time(10, 0), 60, 1, first, first + timedelta(weeks=1))
    plan = booking_series.SeriesPlan(machine, SeriesKind.BOOKING, ada, steward, spec, "Weekly slot")
    series = booking_series.save(plan, datetime.now(UTC), None)
    assert len(booking_series.occurrences_of(series)) == 2
    [n] = _notices("booking_confirmed")
    assert n.dedupe_key == f"series:{series.id}:created" and n.params["series"]["title"] == "Weekly slot"
    assert n.params["series"]["at"] == "10:00" and _mail(n).params == {}  # the feed holds them, not one invite
    assert "only mail for the whole series" in _text(n)


# --- offers, windows, tasks ----------------------------------------------------------------------------


def test_the_offer_link_leads_to_claiming_it(client, laser) -> None:
    machine, ada = laser
    bo = _member("bo@example.org", machine)
    now = datetime.now(UTC)
    start, end = slot(3)
    b = svc.create_booking(ada, machine, start, end, now=now)
    waitlist_service.join_waitlist(bo, machine, kind="slot", start=start, end=end, now=now)
    svc.cancel_booking(b, ada, now=now)
    [n] = _notices("waitlist_offer")
    offer = db.session.scalars(select(WaitlistOffer)).one()
    assert n.member_id == bo.id and n.params["offer_id"] == offer.id and n.params["hold_minutes"] == 15
    assert n.params["hold_until"] == offer.expires_at.isoformat()
    assert "15 minutes" in _text(n) and "Claim it: http" in _text(n)
    html = render(n.kind, n.params, n.member, n.link).html
    assert 'href="http://localhost:5000/scheduling/waitlist#offers"' in html and ">Claim it</a>" in html
    login(client, "bo@example.org")
    page = client.get(n.link).get_data(as_text=True)
    form = re.search(rf'<form method="post" action="(/scheduling/offers/{offer.id}/claim)">'
                     r'<input type="hidden" name="csrf_token" value="([^"]+)"', page)
    assert form, "the linked page has the offer's claim button"
    resp = client.post(form.group(1), data={"csrf_token": form.group(2)})
    assert resp.status_code == 302
    db.session.refresh(offer)
    assert offer.status == OfferStatus.CLAIMED
    claimed = db.session.get(Booking, offer.booking_id)
    assert claimed.member_id == bo.id and claimed.start_at == start
    assert [x.params["booking_id"] for x in _notices("booking_confirmed", bo.id)] == [claimed.id]


def test_window_results_say_granted_or_the_place_and_link_the_draw(client, window_lab) -> None:
    machine, (a, b) = window_lab
    now = datetime.now(UTC)
    p0 = now.replace(minute=0, second=0, microsecond=0) + timedelta(days=2)
    w = window_service.open_window(machine, None, now, period_start=p0, period_end=p0 + timedelta(days=1),
                                   closes_at=now + timedelta(days=1))
    s1 = (p0 + timedelta(hours=18), p0 + timedelta(hours=20))
    for m in (a, b):
        window_service.add_request(m, w, *s1, rank=1, now=now)
    window_draw.close_window(w, w.closes_at + timedelta(minutes=1))
    results = {n.member_id: n for n in _notices("window_result")}
    assert set(results) == {a.id, b.id}
    granted = [n for n in results.values() if n.params["granted"]]
    waiting = [n for n in results.values() if not n.params["granted"]]
    assert len(granted) == 1 and len(waiting) == 1
    booking = db.session.scalars(select(Booking).where(Booking.source == "window")).one()
    assert granted[0].params["booking_id"] == booking.id and granted[0].member_id == booking.member_id
    assert _mail(granted[0]).params["ics"] == {"booking_id": booking.id, "method": "REQUEST", "sequence": 0}
    assert waiting[0].params["position"] == 1 and "number 1 on the waitlist" in _text(waiting[0])
    assert not _notices("booking_confirmed")  # the result is the confirmation
    link = granted[0].link
    assert link == f"/scheduling/windows/{w.id}" and "check the draw" in _text(granted[0])
    winner = db.session.get(type(a), booking.member_id)
    login(client, winner.email)
    page = client.get(link)
    assert page.status_code == 200 and w.revealed_seed in page.get_data(as_text=True)


def test_a_task_taken_tells_the_assignee_once(make_member) -> None:
    ada = make_member(name="Ada")
    task = effort_service.create_task("Clean the laser bed", kind="cleaning")
    effort_service.claim_task(ada, task)
    effort_service.unclaim_task(ada, task)
    effort_service.claim_task(ada, task)
    [n] = _notices("task_assigned")
    assert n.member_id == ada.id and n.params["title"] == "Clean the laser bed" and n.link == "/tasks"
    assert "Clean the laser bed" in _text(n)
