"""The lab's day at a glance: every machine a row (grouped by type), time in half-hour columns, each cell
free / booked / yours / maintenance / in use / closed / past. "What is free this evening?"

Columns cover the lab's hours: the opening hours of the machines that are not open around the clock
(the staffed ones), or of all machines if every one is. Hours outside them collapse into one column per
run (a round-the-clock printer's night shows there as a summary), unless the whole day is asked for.
Two queries whatever the number of machines: the day's bookings with their members, and the viewer's
qualifications; free time comes from the pure availability rules of each machine.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo

from sqlalchemy import or_, select

from ..domain import booking_rules as rules
from ..domain import policy as pol
from ..domain.availability import free_intervals
from ..domain.intervals import Interval, Pair, merge_pairs
from ..extensions import db
from ..models import ACTIVE_STATUSES, Booking, BookingKind, BookingStatus, Machine, Member, Qualification
from . import bookings as svc
from . import machines as machine_service

STEP = timedelta(minutes=30)
LIVE_IN_USE = frozenset({"busy", "printing", "paused"})
MAX_DAYS_BACK = 62
MAX_DAYS_AHEAD = 366


class DayError(ValueError):
    """A day that cannot be shown; the message says which days can."""


@dataclass(frozen=True, slots=True)
class Column:
    start: datetime
    end: datetime
    collapsed: bool  # a run of hours outside the lab's hours
    now: bool = False  # contains the current time


@dataclass(slots=True)
class Cell:
    state: str  # free, mine, booked, maintenance, inuse, closed, past, out, none
    start: datetime
    end: datetime
    span: int = 1
    booking_id: int | None = None
    who: str = ""  # staff only: the member's name
    who_no: int | None = None
    who_id: int | None = None
    note: str = ""  # a block's reason, a course's title (staff)
    count: int = 0  # collapsed columns: bookings in the run
    past: bool = False
    at: str = ""  # free cells: the local start "HH:MM", and the UTC start as the booking link's `start`
    iso: str = ""


@dataclass
class Row:
    machine: Machine
    cells: list[Cell]
    qualified: bool
    free_count: int = 0


@dataclass
class Group:
    name: str
    rows: list[Row] = field(default_factory=list)


@dataclass
class DayView:
    day: date
    columns: list[Column]
    groups: list[Group]
    staff: bool
    full: bool
    now: datetime
    prev_day: date | None
    next_day: date | None
    today: date
    lab_hours: list[Pair]

    @property
    def free_count(self) -> int:
        return sum(r.free_count for g in self.groups for r in g.rows)


@dataclass(frozen=True, slots=True)
class _Held:
    """A booking row as the day view needs it (plain columns, no ORM objects)."""

    id: int
    machine_id: int
    member_id: int
    start: datetime
    end: datetime
    status: str
    kind: str
    checked_in_at: datetime | None
    note: str
    name: str
    member_no: int


def check_day(day: date, today: date) -> None:
    if day < today - timedelta(days=MAX_DAYS_BACK) or day > today + timedelta(days=MAX_DAYS_AHEAD):
        raise DayError(f"The day view shows {MAX_DAYS_BACK} days back and a year ahead; "
                       f"choose a day between {today - timedelta(days=MAX_DAYS_BACK):%d %b %Y} and "
                       f"{today + timedelta(days=MAX_DAYS_AHEAD):%d %b %Y}.")


def _load(machines: list[Machine], lo: datetime, hi: datetime) -> dict[int, list[_Held]]:
    statuses = [s.value for s in (*ACTIVE_STATUSES, BookingStatus.COMPLETED)]
    stmt = (select(Booking.id, Booking.machine_id, Booking.member_id, Booking.start_at, Booking.end_at,
                   Booking.status, Booking.kind, Booking.checked_in_at, Booking.note, Member.name, Member.member_no)
            .join(Member, Member.id == Booking.member_id)
            .where(Booking.machine_id.in_([m.id for m in machines]), Booking.status.in_(statuses),
                   Booking.end_at > lo, Booking.start_at < hi)
            .order_by(Booking.start_at))
    out: dict[int, list[_Held]] = {m.id: [] for m in machines}
    for row in db.session.execute(stmt):
        out[row[1]].append(_Held(*row))
    return out


def _qualified(viewer: Member, machines: list[Machine], now: datetime) -> dict[int, bool]:
    quals = list(db.session.scalars(select(Qualification).where(
        Qualification.member_id == viewer.id,
        or_(Qualification.expires_at.is_(None), Qualification.expires_at > now))))
    out = {}
    for m in machines:
        out[m.id] = any(q.machine_id == m.id or (m.qualification_scope != "machine" and q.machine_type_id == m.type_id)
                        for q in quals)
    return out


def lab_hours(policies: list[pol.BookingPolicy], lo: datetime, hi: datetime, tz: tzinfo) -> list[Pair]:
    """The lab's hours on [lo, hi): when the machines not open around the clock are open (or all)."""
    per_machine = [pol.opening_pairs(p, lo, hi, tz) for p in policies]
    staffed = [pairs for pairs in per_machine if pairs != [(lo, hi)]]
    chosen = staffed or per_machine
    return merge_pairs(p for pairs in chosen for p in pairs)


