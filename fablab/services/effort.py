"""Shared effort: the task board (maintenance due, inductions, cleaning, restocking). A task's weight
rises while nobody takes it (weighted labour); members claim it, and completing it credits each
claimant, pending until somebody else confirms the work (a steward, or for the kinds the lab lets
peers confirm, a member qualified on the task's machine; FABLAB_TASK_CONFIRM). Only confirmed hours
count. Contributions are made visible here (names only as FABLAB_CONTRIBUTIONS_PUBLIC allows); they
never buy priority unless the lab turns the optional share bonus on (fairshare_data). Rules live in
fablab.domain.effort.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..database import write_transaction
from ..domain import effort
from ..extensions import db
from ..models import Machine, Member
from ..models.scheduling import EffortTask, TaskClaim, TaskCompletion
from ..models.types import utcnow
from . import event_data, lab_events
from . import machines as machine_service
from .scheduling_common import SchedulingError
from .scheduling_common import is_postgres as _pg

TASK_KINDS = ("maintenance", "induction", "cleaning", "restocking", "other")


def _task(t: EffortTask) -> effort.Task:
    return effort.Task(t.id, t.kind, t.base_hours, t.opened_at, t.people_needed,
                       tuple(c.member_id for c in t.claims), t.claimed_at, t.completed_at, t.confirmed_at)


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


def confirm_mode(kind: str) -> str:
    """Who confirms a completed task of this kind: "steward" or "peer" (the lab's FABLAB_TASK_CONFIRM)."""
    modes = current_app.config.get("FABLAB_TASK_CONFIRM") or effort.DEFAULT_CONFIRM
    return str(modes.get(kind, "steward"))


def names_visible(viewer: Member | None, member_id: int) -> bool:
    """Whether `viewer` sees the name of the member behind a contribution: their own, staff, or the lab
    made contributions public (FABLAB_CONTRIBUTIONS_PUBLIC)."""
    if viewer is not None and (viewer.id == member_id or viewer.is_staff):
        return True
    return bool(current_app.config.get("FABLAB_CONTRIBUTIONS_PUBLIC"))


def display_name(viewer: Member | None, member: Member) -> str:
    if viewer is not None and viewer.id == member.id:
        return "you"
    return member.name if names_visible(viewer, member.id) else "a member"


@dataclass(frozen=True)
class TaskView:
    task: EffortTask
    weight: float  # hours credited per person now
    credit_each: float  # what each claimant would be credited if it were completed now
    claimed_by_me: bool
    claimants: list[str]  # names, or "a member" where the viewer may not see them
    can_confirm: bool = False  # done, awaiting confirmation, and the viewer may confirm it
    confirm_note: str = ""  # who may confirm it (for a task awaiting confirmation)


def _claimant_names(viewer: Member | None, t: EffortTask) -> list[str]:
    return [display_name(viewer, c.member) for c in t.claims]


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
                              _claimant_names(viewer, t)))
    views.sort(key=lambda v: (-v.weight, v.task.opened_at, v.task.id))
    return views


def awaiting_confirmation(viewer: Member | None, now: datetime, limit: int = 50) -> list[TaskView]:
    """Completed tasks whose credits are still unconfirmed, oldest first, with whether `viewer` may confirm."""
    rows = list(db.session.scalars(select(EffortTask).where(EffortTask.completed_at.is_not(None),
                                                            EffortTask.confirmed_at.is_(None))
                                   .order_by(EffortTask.completed_at, EffortTask.id).limit(limit)))
    views = []
    for t in rows:
        credit = sum(c.credited_hours for c in _completions(t)) / max(1, len(t.claims))
        refusal = _confirm_refusal(viewer, t, now) if viewer is not None else "sign_in"
        views.append(TaskView(t, credit, credit, viewer is not None and any(c.member_id == viewer.id for c in t.claims),
                              _claimant_names(viewer, t), refusal is None, who_confirms(t)))
    return views


def _completions(t: EffortTask) -> list[TaskCompletion]:
    return list(db.session.scalars(select(TaskCompletion).where(TaskCompletion.task_id == t.id)))


def who_confirms(t: EffortTask) -> str:
    if confirm_mode(t.kind) == "steward":
        return "a steward confirms it"
    if t.machine is not None:
        return f"a steward or a member qualified on {t.machine.name} confirms it"
    return "a steward or another member confirms it"


def get_task(task_id: int) -> EffortTask:
    t = db.session.get(EffortTask, task_id)
    if t is None:
        raise SchedulingError("not_found", "No such task.", 404)
    return t


def _lock_task(task_id: int) -> EffortTask:
    """Re-read the task inside the write transaction (row-locked on PostgreSQL; SQLite's BEGIN IMMEDIATE
    already serialises writers), so parallel claims, completions and confirmations see each other."""
    stmt = select(EffortTask).where(EffortTask.id == task_id)
    if _pg():
        stmt = stmt.with_for_update(of=EffortTask)
    t = db.session.scalar(stmt.execution_options(populate_existing=True))
    if t is None:
        raise SchedulingError("not_found", "No such task.", 404)
    db.session.expire(t, ["claims"])  # the claims as committed now, not as this session last saw them
    return t


def claim_task(member: Member, task: EffortTask, now: datetime | None = None) -> None:
    now = now or utcnow()
    with write_transaction():
        task = _lock_task(task.id)
        if task.completed_at is not None or task.cancelled:
            raise SchedulingError("task_closed", "This task is already done.", 409)
        if any(c.member_id == member.id for c in task.claims):
            return
        task.claims.append(TaskClaim(member_id=member.id, claimed_at=now))
        if task.claimed_at is None:
            task.claimed_at = now  # the weight stops rising
        lab_events.publish(event_data.task("task.assigned", task, now, assignee_id=member.id))


