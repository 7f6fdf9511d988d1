"""Shared effort: the task board (maintenance due, inductions, cleaning, restocking). A task's weight
rises while nobody takes it (weighted labour); members claim it, and completing it credits each
claimant. Contributions are made visible here; they never buy priority unless the lab turns the
optional share bonus on (fairshare_data). Rules live in fablab.domain.effort.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from ..database import write_transaction
from ..domain import effort
from ..extensions import db
from ..models import Machine, Member
from ..models.scheduling import EffortTask, TaskClaim, TaskCompletion
from ..models.types import utcnow
from .scheduling_common import SchedulingError

TASK_KINDS = ("maintenance", "induction", "cleaning", "restocking", "other")


def _task(t: EffortTask) -> effort.Task:
    return effort.Task(t.id, t.kind, t.base_hours, t.opened_at, t.people_needed,
                       tuple(c.member_id for c in t.claims), t.claimed_at, t.completed_at)


def _weight_policy(t: EffortTask) -> effort.WeightPolicy:
    return effort.WeightPolicy(t.rise_per_day, t.max_factor)


def create_task(title: str, *, kind: str = "cleaning", base_hours: float = 1.0, people_needed: int = 1,
                machine: Machine | None = None, description: str = "", actor: Member | None = None,
                rise_per_day: float = 0.1, max_factor: float = 2.0, now: datetime | None = None) -> EffortTask:
    now = now or utcnow()
    if kind not in TASK_KINDS:
        raise SchedulingError("bad_kind", f"kind must be one of {', '.join(TASK_KINDS)}")
    if not title.strip():
        raise SchedulingError("bad_title", "A task needs a title.")
    if base_hours <= 0 or people_needed < 1 or rise_per_day < 0 or max_factor < 1:
        raise SchedulingError("bad_weight", "Hours must be positive, people at least 1, the rise not negative and "
                              "the maximum factor at least 1.")
    with write_transaction():
        task = EffortTask(title=title.strip()[:160], kind=kind, base_hours=base_hours, people_needed=people_needed,
                          machine_id=machine.id if machine else None, description=description,
                          rise_per_day=rise_per_day, max_factor=max_factor, opened_at=now,
                          created_by_id=actor.id if actor else None)
        db.session.add(task)
        db.session.flush()
    return task


@dataclass(frozen=True)
class TaskView:
    task: EffortTask
    weight: float  # hours credited per person now
    credit_each: float  # what each claimant would be credited if it were completed now
    claimed_by_me: bool
    claimants: list[str]


def task_board(viewer: Member | None, now: datetime) -> list[TaskView]:
    """Open tasks, heaviest (most neglected) first."""
    rows = list(db.session.scalars(select(EffortTask).where(EffortTask.completed_at.is_(None),
                                                            EffortTask.cancelled.is_(False))))
    views = []
    for t in rows:
        dt = _task(t)
        wp = _weight_policy(t)
        views.append(TaskView(t, effort.task_weight(dt, now, wp), effort.claimant_credit(dt, now, wp),
                              viewer is not None and any(c.member_id == viewer.id for c in t.claims),
                              [c.member.name for c in t.claims]))
    views.sort(key=lambda v: (-v.weight, v.task.opened_at, v.task.id))
    return views


def get_task(task_id: int) -> EffortTask:
    t = db.session.get(EffortTask, task_id)
    if t is None:
        raise SchedulingError("not_found", "No such task.", 404)
    return t


def claim_task(member: Member, task: EffortTask, now: datetime | None = None) -> None:
    now = now or utcnow()
    with write_transaction():
        if task.completed_at is not None or task.cancelled:
            raise SchedulingError("task_closed", "This task is already done.", 409)
        if any(c.member_id == member.id for c in task.claims):
            return
        task.claims.append(TaskClaim(member_id=member.id, claimed_at=now))
        if task.claimed_at is None:
            task.claimed_at = now  # the weight stops rising


def unclaim_task(member: Member, task: EffortTask, now: datetime | None = None) -> None:
    now = now or utcnow()
    with write_transaction():
        if task.completed_at is not None:
            raise SchedulingError("task_closed", "This task is already done.", 409)
        for c in list(task.claims):
            if c.member_id == member.id:
                task.claims.remove(c)
        if not task.claims and task.claimed_at is not None:
            # Nobody has it any more: the rise resumes where it stopped (the days it was held do not count).
            task.opened_at = task.opened_at + (now - task.claimed_at)
            task.claimed_at = None


def complete_task(actor: Member, task: EffortTask, now: datetime | None = None) -> list[TaskCompletion]:
    """Mark done (a claimant or staff); each claimant is credited the task's weight, shared when more
    volunteered than it needed."""
    now = now or utcnow()
    if not (actor.is_staff or any(c.member_id == actor.id for c in task.claims)):
        raise SchedulingError("forbidden", "Only someone who took the task, a steward or an admin can complete it.",
                              403)
    if not task.claims:
        raise SchedulingError("no_claimant", "Somebody has to take the task before it can be completed.", 409)
    with write_transaction():
        if task.completed_at is not None:
            raise SchedulingError("task_closed", "This task is already done.", 409)
        task.completed_at = now
        credit = effort.claimant_credit(_task(task), now, _weight_policy(task))
        done = [TaskCompletion(task_id=task.id, member_id=c.member_id, credited_hours=credit, completed_at=now)
                for c in task.claims]
        db.session.add_all(done)
    return done


def member_contributions(member: Member) -> list[TaskCompletion]:
    return list(db.session.scalars(select(TaskCompletion).where(TaskCompletion.member_id == member.id)
                                   .order_by(TaskCompletion.completed_at.desc())))


def lab_contributions(since: datetime | None = None) -> list[tuple[Member, float]]:
    """Credited hours per member (most first): the lab's effort made visible."""
    from .fairshare_data import contributed_hours

    totals = contributed_hours(since=since)
    members = {m.id: m for m in db.session.scalars(select(Member).where(Member.id.in_(list(totals))))}
    return sorted(((members[k], v) for k, v in totals.items()), key=lambda mv: -mv[1])
