"""Induction pages: sign-up and cancel in place (htmx, CSRF), refusals with the error partial, role checks."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from fablab.domain import inductions as ind
from fablab.extensions import db
from fablab.models import Role
from fablab.models.inductions import InductionSession, InductionSignup
from fablab.services import inductions as svc
from fablab.services import machines as machine_service
from tests.conftest import csrf_token, login
from tests.inductions.conftest import soon

HX = {"HX-Request": "true"}


def _member_client(client, make_member, **kw):
    m = make_member(**kw)
    login(client, m.email)
    return m, {**HX, "X-CSRFToken": csrf_token(client, "/inductions")}


def test_list_shows_places_and_signs_up_in_place(client, make_member, make_session) -> None:
    s = make_session(capacity=1)
    m, headers = _member_client(client, make_member)
    page = client.get("/inductions").get_data(as_text=True)
    assert f'id="induction-{s.id}"' in page and "1 of 1 places left" in page and "Sign up" in page
    resp = client.post(f"/inductions/{s.id}/signup", headers=headers)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "You have a place" in html and "Cancel my place" in html
    assert f'id="induction-{s.id}"' in html
    # Twice: refused in place, with the refusal partial and the header the page's JS swaps on.
    resp = client.post(f"/inductions/{s.id}/signup", headers=headers)
    assert resp.status_code == 409 and resp.headers.get("X-Fablab-Refusal") == "1"
    assert 'data-refusal="already_signed_up"' in resp.get_data(as_text=True)
    resp = client.post(f"/inductions/{s.id}/cancel", headers=headers)
    assert resp.status_code == 200 and "Cancelled" in resp.get_data(as_text=True)
    db.session.expire_all()
    row = db.session.scalar(select(InductionSignup).where(InductionSignup.member_id == m.id))
    assert row is not None and row.status == ind.CANCELLED


def test_sign_up_without_csrf_refused(client, make_member, make_session) -> None:
    s = make_session()
    _member_client(client, make_member)
    resp = client.post(f"/inductions/{s.id}/signup", headers=HX)
    assert resp.status_code == 400
    assert db.session.scalar(select(InductionSignup)) is None


def test_prerequisite_refusal_offers_the_prerequisite_sessions(client, make_member, make_session, make_machine) -> None:
    safety = make_machine("bench", type_slug="safety_induction").machine_type
    s = make_session(prerequisite_type_ids=[safety.id])
    _, headers = _member_client(client, make_member)
    resp = client.post(f"/inductions/{s.id}/signup", headers=headers)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422 and "Safety Induction" in html and f"/inductions?type={safety.id}" in html


def test_unknown_session_and_bad_type_are_4xx(client, make_member) -> None:
    _, headers = _member_client(client, make_member)
    assert client.post("/inductions/999999/signup", headers=headers).status_code == 404
    assert client.get("/inductions?type=abc").status_code == 400


def test_member_cannot_schedule_cancel_or_mark(client, make_member, make_session) -> None:
    s = make_session()
    other = make_member()
    svc.sign_up(other, s.id)
    db.session.commit()
    _, headers = _member_client(client, make_member)
    assert client.get("/inductions/train").status_code == 403
    assert client.get("/inductions/requests").status_code == 403
    assert client.get(f"/inductions/{s.id}/attendance").status_code == 403
    start, _ = soon()
    assert client.post("/inductions/train", headers=headers,
                       data={"machine_type": s.machine_type_id, "start": start.isoformat(), "minutes": "60",
                             "capacity": "3"}).status_code == 403
    assert client.post(f"/inductions/{s.id}/attendance", headers=headers,
                       data={"member_id": other.id, "status": "passed"}).status_code == 403
    assert client.post(f"/inductions/{s.id}/cancel-session", headers=headers,
                       data={"reason": "x"}).status_code == 403
    db.session.expire_all()
    assert db.session.get(InductionSession, s.id).status == ind.SCHEDULED
    assert db.session.scalar(select(InductionSession).where(InductionSession.id != s.id)) is None


def test_steward_schedules_marks_and_cancels(client, make_member, laser) -> None:
    steward, headers = _member_client(client, make_member, role=Role.STEWARD)
    start, _ = soon(3)
    local = start.astimezone(client.application.config["TZ"]).strftime("%Y-%m-%dT%H:%M")
    resp = client.post("/inductions/train", headers=headers,
                       data={"machine_type": laser.type_id, "machine": laser.id, "start": local, "minutes": "90",
                             "capacity": "2", "place": "Workshop", "material_url": "https://lab.example/laser"})
    assert resp.status_code == 303, resp.get_data(as_text=True)
    s = db.session.scalar(select(InductionSession))
    assert s is not None and s.start_at == start and s.end_at == start + timedelta(minutes=90) and s.booking_id
    # A bad start is a clear 4xx, not a 500.
    assert client.post("/inductions/train", headers=headers,
                       data={"machine_type": laser.type_id, "machine": 0, "start": "tomorrow", "minutes": "90",
                             "capacity": "2"}).status_code == 400
    member = make_member()
    svc.sign_up(member, s.id)
    db.session.commit()
    assert client.get(f"/inductions/{s.id}/attendance").status_code == 200
    # Marking before the start is refused with the reason, nothing stored.
    resp = client.post(f"/inductions/{s.id}/attendance", headers=headers, data={"member_id": member.id,
                                                                                "status": "passed"})
    assert resp.status_code == 303
    db.session.expire_all()
    assert not machine_service.qualification_state(member, laser, start).qualified
    resp = client.post(f"/inductions/{s.id}/cancel-session", headers=headers, data={"reason": "Laser broken"})
    assert resp.status_code == 303
    db.session.expire_all()
    assert db.session.get(InductionSession, s.id).status == ind.SESSION_CANCELLED


def test_machine_page_shows_next_sessions_to_the_unqualified(client, make_member, make_session, laser) -> None:
    s = make_session(capacity=3)
    m, _ = _member_client(client, make_member)
    page = client.get("/machines/laser-1").get_data(as_text=True)
    assert "Next induction sessions" in page and f'id="induction-{s.id}"' in page and "3 of 3 places left" in page
    machine_service.grant(m, by=None, machine_type=laser.machine_type)
    db.session.commit()
    assert "Next induction sessions" not in client.get("/machines/laser-1").get_data(as_text=True)


def test_request_and_requests_page(client, make_member, laser) -> None:
    _, headers = _member_client(client, make_member, name="Rita Request")
    resp = client.post("/inductions/requests", headers=headers, data={"machine_type": laser.type_id})
    assert resp.status_code == 303
    client.get("/logout")
    steward = make_member(role=Role.STEWARD)
    login(client, steward.email)
    page = client.get("/inductions/requests").get_data(as_text=True)
    assert 'data-type="laser_cutter"' in page and "Rita Request" in page


def test_next_induction_action_for_a_refusal(app, make_member, make_session, laser) -> None:
    from datetime import UTC, datetime

    from fablab.web.inductions.refusal_actions import next_induction_action

    member = make_member()
    with app.test_request_context():
        a = next_induction_action(laser, member, datetime.now(UTC))
        assert a.method == "get" and a.url == "/inductions" and "Laser Cutter" in a.label
        full = make_session(capacity=1, days=1)
        svc.sign_up(make_member(), full.id)
        db.session.commit()
        a = next_induction_action(laser, member, datetime.now(UTC))
        assert a.url == f"/inductions/{full.id}/signup" and a.label.startswith("Join the waitlist")
        free = make_session(capacity=2, days=3)
        a = next_induction_action(laser, member, datetime.now(UTC))
        assert a.url == f"/inductions/{free.id}/signup" and "2 places left" in a.label and a.primary


def test_rules_page_sets_and_clears_validity(client, make_member, laser) -> None:
    from fablab.models.inductions import InductionRule

    _, headers = _member_client(client, make_member)
    assert client.get("/inductions/rules").status_code == 403
    client.get("/logout")
    _, headers = _member_client(client, make_member, role=Role.STEWARD)
    assert 'data-type="laser_cutter"' in client.get("/inductions/rules").get_data(as_text=True)
    resp = client.post("/inductions/rules", headers=headers,
                       data={"machine_type": laser.type_id, "validity_months": "24", "disuse_months": ""})
    assert resp.status_code == 303
    db.session.expire_all()
    rule = db.session.get(InductionRule, laser.type_id)
    assert rule is not None and (rule.validity_months, rule.disuse_months) == (24, None)
    assert client.post("/inductions/rules", headers=headers,
                       data={"machine_type": laser.type_id, "validity_months": "0"}).status_code == 400
    client.post("/inductions/rules", headers=headers, data={"machine_type": laser.type_id})
    db.session.expire_all()
    assert db.session.get(InductionRule, laser.type_id) is None


def test_steward_makes_a_trainer_who_then_schedules(client, make_member, laser) -> None:
    volunteer = make_member("val@example.org", name="Val Volunteer")
    _, headers = _member_client(client, make_member, role=Role.STEWARD)
    resp = client.post("/inductions/trainers", headers=headers,
                       data={"email": "val@example.org", "machine_type": laser.type_id})
    assert resp.status_code == 303
    assert "Val Volunteer" in client.get("/inductions/trainers").get_data(as_text=True)
    client.get("/logout")
    login(client, volunteer.email)
    headers = {**HX, "X-CSRFToken": csrf_token(client, "/inductions")}
    assert client.get("/inductions/trainers").status_code == 403
    page = client.get("/inductions/train").get_data(as_text=True)
    assert "Laser Cutter" in page and "Laser 1 (" not in page  # no machine to block for a member trainer
    start, _ = soon(3)
    local = start.astimezone(client.application.config["TZ"]).strftime("%Y-%m-%dT%H:%M")
    resp = client.post("/inductions/train", headers=headers,
                       data={"machine_type": laser.type_id, "machine": "0", "start": local, "minutes": "60",
                             "capacity": "3"})
    assert resp.status_code == 303, resp.get_data(as_text=True)
    s = db.session.scalar(select(InductionSession))
    assert s is not None and s.trainer_id == volunteer.id and s.booking_id is None
    assert client.get(f"/inductions/{s.id}/attendance").status_code == 200
    assert client.get("/inductions/requests").status_code == 200


def test_a_refused_booking_offers_the_next_refresher_and_signing_up_works(client, make_member, make_session, laser):
    """An expired qualification's refusal is not a dead end: it offers the next session, and that tap signs up."""
    from datetime import UTC, datetime

    ada = make_member("ada@example.org")
    machine_service.grant(ada, by=None, machine_type=laser.machine_type,
                          expires_at=datetime.now(UTC) - timedelta(days=3))
    session = make_session(capacity=3, is_refresher=True)
    db.session.commit()
    login(client, "ada@example.org")
    start = (datetime.now(UTC) + timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
    resp = client.post("/machines/laser-1/book", data={"csrf_token": csrf_token(client, "/machines/laser-1"),
                                                       "start": start.isoformat(), "minutes": "60"})
    body = resp.get_data(as_text=True)
    assert resp.status_code == 422 and 'data-refusal="qualification_expired"' in body
    assert "Sign up for the induction on" in body and f"/inductions/{session.id}/signup" in body
    token = csrf_token(client, "/inductions")
    resp = client.post(f"/inductions/{session.id}/signup", data={"csrf_token": token})
    assert resp.status_code in (302, 303)
    row = db.session.scalar(select(InductionSignup).where(InductionSignup.member_id == ada.id))
    assert row is not None and row.status == ind.CONFIRMED
