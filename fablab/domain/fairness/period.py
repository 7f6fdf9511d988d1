"""The period under review as plain data: what the service loads, and the rules applied while loading.

Times are UTC epoch seconds (floats). Statuses and kinds are the stored strings (the codes below). The
bookings come as numpy columns, one entry per booking, in the order they were read (a year is 100,000: the
tally sums them set-wise). Usage sessions wholly inside the period arrive already summed by the database
(`SessionSum`, `MachineSum`); the few crossing its edges, or still open, are clipped here (`clip_sessions`).

Rules applied here:
- A booking's reserved end is its booked end when that is later than its end (an early check-out).
- A session crossing the period's edges is clipped to them (an open one ends `now`); a session wholly
  inside keeps the sessionizer's duration (it may leave out pauses).
- Waitlist: an entry counts as waiting now when active and its slot has not ended; an exact slot wished for
  outside a window and never fulfilled is an unmet wish (a window's request is counted as the request).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any

import numpy as np

from ..policy import BookingPolicy
from .clock import LabClock

# Booking statuses and kinds, slot request statuses: the stored values.
REQUESTED, CONFIRMED, CHECKED_IN, COMPLETED = "requested", "confirmed", "checked_in", "completed"
CANCELLED, NO_SHOW, RELEASED = "cancelled", "no_show", "released"
NORMAL, MAINTENANCE, INDUCTION = "normal", "maintenance", "induction"
REJECTED, WAITLISTED = "rejected", "waitlisted"
HELD = (COMPLETED, CHECKED_IN, CONFIRMED, NO_SHOW, RELEASED)  # bookings whose time was held from others
NO_SHOWS = (NO_SHOW, RELEASED)
UNMET_REQUEST = (REJECTED, WAITLISTED)  # window requests that were never met
LATE_CANCEL_HOURS = 24.0

# (member or None, lab week, hours, unbooked hours, overrun minutes) of the sessions inside the period that
# count as usage, per member and week; (machine, counts as usage, hours) per machine.
SessionSum = tuple[int | None, int, float | None, float | None, float | None]
MachineSum = tuple[int, bool, float | None]


@dataclass(frozen=True)
class MachineFacts:
    id: int
    slug: str
    name: str
    type_id: int
    type_name: str
    policy: BookingPolicy


@dataclass(frozen=True)
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


def booking_columns(machine: Sequence[int], member: Sequence[int], start: np.ndarray, end: np.ndarray,
                    booked_end: np.ndarray, status: Sequence[str], kind: Sequence[str], checked_in: Sequence[bool],
                    cancelled_at: np.ndarray, clock: LabClock) -> BookingColumns:
    """The columns from the values as read (times as epoch-second arrays, NaN for none)."""
    return BookingColumns(
        np.array(machine, dtype=np.int64), np.array(member, dtype=np.int64), start, end,
        np.where(booked_end > end, booked_end, end), np.array(status, dtype=str), np.array(kind, dtype=str),
        np.array(checked_in, dtype=bool), cancelled_at, clock.weeks(start))


@dataclass(frozen=True)
class SessionPiece:
    """A usage session crossing the period's edges (or still open), clipped to the period."""

    machine_id: int
    member_id: int | None  # the badge's member, or the linked booking's
    start: float
    hours: float  # clipped to the period
    counts: bool  # counts as usage (maintenance and induction never do)
    unbooked: bool
    overrun_minutes: float


def clip_sessions(rows: Iterable[tuple[Any, ...]], start: float, end: float, now: float) -> list[SessionPiece]:
    """Rows (machine, member or None, start, end or None while open, duration_s, counts, unbooked, overrun
    minutes) clipped to [start, end); those with nothing left inside are dropped."""
    out = []
    for mid, member, s, e, dur, counts, unbooked, overrun in rows:
        e_eff = e if e is not None else now
        lo, hi = max(s, start), min(e_eff, end)
        if hi <= lo:
            continue
        if e is not None and lo == s and hi == e and dur:
            hours = dur / 3600  # the sessionizer's duration (it may leave out pauses)
        else:
            hours = (hi - lo) / 3600
        out.append(SessionPiece(mid, member, s, hours, bool(counts), bool(unbooked), overrun or 0.0))
    return out


@dataclass(frozen=True)
class Wish:
    """An unmet wish for machine time: a rejected or waitlisted window request, or an exact-slot waitlist
    entry never fulfilled (its id is the entry's, negated)."""

    id: int
    window_id: int | None
    member_id: int
    machine_id: int
    start: float
    end: float
    status: str  # REJECTED or WAITLISTED

    @property
    def hours(self) -> float:
        return (self.end - self.start) / 3600


@dataclass(frozen=True)
class WaitlistFacts:
    now: dict[int, int]  # machine id -> active entries for time not yet over
    joined: int  # entries joined during the period
    wishes: tuple[Wish, ...]  # exact slots wished for outside a window, never fulfilled


def waitlist_facts(rows: Iterable[tuple[Any, ...]], start: float, end: float, now: float) -> WaitlistFacts:
    """Rows (id, member, machine, kind, start, end, status, request id or None, joined)."""
    waiting: dict[int, int] = defaultdict(int)
    joined_n = 0
    wishes = []
    for eid, member, mid, kind, s, e, status, request_id, joined in rows:
        if status == "active" and e > now:
            waiting[mid] += 1
        if start <= joined < end:
            joined_n += 1
        # An exact slot wished for outside a window (a window's request is counted as the request).
        if kind == "slot" and request_id is None and status != "fulfilled" and start <= s < end:
            wishes.append(Wish(-eid, None, member, mid, s, e, WAITLISTED))
    return WaitlistFacts(dict(waiting), joined_n, tuple(wishes))


@dataclass(frozen=True)
class Period:
    """Everything the figures are computed from. [start, end) is already capped at `now`."""

    start: float
    end: float
    now: float
    clock: LabClock
    machines: tuple[MachineFacts, ...]
    bookings: BookingColumns
    qualified: frozenset[int] = frozenset()  # active members who could have used a machine in scope
    first_session: Mapping[int, float] = field(default_factory=dict)  # machine id -> its first usage session
    sessions: Sequence[SessionPiece] = ()  # sessions crossing the period's edges, clipped
    session_sums: Sequence[SessionSum] = ()  # of the sessions wholly inside
    machine_sums: Sequence[MachineSum] = ()
    wishes: Sequence[Wish] = ()
    waitlist_now: Mapping[int, int] = field(default_factory=dict)
    waitlist_joined: int = 0
    late_cancel_hours: float = LATE_CANCEL_HOURS

    @property
    def tz(self) -> tzinfo:
        return self.clock.tz

    @property
    def start_at(self) -> datetime:
        return datetime.fromtimestamp(self.start, UTC)

    @property
    def end_at(self) -> datetime:
        return datetime.fromtimestamp(self.end, UTC)
