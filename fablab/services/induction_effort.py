"""What the trainer's sessions earned on the shared-effort ledger: credited hours, and whether a steward
confirmed them yet (a trainer's own session needs another's confirmation to count)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select

from ..extensions import db
from ..models.inductions import InductionSession
from ..models.scheduling import EffortTask, TaskCompletion


@dataclass(frozen=True)
class Credit:
    hours: float
    confirmed: bool


def credits(sessions: Iterable[InductionSession]) -> dict[int, Credit]:
    """Session id → its trainer's credit, for the sessions whose effort is recorded (one query)."""
    by_task = {s.effort_task_id: s for s in sessions if s.effort_task_id is not None}
    if not by_task:
        return {}
    rows = db.session.execute(
        select(TaskCompletion.task_id, TaskCompletion.member_id, TaskCompletion.credited_hours, EffortTask.confirmed_at)
        .join(EffortTask, EffortTask.id == TaskCompletion.task_id).where(TaskCompletion.task_id.in_(by_task)))
    out: dict[int, Credit] = {}
    for task_id, member_id, hours, confirmed_at in rows:
        s = by_task[task_id]
        if member_id == s.trainer_id:
            out[s.id] = Credit(float(hours), confirmed_at is not None)
    return out


def total(credits_: dict[int, Credit]) -> tuple[float, float]:
    """(confirmed hours, hours waiting for a steward's confirmation)."""
    return (sum(c.hours for c in credits_.values() if c.confirmed),
            sum(c.hours for c in credits_.values() if not c.confirmed))
