"""The fairness review: who used what, how fair it was, where the lab needs more capacity.

One `Review` (a tree of frozen dataclasses) feeds the page, the printable report, the CSV exports and
the JSON API, so every view shows the same figures. Loading is a fixed handful of set-based queries
(machines, members, qualifications, bookings, usage sessions, slot requests, waitlist, windows),
whatever the number of members; the figures come from the pure functions in `fablab.domain.metrics`
and `fablab.domain.capacity`.

Rules (also shown on the page):
- Period: [start, end), capped at now (the future has no use yet). A booking belongs to the period
  its start lies in; usage sessions are clipped to it.
- Used hours: on a machine that reports usage (it has usage sessions), the sessions that count as
  usage (maintenance and induction never do), from the machine's first reported session on; before
  that, and on machines without usage data, completed and checked-in bookings (to their actual end).
  A no-show's reserved time counts as used, as in the fair-share factor (the time was held from others).
- Requested hours: normal bookings as booked (including no-shows, excluding cancellations), plus
  rejected and waitlisted window requests and waitlist entries for an exact slot that were never met;
  an unmet wish overlapping something the member held or asked for on the same machine counts once.
- Satisfaction s = min(1, used / requested); members who requested nothing have none.
- Population (Gini, Lorenz): active members qualified for a machine in scope during the period, plus
  anyone who used or requested; a member who could have but did not use counts as zero usage.
- Late cancellation: cancelled less than `late_cancel_hours` (24 h) before the start.
- Replay: unmet requests are replayed against one more machine of the type, and against opening 2 h
  longer on weekdays (see fablab.domain.capacity).
"""

from __future__ import annotations

import bisect
import sqlite3
import time as _time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

import numpy as np
from sqlalchemy import Float, Integer, and_, case, cast, extract, func, literal, not_, or_, select

from ..domain import allocation as alloc
from ..domain import capacity as cap
from ..domain import metrics
from ..domain import policy as pol
from ..extensions import db
from ..models import Booking, BookingKind, BookingStatus, Machine, MachineType, Member, Qualification
from ..models.scheduling import RequestStatus, RequestWindow, SlotRequest, WaitlistEntry, WindowStatus
from ..models.usage import UsageSession
from . import bookings as booking_service

DEFAULT_DAYS = 28
LATE_CANCEL_HOURS = 24.0
WORST_K = 5
LONGER_HOURS = 2.0
WEEKDAYS = frozenset(range(5))
MAX_SESSION = timedelta(days=7)  # sessions starting earlier than period start - this are not looked for
USAGE_RULE = ("Used hours: usage sessions reported by the machine (maintenance and induction excluded); for machines "
              "without usage data, completed and checked-in bookings. A no-show's reserved time counts as used. "
              "Requested hours: bookings as booked (no-shows included, cancellations excluded) plus rejected and "
              "waitlisted requests that were never met.")

_HELD = (BookingStatus.COMPLETED.value, BookingStatus.CHECKED_IN.value, BookingStatus.CONFIRMED.value,
         BookingStatus.NO_SHOW.value, BookingStatus.RELEASED.value)
_UNMET_REQUEST = (RequestStatus.REJECTED.value, RequestStatus.WAITLISTED.value)


# --- what is asked -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReviewQuery:
    start: datetime  # aware
    end: datetime
    machine: str | None = None  # a machine slug; wins over machine_type
    machine_type: str | None = None  # a machine type slug
    late_cancel_hours: float = LATE_CANCEL_HOURS

    @classmethod
    def default(cls, now: datetime, machine: str | None = None, machine_type: str | None = None) -> ReviewQuery:
        return cls(now - timedelta(days=DEFAULT_DAYS), now, machine or None, machine_type or None)


@dataclass(frozen=True)
class Viewer:
    """Who looks: names are shown only when `names` (admins, or a lab that chose to show them)."""

    member_id: int | None
    names: bool


# --- the review --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MemberRow:
    label: str  # the name, or the pseudonym ("Member 1003")
    member_id: int | None  # only when names are visible
    is_you: bool
    used_hours: float
    requested_hours: float
    satisfaction: float | None
    bookings: int
    no_shows: int
    no_show_hours: float
    late_cancels: int
    overrun_hours: float
    unbooked_hours: float
    rank: int  # by hours used, 1 = most


@dataclass(frozen=True)
class MachineRow:
    slug: str
    name: str
    type_name: str
    metered: bool  # has usage sessions (else bookings stand in for use)
    open_hours: float
    used_hours: float
    booked_hours: float
    maintenance_hours: float
    utilisation: float | None
    unmet_hours: float
    rejected_requests: int
    waitlisted_requests: int
    waitlist_now: int


@dataclass(frozen=True)
class LotteryRow:
    label: str
    is_you: bool
    draws: int
    expected_wins: float
    actual_wins: int


@dataclass(frozen=True)
class LotteryView:
    windows: int  # closed request windows in the period
    verified: int  # windows whose draw, re-run from the published trace, gave the published outcome
    contested_requests: int  # requests that overlapped another member's request
    lottery_events: int
    rows: tuple[LotteryRow, ...]
    deviation: float  # Σ (actual - expected)² / expected


@dataclass(frozen=True)
class HeatView:
    """Hour of week (7 × 24, Monday first, lab time): requested hours, open machine-hours, unmet hours."""

    demand: tuple[tuple[float, ...], ...]
    capacity: tuple[tuple[float, ...], ...]
    unmet: tuple[tuple[float, ...], ...]

    def ratio(self, weekday: int, hour: int) -> float | None:
        c = self.capacity[weekday][hour]
        return None if c <= 0 else self.demand[weekday][hour] / c

    def cells(self) -> Iterable[tuple[int, int, float, float, float, float | None]]:
        """(weekday, hour, demand, capacity, unmet, ratio) for every hour with demand or capacity."""
        for d in range(7):
            for h in range(24):
                if self.demand[d][h] or self.capacity[d][h] or self.unmet[d][h]:
                    yield d, h, self.demand[d][h], self.capacity[d][h], self.unmet[d][h], self.ratio(d, h)


@dataclass(frozen=True)
class ReplayRow:
    machine_type: str
    machines: int
    scenario: str  # "one more machine" | "2 h longer on weekdays"
    unmet_hours: float
    met_hours: float  # of the unmet hours, what the scenario would have met beyond what freed time met
    share: float | None
    evening_unmet_hours: float
    evening_share: float | None
    statement: str


@dataclass(frozen=True)
class WeekRow:
    week_start: date  # the local Monday
    days: float  # how much of the week lies in the period (7 = all of it)
    used_hours: float
    requested_hours: float
    unmet_hours: float
    bookings: int
    no_shows: int
    gini: float


@dataclass(frozen=True)
class Totals:
    members: int  # the population
    users: int  # members with some use
    used_hours: float
    unattributed_hours: float  # machine use no member could be tied to
    requested_hours: float
    unmet_hours: float
    bookings: int
    no_shows: int
    late_cancels: int
    no_show_rate: float | None
    late_cancel_rate: float | None
    overrun_hours: float
    unbooked_hours: float
    rejected_requests: int
    waitlisted_requests: int
    waitlist_now: int  # active waitlist entries for future time
    waitlist_joined: int  # entries joined during the period