def unclaim_task(member: Member, task: EffortTask, now: datetime | None = None) -> None:
    now = now or utcnow()
    with write_transaction():
        task = _lock_task(task.id)
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
    volunteered than it needed. The credits are pending until confirmed (`confirm_task`), except when a
    steward who did not take the task marks it done: that is the steward's confirmation.
    Of parallel completions exactly one succeeds; the others are refused as already done."""
    now = now or utcnow()
    try:
        with write_transaction():
            task = _lock_task(task.id)
            if task.completed_at is not None:
                raise SchedulingError("task_closed", "This task is already done.", 409)
            claimant = any(c.member_id == actor.id for c in task.claims)
            if not (actor.is_staff or claimant):
                raise SchedulingError("forbidden", "Only someone who took the task, a steward or an admin can "
                                      "complete it.", 403)
            if not task.claims:
                raise SchedulingError("no_claimant", "Somebody has to take the task before it can be completed.",
                                      409)
            task.completed_at = now
            task.completed_by_id = actor.id
            if actor.is_staff and not claimant:
                task.confirmed_at, task.confirmed_by_id = now, actor.id
            credit = effort.claimant_credit(_task(task), now, _weight_policy(task))
            done = [TaskCompletion(task_id=task.id, member_id=c.member_id, credited_hours=credit, completed_at=now)
                    for c in task.claims]
            db.session.add_all(done)
    except IntegrityError:
        # The row lock makes this unreachable; kept so a race we did not foresee is a refusal, not a 500.
        raise SchedulingError("task_closed", "This task is already done.", 409) from None
    return done


_CONFIRM_REFUSALS = {
    "own_work": "Nobody confirms their own work: somebody who did not take this task has to confirm it.",
    "steward_only": "A steward confirms this kind of task.",
    "not_qualified": "Only a steward or a member qualified on the task's machine can confirm it.",
}


def _confirm_refusal(actor: Member, t: EffortTask, now: datetime) -> str | None:
    qualified = t.machine is None or machine_service.qualification_state(actor, t.machine, now).qualified
    return effort.confirm_refusal(confirm_mode(t.kind), is_claimant=any(c.member_id == actor.id for c in t.claims),
                                  is_staff=actor.is_staff, qualified=qualified)


def confirm_task(actor: Member, task: EffortTask, now: datetime | None = None) -> EffortTask:
    """Confirm that a completed task was done: from now its credits count (ledger, fair share, bonus)."""
    now = now or utcnow()
    with write_transaction():
        task = _lock_task(task.id)
        if task.completed_at is None:
            raise SchedulingError("not_done", "This task is not done yet; it can be confirmed once it is.", 409)
        if task.confirmed_at is not None:
            raise SchedulingError("already_confirmed", "This task is already confirmed.", 409)
        refusal = _confirm_refusal(actor, task, now)
        if refusal is not None:
            raise SchedulingError(refusal, _CONFIRM_REFUSALS[refusal], 403)
        task.confirmed_at, task.confirmed_by_id = now, actor.id
    return task


def member_contributions(member: Member) -> list[TaskCompletion]:
    """All the member's credits, newest first; `is_confirmed(c)` tells which count."""
    return list(db.session.scalars(select(TaskCompletion).where(TaskCompletion.member_id == member.id)
                                   .order_by(TaskCompletion.completed_at.desc())))


def is_confirmed(c: TaskCompletion) -> bool:
    return c.task.confirmed_at is not None


def confirmed_total(rows: list[TaskCompletion]) -> float:
    return sum(c.credited_hours for c in rows if is_confirmed(c))


def lab_contributions(since: datetime | None = None) -> list[tuple[Member, float]]:
    """Confirmed hours per member (most first): the lab's effort made visible."""
    from .fairshare_data import contributed_hours

    totals = contributed_hours(since=since)
    members = {m.id: m for m in db.session.scalars(select(Member).where(Member.id.in_(list(totals))))}
    return sorted(((members[k], v) for k, v in totals.items()), key=lambda mv: -mv[1])


def record_done_work(member: Member, title: str, *, kind: str, base_hours: float, opened_at: datetime,
                     offered_at: datetime, actor: Member, machine: Machine | None = None, description: str = "",
                     now: datetime | None = None) -> EffortTask:
    """Work already done by `member` that no one took from the board (a trainer's induction session): a
    completed task with `member` as its claimant, written in the caller's transaction.

    The weight rises from `opened_at` (the work was first asked for) until `offered_at` (the member offered
    it), as a board task's does until it is claimed. As complete_task: when `actor` is staff and not
    `member`, marking it done is the steward's confirmation; otherwise it waits for confirmation by the
    task kind's rule (FABLAB_TASK_CONFIRM)."""
    now = now or utcnow()
    if kind not in TASK_KINDS:
        raise SchedulingError("bad_kind", f"kind must be one of {', '.join(TASK_KINDS)}")
    opened_at = min(opened_at, offered_at)
    task = EffortTask(title=title.strip()[:160], kind=kind, base_hours=max(base_hours, 0.01), people_needed=1,
                      machine_id=machine.id if machine else None, description=description, opened_at=opened_at,
                      rise_per_day=0.1, max_factor=2.0, claimed_at=offered_at, completed_at=now,
                      completed_by_id=actor.id, created_by_id=actor.id)
    if actor.is_staff and actor.id != member.id:
        task.confirmed_at, task.confirmed_by_id = now, actor.id
    task.claims.append(TaskClaim(member_id=member.id, claimed_at=offered_at))
    db.session.add(task)
    db.session.flush()
    credit = effort.claimant_credit(_task(task), now, _weight_policy(task))
    db.session.add(TaskCompletion(task_id=task.id, member_id=member.id, credited_hours=credit, completed_at=now))
    return task
