"""The demo lab's inductions: sessions, one full with a waitlist, CNC requests, a missed session, and Dana,
whose expired laser qualification refuses her booking with the refresher as the way out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from fablab import demo
from fablab.demo.inductions import seed_inductions_demo
from fablab.domain import inductions as ind
from fablab.extensions import db
from fablab.models import Machine, Member
from fablab.models.inductions import InductionSignup
from fablab.services import bookings as booking_service
from fablab.services import inductions as svc
from fablab.web.inductions.refusal_actions import next_induction_action


def test_demo_inductions(app, app_ctx) -> None:
    demo.seed()
    now = datetime.now(UTC)
    machines = {m.slug: m for m in db.session.scalars(select(Machine))}
    members = list(db.session.scalars(select(Member).order_by(Member.member_no)))
    coming = svc.upcoming(now)
    assert len(coming) == 3
    assert {i.session.machine_type.slug for i in coming} == {"laser_cutter", "3d_printer"}
    full = [i for i in coming if i.places_left == 0 and i.waitlisted > 0]
    assert len(full) == 1 and full[0].session.machine_type.slug == "laser_cutter"
    [cnc] = [d for d in svc.open_requests(now) if d.machine_type.slug == "cnc_mill"]
    assert cnc.waiting == 3
    missed = db.session.scalars(select(InductionSignup).where(InductionSignup.status == ind.MISSED)).all()
    assert len(missed) == 1

    dana = next(m for m in members if m.name.startswith("Dana"))
    laser = machines["laser-epilog"]
    # 10:00 lab time tomorrow: inside opening hours on any date, so the refusal is the qualification's.
    local = (now + timedelta(days=1)).astimezone(booking_service.lab_tz())
    start = local.replace(hour=10, minute=0, second=0, microsecond=0).astimezone(UTC)
    with pytest.raises(booking_service.BookingRejected) as exc:
        booking_service.create_booking(dana, laser, start, start + timedelta(hours=1), now=now)
    assert exc.value.code == "qualification_expired"
    with app.test_request_context():
        action = next_induction_action(laser, dana, now)
    refresher = next(i.session for i in coming if i.session.is_refresher)
    assert action.url.endswith(f"/{refresher.id}/signup") and action.method == "post"
    assert "places left" in action.label
    assert svc.sign_up(dana, refresher.id).status == ind.CONFIRMED
    assert seed_inductions_demo(machines, members) == ""  # once only