@dataclass(frozen=True)
class Review:
    query: ReviewQuery
    end: datetime  # the effective end (capped at now)
    scope: str  # "the whole lab", "Laser cutter", "Epilog Fusion Pro 32"
    names_visible: bool
    totals: Totals
    gini: float
    lorenz: tuple[tuple[float, float], ...]
    jain: float
    members: tuple[MemberRow, ...]  # most used first
    worst_off: tuple[MemberRow, ...]  # lowest satisfaction first
    you: MemberRow | None
    machines: tuple[MachineRow, ...]
    lottery: LotteryView
    heat: HeatView
    replay: tuple[ReplayRow, ...]
    weeks: tuple[WeekRow, ...]
    rule: str = USAGE_RULE

    @property
    def statements(self) -> list[str]:
        return [r.statement for r in self.replay]


def viewer_for(member: Member, public: bool, show_names: bool) -> Viewer | None:
    """The privacy rule: admins see names; other members see the review only when the lab made it
    public (None: not allowed), pseudonymous unless the lab chose to show names; everyone sees "you"."""
    if member.role == "admin":
        return Viewer(member.id, True)
    if not public:
        return None
    return Viewer(member.id, show_names)


# --- loading ----------------------------------------------------------------------------------------------
# Times inside the review are UTC epoch seconds (floats), never datetime objects: a year of history is
# 200,000 timestamps, and datetimes with zones would cost most of the second. PostgreSQL gives them
# (extract epoch); SQLite's stored text is parsed by numpy for the bookings (faster than SQLite converts
# it) and converted by SQLite elsewhere, to the same double. The bookings are then handled as numpy
# columns (sums per member, machine and week set-wise, in row order, as a loop would add them); usage
# sessions wholly inside the period are summed by the database.


@dataclass
class _Session:
    machine_id: int
    member_id: int | None  # or the linked booking's member
    start: float
    hours: float  # clipped to the period
    counts: bool
    unbooked: bool
    overrun_minutes: float


@dataclass
class _Request:
    id: int
    window_id: int | None
    member_id: int
    machine_id: int
    start: float
    end: float
    status: str


