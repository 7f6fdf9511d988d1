from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from fablab.extensions import db
from fablab.models import Machine, Member
from fablab.services import machines as machine_service


@pytest.fixture
def open_machine(make_machine) -> Callable[..., Machine]:
    """A machine open around the clock with simple rules, so tests control every limit."""

    def make(slug: str | None = None, **policy: Any) -> Machine:
        rules = {"slot_minutes": 30, "min_minutes": 30, "max_minutes": 240,
                 "opening_hours": {d: [["00:00", "24:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
                 "horizon_days": 14, "buffer_minutes": 0, "checkin_grace_minutes": 15,
                 "max_hours_per_day": None, "max_hours_per_week": None, "max_future_bookings": None,
                 "qualification_required": True}
        rules.update(policy)
        return make_machine(slug, policy=rules)

    return make


@pytest.fixture
def qualified(app_ctx) -> Callable[[Member, Machine], None]:
    def grant(member: Member, machine: Machine, expires_at: datetime | None = None) -> None:
        machine_service.grant(member, by=None, machine=machine, expires_at=expires_at)
        db.session.commit()

    return grant


def slot(hours_from_now: float, length_h: float = 1.0, now: datetime | None = None) -> tuple[datetime, datetime]:
    """A slot-aligned (30 min) interval starting about `hours_from_now` from now."""
    now = now or datetime.now(UTC)
    base = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    start = base + timedelta(hours=hours_from_now)
    return start, start + timedelta(hours=length_h)
