"""The week calendar of a machine as plain data: days × slots, each cell free / booked / closed / past.
Runs of rows with nothing to book or see (closed, past, or night hours without bookings) fold into one
row, so a machine open around the clock does not make a page 2,000 px tall."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo

from sqlalchemy import or_, select

from ..domain import policy as pol
from ..extensions import db
from ..models import Booking, Machine, Member, Qualification
from ..models.members import Role
from . import bookings as svc
from . import machines as machine_service

# Night hours (local) fold away unless a booking is in them or the viewer asks for them.
DAY_START = time(7, 0)
DAY_END = time(23, 0)


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
    # Folded runs of rows: first row -> (number of rows, why: "closed" | "past" | "night", "HH:MM" it ends).
    folds: dict[int, tuple[int, str, str]] = field(default_factory=dict)
    hidden: set[int] = field(default_factory=set)  # rows inside a fold
    night_hidden: bool = False  # a night fold may be opened (?night=1)
    show_night: bool = False
    opening: list[tuple[str, str]] = field(default_factory=list)  # (days, hours) e.g. ("Mon–Fri", "09:00–21:00")
    # Why the viewer cannot book at all (qualification), so the page says so instead of "tap a free slot".
    cannot_book: str = ""
    grantors: list[Member] = field(default_factory=list)


def monday_of(day: date) -> date:
    return day - timedelta(days=day.weekday())


def build_week(machine: Machine, viewer: Member, monday: date, now: datetime, tz: tzinfo,
               show_night: bool = False) -> Week:
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
    if policy.qualification_required:
        qual = machine_service.qualification_state(viewer, machine, now)
        if not qual.qualified:
            week.cannot_book = qualification_sentence(machine, qual)
            week.grantors = who_grants(machine, now)
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
    week.show_night = show_night
    _fold(week, show_night, policy.slot_minutes)
    week.opening = opening_summary(policy)
    today = now.astimezone(tz).date()
    # Seven days from any day (today by default): on a Sunday, "this week" would be all past.
    week.prev_monday = max(monday - timedelta(days=7), today) if monday > today else None
    horizon = pol.horizon_end(policy, now, tz).astimezone(tz).date()
    week.next_monday = monday + timedelta(days=7) if monday + timedelta(days=7) <= horizon else None
    return week


def qualification_sentence(machine: Machine, qual: machine_service.QualificationState) -> str:
    """The viewer's qualification for the machine, as a sentence (the page and the refusal say the same)."""
    scope = (f"{machine.machine_type.name} machines" if machine.qualification_scope == "type" else machine.name)
    tz = svc.lab_tz()
    if qual.qualified:
        until = f" until {qual.expires_at.astimezone(tz):%d %b %Y}" if qual.expires_at else ""
        return f"You are qualified for {scope}{until}."
    if qual.expired_at is not None:
        return (f"Your qualification for {scope} expired on {qual.expired_at.astimezone(tz):%d %b %Y}, "
                f"so you cannot book {machine.name} until a steward renews it.")
    return f"{machine.name} needs a qualification for {scope} before you can book it."


def _after(t: time, minutes: int) -> str:
    total = t.hour * 60 + t.minute + minutes
    return "24:00" if total >= 24 * 60 else f"{total // 60:02d}:{total % 60:02d}"


def _fold(week: Week, show_night: bool, slot_minutes: int) -> None:
    """Mark runs of at least two rows where every cell is closed/past (or, at night, also free) as folded."""
    def why(i: int) -> str | None:
        row = week.rows[i]
        states = {c.state for c in row if c is not None}
        if states <= {"closed"}:
            return "closed"
        if states <= {"closed", "past"}:
            return "past"
        t = week.times[i]
        if not show_night and (t < DAY_START or t >= DAY_END) and states <= {"closed", "past", "free"}:
            return "night"
        return None

    i = 0
    while i < len(week.rows):
        reason = why(i)
        j = i + 1
        if reason is not None:
            while j < len(week.rows) and why(j) is not None and (why(j) == "night") == (reason == "night"):
                j += 1
            if j - i >= 2:
                ends = f"{week.times[j]:%H:%M}" if j < len(week.times) else _after(week.times[-1], slot_minutes)
                week.folds[i] = (j - i, reason, ends)
                week.hidden.update(range(i, j))
                week.night_hidden = week.night_hidden or reason == "night"
        i = j


def opening_summary(policy: pol.BookingPolicy) -> list[tuple[str, str]]:
    """Opening hours with equal days merged: [("Mon–Fri", "09:00–21:00"), ("Sat, Sun", "closed")]."""
    names = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
    groups: list[tuple[list[int], str]] = []
    for d in range(7):
        text = pol.describe_hours(policy.opening_hours[d])
        if text == "00:00–24:00":
            text = "all day"
        if groups and groups[-1][1] == text and groups[-1][0][-1] == d - 1:
            groups[-1][0].append(d)
        else:
            groups.append(([d], text))
    if len(groups) == 1:
        return [("Every day", groups[0][1])]
    out = []
    for days, text in groups:
        label = names[days[0]] if len(days) == 1 else (
            f"{names[days[0]]}, {names[days[1]]}" if len(days) == 2 else f"{names[days[0]]}–{names[days[-1]]}")
        out.append((label, text))
    return out


def lengths_from(machine: Machine, member: Member, start: datetime, now: datetime,
                 tz: tzinfo) -> list[timedelta]:
    """The booking lengths `member` may pick from `start`: on the grid, from the minimum to what the free
    time, the max length, the qualification and the member's quotas allow."""
    policy = svc.policy_for(machine)
    longest = svc.longest_from(machine, member, start, now)
    out = []
    length = policy.min_length
    while length <= longest:
        out.append(length)
        length += policy.slot
    return out


def who_grants(machine: Machine, now: datetime) -> list[Member]:
    """Stewards qualified on this machine (or its type), and admins: the people to ask for an induction."""
    qualified = select(Qualification.member_id).where(
        or_(Qualification.machine_id == machine.id, Qualification.machine_type_id == machine.type_id),
        or_(Qualification.expires_at.is_(None), Qualification.expires_at > now))
    stmt = select(Member).where(Member.active.is_(True), or_(
        Member.role == Role.ADMIN.value, (Member.role == Role.STEWARD.value) & Member.id.in_(qualified)))
    return list(db.session.scalars(stmt.order_by(Member.role.desc(), Member.name)))[:6]