class LabClock:
    """UTC epoch seconds to the lab's wall clock (seconds since 1970-01-01 00:00 local): the offsets in
    force over the period are found once (DST changes, to the quarter hour), then each conversion is a
    bisect and an addition."""

    def __init__(self, tz: tzinfo, lo: float, hi: float) -> None:
        self.tz = tz
        self.points: list[float] = [float("-inf")]
        self.offsets: list[float] = [self._offset(lo - 2 * 86400)]
        t = lo - 2 * 86400
        while t < hi + 2 * 86400:
            nxt = t + 86400
            if self._offset(nxt) != self.offsets[-1]:
                q = t
                while self._offset(q) == self.offsets[-1]:
                    q += 900
                self.points.append(q)
                self.offsets.append(self._offset(q))
            t = nxt

    def _offset(self, ts: float) -> float:
        off = datetime.fromtimestamp(ts, self.tz).utcoffset()
        return off.total_seconds() if off is not None else 0.0

    def local(self, ts: float) -> float:
        return ts + self.offsets[bisect.bisect_right(self.points, ts) - 1]

    def week(self, ts: float) -> int:
        """The local Monday of the week containing ts, as days since 1970-01-01 (a Thursday)."""
        day = int(self.local(ts) // 86400)
        return day - (day + 3) % 7

    def local_array(self, ts: np.ndarray) -> np.ndarray:
        """`local` for an array of times."""
        return ts + np.asarray(self.offsets)[np.searchsorted(np.asarray(self.points), ts, side="right") - 1]

    def weeks(self, ts: np.ndarray) -> np.ndarray:
        """`week` for an array of times (floor division as Python's, so the same day at the edges)."""
        day = np.floor_divide(self.local_array(ts), 86400).astype(np.int64)
        return day - (day + 3) % 7

    def naive(self, ts: float) -> datetime:
        """Local wall-clock time as a naive datetime (the capacity model's clock)."""
        return _EPOCH_NAIVE + timedelta(seconds=self.local(ts))

    def naive_array(self, ts: np.ndarray) -> list[datetime]:
        """`naive` for an array of times (to the microsecond, as timedelta rounds; numpy builds them)."""
        us = np.round(self.local_array(ts) * 1e6).astype(np.int64)
        return us.astype("datetime64[us]").astype(object).tolist()


_EPOCH_NAIVE = datetime(1970, 1, 1)
_EPOCH_DATE = date(1970, 1, 1)


def _ts(t: datetime) -> float:
    return _aware(t).timestamp()


def _offset_expr(col: Any, clock: LabClock) -> Any:
    """The lab's UTC offset (seconds) at the time in `col`, as SQL: one branch per DST change in the period
    (comparing the stored column itself, which costs the database no conversion)."""
    if len(clock.offsets) == 1:
        return literal(clock.offsets[0], Float)
    return case(*[(col < datetime.fromtimestamp(p, UTC), literal(o, Float))
                  for p, o in zip(clock.points[1:], clock.offsets, strict=False)],
                else_=literal(clock.offsets[-1], Float))


def _week_number(col: Any, clock: LabClock) -> Any:
    """The lab week of the time in `col`, as the day number of its local Monday (as `LabClock.week`):
    7 * floor((local + 3 days) / 1 week) - 3, the column read once (SQLite evaluates every mention)."""
    local = _epoch_seconds(col) + _offset_expr(col, clock) + 3 * 86400
    if db.session.get_bind().dialect.name == "sqlite":
        return cast(local / 604800, Integer) * 7 - 3  # non-negative times: truncation is floor
    return cast(func.floor(local / 604800), Integer) * 7 - 3


_UNIXEPOCH = sqlite3.sqlite_version_info >= (3, 38)


def _epoch(col: Any) -> Any:
    """The column as UTC epoch seconds, computed by the database (no datetime objects on the way)."""
    if db.session.get_bind().dialect.name == "sqlite":
        if _UNIXEPOCH:
            # SQLite keeps naive UTC text ("YYYY-MM-DD HH:MM:SS.ffffff"): the whole seconds from unixepoch
            # (given only those: it would round the fraction to the millisecond, and carry into the second),
            # the fraction read from the text. Exact to the microsecond, as PostgreSQL's; twice as fast.
            return func.unixepoch(func.substr(col, 1, 19)) + cast(func.substr(col, 20), Float)
        # Older SQLite: julianday's double is exact to ~20 µs, so round to the millisecond.
        return func.round((func.julianday(col) - 2440587.5) * 86400.0, 3)
    return cast(extract("epoch", col), Float)


def _epoch_seconds(col: Any) -> Any:
    """Whole epoch seconds, enough for the day of a time (the day's edges are whole seconds)."""
    if db.session.get_bind().dialect.name == "sqlite" and _UNIXEPOCH:
        return func.unixepoch(col)  # cheaper than `_epoch`: no text cut
    return _epoch(col)


def _as_text() -> bool:
    return db.session.get_bind().dialect.name == "sqlite" and _UNIXEPOCH


def _times(col: Any) -> Any:
    """A time column for `_epochs`: SQLite's stored text as it is (numpy parses it faster than SQLite
    converts it), elsewhere epoch seconds from the database."""
    return col if _as_text() else _epoch(col)


def _epochs(values: Sequence[Any]) -> np.ndarray:
    """Epoch seconds (NaN for None) from a `_times` column: from text, the same double as `_epoch`'s
    (whole seconds plus the fraction), so times from either compare equal."""
    # (None spelt out first: numpy's path for None in a long list is ten times slower.)
    if not _as_text():
        return np.array([np.nan if v is None else v for v in values], dtype=float)
    us = np.array(["NaT" if v is None else v for v in values], dtype="datetime64[us]")
    missing = np.isnat(us)
    n = us.astype(np.int64)
    out = (n // 1_000_000).astype(float) + (n % 1_000_000) / 1e6
    out[missing] = np.nan
    return out


@dataclass
class BookingColumns:
    """The period's bookings as numpy columns, one entry per booking (a year is 100,000: set-wise sums)."""

    machine: np.ndarray  # int
    member: np.ndarray  # int
    start: np.ndarray  # epoch seconds
    end: np.ndarray
    reserved_end: np.ndarray  # the booked end when later than the end (an early check-out), else the end
    status: np.ndarray  # str
    kind: np.ndarray  # str
    checked_in: np.ndarray  # bool
    cancelled_at: np.ndarray  # epoch seconds, NaN when not cancelled
    week: np.ndarray  # the lab week of the start (day number of its Monday)

    def __len__(self) -> int:
        return len(self.start)


def _load_bookings(conn: Any, ids: list[int], start_at: datetime, end_at: datetime, clock: LabClock) -> BookingColumns:
    rows = _rows(conn, select(
        Booking.machine_id, Booking.member_id, _times(Booking.start_at), _times(Booking.end_at),
        _times(Booking.booked_end_at), Booking.status, Booking.kind, Booking.checked_in_at.is_not(None),
        case((Booking.status == BookingStatus.CANCELLED.value, _times(Booking.cancelled_at))))
        .where(Booking.machine_id.in_(ids), Booking.start_at >= start_at, Booking.start_at < end_at))
    cols = [[r[i] for r in rows] for i in range(9)]  # (not zip(*rows): 900,000 tuple items wake the GC)
    start, end, booked_end = _epochs(cols[2]), _epochs(cols[3]), _epochs(cols[4])
    return BookingColumns(
        np.array(cols[0], dtype=np.int64), np.array(cols[1], dtype=np.int64), start, end,
        np.where(booked_end > end, booked_end, end), np.array(cols[5], dtype=str), np.array(cols[6], dtype=str),
        np.array(cols[7], dtype=bool), _epochs(cols[8]), clock.weeks(start))


def _rows(conn: Any, stmt: Any) -> list[tuple[Any, ...]]:
    """All rows as the driver's plain tuples: a year is 100,000 rows, and SQLAlchemy's row objects (and
    result processors) would cost more than the query. Only for columns whose driver values are usable as
    they come: numbers, strings, and booleans (SQLite gives 0/1)."""
    result = conn.execute(stmt)
    try:
        return result.cursor.fetchall()
    finally:
        result.close()


@dataclass
class PeriodData:
    """Everything the review needs, loaded in a fixed number of queries."""

    query: ReviewQuery
    start: float
    end: float
    now: float
    clock: LabClock
    scope: str
    machines: list[Machine]
    members: dict[int, tuple[int, str, bool]]  # id -> (member_no, name, active)
    qualified: set[int]
    first_session: dict[int, float]  # machine id -> first usage session ever
    bookings: BookingColumns
    sessions: list[_Session]  # sessions crossing the period's edges, clipped
    session_sums: list[Any]  # (member or None, week, hours, unbooked hours, overrun minutes) of the sessions inside
    machine_sums: list[Any]  # (machine, counts as usage, hours) of the sessions inside
    requests: list[_Request]  # unmet (rejected / waitlisted) requests and exact-slot waitlist entries
    windows: list[tuple[int, dict[str, Any] | None, str | None]]  # (id, trace, revealed seed)
    window_members: dict[int, int]  # slot request id -> member id, for the windows' traces
    waitlist_now: dict[int, int]
    waitlist_joined: int

    @property
    def tz(self) -> tzinfo:
        return self.clock.tz

    @property
    def start_at(self) -> datetime:
        return datetime.fromtimestamp(self.start, UTC)

    @property
    def end_at(self) -> datetime:
        return datetime.fromtimestamp(self.end, UTC)


class UnknownScope(LookupError):
    pass


def scope_choices() -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(machines, types) as (slug, name) pairs, for the filter form."""
    machines = [(s, n) for s, n in db.session.execute(select(Machine.slug, Machine.name).order_by(Machine.name))]
    types = [(s, n) for s, n in db.session.execute(select(MachineType.slug, MachineType.name)
                                                  .order_by(MachineType.name))]
    return machines, types


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


def load_period(query: ReviewQuery, now: datetime, tz: tzinfo | None = None) -> PeriodData:
    tz = tz or booking_service.lab_tz()
    start_at = _aware(query.start).astimezone(UTC)
    end_at = max(start_at, min(_aware(query.end).astimezone(UTC), _aware(now)))
    start, end, now_ts = start_at.timestamp(), end_at.timestamp(), _ts(now)
    stmt = select(Machine).order_by(Machine.name)
    if query.machine:
        stmt = stmt.where(Machine.slug == query.machine)
    elif query.machine_type:
        stmt = stmt.join(MachineType).where(MachineType.slug == query.machine_type)
    machines = list(db.session.scalars(stmt).unique())
    if (query.machine or query.machine_type) and not machines:
        raise UnknownScope(query.machine or query.machine_type)
    if query.machine:
        scope = machines[0].name
    elif query.machine_type:
        scope = machines[0].machine_type.name
    else:
        scope = "the whole lab"
    ids = [m.id for m in machines]
    members = {mid: (no, name, active) for mid, no, name, active in db.session.execute(
        select(Member.id, Member.member_no, Member.name, Member.active))}

    # Who could have used a machine in scope: qualified (or no qualification needed) during the period.
    types = {m.type_id for m in machines}
    if any(not booking_service.policy_for(m).qualification_required for m in machines):
        qualified = {mid for mid, (_, _, active) in members.items() if active}
    else:
        qualified = {m for m in db.session.scalars(select(Qualification.member_id).where(
            or_(Qualification.machine_type_id.in_(types), Qualification.machine_id.in_(ids)),
            Qualification.granted_at < end_at,
            or_(Qualification.expires_at.is_(None), Qualification.expires_at > start_at)))
            if members.get(m, (0, "", False))[2]}

    # (The minimum of the stored time, converted once: the index gives it without reading the sessions.)
    first_session = {mid: float(t) for mid, t in db.session.execute(
        select(UsageSession.machine_id, _epoch(func.min(UsageSession.start_at)))
        .where(UsageSession.machine_id.in_(ids)).group_by(UsageSession.machine_id)) if t is not None}

    # Core-level execution, plain driver tuples: these are the big result sets (a year is 100,000 bookings;
    # every column and every expression per row costs). The lab week of each booking is found with numpy.
    clock = LabClock(tz, start, end)
    conn = db.session.connection()
    bookings = _load_bookings(conn, ids, start_at, end_at, clock)

    # Usage sessions. Those wholly inside the period are summed by the database per member, week and kind
    # (a year is 100,000 rows); the few crossing its edges (or still open) are clipped here.
    # No badge: the linked booking's member (COALESCE is lazy: the subquery runs only for those).
    member_key = func.coalesce(UsageSession.member_id, select(Booking.member_id)
                               .where(Booking.id == UsageSession.booking_id).scalar_subquery())
    ep_start, ep_end = _epoch(UsageSession.start_at), _epoch(UsageSession.end_at)
    hours_expr = case((UsageSession.duration_s > 0, UsageSession.duration_s), else_=ep_end - ep_start) / 3600.0
    week = _week_number(UsageSession.start_at, clock)
    in_scope = UsageSession.machine_id.in_(ids)
    inner = and_(UsageSession.start_at >= start_at, UsageSession.end_at.is_not(None), UsageSession.end_at <= end_at)
    joined = select().select_from(UsageSession)
    session_sums = _rows(conn, joined.add_columns(
        member_key, week, func.sum(hours_expr), func.sum(case((UsageSession.unbooked.is_(True), hours_expr))),
        func.sum(UsageSession.overrun_minutes))
        .where(in_scope, inner, UsageSession.counts_as_usage.is_(True)).group_by(member_key, week))
    # Grouped by machine alone, usage and the rest side by side: the index's order, no sort.
    machine_sums = [(mid, counts, hours) for mid, used, other in _rows(conn, select(
        UsageSession.machine_id, func.sum(case((UsageSession.counts_as_usage.is_(True), hours_expr))),
        func.sum(case((UsageSession.counts_as_usage.is_(False), hours_expr))))
        .where(in_scope, inner).group_by(UsageSession.machine_id))
        for counts, hours in ((True, used), (False, other)) if hours is not None]
    sessions = []
    for mid, member, s, e, dur, counts, unbooked, overrun in conn.execute(
            joined.add_columns(UsageSession.machine_id, member_key, ep_start, ep_end, UsageSession.duration_s,
                               UsageSession.counts_as_usage, UsageSession.unbooked, UsageSession.overrun_minutes)
            .where(in_scope, UsageSession.start_at >= start_at - MAX_SESSION, UsageSession.start_at < end_at,
                   or_(UsageSession.end_at.is_(None), UsageSession.end_at > start_at), not_(inner))).all():
        e_eff = e if e is not None else now_ts
        lo, hi = max(s, start), min(e_eff, end)
        if hi <= lo:
            continue
        if e is not None and lo == s and hi == e and dur:
            hours = dur / 3600  # the sessionizer's duration (it may leave out pauses)
        else:
            hours = (hi - lo) / 3600
        sessions.append(_Session(mid, member, s, hours, bool(counts), bool(unbooked), overrun or 0.0))

    requests = [_Request(rid, wid, member, mid, s, e, status) for rid, wid, member, mid, s, e, status in
                db.session.execute(
                    select(SlotRequest.id, SlotRequest.window_id, SlotRequest.member_id, SlotRequest.machine_id,
                           _epoch(SlotRequest.start_at), _epoch(SlotRequest.end_at), SlotRequest.status)
                    .where(SlotRequest.machine_id.in_(ids), SlotRequest.status.in_(_UNMET_REQUEST),
                           SlotRequest.start_at >= start_at, SlotRequest.start_at < end_at))]

    waitlist_now: dict[int, int] = defaultdict(int)
    waitlist_joined = 0
    for eid, member, mid, kind, s, e, status, request_id, joined in db.session.execute(
            select(WaitlistEntry.id, WaitlistEntry.member_id, WaitlistEntry.machine_id, WaitlistEntry.kind,
                   _epoch(WaitlistEntry.start_at), _epoch(WaitlistEntry.end_at), WaitlistEntry.status,
                   WaitlistEntry.request_id, _epoch(WaitlistEntry.joined_at))
            .where(WaitlistEntry.machine_id.in_(ids),
                   or_(WaitlistEntry.end_at > now, WaitlistEntry.joined_at >= start_at,
                       (WaitlistEntry.start_at >= start_at) & (WaitlistEntry.start_at < end_at)))):
        if status == "active" and e > now_ts:
            waitlist_now[mid] += 1
        if start <= joined < end:
            waitlist_joined += 1
        # An exact slot wished for outside a window (a window's request is counted as the request).
        if kind == "slot" and request_id is None and status != "fulfilled" and start <= s < end:
            requests.append(_Request(-eid, None, member, mid, s, e, RequestStatus.WAITLISTED.value))

    windows = [(wid, trace, seed) for wid, trace, seed in db.session.execute(
        select(RequestWindow.id, RequestWindow.trace, RequestWindow.revealed_seed)
        .where(RequestWindow.machine_id.in_(ids), RequestWindow.status == WindowStatus.CLOSED.value,
               RequestWindow.period_start < end_at, RequestWindow.period_end > start_at))]
    window_members: dict[int, int] = {}
    if windows:
        window_members = dict(db.session.execute(
            select(SlotRequest.id, SlotRequest.member_id).where(SlotRequest.window_id.in_([w[0] for w in windows])))
            .all())
    return PeriodData(query, start, end, now_ts, clock, scope, machines, members, qualified, first_session, bookings,
                      sessions, session_sums, machine_sums, requests, windows, window_members, dict(waitlist_now),
                      waitlist_joined)


# --- computing --------------------------------------------------------------------------------------------


def _overlaps(a: tuple[float, float], spans: Sequence[tuple[float, float]]) -> bool:
    return any(s < a[1] and a[0] < e for s, e in spans)


@dataclass
class _Acc:
    used: float = 0.0
    requested: float = 0.0
    bookings: int = 0
    no_shows: int = 0
    no_show_hours: float = 0.0
    late_cancels: int = 0
    overrun: float = 0.0
    unbooked: float = 0.0


@dataclass
class _Spans:
    """Time spans as numpy columns, in the bookings' order."""

    machine: np.ndarray
    start: np.ndarray
    end: np.ndarray
    member: np.ndarray  # 0: a block (maintenance)


@dataclass
class _Figures:
    """Intermediate results of the metric pass, handed to the replay, the heat map and the trends."""

    acc: dict[int, _Acc]
    per_machine_used: dict[int, float]
    per_machine_booked: dict[int, float]
    per_machine_maint: dict[int, float]
    held: _Spans  # booked time: held bookings (to their reserved end) and blocks (member 0)
    unmet: list[_Request]
    weekly: dict[int, dict[int, float]]  # week (day number of its Monday) -> member -> used
    weekly_other: dict[int, list[float]]  # week -> [requested, unmet, bookings, no-shows]
    unattributed: float = 0.0


_COMPLETED, _CHECKED_IN = BookingStatus.COMPLETED.value, BookingStatus.CHECKED_IN.value
_CONFIRMED, _CANCELLED = BookingStatus.CONFIRMED.value, BookingStatus.CANCELLED.value
_NO_SHOWS = (BookingStatus.NO_SHOW.value, BookingStatus.RELEASED.value)
_NORMAL, _MAINTENANCE = BookingKind.NORMAL.value, BookingKind.MAINTENANCE.value


def _sums_by(keys: np.ndarray, weights: np.ndarray | None = None) -> Iterable[tuple[int, float]]:
    """(key, sum of weights, or count) per distinct key, keys in order of first appearance; each sum is added
    up in row order (bincount's), as a loop over the rows would."""
    if not keys.size:
        return []
    uniq, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    sums = np.bincount(inverse, weights=weights, minlength=uniq.size)
    order = np.argsort(first, kind="stable")
    return zip(uniq[order].tolist(), sums[order].tolist(), strict=True)


def compute_figures(data: PeriodData) -> _Figures:
    now, clock, b = data.now, data.clock, data.bookings
    late = data.query.late_cancel_hours * 3600
    acc: dict[int, _Acc] = defaultdict(_Acc)
    used_m: dict[int, float] = defaultdict(float)
    booked_m: dict[int, float] = defaultdict(float)
    maint_m: dict[int, float] = defaultdict(float)
    weekly: dict[int, dict[int, float]] = defaultdict(lambda: defaultdict(float))
    wother: dict[int, list[float]] = defaultdict(lambda: [0.0, 0.0, 0, 0])
    first_session = data.first_session

    # The bookings, set-wise (the rules as a loop over the rows would apply them, sums in row order).
    lookup = np.zeros(max((m.id for m in data.machines), default=0) + 1, dtype=np.int64)
    lookup[[m.id for m in data.machines]] = np.arange(len(data.machines))
    mi = lookup[b.machine]  # each booking's index into data.machines
    grace = np.array([booking_service.policy_for(m).checkin_grace.total_seconds() for m in data.machines], dtype=float)
    first = np.array([first_session.get(m.id, np.inf) for m in data.machines], dtype=float)  # inf: no usage data
    maint = (b.kind == _MAINTENANCE) & (b.status != _CANCELLED)
    normal = b.kind == _NORMAL  # inductions are teaching, not use
    cancelled = normal & (b.status == _CANCELLED)
    held_rows = normal & np.isin(b.status, _HELD)
    requested = (b.reserved_end - b.start) / 3600
    no_show = held_rows & (np.isin(b.status, _NO_SHOWS) | (
        (b.status == _CONFIRMED) & ~b.checked_in & (now > b.start + grace[mi])))
    # No usage data for this booking's time: the booking stands in (first is inf without any data).
    stand_in = (held_rows & ~no_show & (b.end <= first[mi])
                & (np.isin(b.status, (_COMPLETED, _CHECKED_IN)) | b.checked_in))
    stand_hours = (np.minimum(b.end, now) - b.start) / 3600
    # The reserved time of a no-show counts as used (fair-share rule).
    used = np.where(no_show, requested, np.where(stand_in, stand_hours, 0.0))
    using = no_show | stand_in
    late_cancel = cancelled & (b.cancelled_at > b.start - late)  # NaN (never cancelled) compares False

    for mid, hours in _sums_by(b.machine[maint], (np.minimum(b.end[maint], data.end) - b.start[maint]) / 3600):
        maint_m[mid] += hours
    for member, n in _sums_by(b.member[normal]):
        acc[member].bookings += int(n)
    for member, n in _sums_by(b.member[late_cancel]):
        acc[member].late_cancels += int(n)
    for member, hours in _sums_by(b.member[held_rows], requested[held_rows]):
        acc[member].requested += hours
    for member, n in _sums_by(b.member[no_show]):
        acc[member].no_shows += int(n)
    for member, hours in _sums_by(b.member[no_show], requested[no_show]):
        acc[member].no_show_hours += hours
    for member, hours in _sums_by(b.member[using], used[using]):
        acc[member].used += hours
    for mid, hours in _sums_by(b.machine[held_rows], requested[held_rows]):
        booked_m[mid] += hours
    for mid, hours in _sums_by(b.machine[stand_in], stand_hours[stand_in]):
        used_m[mid] += hours
    for wk, n in _sums_by(b.week[normal]):
        wother[wk][2] += int(n)
    for wk, hours in _sums_by(b.week[held_rows], requested[held_rows]):
        wother[wk][0] += hours
    for wk, n in _sums_by(b.week[no_show]):
        wother[wk][3] += int(n)
    span = int(b.member.max()) + 1 if len(b) else 1  # (week, member) as one number
    for key, hours in _sums_by(b.week[using] * span + b.member[using], used[using]):
        weekly[key // span][key % span] += hours
    # Booked time: blocks (member 0: maintenance) and held bookings, to their reserved end.
    blocks = maint | held_rows
    held = _Spans(b.machine[blocks], b.start[blocks], np.where(maint, b.end, b.reserved_end)[blocks],
                  np.where(maint, 0, b.member)[blocks])
    # Each member's held time on a machine, for the wishes below (only pairs that wished for something).
    wished = {(r.member_id, r.machine_id) for r in data.requests}
    held_by_member: dict[tuple[int, int], list[tuple[float, float]]] = defaultdict(list)
    if wished and len(b):
        mspan = len(lookup)  # (member, machine) as one number
        keep = held_rows & np.isin(b.member * mspan + b.machine, [m * mspan + mid for m, mid in wished])
        for member, mid, s0, e0 in zip(b.member[keep].tolist(), b.machine[keep].tolist(),
                                       b.start[keep].tolist(), b.reserved_end[keep].tolist(), strict=True):
            held_by_member[(member, mid)].append((s0, e0))

    unattributed = 0.0
    for mid, counts, hours in data.machine_sums:
        (used_m if counts else maint_m)[mid] += hours or 0.0
    for member, week, hours, unbooked, overrun in data.session_sums:
        hours = hours or 0.0
        if member is None:
            unattributed += hours
            continue
        a = acc[member]
        a.used += hours
        a.overrun += (overrun or 0.0) / 60
        a.unbooked += unbooked or 0.0
        weekly[int(week)][member] += hours
    for s in data.sessions:
        if not s.counts:
            maint_m[s.machine_id] += s.hours
            continue
        used_m[s.machine_id] += s.hours
        if s.member_id is None:
            unattributed += s.hours
            continue
        a = acc[s.member_id]
        a.used += s.hours
        a.overrun += s.overrun_minutes / 60
        if s.unbooked:
            a.unbooked += s.hours
        weekly[clock.week(max(s.start, data.start))][s.member_id] += s.hours

    # Unmet wishes, once each: not when the member held or already asked for overlapping time there.
    asked: dict[tuple[int, int], list[tuple[float, float]]] = defaultdict(list)
    unmet = []
    for r in sorted(data.requests, key=lambda r: (r.start, r.id)):
        key = (r.member_id, r.machine_id)
        span = (r.start, r.end)
        if _overlaps(span, held_by_member.get(key, ())) or _overlaps(span, asked[key]):
            continue
        asked[key].append(span)
        unmet.append(r)
        hours = (r.end - r.start) / 3600
        acc[r.member_id].requested += hours
        other = wother[clock.week(r.start)]
        other[0] += hours
        other[1] += hours
    return _Figures(acc, used_m, booked_m, maint_m, held, unmet, {k: dict(v) for k, v in weekly.items()},
                    dict(wother), unattributed)


def opening_of(policy: pol.BookingPolicy) -> cap.OpeningHours:
    """The policy's weekly hours as the capacity model's (open, close) hours; night ranges are split."""
    weekly: dict[int, list[tuple[float, float]]] = defaultdict(list)
    for d in range(7):
        for a, b in policy.opening_hours[d]:
            ah, bh = a.hour + a.minute / 60, b.hour + b.minute / 60
            if bh > ah:
                weekly[d].append((ah, bh))
            else:  # past midnight (or the whole day when both are 00:00)
                weekly[d].append((ah, 24.0))
                if bh > 0:
                    weekly[(d + 1) % 7].append((0.0, bh))
    return cap.OpeningHours({d: _merge_hours(v) for d, v in weekly.items()})


def _merge_hours(ranges: Iterable[tuple[float, float]]) -> tuple[tuple[float, float], ...]:
    out: list[list[float]] = []
    for a, b in sorted(ranges):
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return tuple((a, b) for a, b in out)


def _union_opening(openings: Sequence[cap.OpeningHours]) -> cap.OpeningHours:
    return cap.OpeningHours({d: _merge_hours(r for o in openings for r in o.weekly.get(d, ())) for d in range(7)})


def _merged(o: cap.OpeningHours) -> dict[int, tuple[tuple[float, float], ...]]:
    return {d: _merge_hours(o.weekly.get(d, ())) for d in range(7) if o.weekly.get(d)}


_ORDINALS = {1: "second", 2: "third", 3: "fourth", 4: "fifth"}


def _statement(what: str, label: str, est: cap.ReplayEstimate, period: str) -> str:
    """E.g. "a second laser cutter would have met 82 % of last month's unmet evening demand"."""
    evening = est.bucket("evening")
    if evening is not None and evening.unmet_hours > 0 and evening.share is not None:
        share, demand = evening.share, "unmet evening demand"
    else:
        share, demand = est.share, "unmet demand"
    if share is None:
        return f"there was no unmet demand for the {label} in {period} requests"
    return f"{what} would have met {round(share * 100)} % of {period} {demand}"


def _period_label(data: PeriodData) -> str:
    days = (data.end - data.start) / 86400
    if abs(data.now - data.end) < 3600 and 27 <= days <= 31.5:
        return "last month's"
    if abs(data.now - data.end) < 3600 and 6 <= days <= 7.5:
        return "last week's"
    return "the period's"


def compute_replay(data: PeriodData, fig: _Figures) -> list[ReplayRow]:
    """Per machine type with unmet demand: what one more machine, and 2 h longer weekday hours, would meet."""
    by_type: dict[int, list[Machine]] = defaultdict(list)
    for m in data.machines:
        by_type[m.type_id].append(m)
    unmet_by_machine: dict[int, list[_Request]] = defaultdict(list)
    for r in fig.unmet:
        unmet_by_machine[r.machine_id].append(r)
    period = _period_label(data)
    naive, local = data.clock.naive, data.clock.local
    rows = []
    for machines in by_type.values():
        ids = [m.id for m in machines]
        if not any(unmet_by_machine.get(i) for i in ids):
            continue
        label = machines[0].machine_type.name.lower()
        opening = _union_opening([opening_of(booking_service.policy_for(m)) for m in machines])
        # The capacity model runs on the local wall clock: convert only this type's time.
        # Only booked time on the days of unmet wishes can decide them (a wish is placed within its day).
        days = np.array(sorted({int(local(t) // 86400) for mid in ids for r in unmet_by_machine.get(mid, ())
                                for t in (r.start, r.end)}))
        held = []
        for mid in ids:
            mine = fig.held.machine == mid
            s0, e0 = fig.held.start[mine], fig.held.end[mine]
            first = np.floor_divide(data.clock.local_array(s0), 86400)
            last = np.floor_divide(data.clock.local_array(e0), 86400)
            # Some day of the span's (first..last) is a day of a wish.
            touches = np.searchsorted(days, last, side="right") > np.searchsorted(days, first, side="left")
            held += [cap.BookedInterval(mid, s, e) for s, e in zip(data.clock.naive_array(s0[touches]),
                                                                   data.clock.naive_array(e0[touches]), strict=True)]
        demand = [cap.DemandRecord(f"r{r.id}", r.member_id, r.machine_id, naive(r.start), naive(r.end), False)
                  for mid in ids for r in unmet_by_machine.get(mid, ())]
        n = len(machines)
        extra = cap.Scenario(extra_machines=1)
        longer = cap.Scenario(longer_hours=LONGER_HOURS, weekdays=WEEKDAYS)
        scenarios = [(extra, f"a {_ORDINALS.get(n, 'further')} {label}", "one more machine")]
        if _merged(opening.extended(longer.weekdays, longer.longer_hours)) != _merged(opening):
            scenarios.append((longer, f"opening the {label} {LONGER_HOURS:g} h longer on weekdays",
                              f"{LONGER_HOURS:g} h longer on weekdays"))  # not for machines open all day
        for scenario, what, name in scenarios:
            est = cap.replay_estimate(demand, held, ids, opening, scenario)
            ev = est.bucket("evening")
            rows.append(ReplayRow(machines[0].machine_type.name, n, name, est.unmet_hours, est.extra_met_hours,
                                  est.share, ev.unmet_hours if ev else 0.0, ev.share if ev else None,
                                  _statement(what, label, est, period)))
    rows.sort(key=lambda r: -r.unmet_hours)  # stable: per type, one more machine first
    return rows


def add_by_hour_of_week(grid: list[list[float]], spans: Iterable[tuple[float, float]], clock: LabClock) -> None:
    """Hours of each (start, end) span into grid[weekday][hour] on the lab's clock: the capacity model's
    `hour_of_week_matrix` on epoch seconds, vectorised (a year is 100,000 spans), same result."""
    pairs = np.fromiter((x for span in spans for x in span), dtype=float).reshape(-1, 2)
    _add_grid(grid, _hour_of_week(pairs[:, 0], pairs[:, 1], clock))


def _hour_of_week(start: np.ndarray, end: np.ndarray, clock: LabClock) -> np.ndarray:
    """Hours of the spans per hour of the week (168, Monday 00-01 first), on the lab's clock."""
    acc = np.zeros(7 * 24)
    if not start.size:
        return acc
    starts, ends = clock.local_array(start), clock.local_array(end)
    hour0 = np.floor(starts / 3600)
    for k in range(int(np.max(np.ceil(ends / 3600) - hour0))):
        h = hour0 + k
        piece = np.minimum(ends, (h + 1) * 3600) - np.maximum(starts, h * 3600)
        live = piece > 0
        if not live.any():
            continue
        hh = h[live].astype(np.int64)
        acc += np.bincount(((hh // 24 + 3) % 7) * 24 + hh % 24, weights=piece[live] / 3600, minlength=7 * 24)
    return acc


def _add_grid(grid: list[list[float]], acc: np.ndarray) -> None:
    for d in range(7):
        row = grid[d]
        for h24 in range(24):
            row[h24] += float(acc[d * 24 + h24])


def compute_heat(data: PeriodData, fig: _Figures) -> HeatView:
    tz = data.tz
    first = data.start_at.astimezone(tz).date()
    last = datetime.fromtimestamp(max(data.start, data.end - 1e-3), tz).date()
    dem = [[0.0] * 24 for _ in range(7)]
    capa = [[0.0] * 24 for _ in range(7)]
    unmet = [[0.0] * 24 for _ in range(7)]
    booked = fig.held.member != 0
    _add_grid(dem, _hour_of_week(fig.held.start[booked], fig.held.end[booked], data.clock))
    add_by_hour_of_week(unmet, ((r.start, r.end) for r in fig.unmet), data.clock)
    add_by_hour_of_week(dem, ((r.start, r.end) for r in fig.unmet), data.clock)
    # Capacity: the capacity model's grid of one week per distinct opening, times how often each
    # weekday occurs in the period (the same sum as day by day, without walking a year hour by hour).
    counts = [0] * 7
    day = first
    while day <= last:
        counts[day.weekday()] += 1
        day += timedelta(days=1)
    monday = first - timedelta(days=first.weekday())
    weekly: dict[Any, tuple[tuple[float, ...], ...]] = {}
    for m in data.machines:
        opening = opening_of(booking_service.policy_for(m))
        key = tuple(sorted(opening.weekly.items()))
        if key not in weekly:
            weekly[key] = cap.hour_of_week_matrix((), 1, opening, monday, monday + timedelta(days=6)).capacity
        grid = weekly[key]
        for d in range(7):
            if counts[d]:
                for h in range(24):
                    capa[d][h] += grid[d][h] * counts[d]
    return HeatView(tuple(map(tuple, dem)), tuple(map(tuple, capa)), tuple(map(tuple, unmet)))


def _labeller(data: PeriodData, viewer: Viewer) -> Callable[[int], tuple[str, int | None, bool]]:
    def label(member_id: int) -> tuple[str, int | None, bool]:
        no, name, _ = data.members.get(member_id, (member_id, f"#{member_id}", False))
        you = member_id == viewer.member_id
        if viewer.names:
            return name, member_id, you
        return f"Member {no}", None, you

    return label


def compute_lottery(data: PeriodData, viewer: Viewer) -> LotteryView:
    from . import windows as window_service  # the draw's re-run lives with request windows

    events: list[alloc.LotteryEvent] = []
    verified = contested = 0
    for _wid, trace, seed in data.windows:
        if not trace or not seed:
            continue
        try:
            labels = {r["participant"]: data.window_members.get(r["id"]) for r in trace["requests"]}
            rerun = window_service.rerun_allocation(trace, seed)
            published = {o["id"]: o["status"] for o in trace["outcomes"]}
        except (KeyError, TypeError, ValueError):
            continue  # a trace of another version: nothing to compare
        if all(published.get(o.request.id) == o.status.value for o in rerun.outcomes):
            verified += 1
        contested += len(alloc.contested_ids([o.request for o in rerun.outcomes]))
        for ev in rerun.lottery_events:
            ids = tuple(labels.get(c) or f"?{c}" for c in ev.contenders)
            events.append(replace(ev, winner=labels.get(ev.winner) or f"?{ev.winner}", contenders=ids))
    label = _labeller(data, viewer)
    rows = []
    tallies = metrics.lottery_vs_expectation(events)
    for t in tallies:
        if isinstance(t.member_id, int):
            text, _, you = label(t.member_id)
        else:
            text, you = "unknown participant", False
        rows.append(LotteryRow(text, you, t.draws, t.expected_wins, t.actual_wins))
    rows.sort(key=lambda r: (-(r.actual_wins - r.expected_wins), r.label))
    return LotteryView(len(data.windows), verified, contested, len(events), tuple(rows),
                       metrics.lottery_deviation(tallies))


def build_from(data: PeriodData, viewer: Viewer, timings: dict[str, float] | None = None) -> Review:
    t0 = _time.perf_counter()
    fig = compute_figures(data)
    population = set(data.qualified) | set(fig.acc)
    used = {m: fig.acc[m].used if m in fig.acc else 0.0 for m in population}
    requested = {m: fig.acc[m].requested for m in fig.acc}
    summary = metrics.fairness_summary(used, requested, population, WORST_K)
    label = _labeller(data, viewer)
    by_usage = sorted(summary.members, key=lambda m: (-m.used_hours, -m.requested_hours, str(m.member_id)))
    rows: dict[int, MemberRow] = {}
    for rank, mf in enumerate(by_usage, start=1):
        a = fig.acc.get(mf.member_id, _Acc())
        text, mid, you = label(mf.member_id)
        rows[mf.member_id] = MemberRow(text, mid, you, mf.used_hours, mf.requested_hours, mf.satisfaction,
                                       a.bookings, a.no_shows, a.no_show_hours, a.late_cancels, a.overrun,
                                       a.unbooked, rank)
    members = tuple(rows[m.member_id] for m in by_usage)
    worst = tuple(rows[m.member_id] for m in summary.worst_off)
    you = rows.get(viewer.member_id) if viewer.member_id is not None else None

    machines = []
    unmet_m: dict[int, float] = defaultdict(float)
    rejected_m: dict[int, int] = defaultdict(int)
    waitlisted_m: dict[int, int] = defaultdict(int)
    for r in fig.unmet:
        unmet_m[r.machine_id] += (r.end - r.start) / 3600
        if r.status == RequestStatus.REJECTED.value:
            rejected_m[r.machine_id] += 1
        else:
            waitlisted_m[r.machine_id] += 1
    start_at, end_at = data.start_at, data.end_at
    open_hours: dict[Any, float] = {}  # per distinct weekly hours (machines of a type share them)
    for m in data.machines:
        policy = booking_service.policy_for(m)
        if policy.opening_hours not in open_hours:
            open_hours[policy.opening_hours] = sum((b - a).total_seconds() / 3600 for a, b in
                                                   pol.opening_pairs(policy, start_at, end_at, data.tz))
        open_h = open_hours[policy.opening_hours]
        used_h = fig.per_machine_used.get(m.id, 0.0)
        machines.append(MachineRow(m.slug, m.name, m.machine_type.name, m.id in data.first_session, open_h, used_h,
                                   fig.per_machine_booked.get(m.id, 0.0), fig.per_machine_maint.get(m.id, 0.0),
                                   metrics.utilisation(used_h, open_h), unmet_m[m.id], rejected_m[m.id],
                                   waitlisted_m[m.id], data.waitlist_now.get(m.id, 0)))
    rates = metrics.lab_behaviour(metrics.BehaviourRates(a.bookings, a.no_shows, a.late_cancels, a.overrun)
                                  for a in fig.acc.values())
    totals = Totals(
        members=len(population), users=sum(1 for m in members if m.used_hours > 0),
        used_hours=sum(m.used_hours for m in members), unattributed_hours=fig.unattributed,
        requested_hours=sum(m.requested_hours for m in members), unmet_hours=sum(unmet_m.values()),
        bookings=rates.bookings, no_shows=rates.no_shows, late_cancels=rates.late_cancels,
        no_show_rate=rates.no_show_rate, late_cancel_rate=rates.late_cancel_rate, overrun_hours=rates.overrun_hours,
        unbooked_hours=sum(a.unbooked for a in fig.acc.values()), rejected_requests=sum(rejected_m.values()),
        waitlisted_requests=sum(waitlisted_m.values()), waitlist_now=sum(data.waitlist_now.values()),
        waitlist_joined=data.waitlist_joined)

    weeks = []
    if data.end > data.start:
        lo, hi = data.clock.local(data.start) / 86400, data.clock.local(data.end) / 86400
        for week in range(data.clock.week(data.start), data.clock.week(data.end - 1e-3) + 1, 7):
            used_w = fig.weekly.get(week, {})
            other = fig.weekly_other.get(week, [0.0, 0.0, 0, 0])
            days = round(min(hi, week + 7) - max(lo, week), 2)
            weeks.append(WeekRow(_EPOCH_DATE + timedelta(days=week), days, sum(used_w.values()), other[0], other[1],
                                 int(other[2]), int(other[3]), metrics.gini([used_w.get(m, 0.0) for m in population])))
    lottery = compute_lottery(data, viewer)
    heat = compute_heat(data, fig)
    t1 = _time.perf_counter()
    replay = compute_replay(data, fig)
    t2 = _time.perf_counter()
    if timings is not None:
        timings["metrics"] = timings.get("metrics", 0.0) + (t1 - t0)
        timings["replay"] = timings.get("replay", 0.0) + (t2 - t1)
    return Review(data.query, end_at, data.scope, viewer.names, totals, summary.gini_usage, summary.lorenz,
                  summary.jain_satisfaction, members, worst, you, tuple(machines), lottery, heat, tuple(replay),
                  tuple(weeks))


def build_review(query: ReviewQuery, viewer: Viewer, now: datetime,
                 timings: dict[str, float] | None = None) -> Review:
    t0 = _time.perf_counter()
    data = load_period(query, now)
    if timings is not None:
        timings["load"] = timings.get("load", 0.0) + _time.perf_counter() - t0
    return build_from(data, viewer, timings)


# --- tables (CSV export, and the data tables beside the charts) ---------------------------------------------

WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _r(x: float | None, nd: int = 2) -> float | str:
    return "" if x is None else round(x, nd)


def tables(review: Review) -> dict[str, tuple[list[str], list[list[Any]]]]:
    """Every table of the review as (header, rows), named as in the export URLs."""
    t = review.totals
    out: dict[str, tuple[list[str], list[list[Any]]]] = {}
    out["summary"] = (["figure", "value"], [
        ["scope", review.scope], ["from", review.query.start.isoformat(timespec="minutes")],
        ["to", review.end.isoformat(timespec="minutes")],
        ["members", t.members], ["members with use", t.users], ["hours used", _r(t.used_hours)],
        ["hours used, no member known", _r(t.unattributed_hours)], ["hours requested", _r(t.requested_hours)],
        ["unmet hours", _r(t.unmet_hours)], ["gini of usage", _r(review.gini, 3)],
        ["jain index of satisfaction", _r(review.jain, 3)], ["bookings", t.bookings], ["no-shows", t.no_shows],
        ["no-show rate", _r(t.no_show_rate, 3)], ["late cancellations", t.late_cancels],
        ["late cancellation rate", _r(t.late_cancel_rate, 3)], ["overrun hours", _r(t.overrun_hours)],
        ["unbooked hours", _r(t.unbooked_hours)], ["rejected requests", t.rejected_requests],
        ["waitlisted requests", t.waitlisted_requests], ["waitlist now", t.waitlist_now],
        ["waitlist joined in period", t.waitlist_joined],
    ])
    member_head = ["rank", "member", "you", "hours used", "hours requested", "satisfaction", "bookings", "no-shows",
                   "no-show hours", "late cancellations", "overrun hours", "unbooked hours"]

    def mrow(m: MemberRow) -> list[Any]:
        return [m.rank, m.label, "yes" if m.is_you else "", _r(m.used_hours), _r(m.requested_hours),
                _r(m.satisfaction, 3), m.bookings, m.no_shows, _r(m.no_show_hours), m.late_cancels,
                _r(m.overrun_hours), _r(m.unbooked_hours)]

    out["members"] = (member_head, [mrow(m) for m in review.members])
    out["worst_off"] = (member_head, [mrow(m) for m in review.worst_off])
    out["lorenz"] = (["share of members", "share of usage"], [[_r(x, 4), _r(y, 4)] for x, y in review.lorenz])
    out["machines"] = (["machine", "type", "usage data", "open hours", "hours used", "hours booked",
                        "maintenance hours", "utilisation", "unmet hours", "rejected requests",
                        "waitlisted requests", "waitlist now"],
                       [[m.name, m.type_name, "sessions" if m.metered else "bookings", _r(m.open_hours),
                         _r(m.used_hours), _r(m.booked_hours), _r(m.maintenance_hours), _r(m.utilisation, 3),
                         _r(m.unmet_hours), m.rejected_requests, m.waitlisted_requests, m.waitlist_now]
                        for m in review.machines])
    out["lottery"] = (["member", "you", "draws", "expected wins", "actual wins"],
                      [[r.label, "yes" if r.is_you else "", r.draws, _r(r.expected_wins), r.actual_wins]
                       for r in review.lottery.rows])
    out["heatmap"] = (["weekday", "hour", "requested hours", "open machine-hours", "unmet hours", "demand/capacity"],
                      [[WEEKDAY_NAMES[d], f"{h:02d}:00", _r(dem), _r(c), _r(u), _r(ratio, 3)]
                       for d, h, dem, c, u, ratio in review.heat.cells()])
    out["replay"] = (["machine type", "machines", "scenario", "unmet hours", "would meet hours", "share",
                      "unmet evening hours", "evening share", "statement"],
                     [[r.machine_type, r.machines, r.scenario, _r(r.unmet_hours), _r(r.met_hours), _r(r.share, 3),
                       _r(r.evening_unmet_hours), _r(r.evening_share, 3), r.statement] for r in review.replay])
    out["weeks"] = (["week from", "days in period", "hours used", "hours requested", "unmet hours", "bookings",
                     "no-shows", "gini"],
                    [[w.week_start.isoformat(), _r(w.days, 1), _r(w.used_hours), _r(w.requested_hours),
                      _r(w.unmet_hours), w.bookings, w.no_shows, _r(w.gini, 3)] for w in review.weeks])
    return out


TABLES = ("summary", "members", "worst_off", "lorenz", "machines", "lottery", "heatmap", "replay", "weeks")