def columns_for(lo: datetime, hi: datetime, hours: list[Pair], full: bool, now: datetime) -> list[Column]:
    """Half-hour columns over the day; runs outside `hours` collapse into one (unless `full`)."""
    cols: list[Column] = []
    t = lo
    run_start: datetime | None = None
    while t < hi:
        e = min(t + STEP, hi)
        inside = full or any(a < e and t < b for a, b in hours)
        if inside:
            if run_start is not None:
                cols.append(Column(run_start, t, True, run_start <= now < t))
                run_start = None
            cols.append(Column(t, e, False, t <= now < e))
        elif run_start is None:
            run_start = t
        t = e
    if run_start is not None:
        cols.append(Column(run_start, hi, True, run_start <= now < hi))
    return cols


def _effective(b: _Held, policy: pol.BookingPolicy, now: datetime) -> bool:
    if b.kind == BookingKind.MAINTENANCE:
        return True
    return rules.is_effectively_active(
        rules.ExistingBooking(b.id, b.machine_id, b.member_id, b.start, b.end, b.status, b.checked_in_at), policy, now)


def _booked_cell(b: _Held, col: Column, viewer: Member, staff: bool, now: datetime) -> Cell:
    if b.kind == BookingKind.MAINTENANCE:
        state = "maintenance"
    elif b.status == BookingStatus.CHECKED_IN and b.start <= now < b.end:
        state = "inuse"
    elif b.member_id == viewer.id:
        state = "mine"
    else:
        state = "booked"
    cell = Cell(state, col.start, col.end, booking_id=b.id, past=b.end <= now)
    if staff or b.member_id == viewer.id:
        cell.who, cell.who_no, cell.who_id = b.name, b.member_no, b.member_id
        cell.note = b.note[:80] if staff or b.kind != BookingKind.NORMAL else ""
    elif b.kind == BookingKind.MAINTENANCE:
        cell.note = b.note[:80]
    return cell


def _free_start(free: list[Interval], starts: list[datetime], col: Column, min_len: timedelta) -> datetime | None:
    """The first bookable start within the column, if a free interval from there is long enough."""
    i = bisect_right(starts, col.start) - 1
    for iv in free[max(i, 0):]:
        if iv.start >= col.end:
            return None
        s = max(iv.start, col.start)
        if iv.end - s >= min_len and s < col.end:
            return s
    return None


