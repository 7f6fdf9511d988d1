"""A small lab with a known week of history, so every figure of the review can be checked by hand.

The week: Monday 2 March 2026 00:00 UTC to Monday 9 March (lab time Europe/Berlin, CET = UTC+1). The
machines are open 10:00-22:00 lab time every day (09:00-21:00 UTC): 84 open hours in the week.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from fablab.extensions import db
from fablab.models import Booking, Machine, Member
from fablab.models.scheduling import RequestWindow, SlotRequest, WaitlistEntry
from fablab.models.usage import UsageSession
from fablab.services import fairness as svc
from fablab.services import machines as machine_service

T0 = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday
NOW = T0 + timedelta(days=7)
WEEK = svc.ReviewQuery(T0, NOW)
DAY_HOURS = {d: [["10:00", "22:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


def at(day: int, hour: float) -> datetime:
    """Day 0 = Monday 2 March; `hour` in UTC."""
    return T0 + timedelta(days=day, hours=hour)


@pytest.fixture
def machine(make_machine) -> Callable[..., Machine]:
    def make(slug: str | None = None, type_slug: str = "laser_cutter", **policy: Any) -> Machine:
        rules = {"slot_minutes": 15, "min_minutes": 15, "max_minutes": 600, "opening_hours": DAY_HOURS,
                 "horizon_days": 14, "buffer_minutes": 0, "checkin_grace_minutes": 15, "max_hours_per_day": None,
                 "max_hours_per_week": None, "max_future_bookings": None, "qualification_required": True}
        rules.update(policy)
        return make_machine(slug, type_slug=type_slug, policy=rules)

    return make


@pytest.fixture
def members(make_member) -> Callable[..., list[Member]]:
    def make(m: Machine, n: int, **kw: Any) -> list[Member]:
        out = [make_member(**kw) for _ in range(n)]
        for x in out:
            q = machine_service.grant(x, by=None, machine=m)
            q.granted_at = T0 - timedelta(days=30)  # qualified before the week under review
        db.session.commit()
        return out

    return make


def book(member: Member, machine: Machine, start: datetime, hours: float, status: str = "completed",
         **kw: Any) -> Booking:
    end = start + timedelta(hours=hours)
    b = Booking(machine_id=machine.id, member_id=member.id, start_at=start, end_at=end, booked_end_at=end,
                status=status, kind=kw.pop("kind", "normal"), created_at=start - timedelta(days=2),
                checked_in_at=start if status in ("completed", "checked_in") else None, **kw)
    db.session.add(b)
    db.session.flush()
    return b


def use(machine: Machine, member: Member | None, start: datetime, hours: float, booking: Booking | None = None,
        **kw: Any) -> UsageSession:
    end = start + timedelta(hours=hours)
    s = UsageSession(key=f"t:{machine.id}:{start.isoformat()}:{kw.get('kind', 'normal')}", machine_id=machine.id,
                     member_id=member.id if member else None, booking_id=booking.id if booking else None,
                     start_at=start, end_at=end, duration_s=hours * 3600, source="event", open=False, **kw)
    db.session.add(s)
    db.session.flush()
    return s


def closed_window(machine: Machine, start: datetime = T0) -> RequestWindow:
    w = RequestWindow(machine_id=machine.id, mode="window", period_start=start, period_end=start + timedelta(days=7),
                      opens_at=start - timedelta(days=7), closes_at=start - timedelta(days=3), status="closed",
                      commitment="0" * 64, secret_seed="1" * 64, revealed_seed="1" * 64)
    db.session.add(w)
    db.session.flush()
    return w


def unmet_request(window: RequestWindow, member: Member, start: datetime, hours: float,
                  status: str = "waitlisted") -> SlotRequest:
    r = SlotRequest(window_id=window.id, member_id=member.id, machine_id=window.machine_id, start_at=start,
                    end_at=start + timedelta(hours=hours), status=status)
    db.session.add(r)
    db.session.flush()
    return r


def waitlist_slot(member: Member, machine: Machine, start: datetime, hours: float, status: str = "left",
                  **kw: Any) -> WaitlistEntry:
    e = WaitlistEntry(member_id=member.id, machine_id=machine.id, kind="slot", start_at=start,
                      end_at=start + timedelta(hours=hours), status=status, joined_at=kw.pop("joined_at", start), **kw)
    db.session.add(e)
    db.session.flush()
    return e


def review(viewer: Member | None = None, names: bool = True, query: svc.ReviewQuery = WEEK,
           now: datetime = NOW) -> svc.Review:
    db.session.commit()
    return svc.build_review(query, svc.Viewer(viewer.id if viewer else None, names), now)
