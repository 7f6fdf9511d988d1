"""The demo lab's history gives the review something to show: skew, contention, lotteries, unmet evenings."""

from __future__ import annotations

import random
from datetime import datetime

import pytest
from sqlalchemy import func, select

from fablab import demo
from fablab.demo.history import seed_history_demo
from fablab.extensions import db
from fablab.models import Booking, Machine, Member
from fablab.models.scheduling import RequestWindow
from fablab.models.types import utcnow
from fablab.models.usage import UsageSession
from fablab.services import fairness as svc
from fablab.services import window_draw

pytestmark = pytest.mark.dates  # runs once per frozen clock (tests/support/clock.py)


def test_demo_history_makes_a_meaningful_review(app_ctx) -> None:
    text = demo.seed()  # the scheduling demo first, then this history
    assert "weeks of history" in text
    machines = {m.slug: m for m in db.session.scalars(select(Machine))}
    members = list(db.session.scalars(select(Member).order_by(Member.member_no)))
    assert seed_history_demo(machines, members, random.Random(1)) == ""  # once only
    assert db.session.scalar(select(func.count()).select_from(UsageSession)) > 300
    rows = db.session.execute(select(Booking.machine_id, Booking.start_at, Booking.end_at)
                              .where(Booking.status != "cancelled").order_by(Booking.machine_id, Booking.start_at))
    last: dict[int, datetime] = {}
    for mid, s, e in rows:
        assert mid not in last or last[mid] <= s, "no two held bookings of a machine overlap"
        last[mid] = e
    windows = list(db.session.scalars(select(RequestWindow).where(RequestWindow.status == "closed")))
    assert len(windows) >= 5 and all(window_draw.draw_matches(w) for w in windows)

    now = utcnow()
    admin = members[0]
    r = svc.build_review(svc.ReviewQuery.default(now), svc.Viewer(admin.id, True), now)
    assert r.gini > 0.3  # a few heavy users
    assert r.totals.no_shows > 0 and r.totals.late_cancels > 0 and r.totals.unbooked_hours > 0
    assert r.totals.overrun_hours > 0 and r.totals.waitlisted_requests > 0
    assert r.lottery.lottery_events > 0 and r.lottery.verified == r.lottery.windows
    assert any("laser cutter" in s and "evening" in s for s in r.statements)
    metered = {m.slug: m.metered for m in r.machines}
    assert metered["laser-epilog"] and not metered["solder-1"]
    assert all(0 < (m.utilisation or 0) < 1 for m in r.machines)
    assert sum(1 for w in r.weeks if w.used_hours > 0) >= 4
