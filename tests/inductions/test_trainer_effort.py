"""A finished session is the trainer's shared effort on the task board's ledger: a completed "induction"
task credited to the trainer, weighted up by how long requests waited before anyone offered a session."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from fablab.domain import inductions as ind
from fablab.extensions import db
from fablab.models import Role
from fablab.models.scheduling import EffortTask, TaskCompletion
from fablab.services import effort
from fablab.services import inductions as svc
from fablab.services.scheduling_common import SchedulingError


def _tasks() -> list[EffortTask]:
    return list(db.session.scalars(select(EffortTask).where(EffortTask.kind == "induction")))


def test_trainer_credited_with_rising_weight_pending_until_another_steward_confirms(
        make_session, make_member, trainer, laser) -> None:
    asker = make_member(name="Asker")
    svc.request_induction(asker, laser.machine_type, now=datetime.now(UTC) - timedelta(days=5))
    db.session.commit()
    s = make_session(capacity=2)  # 2 hours, offered 5 days after the request
    learner = make_member()
    svc.sign_up(learner, s.id)
    svc.sign_up(asker, s.id)
    db.session.commit()
    at = s.start_at + timedelta(hours=2)
    svc.mark_attendance(trainer, s.id, learner.id, ind.PASSED, now=at)
    assert _tasks() == []  # not done while someone is still unmarked
    svc.mark_attendance(trainer, s.id, asker.id, ind.MISSED, now=at)
    [task] = _tasks()
    [credit] = db.session.scalars(select(TaskCompletion).where(TaskCompletion.task_id == task.id))
    assert credit.member_id == trainer.id and task.completed_at == at
    assert credit.credited_hours == pytest.approx(2.0 * 1.5, abs=0.01)  # 2 h × (1 + 0.1/day × 5 days)
    assert task.confirmed_at is None  # the trainer marked her own session: a steward confirms it
    assert effort.confirmed_total(effort.member_contributions(trainer)) == 0
    with pytest.raises(SchedulingError) as exc:
        effort.confirm_task(trainer, task)
    assert exc.value.code == "own_work"
    other = make_member("steward2@example.org", Role.STEWARD)
    effort.confirm_task(other, task)
    assert effort.confirmed_total(effort.member_contributions(trainer)) == pytest.approx(3.0, abs=0.01)
    # A correction after the session is done does not credit it twice.
    svc.mark_attendance(trainer, s.id, asker.id, ind.ATTENDED, now=at + timedelta(minutes=5))
    assert len(_tasks()) == 1


def test_steward_marking_anothers_session_confirms_it_and_no_requests_no_rise(
        make_session, make_member, trainer) -> None:
    s = make_session(capacity=1)
    learner = make_member()
    svc.sign_up(learner, s.id)
    db.session.commit()
    steward = make_member("steward3@example.org", Role.STEWARD)
    svc.mark_attendance(steward, s.id, learner.id, ind.ATTENDED, now=s.start_at + timedelta(hours=3))
    [task] = _tasks()
    assert task.confirmed_by_id == steward.id and task.claims[0].member_id == trainer.id
    assert effort.confirmed_total(effort.member_contributions(trainer)) == pytest.approx(2.0)
