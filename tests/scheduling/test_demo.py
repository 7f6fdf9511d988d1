"""The demo lab's fair-scheduling data: a closed laser window with verifiable results, an open one."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from fablab import demo
from fablab.demo.scheduling import seed_scheduling_demo
from fablab.extensions import db
from fablab.models import Machine, Member
from fablab.models.scheduling import EffortTask, RequestWindow, WaitlistEntry
from fablab.services import effort as effort_service
from fablab.services import window_draw
from fablab.services import windows as window_service

pytestmark = pytest.mark.dates  # runs once per frozen clock (tests/support/clock.py)


def test_demo_puts_the_laser_in_window_mode_with_results(app_ctx) -> None:
    demo.seed()  # the whole demo lab, which includes the scheduling demo (and the history's windows)
    machines = {m.slug: m for m in db.session.scalars(select(Machine))}
    members = list(db.session.scalars(select(Member).order_by(Member.member_no)))
    laser = machines["laser-epilog"]
    assert window_service.mode_of(laser) == "window"
    windows = list(db.session.scalars(select(RequestWindow).where(RequestWindow.machine_id == laser.id)
                                      .order_by(RequestWindow.period_start)))
    statuses = [w.status for w in windows]
    assert statuses.count("open") == 1 and statuses[-1] == "open" and "closed" in statuses
    past, current = windows[-2], windows[-1]
    assert past.requests and window_draw.draw_matches(past) is True
    assert {r.status for r in past.requests} >= {"granted"}
    assert current.requests and current.revealed_seed is None
    assert db.session.scalar(select(WaitlistEntry.id).limit(1)) is not None
    assert len(effort_service.task_board(None, datetime.now(UTC))) >= 4
    done = list(db.session.scalars(select(EffortTask).where(EffortTask.completed_at.is_not(None))))
    assert {t.confirmed_at is None for t in done} == {True, False}  # confirmed work, and work still waiting
    assert effort_service.awaiting_confirmation(None, datetime.now(UTC))
    # the draws' labels are random and stored: nobody can recompute them from the revealed seed
    assert past.label_scheme == "random" and {r["participant"] for r in past.trace["requests"]} \
        <= {p.label for p in past.participants}
    assert seed_scheduling_demo(machines, members, random.Random(7)) == ""  # once only
