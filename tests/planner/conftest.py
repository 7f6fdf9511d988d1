from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Any

import pytest

from fablab.domain import policy as pol
from fablab.extensions import db
from fablab.models import Machine, Member
from fablab.services import bookings as svc
from fablab.services import machines as machine_service

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def rules(**policy: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"slot_minutes": 30, "min_minutes": 30, "max_minutes": 240,
                           "opening_hours": {d: [["00:00", "24:00"]] for d in DAYS}, "horizon_days": 14,
                           "buffer_minutes": 0, "checkin_grace_minutes": 15, "max_hours_per_day": None,
                           "max_hours_per_week": None, "max_future_bookings": None, "qualification_required": True}
    out.update(policy)
    return out


EVENINGS = {d: [["10:00", "22:00"]] for d in DAYS}


@pytest.fixture
def machine(make_machine) -> Callable[..., Machine]:
    """A machine with simple rules (open around the clock unless `opening_hours` says otherwise)."""

    def make(slug: str, type_slug: str = "laser_cutter", name: str | None = None, **policy: Any) -> Machine:
        return make_machine(slug, type_slug=type_slug, name=name or slug.title(), policy=rules(**policy))

    return make


@pytest.fixture
def qualified(app_ctx) -> Callable[[Member, Machine], None]:
    def grant(member: Member, machine: Machine) -> None:
        machine_service.grant(member, by=None, machine=machine)
        db.session.commit()

    return grant


def lab_today() -> date:
    from fablab.models.types import utcnow

    return utcnow().astimezone(svc.lab_tz()).date()


def at(day: date, hh: int, mm: int = 0) -> datetime:
    """A local wall-clock time on `day`, as UTC."""
    return pol.local_to_utc(day, time(hh, mm), svc.lab_tz())


def soon(days: int = 1) -> date:
    return lab_today() + timedelta(days=days)
