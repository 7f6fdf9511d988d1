from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from fablab.extensions import db
from fablab.models import Booking, Machine, Member
from fablab.services import machines as machine_service

ALL_DAY = {d: [["00:00", "24:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


@pytest.fixture
def window_machine(make_machine) -> Callable[..., Machine]:
    """A machine in window mode, open around the clock, 1 h slots, no policy quotas (tests set them)."""

    def make(slug: str | None = None, **policy: Any) -> Machine:
        rules = {"slot_minutes": 30, "min_minutes": 30, "max_minutes": 240, "opening_hours": ALL_DAY,
                 "horizon_days": 14, "buffer_minutes": 0, "checkin_grace_minutes": 15,
                 "max_hours_per_day": None, "max_hours_per_week": None, "max_future_bookings": None,
                 "qualification_required": True, "mode": "window"}
        rules.update(policy)
        return make_machine(slug, policy=rules)

    return make


@pytest.fixture
def qualified_members(make_member) -> Callable[[Machine, int], list[Member]]:
    def make(machine: Machine, n: int) -> list[Member]:
        out = []
        for _ in range(n):
            m = make_member()
            machine_service.grant(m, by=None, machine=machine)
            out.append(m)
        db.session.commit()
        return out

    return make


def past_use(member: Member, machine: Machine, days_ago: float, hours: float, status: str = "completed") -> Booking:
    end = datetime.now(UTC) - timedelta(days=days_ago)
    b = Booking(machine_id=machine.id, member_id=member.id, start_at=end - timedelta(hours=hours), end_at=end,
                booked_end_at=end, status=status, kind="normal", source="web")
    db.session.add(b)
    db.session.commit()
    return b


def hour(t: datetime) -> datetime:
    return t.replace(minute=0, second=0, microsecond=0)
