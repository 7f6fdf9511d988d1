"""Demo data for fair scheduling: the laser cutter shared through weekly request windows, a past window
with its published results, an open one with requests, a waitlist and a task board (with confirmed work
and work waiting for confirmation)."""

from __future__ import annotations

import random
from datetime import datetime, time, timedelta

from sqlalchemy import select

from ..domain import policy as pol
from ..extensions import db
from ..models import Booking, BookingKind, BookingStatus, Machine, Member
from ..models.bookings import HELD_STATUSES
from ..models.scheduling import RequestStatus, RequestWindow, SlotRequest
from ..models.types import utcnow
from ..services import bookings as booking_service
from ..services import effort, waitlist, window_draw, windows
from ..services.fairshare_data import population
from ..services.scheduling_common import SchedulingError

LASER = "laser-epilog"


def _free(machine: Machine, start: datetime, end: datetime) -> bool:
    return db.session.scalar(select(Booking.id).where(
        Booking.machine_id == machine.id, Booking.end_at > start, Booking.start_at < end,
        Booking.status.in_([s.value for s in HELD_STATUSES])).limit(1)) is None


def _evening_slots(window: RequestWindow) -> list[windows.Slot]:
    tz = booking_service.lab_tz()
    return [s for s in windows.window_slots(window) if s.start.astimezone(tz).hour >= 14]


