"""When a qualification lapses by disuse: its type's InductionRule.disuse_months without using the type.

Here, not in fablab.services.inductions, because the booking rules read it through
machines.qualification_state, and inductions imports machines.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select

from ..domain import inductions as ind
from ..extensions import db
from ..models import Booking, BookingKind, BookingStatus, Machine, Qualification
from ..models.inductions import InductionRule
from ..models.usage import UsageSession


def last_use(member_id: int, machine_type_id: int) -> datetime | None:
    """The member's latest use of any machine of the type: reported usage or a completed booking."""
    used = db.session.scalar(select(func.max(UsageSession.end_at)).join(Machine, Machine.id == UsageSession.machine_id)
                             .where(UsageSession.member_id == member_id, Machine.type_id == machine_type_id))
    booked = db.session.scalar(select(func.max(Booking.end_at)).join(Machine, Machine.id == Booking.machine_id).where(
        Booking.member_id == member_id, Machine.type_id == machine_type_id, Booking.kind == BookingKind.NORMAL.value,
        Booking.status == BookingStatus.COMPLETED.value))
    # SQLite returns aggregate times as naive UTC (the column type is not applied to func.max)
    times = [t if t.tzinfo else t.replace(tzinfo=UTC) for t in (used, booked) if t is not None]
    return max(times) if times else None


def disused_at(q: Qualification, machine_type_id: int, now: datetime) -> datetime | None:
    """When `q` lapsed by disuse, if it has by `now` (None: it has not, or the type has no disuse limit)."""
    rule = db.session.get(InductionRule, machine_type_id)
    if rule is None or rule.disuse_months is None:
        return None
    st = ind.standing(q.granted_at, None, last_use(q.member_id, machine_type_id), rule.disuse_months, now)
    return st.lapses_at if st.state == "disused" else None
