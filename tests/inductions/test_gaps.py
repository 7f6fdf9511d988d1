"""The induction paths a member or trainer would otherwise fall out of: "find a time" points an unqualified
member to the next sessions; a qualification about to lapse by disuse is flagged 30 days ahead; a session
whose attendance was never completed still credits the trainer; the trainer sees what was credited."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from fablab.domain import inductions as ind
from fablab.extensions import db
from fablab.models import Role
from fablab.models.inductions import InductionRule, InductionSession
from fablab.models.notifications import Notice
from fablab.models.scheduling import EffortTask
from fablab.models.usage import UsageSession
from fablab.services import induction_scans, notice_render
from fablab.services import inductions as svc
from fablab.services import machines as machine_service
from tests.conftest import login


def _notices(member_id: int, kind: str) -> list[Notice]:
    return list(db.session.scalars(select(Notice).where(Notice.member_id == member_id, Notice.kind == kind)))


# --- find a time -----------------------------------------------------------------------------------------


def test_find_a_time_lists_the_next_sessions_for_an_unqualified_member(client, make_member, make_session,
                                                                      laser) -> None:
    s = make_session(capacity=3)
    other = make_member()
    svc.sign_up(other, s.id)
    db.session.commit()
    member = make_member("learner@example.org")
    login(client, member.email)
    page = client.get("/find?what=type:laser_cutter&minutes=60").get_data(as_text=True)
    assert f'data-induction-type="{laser.type_id}"' in page
    assert "Get qualified for" in page and f'id="induction-{s.id}"' in page
    assert "2 of 3 places left" in page and "Sign up" in page
    # Signing up from there works like anywhere (the partial posts to the sign-up route).
    assert f"/inductions/{s.id}/signup" in page


def test_find_a_time_without_sessions_offers_to_ask_and_qualified_members_see_none(client, make_member,
                                                                                  laser) -> None:
    member = make_member("learner@example.org")
    login(client, member.email)
    page = client.get("/find?what=machine:laser-1&minutes=60").get_data(as_text=True)
    assert "No session is scheduled" in page and "/inductions" in page
    qualified = make_member("qualified@example.org")
    machine_service.grant(qualified, by=None, machine_type=laser.machine_type)
    db.session.commit()
    client.post("/logout")
    login(client, qualified.email)
    page = client.get("/find?what=machine:laser-1&minutes=60").get_data(as_text=True)
    assert "Get qualified for" not in page


# --- disuse lapse flagged 30 days ahead ------------------------------------------------------------------


def _disuse_setup(make_member, laser, now: datetime, used_days_ago: int | None):
    if db.session.get(InductionRule, laser.type_id) is None:
        db.session.add(InductionRule(machine_type_id=laser.type_id, disuse_months=6))
    member = make_member()
    q = machine_service.grant(member, by=None, machine_type=laser.machine_type)
    db.session.flush()
    q.granted_at = now - timedelta(days=400)
    if used_days_ago is not None:
        start = now - timedelta(days=used_days_ago)
        db.session.add(UsageSession(key=f"u-{member.id}", machine_id=laser.id, member_id=member.id, start_at=start,
                                    end_at=start, duration_s=0, source="event", open=False))
    db.session.commit()
    return member, q


def test_disuse_lapse_is_flagged_30_days_ahead_once_and_again_after_it_lapsed(app_ctx, make_member, laser) -> None:
    now = datetime(2026, 12, 1, 12, tzinfo=UTC)
    member, q = _disuse_setup(make_member, laser, now, used_days_ago=170)  # lapses ~11 days from now
    lapses = ind.add_months(now - timedelta(days=170), 6)
    assert induction_scans.warn_disuse_lapses(now) == [(q.id, "qualification_expiring")]
    db.session.commit()
    assert induction_scans.warn_disuse_lapses(now + timedelta(hours=1)) == []  # once
    [notice] = _notices(member.id, "qualification_expiring")
    assert notice.params["reason"] == "disuse" and "unless you use" in notice_render.summary(notice)
    assert induction_scans.warn_disuse_lapses(lapses + timedelta(hours=1)) == [(q.id, "qualification_expired")]
    db.session.commit()
    [gone] = _notices(member.id, "qualification_expired")
    assert "lapsed for want of use" in notice_render.summary(gone)


def test_no_warning_far_ahead_and_use_moves_the_date(app_ctx, make_member, laser) -> None:
    now = datetime(2026, 12, 1, 12, tzinfo=UTC)
    member, q = _disuse_setup(make_member, laser, now, used_days_ago=100)  # lapses in ~80 days
    assert induction_scans.warn_disuse_lapses(now) == []
    member2, q2 = _disuse_setup(make_member, laser, now, used_days_ago=None)  # granted 400 days ago: lapsed
    yesterday = now - timedelta(days=1)
    db.session.add(UsageSession(key="fresh", machine_id=laser.id, member_id=member2.id, start_at=yesterday,
                                end_at=yesterday, duration_s=0, source="event", open=False))
    db.session.commit()
    assert induction_scans.warn_disuse_lapses(now) == []  # used yesterday: valid for six months


# --- attendance never completed --------------------------------------------------------------------------


def test_partly_marked_session_is_settled_a_day_later_and_the_trainer_credited(make_session, make_member,
                                                                              trainer) -> None:
    s = make_session(capacity=2)
    a, b = make_member(), make_member()
    svc.sign_up(a, s.id)
    svc.sign_up(b, s.id)
    db.session.commit()
    svc.mark_attendance(trainer, s.id, a.id, ind.PASSED, now=s.end_at)
    db.session.commit()
    assert induction_scans.settle_ended_sessions(s.end_at + timedelta(hours=23)) == []  # the trainer has a day
    assert induction_scans.settle_ended_sessions(s.end_at + timedelta(hours=25)) == [s.id]
    db.session.commit()
    row = db.session.get(InductionSession, s.id)
    assert row is not None and row.status == ind.DONE and row.effort_task_id is not None
    assert db.session.get(EffortTask, row.effort_task_id).kind == "induction"
    # Marking the other later does not credit twice.
    svc.mark_attendance(trainer, s.id, b.id, ind.ATTENDED, now=s.end_at + timedelta(days=2))
    db.session.commit()
    assert len(list(db.session.scalars(select(EffortTask).where(EffortTask.kind == "induction")))) == 1


def test_unmarked_session_reminds_the_trainer_once_and_empty_session_closes(make_session, make_member,
                                                                           trainer) -> None:
    s = make_session(capacity=2)
    svc.sign_up(make_member(), s.id)
    empty = make_session(capacity=2, days=3)
    db.session.commit()
    later = empty.end_at + timedelta(hours=25)
    assert induction_scans.settle_ended_sessions(later) == [empty.id]
    db.session.commit()
    assert induction_scans.settle_ended_sessions(later + timedelta(hours=1)) == []
    db.session.commit()
    [reminder] = _notices(trainer.id, "induction_attendance_due")
    assert f"/inductions/{s.id}/attendance" in (reminder.link or "")
    assert db.session.get(InductionSession, s.id).status == ind.SCHEDULED
    assert db.session.get(InductionSession, empty.id).effort_task_id is None  # nobody came: no effort


def test_trainer_page_shows_credited_effort(client, make_session, make_member, trainer) -> None:
    s = make_session(capacity=1)
    learner = make_member()
    svc.sign_up(learner, s.id)
    db.session.commit()
    svc.mark_attendance(trainer, s.id, learner.id, ind.PASSED, now=s.end_at)
    db.session.commit()
    login(client, trainer.email)
    page = client.get("/inductions/train").get_data(as_text=True)
    assert 'id="trainer-effort"' in page
    assert "2.0 h" in page and "awaiting confirmation" in page  # her own session: a steward confirms it
    other = make_member("steward2@example.org", Role.STEWARD)
    from fablab.services import effort
    effort.confirm_task(other, db.session.get(EffortTask, db.session.get(InductionSession, s.id).effort_task_id))
    db.session.commit()
    page = client.get("/inductions/train").get_data(as_text=True)
    assert "<strong>2.0 h</strong> confirmed" in page


def test_find_api_lists_the_next_sessions(client, app_ctx, make_member, make_session, laser) -> None:
    from fablab.services import members as member_service
    s = make_session(capacity=2)
    member = make_member("api@example.org")
    token = member_service.create_api_token(member, "t", scope="read")
    db.session.commit()
    resp = client.get("/api/v1/find?what=type:laser_cutter&minutes=60", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 200
    [offer] = resp.get_json()["inductions"]
    assert offer["machines"] == ["laser-1"] and offer["sessions"][0]["id"] == s.id
    assert offer["sessions"][0]["places_left"] == 2
