"""What the fairness review counts from inductions: requests nobody has met (unmet demand for a
qualification, the way out of "not qualified"), and places taken in a session and not used (a missed session
counts like a no-show).

Per machine type: the review's scope is a machine, a type or the lab, and sessions and requests belong to a
type. Two aggregate queries.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, or_, select

from ..domain import inductions as ind
from ..extensions import db
from ..models.inductions import InductionRequest, InductionSession, InductionSignup


@dataclass(frozen=True)
class InductionFigures:
    requests_waiting: int = 0  # requests open at the end of the period (asked before it, not yet passed)
    waiting_since: datetime | None = None  # the oldest of them
    missed_sessions: int = 0  # signups marked "missed" for sessions that started in the period


def figures(type_ids: Iterable[int], start_at: datetime, end_at: datetime) -> InductionFigures:
    types = list(set(type_ids))
    if not types:
        return InductionFigures()
    count, since = db.session.execute(
        select(func.count(InductionRequest.id), func.min(InductionRequest.created_at)).where(
            InductionRequest.machine_type_id.in_(types), InductionRequest.created_at < end_at,
            or_(InductionRequest.fulfilled_at.is_(None), InductionRequest.fulfilled_at >= end_at))).one()
    missed = db.session.scalar(
        select(func.count(InductionSignup.id)).join(InductionSession, InductionSession.id == InductionSignup.session_id)
        .where(InductionSession.machine_type_id.in_(types), InductionSignup.status == ind.MISSED,
               InductionSession.start_at >= start_at, InductionSession.start_at < end_at))
    if since is not None and since.tzinfo is None:  # SQLite aggregates come back naive (UTC)
        since = since.replace(tzinfo=UTC)
    return InductionFigures(int(count or 0), since, int(missed or 0))
