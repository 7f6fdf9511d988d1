"""The week calendar of a machine as plain data: days × slots, each cell free / booked / closed / past."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo

from ..domain import policy as pol
from ..domain.intervals import Interval
from ..models import Booking, Machine, Member
from . import bookings as svc


@dataclass
class Cell:
    start: datetime
    end: datetime
    state: str  # free, mine, busy, block, closed, past
    booking: Booking | None = None
    first: bool = False  # the first cell of a booking (labelled)


@dataclass
class Week:
    machine: Machine
    monday: date
    days: list[date]
    times: list[time]  # row labels (local)
    rows: list[list[Cell | None]] = field(default_factory=list)  # rows[time][day]
    prev_monday: date | None = None
    next_monday: date | None = None
    free_count: int = 0


def monday_of(day: date) -> date:
    return day - timedelta(days=day.weekday())


def build_week(machine: Machine, viewer: Member, monday: date, now: datetime, tz: tzinfo) -> Week:
    policy = svc.policy_for(machine)
    days = [monday + timedelta(days=i) for i in range(7)]
    lo = pol.local_midnight(days[0], tz)
    hi = pol.local_midnight(days[-1] + timedelta(days=1), tz)
    free = svc.availability(machine, lo, hi, now)
    booked = svc.bookings_between(machine, lo, hi)

    # Rows span the earliest opening to the latest closing of the week, on the slot grid.
    spans = [pair for day in days for pair in pol.opening_pairs(policy, pol.local_midnight(day, tz),
                                                                  pol.local_midnight(day + timedelta(days=1), tz), tz)]
    slot = policy.slot
    if spans:
        first_min = min((s.astimezone(tz) - pol.local_midnight(s.astimezone(tz).date(), tz)).total_seconds() // 60
                        for s, _ in spans)
        last_min = max(((e.astimezone(tz) - pol.local_midnight((e - timedelta(seconds=1)).astimezone(tz).date(), tz))
                        .total_seconds() // 60) for _, e in spans)
    else:
        first_min, last_min = 8 * 60, 20 * 60
    first_min = int(first_min // policy.slot_minutes * policy.slot_minutes)
    times = [time(m // 60, m % 60) for m in range(first_min, int(min(last_min, 24 * 60)), policy.slot_minutes)]

    week = Week(machine=machine, monday=monday, days=days, times=times)
    seen: set[int] = set()
    for t in times:
        row: list[Cell | None] = []
        for day in days:
            start = pol.local_to_utc(day, t, tz)
            if start.astimezone(tz).time() != t:  # this wall time does not exist (DST gap)
                row.append(None)
                continue
            end = start + slot
            cell = Cell(start, end, "closed")
            hit = next((b for b in booked if b.start_at < end and b.end_at > start), None)
            if hit is not None:
                cell.booking = hit
                cell.first = hit.id not in seen
                seen.add(hit.id)
                if hit.kind == "maintenance":
                    cell.state = "block"
                elif hit.member_id == viewer.id:
                    cell.state = "mine"
                else:
                    cell.state = "busy"
            elif end <= now:
                cell.state = "past"
            elif any(iv.start <= start and end <= iv.end for iv in free):
                cell.state = "free"
                week.free_count += 1
            row.append(cell)
        week.rows.append(row)
    today = now.astimezone(tz).date()
    # Seven days from any day (today by default): on a Sunday, "this week" would be all past.
    week.prev_monday = max(monday - timedelta(days=7), today) if monday > today else None
    horizon = pol.horizon_end(policy, now, tz).astimezone(tz).date()
    week.next_monday = monday + timedelta(days=7) if monday + timedelta(days=7) <= horizon else None
    return week


def lengths_from(machine: Machine, member: Member, start: datetime, now: datetime,
                 tz: tzinfo) -> list[timedelta]:
    """The booking lengths one could pick from `start` (on the grid, min..max, within free time)."""
    policy = svc.policy_for(machine)
    free: list[Interval] = svc.availability(machine, start, start + policy.max_length, now)
    if not free or free[0].start > start:
        return []
    limit = min(free[0].end, start + policy.max_length)
    out = []
    length = policy.min_length
    while start + length <= limit:
        out.append(length)
        length += policy.slot
    return out
