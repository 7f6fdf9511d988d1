"""The fairness review: who used what, how fair it was, where the lab needs more capacity.

One `Review` (a tree of frozen dataclasses) feeds the page, the printable report, the CSV exports and
the JSON API, so every view shows the same figures. This module loads the period and assembles the review;
the figures, and the rules they follow, are the pure functions of `fablab.domain.fairness` (tally, figures,
heat map, replay, draws), which take the period as plain data (`fablab.domain.fairness.period.Period`).

Loading is a fixed handful of set-based queries (machines, members, qualifications, bookings, usage
sessions, slot requests, waitlist, windows), whatever the number of members:
- Period: [start, end), capped at now (the future has no use yet). A booking belongs to the period
  its start lies in; usage sessions are clipped to it (those wholly inside are summed by the database).
- Population: active members qualified for a machine in scope during the period (all active members when a
  machine in scope needs no qualification); the figures add anyone who used or requested.
- Requests: rejected and waitlisted window requests, and exact-slot waitlist entries never met.
- Privacy: names only for viewers who may see them (`viewer_for`), else pseudonyms; everyone sees "you".
"""

from __future__ import annotations

import sqlite3
import time as _time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

import numpy as np
from sqlalchemy import Float, Integer, and_, case, cast, extract, func, literal, not_, or_, select

from ..domain.fairness import draws
from ..domain.fairness import period as fp
from ..domain.fairness.clock import LabClock
from ..domain.fairness.figures import WORST_K, MachineRow, Totals, WeekRow, lab_figures
from ..domain.fairness.heatmap import HeatView, heat_view
from ..domain.fairness.replay import ReplayRow, replay_rows
from ..domain.fairness.tally import tally
from ..extensions import db
from ..models import Booking, BookingStatus, Machine, MachineType, Member, Qualification
from ..models.scheduling import RequestWindow, SlotRequest, WaitlistEntry, WindowStatus
from ..models.usage import UsageSession
from . import bookings as booking_service
from . import induction_demand

DEFAULT_DAYS = 28
LATE_CANCEL_HOURS = fp.LATE_CANCEL_HOURS
MAX_SESSION = timedelta(days=7)  # sessions starting earlier than period start - this are not looked for
USAGE_RULE = ("Used hours: usage sessions reported by the machine (maintenance and induction excluded); for machines "
              "without usage data, completed and checked-in bookings. A no-show's reserved time counts as used. "
              "Requested hours: bookings as booked (no-shows included, cancellations excluded) plus rejected and "
              "waitlisted requests that were never met.")


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
    inductions: induction_demand.InductionFigures = induction_demand.InductionFigures()

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
# it) and converted by SQLite elsewhere, to the same double. The bookings go to the domain as numpy columns
# (it sums them per member, machine and week set-wise); usage sessions wholly inside the period are summed by
# the database.


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


def _load_bookings(conn: Any, ids: list[int], start_at: datetime, end_at: datetime,
                   clock: LabClock) -> fp.BookingColumns:
    rows = _rows(conn, select(
        Booking.machine_id, Booking.member_id, _times(Booking.start_at), _times(Booking.end_at),
        _times(Booking.booked_end_at), Booking.status, Booking.kind, Booking.checked_in_at.is_not(None),
        case((Booking.status == BookingStatus.CANCELLED.value, _times(Booking.cancelled_at))))
        .where(Booking.machine_id.in_(ids), Booking.start_at >= start_at, Booking.start_at < end_at))
    cols = [[r[i] for r in rows] for i in range(9)]  # (not zip(*rows): 900,000 tuple items wake the GC)
    return fp.booking_columns(cols[0], cols[1], _epochs(cols[2]), _epochs(cols[3]), _epochs(cols[4]), cols[5],
                              cols[6], cols[7], _epochs(cols[8]), clock)


