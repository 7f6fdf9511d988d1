"""Induction flows through the service on the test database (SQLite, or PostgreSQL when configured)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from fablab.domain import inductions as ind
from fablab.extensions import db
from fablab.models import Booking, BookingKind, BookingStatus, MachineType, Qualification
from fablab.models.inductions import InductionRule, InductionSignup
from fablab.models.notifications import Notice, OutboxMail
from fablab.services import bookings as booking_service
from fablab.services import inductions as svc
from fablab.services import machines as machine_service
from fablab.services.notice_render import render
from tests.inductions.conftest import soon


def kinds_for(member_id: int) -> list[str]:
    return list(db.session.scalars(select(Notice.kind).where(Notice.member_id == member_id).order_by(Notice.id)))


def test_schedule_blocks_the_machine(make_session, make_member, laser) -> None:
    s = make_session(on_machine=True)
    block = db.session.get(Booking, s.booking_id)
    assert block is not None and block.kind == BookingKind.INDUCTION.value and block.status == "confirmed"
    assert (block.start_at, block.end_at) == (s.start_at, s.end_at)
    member = make_member()
    machine_service.grant(member, by=None, machine=laser)
    db.session.commit()
    with pytest.raises(booking_service.BookingRejected) as exc:
        booking_service.create_booking(member, laser, s.start_at, s.start_at + timedelta(hours=1))
    assert exc.value.code in ("overlap", "maintenance")


def test_schedule_refused_when_machine_booked_and_nothing_stored(make_member, trainer, laser) -> None:
    member = make_member()
    machine_service.grant(member, by=None, machine=laser)
    db.session.commit()
    start, end = soon(3)
    booking_service.create_booking(member, laser, start, start + timedelta(hours=1))
    with pytest.raises(svc.InductionRefused) as exc:
        svc.schedule(trainer, laser.machine_type, start, end, capacity=4, machine=laser)
    assert exc.value.code == "machine_booked" and exc.value.status == 409
    assert db.session.scalar(select(func.count()).select_from(svc.InductionSession)) == 0


def test_member_cannot_schedule(make_member, laser) -> None:
    start, end = soon()
    with pytest.raises(svc.NotAllowed):
        svc.schedule(make_member(), laser.machine_type, start, end, capacity=3)


@pytest.mark.parametrize("kw, reason", [
    ({"capacity": 0}, "Capacity"), ({"capacity": 3, "material_url": "javascript:alert(1)"}, "http"),
    ({"capacity": 3, "prerequisite_type_ids": [999999]}, "Unknown")])
def test_bad_session_details_refused(trainer, laser, kw, reason) -> None:
    start, end = soon()
    with pytest.raises(svc.InductionRefused) as exc:
        svc.schedule(trainer, laser.machine_type, start, end, **kw)
    assert exc.value.code == "bad_session" and reason in exc.value.message


def test_sign_up_fills_places_then_waitlist_and_tells_each(make_session, make_member) -> None:
    s = make_session(capacity=1)
    a, b = make_member(), make_member()
    assert svc.sign_up(a, s.id).status == ind.CONFIRMED
    row = svc.sign_up(b, s.id)
    db.session.commit()
    assert (row.status, row.position) == (ind.WAITLISTED, 1)
    assert kinds_for(a.id) == ["induction_confirmed"] and kinds_for(b.id) == ["induction_waitlisted"]
    mail = db.session.scalar(select(OutboxMail).where(OutboxMail.member_id == a.id))
    assert mail is not None and mail.kind == "induction_confirmed"
    rendered = render("induction_confirmed", db.session.scalar(select(Notice.params).where(Notice.member_id == a.id)),
                      a, "/inductions")
    assert "Laser Cutter" in rendered.subject and "Workshop" in rendered.text
    info = svc.info(s, a)
    assert (info.places_left, info.confirmed, info.waitlisted, info.mine is not None) == (0, 1, 1, True)


def test_refusals_store_nothing(make_session, make_member, laser) -> None:
    s = make_session()
    qualified = make_member()
    machine_service.grant(qualified, by=None, machine_type=laser.machine_type)
    db.session.commit()
    with pytest.raises(svc.InductionRefused) as exc:
        svc.sign_up(qualified, s.id)
    assert exc.value.code == "already_qualified"
    member = make_member()
    svc.sign_up(member, s.id)
    with pytest.raises(svc.InductionRefused) as exc:
        svc.sign_up(member, s.id)
    assert exc.value.code == "already_signed_up" and exc.value.status == 409
    db.session.commit()
    assert db.session.scalar(select(func.count()).select_from(InductionSignup)) == 1
    assert kinds_for(qualified.id) == []


def test_refresher_open_to_the_qualified(make_session, make_member, laser) -> None:
    s = make_session(is_refresher=True)
    member = make_member()
    machine_service.grant(member, by=None, machine_type=laser.machine_type)
    db.session.commit()
    assert svc.sign_up(member, s.id).status == ind.CONFIRMED


def test_prerequisite_named_in_refusal(make_session, make_member, make_machine) -> None:
    safety = make_machine("bench", type_slug="safety_induction").machine_type
    s = make_session(prerequisite_type_ids=[safety.id])
    member = make_member()
    with pytest.raises(svc.InductionRefused) as exc:
        svc.sign_up(member, s.id)
    assert exc.value.code == "missing_prerequisites" and "Safety Induction" in exc.value.message
    machine_service.grant(member, by=None, machine_type=safety)
    db.session.commit()
    assert svc.sign_up(member, s.id).status == ind.CONFIRMED


def test_after_start_refused(make_session, make_member) -> None:
    s = make_session()
    with pytest.raises(svc.InductionRefused) as exc:
        svc.sign_up(make_member(), s.id, now=s.start_at + timedelta(minutes=1))
    assert exc.value.code == "session_started"


def test_cancel_moves_up_the_fair_share_first(make_session, make_member, trainer) -> None:
    s = make_session(capacity=1)
    first, veteran, newcomer = make_member(), make_member(), make_member()
    # The veteran had an induction last week (a past session, attended); the newcomer never had one.
    past = make_session(capacity=3, days=5)
    svc.sign_up(veteran, past.id)
    svc.mark_attendance(trainer, past.id, veteran.id, ind.ATTENDED, now=past.start_at + timedelta(minutes=5))
    svc.sign_up(first, s.id)
    now = datetime.now(UTC)
    svc.sign_up(veteran, s.id, now=now)
    svc.sign_up(newcomer, s.id, now=now + timedelta(seconds=1))
    db.session.commit()
    rows = {r.member_id: r for r in svc.signups_of(s.id)}
    assert (rows[newcomer.id].position, rows[veteran.id].position) == (1, 2)
    svc.cancel_signup(first, s.id)
    db.session.commit()
    rows = {r.member_id: r for r in svc.signups_of(s.id)}
    assert rows[newcomer.id].status == ind.CONFIRMED and rows[veteran.id].status == ind.WAITLISTED
    assert rows[veteran.id].position == 1 and first.id not in rows
    assert "induction_moved_up" in kinds_for(newcomer.id)
    assert kinds_for(first.id)[-1] == "induction_cancelled"
    # Signing up again after cancelling is allowed (the row is reused): the session is full, so waitlisted.
    assert svc.sign_up(first, s.id).status == ind.WAITLISTED


def test_cancel_without_signup_refused(make_session, make_member) -> None:
    s = make_session()
    with pytest.raises(svc.InductionRefused) as exc:
        svc.cancel_signup(make_member(), s.id)
    assert exc.value.code == "not_signed_up" and exc.value.status == 404


def test_trainer_cancels_session_everyone_told_machine_freed(make_session, make_member, trainer, laser) -> None:
    s = make_session(capacity=1, on_machine=True)
    a, b = make_member(), make_member()
    svc.sign_up(a, s.id)
    svc.sign_up(b, s.id)
    other = make_member()
    with pytest.raises(svc.NotAllowed):
        svc.cancel_session(other, s.id, "no")
    svc.cancel_session(trainer, s.id, "Trainer ill")
    db.session.commit()
    assert s.status == ind.SESSION_CANCELLED
    for m in (a, b):
        n = db.session.scalar(select(Notice).where(Notice.member_id == m.id, Notice.kind == "induction_cancelled"))
        assert n is not None and n.params["reason"] == "Trainer ill" and n.params["by_trainer"] is True
    block = db.session.get(Booking, s.booking_id)
    assert block is not None and block.status == BookingStatus.CANCELLED.value
    with pytest.raises(svc.InductionRefused) as exc:
        svc.sign_up(make_member(), s.id)
    assert exc.value.code == "session_cancelled"
    # The time is free again.
    machine_service.grant(other, by=None, machine=laser)
    db.session.commit()
    assert booking_service.create_booking(other, laser, s.start_at, s.start_at + timedelta(hours=1)).id


def test_passing_grants_the_qualification_with_the_types_validity(make_session, make_member, trainer, laser) -> None:
    db.session.add(InductionRule(machine_type_id=laser.type_id, validity_months=12))
    db.session.commit()
    s = make_session(capacity=3)
    passer, misser = make_member(), make_member()
    svc.request_induction(passer, laser.machine_type)
    svc.sign_up(passer, s.id)
    svc.sign_up(misser, s.id)
    with pytest.raises(svc.InductionRefused) as exc:
        svc.mark_attendance(trainer, s.id, passer.id, ind.PASSED, now=s.start_at - timedelta(minutes=1))
    assert exc.value.code == "not_started"
    with pytest.raises(svc.NotAllowed):
        svc.mark_attendance(misser, s.id, passer.id, ind.PASSED, now=s.start_at)
    with pytest.raises(svc.InductionRefused):
        svc.mark_attendance(trainer, s.id, passer.id, "excellent", now=s.start_at)
    at = s.start_at + timedelta(hours=1)
    svc.mark_attendance(trainer, s.id, passer.id, ind.PASSED, now=at)
    svc.mark_attendance(trainer, s.id, misser.id, ind.MISSED, now=at)
    db.session.commit()
    q = db.session.scalar(select(Qualification).where(Qualification.member_id == passer.id))
    assert q is not None and q.machine_type_id == laser.type_id and q.expires_at == ind.add_months(at, 12)
    assert machine_service.qualification_state(passer, laser, at).qualified
    assert db.session.scalar(select(Qualification).where(Qualification.member_id == misser.id)) is None
    assert s.status == ind.DONE
    assert svc.open_requests() == []  # passing fulfilled the request


def test_disuse_lapses_the_qualification_for_sign_up(make_session, make_member, laser) -> None:
    db.session.add(InductionRule(machine_type_id=laser.type_id, disuse_months=6))
    member = make_member()
    q = machine_service.grant(member, by=None, machine_type=laser.machine_type)
    db.session.flush()
    q.granted_at = datetime.now(UTC) - timedelta(days=400)
    db.session.commit()
    assert laser.type_id not in svc.valid_type_ids(member, datetime.now(UTC))
    s = make_session()  # not a refresher: open to her again, since her qualification lapsed
    assert svc.sign_up(member, s.id).status == ind.CONFIRMED


def test_requests_counted_per_type_with_since(make_member, laser, make_machine) -> None:
    cnc = make_machine("cnc", type_slug="cnc_mill").machine_type
    t0 = datetime(2026, 1, 5, 10, tzinfo=UTC)
    a, b, c = make_member(), make_member(), make_member()
    svc.request_induction(a, cnc, now=t0)
    svc.request_induction(b, cnc, now=t0 + timedelta(days=2))
    again = svc.request_induction(a, cnc, now=t0 + timedelta(days=3))
    svc.request_induction(c, laser.machine_type, now=t0 + timedelta(days=1))
    db.session.commit()
    demand = svc.open_requests()
    assert [(d.machine_type.slug, d.waiting, d.since) for d in demand] == [("cnc_mill", 2, t0),
                                                                        ("laser_cutter", 1, t0 + timedelta(days=1))]
    assert again.created_at == t0
    # A member with a place no longer counts as unmet demand; on the waitlist or after cancelling she does.
    trainer = make_member(role="steward")
    start, end = soon()
    s = svc.schedule(trainer, cnc, start, end, capacity=1)
    svc.sign_up(a, s.id)
    db.session.commit()
    assert {d.machine_type.slug: (d.waiting, d.since) for d in svc.open_requests()}["cnc_mill"] == \
        (1, t0 + timedelta(days=2))
    svc.sign_up(b, s.id)  # waitlisted: still waiting
    svc.cancel_signup(a, s.id)  # b moves up, a is back to waiting
    db.session.commit()
    assert [(d.machine_type.slug, d.waiting, d.since) for d in svc.open_requests()][0] == ("cnc_mill", 1, t0)
    qualified = make_member()
    machine_service.grant(qualified, by=None, machine_type=db.session.get(MachineType, cnc.id))
    db.session.commit()
    with pytest.raises(svc.InductionRefused):
        svc.request_induction(qualified, cnc)


def test_sessions_for_machine_and_upcoming(make_session, laser, make_member) -> None:
    s1 = make_session(days=2)
    s2 = make_session(days=4, on_machine=True)
    member = make_member()
    assert [i.session.id for i in svc.sessions_for_machine(laser, datetime.now(UTC), member)] == [s1.id, s2.id]
    svc.cancel_session(s1.trainer, s1.id, "x")
    db.session.commit()
    assert [i.session.id for i in svc.upcoming(datetime.now(UTC))] == [s2.id]


def test_invitation_for_a_session(make_session, make_member) -> None:
    from icalendar import Calendar

    from fablab.services import induction_invites

    s = make_session(material_url="https://lab.example/laser")
    m = make_member(name="Ina Vite")
    cal = Calendar.from_ical(induction_invites.build(s, "REQUEST", 0, m, m.email))
    [ev] = cal.walk("VEVENT")
    assert str(cal["method"]) == "REQUEST" and str(ev["summary"]) == "Laser Cutter induction"
    assert ev.decoded("dtstart") == s.start_at and str(ev["location"]) == "Workshop"
    assert "lab.example/laser" in str(ev["description"]) and str(ev["uid"]).startswith(f"induction-{s.id}@")
    cancel = Calendar.from_ical(induction_invites.build(s, "CANCEL", 1, m, m.email)).walk("VEVENT")[0]
    assert str(cancel["uid"]) == str(ev["uid"]) and int(cancel["sequence"]) == 1
    assert str(cancel["status"]) == "CANCELLED"
    with pytest.raises(ValueError):
        induction_invites.build(s, "PUBLISH", 0, m, m.email)


def test_member_trainer_runs_sessions_of_their_type_only(make_member, trainer, laser, make_machine) -> None:
    cnc = make_machine("cnc", type_slug="cnc_mill").machine_type
    volunteer = make_member(name="Val Volunteer")
    start, end = soon()
    with pytest.raises(svc.NotAllowed):
        svc.schedule(volunteer, laser.machine_type, start, end, capacity=3)
    with pytest.raises(svc.NotAllowed):
        svc.grant_trainer(volunteer, volunteer, laser.machine_type)
    svc.grant_trainer(trainer, volunteer, laser.machine_type)
    db.session.commit()
    assert svc.may_train(volunteer, laser.type_id) and not svc.may_train(volunteer, cnc.id)
    assert [t.id for t in svc.trainable_types(volunteer)] == [laser.type_id]
    with pytest.raises(svc.NotAllowed):
        svc.schedule(volunteer, cnc, start, end, capacity=3)
    with pytest.raises(svc.InductionRefused) as exc:  # blocking a machine stays a steward's job
        svc.schedule(volunteer, laser.machine_type, start, end, capacity=3, machine=laser)
    assert exc.value.code == "block_needs_staff" and "Laser 1" in exc.value.message
    s = svc.schedule(volunteer, laser.machine_type, start, end, capacity=3, place="Corner")
    learner = make_member()
    svc.sign_up(learner, s.id)
    svc.mark_attendance(volunteer, s.id, learner.id, ind.PASSED, now=s.start_at + timedelta(minutes=30))
    db.session.commit()
    assert machine_service.qualification_state(learner, laser, s.end_at).qualified
    other = svc.schedule(trainer, laser.machine_type, start + timedelta(days=1), end + timedelta(days=1), capacity=2)
    with pytest.raises(svc.NotAllowed):
        svc.cancel_session(volunteer, other.id, "not mine")
    [row] = svc.trainers()
    svc.revoke_trainer(trainer, row.id)
    db.session.commit()
    assert not svc.may_train(volunteer)