def seed_scheduling_demo(machines: dict[str, Machine], members: list[Member], rng: random.Random) -> str:
    laser = machines.get(LASER)
    if laser is None or windows.windows_of(laser, limit=1):
        return ""
    now = utcnow()
    tz = booking_service.lab_tz()
    windows.update_policy(laser, "window", quota_slots=2, request_minutes=120, open_weekday=0, open_time="00:00",
                          close_weekday=3, close_time="20:00", auto_open=True)
    by_id = {m.id: m for m in members}
    users = [by_id[i] for i in population(laser, now) if i in by_id and by_id[i].role == "member"]
    rng.shuffle(users)

    # Last week was shared through a request window (below): its time is the window's to allocate.
    week_start, _ = pol.local_week_bounds(now, tz)
    last_monday = week_start - timedelta(days=7)
    p_start = pol.local_midnight(last_monday.astimezone(tz).date(), tz)
    p_end = pol.local_midnight(week_start.astimezone(tz).date(), tz)

    # Some past use (completed sessions), uneven on purpose so priorities differ. Not in last week's
    # window period: the window is closed (allocated) after these are written, and a direct booking
    # there would have been refused while it was open.
    for i, m in enumerate(users[:8]):
        for _ in range(3 - i // 3):
            day = (now - timedelta(days=rng.randint(2, 28))).astimezone(tz).date()
            start = pol.local_to_utc(day, time(rng.choice((10, 12, 14))), tz)
            end = start + timedelta(hours=rng.choice((1, 2)))
            if start < p_end and p_start < end:
                continue
            if _free(laser, start - timedelta(minutes=15), end + timedelta(minutes=15)):
                db.session.add(Booking(machine_id=laser.id, member_id=m.id, start_at=start, end_at=end,
                                       booked_end_at=end, status=BookingStatus.COMPLETED.value,
                                       kind=BookingKind.NORMAL.value, source="web", checked_in_at=start,
                                       created_at=start - timedelta(days=2), updated_at=end))
    db.session.commit()

    # A closed window for last week, with its results, its draw re-runnable from the revealed seed.
    closes = pol.local_to_utc((p_start - timedelta(days=4)).astimezone(tz).date(), time(20), tz)
    opened = closes - timedelta(days=3)
    past = windows.open_window(laser, members[0], opened, period_start=p_start, period_end=p_end, opens_at=opened,
                               closes_at=closes)
    slots = _evening_slots(past)
    hot = slots[:: max(1, len(slots) // 4)][:4]  # a few popular evenings
    for m in users[:10]:
        wanted = rng.sample(hot, k=min(2, len(hot))) + rng.sample(slots, k=1)
        for rank, s in enumerate(dict.fromkeys(wanted), 1):
            try:
                windows.add_request(m, past, s.start, s.end, rank, now=opened + timedelta(hours=rng.randint(1, 60)))
            except SchedulingError:
                pass
    window_draw.close_window(past, closes + timedelta(minutes=1))
    # What happened since: most came, one did not.
    granted = [r.booking for r in past.requests if r.status == RequestStatus.GRANTED and r.booking is not None]
    for i, b in enumerate(granted):
        if i == 1:
            b.status = BookingStatus.NO_SHOW.value
        else:
            b.status, b.checked_in_at = BookingStatus.COMPLETED.value, b.start_at
    db.session.commit()

    # The open window for the coming period, with requests already in.
    t = windows.upcoming_window_times(laser, now)
    current = windows.open_window(laser, members[0], now, period_start=t.period_start, period_end=t.period_end,
                                  opens_at=min(now - timedelta(hours=6), t.opens_at), closes_at=t.closes_at)
    slots = _evening_slots(current)
    hot = slots[:: max(1, len(slots) // 5)][:5]
    requested = 0
    for m in users[:12]:
        wanted = rng.sample(hot, k=min(2, len(hot))) + rng.sample(slots, k=1)
        for rank, s in enumerate(dict.fromkeys(wanted), 1):
            try:
                windows.add_request(m, current, s.start, s.end, rank, now=now)
                requested += 1
            except SchedulingError:
                pass

    # Waiting for any free laser time this week.
    waiting = 0
    for m in users[-3:]:
        try:
            waitlist.join_waitlist(m, laser, kind="any", min_hours=1.0, now=now)
            waiting += 1
        except SchedulingError:
            pass

    # The task board: neglected tasks weigh more; some done, credited to their volunteers once somebody
    # else confirmed the work: one marked done by the steward, one confirmed by a peer, one still waiting.
    tasks = [("Clean the laser lens and mirrors", "cleaning", 1.0, 1, 9, laser),
             ("Replace the laser's honeycomb bed", "maintenance", 2.0, 2, 4, laser),
             ("Give a laser induction (Saturday)", "induction", 2.0, 1, 1, laser),
             ("Restock plywood and acrylic", "restocking", 1.5, 1, 6, None),
             ("Empty the extraction filter", "maintenance", 0.5, 1, 12, laser),
             ("Tidy the electronics bench", "cleaning", 1.0, 1, 2, machines.get("solder-1")),
             ("Refill the first-aid kit", "restocking", 0.5, 1, 5, None),
             ("Sweep the workshop floor", "cleaning", 0.5, 1, 3, None)]
    for i, (title, kind, hours, people, age, machine) in enumerate(tasks):
        task = effort.create_task(title, kind=kind, base_hours=hours, people_needed=people, machine=machine,
                                  actor=members[1], now=now - timedelta(days=age))
        if i in (1, 4):
            for m in users[i:i + people + (1 if i == 4 else 0)]:
                effort.claim_task(m, task, now - timedelta(days=age - 1))
        if i == 4:
            effort.complete_task(members[1], task, now - timedelta(days=1))  # the steward's word confirms it
        elif i in (6, 7) and len(users) >= 2:
            doer = users[i % len(users)]
            effort.claim_task(doer, task, now - timedelta(days=age - 1))
            effort.complete_task(doer, task, now - timedelta(days=1))
            if i == 6:  # a peer (no machine: any other member) confirms it; the other one is still waiting
                effort.confirm_task(next(u for u in users if u.id != doer.id), task, now - timedelta(hours=20))
    db.session.commit()
    requests = db.session.scalar(select(SlotRequest.id).where(SlotRequest.window_id == past.id).limit(1))
    return (f", laser in window mode ({len(past.requests) if requests else 0} requests drawn last week, "
            f"{requested} waiting for the next draw, {waiting} on its waitlist, {len(tasks)} tasks)")