def _rows(conn: Any, stmt: Any) -> list[tuple[Any, ...]]:
    """All rows as the driver's plain tuples: a year is 100,000 rows, and SQLAlchemy's row objects (and
    result processors) would cost more than the query. Only for columns whose driver values are usable as
    they come: numbers, strings, and booleans (SQLite gives 0/1)."""
    result = conn.execute(stmt)
    try:
        return result.cursor.fetchall()
    finally:
        result.close()


@dataclass(frozen=True)
class PeriodData:
    """Everything the review needs, loaded in a fixed number of queries: the period's facts for the figures,
    and what the review adds around them (scope, names, the windows' traces)."""

    query: ReviewQuery
    scope: str
    period: fp.Period
    members: dict[int, tuple[int, str, bool]]  # id -> (member_no, name, active)
    windows: list[draws.WindowTrace]  # (id, trace, revealed seed) of the closed windows
    window_members: dict[int, int]  # slot request id -> member id, for the windows' traces
    inductions: induction_demand.InductionFigures = induction_demand.InductionFigures()


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


def _machine_facts(m: Machine) -> fp.MachineFacts:
    return fp.MachineFacts(m.id, m.slug, m.name, m.type_id, m.machine_type.name, booking_service.policy_for(m))


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
    machines = tuple(_machine_facts(m) for m in db.session.scalars(stmt).unique())
    if (query.machine or query.machine_type) and not machines:
        raise UnknownScope(query.machine or query.machine_type)
    if query.machine:
        scope = machines[0].name
    elif query.machine_type:
        scope = machines[0].type_name
    else:
        scope = "the whole lab"
    ids = [m.id for m in machines]
    members = {mid: (no, name, active) for mid, no, name, active in db.session.execute(
        select(Member.id, Member.member_no, Member.name, Member.active))}

    # Who could have used a machine in scope: qualified (or no qualification needed) during the period.
    types = {m.type_id for m in machines}
    if any(not m.policy.qualification_required for m in machines):
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
    # (a year is 100,000 rows); the few crossing its edges (or still open) are clipped by the domain.
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
    sessions = fp.clip_sessions(conn.execute(
        joined.add_columns(UsageSession.machine_id, member_key, ep_start, ep_end, UsageSession.duration_s,
                           UsageSession.counts_as_usage, UsageSession.unbooked, UsageSession.overrun_minutes)
        .where(in_scope, UsageSession.start_at >= start_at - MAX_SESSION, UsageSession.start_at < end_at,
               or_(UsageSession.end_at.is_(None), UsageSession.end_at > start_at), not_(inner))).all(),
        start, end, now_ts)

    wishes = [fp.Wish(rid, wid, member, mid, s, e, status) for rid, wid, member, mid, s, e, status in
              db.session.execute(
                  select(SlotRequest.id, SlotRequest.window_id, SlotRequest.member_id, SlotRequest.machine_id,
                         _epoch(SlotRequest.start_at), _epoch(SlotRequest.end_at), SlotRequest.status)
                  .where(SlotRequest.machine_id.in_(ids), SlotRequest.status.in_(fp.UNMET_REQUEST),
                         SlotRequest.start_at >= start_at, SlotRequest.start_at < end_at))]
    waitlist = fp.waitlist_facts(db.session.execute(
        select(WaitlistEntry.id, WaitlistEntry.member_id, WaitlistEntry.machine_id, WaitlistEntry.kind,
               _epoch(WaitlistEntry.start_at), _epoch(WaitlistEntry.end_at), WaitlistEntry.status,
               WaitlistEntry.request_id, _epoch(WaitlistEntry.joined_at))
        .where(WaitlistEntry.machine_id.in_(ids),
               or_(WaitlistEntry.end_at > now, WaitlistEntry.joined_at >= start_at,
                   (WaitlistEntry.start_at >= start_at) & (WaitlistEntry.start_at < end_at)))), start, end, now_ts)

    windows = [(wid, trace, seed) for wid, trace, seed in db.session.execute(
        select(RequestWindow.id, RequestWindow.trace, RequestWindow.revealed_seed)
        .where(RequestWindow.machine_id.in_(ids), RequestWindow.status == WindowStatus.CLOSED.value,
               RequestWindow.period_start < end_at, RequestWindow.period_end > start_at))]
    window_members: dict[int, int] = {}
    if windows:
        window_members = dict(db.session.execute(
            select(SlotRequest.id, SlotRequest.member_id).where(SlotRequest.window_id.in_([w[0] for w in windows])))
            .all())
    period = fp.Period(start, end, now_ts, clock, machines, bookings, frozenset(qualified), first_session, sessions,
                       session_sums, machine_sums, wishes + list(waitlist.wishes), waitlist.now, waitlist.joined,
                       query.late_cancel_hours)
    inductions = induction_demand.figures({m.type_id for m in machines}, start_at, end_at)
    return PeriodData(query, scope, period, members, windows, window_members, inductions)