def _row(machine: Machine, held: list[_Held], columns: list[Column], viewer: Member, staff: bool,
         qualified: bool, lo: datetime, hi: datetime, now: datetime, tz: tzinfo) -> Row:
    policy = svc.policy_for(machine)
    shown = [b for b in held if _effective(b, policy, now)]
    existing = [rules.ExistingBooking(b.id, b.machine_id, b.member_id, b.start, b.end, b.status, b.checked_in_at)
                for b in held if b.kind != BookingKind.MAINTENANCE]
    blocks = [Interval(b.start, b.end) for b in held if b.kind == BookingKind.MAINTENANCE]
    available = machine.status == "available"
    free = free_intervals(policy, existing, blocks, lo, hi, now, tz) if available and hi > now else []
    starts = [iv.start for iv in free]
    opening = pol.opening_pairs(policy, lo, hi, tz)
    live_busy = (machine.live_state or "") in LIVE_IN_USE
    row = Row(machine, [], qualified)
    for col in columns:
        hits = [b for b in shown if b.start < col.end and col.start < b.end]
        if col.collapsed:
            cell = _collapsed(col, hits, free, starts, policy, viewer, staff, now)
        elif hits:
            cell = _booked_cell(hits[0], col, viewer, staff, now)
        elif live_busy and col.now:
            cell = Cell("inuse", col.start, col.end)
        elif col.end <= now:
            cell = Cell("past", col.start, col.end)
        elif (s := _free_start(free, starts, col, policy.min_length)) is not None:
            cell = Cell("free", s, col.end)
        elif not available:
            cell = Cell("out", col.start, col.end)
        elif not any(a < col.end and col.start < b for a, b in opening):
            cell = Cell("closed", col.start, col.end)
        else:
            cell = Cell("none", col.start, col.end)  # open, but a buffer, the horizon or the slot grid
        if cell.state == "free":
            row.free_count += 1
            cell.at = f"{cell.start.astimezone(tz):%H:%M}"
            cell.iso = f"{cell.start.astimezone(UTC):%Y-%m-%dT%H:%MZ}"  # no character that needs quoting
        prev = row.cells[-1] if row.cells else None
        if prev is not None and not col.collapsed and _joins(prev, cell):
            prev.span += 1
            prev.end = cell.end
        else:
            row.cells.append(cell)
    return row


def _collapsed(col: Column, hits: list[_Held], free: list[Interval], starts: list[datetime],
               policy: pol.BookingPolicy, viewer: Member, staff: bool, now: datetime) -> Cell:
    if hits:
        cell = _booked_cell(hits[0], col, viewer, staff, now)
        cell.start, cell.end, cell.count = col.start, col.end, len(hits)
        return cell
    s = _free_start(free, starts, col, policy.min_length) if col.end > now else None
    if s is not None:
        return Cell("free", s, col.end)
    return Cell("past" if col.end <= now else "closed", col.start, col.end)


def _joins(prev: Cell, cell: Cell) -> bool:
    """Neighbouring cells of one booking become one; so do runs of closed, past or unbookable time."""
    if prev.count or cell.count:
        return False
    if prev.booking_id is not None or cell.booking_id is not None:
        return prev.booking_id == cell.booking_id and prev.state == cell.state
    return prev.state == cell.state and cell.state in ("closed", "past", "out", "none")


def build_day(viewer: Member, day: date, now: datetime, tz: tzinfo, full: bool = False) -> DayView:
    today = now.astimezone(tz).date()
    check_day(day, today)
    lo, hi = pol.local_midnight(day, tz), pol.local_midnight(day + timedelta(days=1), tz)
    machines = machine_service.list_machines()
    machines.sort(key=lambda m: (m.machine_type.name, m.name))
    policies = [svc.policy_for(m) for m in machines]
    hours = lab_hours(policies, lo, hi, tz)
    columns = columns_for(lo, hi, hours, full or not hours, now)
    margin = timedelta(minutes=max((p.buffer_minutes for p in policies), default=0))
    held = _load(machines, lo - margin, hi + margin) if machines else {}
    quals = _qualified(viewer, machines, now) if machines else {}
    staff = viewer.is_staff
    groups: list[Group] = []
    for m in machines:
        if not groups or groups[-1].name != m.machine_type.name:
            groups.append(Group(m.machine_type.name))
        groups[-1].rows.append(_row(m, held[m.id], columns, viewer, staff, quals[m.id], lo, hi, now, tz))
    return DayView(day, columns, groups, staff, full, now,
                   prev_day=day - timedelta(days=1) if day > today - timedelta(days=MAX_DAYS_BACK) else None,
                   next_day=day + timedelta(days=1) if day < today + timedelta(days=MAX_DAYS_AHEAD) else None,
                   today=today, lab_hours=hours)
