from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from fablab.extensions import db
from fablab.models import Machine, Member, Role
from fablab.models.inductions import InductionSession
from fablab.services import inductions as svc


def soon(days: float = 2, hours: float = 2) -> tuple[datetime, datetime]:
    """A session start/end `days` ahead, on the hour (times in the future for any real clock)."""
    start = (datetime.now(UTC) + timedelta(days=days)).replace(minute=0, second=0, microsecond=0)
    return start, start + timedelta(hours=hours)


@pytest.fixture
def laser(make_machine) -> Machine:
    rules = {"slot_minutes": 30, "min_minutes": 30, "max_minutes": 240,
             "opening_hours": {d: [["00:00", "24:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
             "horizon_days": 14, "max_hours_per_day": None, "max_hours_per_week": None,
             "max_future_bookings": None}
    return make_machine("laser-1", type_slug="laser_cutter", name="Laser 1", policy=rules)


@pytest.fixture
def trainer(make_member) -> Member:
    return make_member("trainer@example.org", Role.STEWARD, name="Tess Trainer")


@pytest.fixture
def make_session(app_ctx, trainer, laser) -> Callable[..., InductionSession]:
    def make(capacity: int = 2, days: float = 2, on_machine: bool = False, **kw: Any) -> InductionSession:
        start, end = soon(days)
        s = svc.schedule(trainer, laser.machine_type, start, end, capacity=capacity, place="Workshop",
                         machine=laser if on_machine else None, **kw)
        db.session.commit()
        return s

    return make