# --- assembling ---------------------------------------------------------------------------------------------


def _labeller(data: PeriodData, viewer: Viewer) -> Callable[[int], tuple[str, int | None, bool]]:
    def label(member_id: int) -> tuple[str, int | None, bool]:
        no, name, _ = data.members.get(member_id, (member_id, f"#{member_id}", False))
        you = member_id == viewer.member_id
        if viewer.names:
            return name, member_id, you
        return f"Member {no}", None, you

    return label


def lottery_view(data: PeriodData, viewer: Viewer) -> LotteryView:
    from . import window_draw  # the draw's re-run lives with the close of request windows

    check = draws.check_draws(data.windows, data.window_members, window_draw.rerun_allocation)
    label = _labeller(data, viewer)
    rows = []
    for t in check.tallies:
        if isinstance(t.member_id, int):
            text, _, you = label(t.member_id)
        else:
            text, you = "unknown participant", False
        rows.append(LotteryRow(text, you, t.draws, t.expected_wins, t.actual_wins))
    rows.sort(key=lambda r: (-(r.actual_wins - r.expected_wins), r.label))
    return LotteryView(check.windows, check.verified, check.contested_requests, len(check.events), tuple(rows),
                       check.deviation)


def build_from(data: PeriodData, viewer: Viewer, timings: dict[str, float] | None = None) -> Review:
    t0 = _time.perf_counter()
    period = data.period
    counted = tally(period)
    lab = lab_figures(period, counted, WORST_K)
    label = _labeller(data, viewer)
    rows: dict[int, MemberRow] = {}
    for mf in lab.members:
        a = mf.tally
        text, mid, you = label(mf.member_id)
        rows[mf.member_id] = MemberRow(text, mid, you, mf.used_hours, mf.requested_hours, mf.satisfaction,
                                       a.bookings, a.no_shows, a.no_show_hours, a.late_cancels, a.overrun,
                                       a.unbooked, mf.rank)
    members = tuple(rows.values())
    worst = tuple(rows[m] for m in lab.worst_off)
    you_row = rows.get(viewer.member_id) if viewer.member_id is not None else None
    lottery = lottery_view(data, viewer)
    heat = heat_view(period, counted)
    t1 = _time.perf_counter()
    replay = replay_rows(period, counted)
    t2 = _time.perf_counter()
    if timings is not None:
        timings["metrics"] = timings.get("metrics", 0.0) + (t1 - t0)
        timings["replay"] = timings.get("replay", 0.0) + (t2 - t1)
    return Review(data.query, period.end_at, data.scope, viewer.names, lab.totals, lab.gini, lab.lorenz, lab.jain,
                  members, worst, you_row, lab.machines, lottery, heat, replay, lab.weeks,
                  inductions=data.inductions)


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
        ["induction requests waiting", review.inductions.requests_waiting],
        ["missed induction sessions", review.inductions.missed_sessions],
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
