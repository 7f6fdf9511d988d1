"""Induction sessions: who may sign up, who gets a place, who moves up, and when a qualification lapses.

Pure functions of data and `now`. Refusals are data, `Refusal(code, params)`: the sentence is made at the
edge (page, API `message`, mail), as for the booking rules. Datetimes are aware.

The waitlist is ordered the way the machine waitlist is (fablab.domain.waitlist.order_entries): fair-share
factor F highest first, then join time. Here F is computed from the member's induction history (each session
they took part in counts its length as "service received", decayed with the usual half-life), so a member who
had fewer or less recent inductions comes before one who just had several.
"""

from __future__ import annotations

import calendar
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from fablab.domain.fairshare import DEFAULT_HALF_LIFE, UsageRecord, equal_shares, fair_share_state
from fablab.domain.intervals import require_aware

# Signup statuses. Confirmed ones hold a place; waitlisted ones wait in fair-share order.
CONFIRMED = "confirmed"
WAITLISTED = "waitlisted"
CANCELLED = "cancelled"
ATTENDED = "attended"
PASSED = "passed"
MISSED = "missed"
SIGNUP_STATUSES = (CONFIRMED, WAITLISTED, CANCELLED, ATTENDED, PASSED, MISSED)
HOLDS_PLACE = frozenset({CONFIRMED, ATTENDED, PASSED, MISSED})  # after attendance the place stays taken
OPEN = frozenset({CONFIRMED, WAITLISTED})  # a signup the member can still cancel
TOOK_PART = frozenset({ATTENDED, PASSED, MISSED})  # counted as induction history (a miss took a place)
ATTENDANCE = (ATTENDED, PASSED, MISSED)

# Session statuses.
SCHEDULED = "scheduled"
SESSION_CANCELLED = "cancelled"
DONE = "done"

# Refusal codes, in the order they are checked (the first one found is the one reported).
CODES = (
    "session_cancelled",
    "session_done",
    "session_started",
    "already_signed_up",
    "already_qualified",
    "missing_prerequisites",
)


@dataclass(frozen=True, slots=True)
class Refusal:
    code: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Session:
    id: Hashable
    machine_type_id: int
    start: datetime
    end: datetime
    capacity: int
    prerequisite_type_ids: tuple[int, ...] = ()
    is_refresher: bool = False
    status: str = SCHEDULED


@dataclass(frozen=True, slots=True)
class Signup:
    member_id: Hashable
    status: str
    created_at: datetime
    id: Hashable = 0


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of a sign-up check: a refusal, or the status the new signup gets."""

    refusal: Refusal | None = None
    status: str | None = None  # CONFIRMED or WAITLISTED when allowed
    places_left: int = 0

    @property
    def allowed(self) -> bool:
        return self.refusal is None


def places_left(session: Session, signups: Iterable[Signup]) -> int:
    taken = sum(1 for s in signups if s.status in HOLDS_PLACE)
    return max(0, session.capacity - taken)


def check_signup(session: Session, member_id: Hashable, valid_type_ids: Iterable[int],
                 signups: Sequence[Signup], now: datetime) -> Decision:
    """Whether `member_id` may sign up for `session` now, and with which status.

    `valid_type_ids`: machine types the member holds a valid qualification for (now). `signups`: all of the
    session's signups (any status). A full session puts the member on the waitlist, it does not refuse.
    """
    require_aware("now", now)
    left = places_left(session, signups)
    valid = set(valid_type_ids)
    if session.status == SESSION_CANCELLED:
        return Decision(Refusal("session_cancelled"), places_left=left)
    if session.status == DONE:
        return Decision(Refusal("session_done"), places_left=left)
    if now >= session.start:
        return Decision(Refusal("session_started", {"start": session.start.isoformat()}), places_left=left)
    mine = [s for s in signups if s.member_id == member_id and s.status != CANCELLED]
    if mine:
        return Decision(Refusal("already_signed_up", {"status": mine[0].status}), places_left=left)
    if session.machine_type_id in valid and not session.is_refresher:
        return Decision(Refusal("already_qualified", {"machine_type_id": session.machine_type_id}),
                        places_left=left)
    missing = [t for t in session.prerequisite_type_ids if t not in valid]
    if missing:
        return Decision(Refusal("missing_prerequisites", {"type_ids": missing}), places_left=left)
    return Decision(status=CONFIRMED if left > 0 else WAITLISTED, places_left=left)


def service_factors(members: Iterable[Hashable], history: Iterable[UsageRecord], now: datetime,
                    half_life: timedelta = DEFAULT_HALF_LIFE * 6) -> dict[Hashable, float]:
    """F per member from induction history (hours of sessions taken part in, dated at their end).

    The half-life is longer than for machine time (12 weeks by default): inductions are rare, and a member
    who had one last month should still yield to one who never had any."""
    members = list(members)
    state = fair_share_state(list(history), equal_shares(members), now, half_life)
    return {m: state.factor(m) for m in members}


def waitlist_order(waitlisted: Iterable[Signup], history: Iterable[UsageRecord], now: datetime) -> list[Signup]:
    """The waitlisted signups in the order they move up: F highest first, then join time, then id
    (the machine waitlist's order)."""
    entries = [s for s in waitlisted if s.status == WAITLISTED]
    factors = service_factors([s.member_id for s in entries], history, now)
    return sorted(entries, key=lambda s: (-factors.get(s.member_id, 1.0), s.created_at, str(s.id)))


def to_move_up(session: Session, signups: Sequence[Signup], history: Iterable[UsageRecord],
               now: datetime) -> list[Signup]:
    """Waitlisted signups that get a place now (as many as places are free), in order. None once the
    session has started or is not scheduled: a place freed at the door is not handed out."""
    if session.status != SCHEDULED or now >= session.start:
        return []
    left = places_left(session, signups)
    if left <= 0:
        return []
    return waitlist_order(signups, history, now)[:left]


def positions(ordered: Sequence[Signup]) -> dict[Hashable, int]:
    """1-based waitlist position per member, from `waitlist_order`."""
    return {s.member_id: i for i, s in enumerate(ordered, start=1)}


# --- expiry ------------------------------------------------------------------------------------------


def add_months(at: datetime, months: int) -> datetime:
    """`at` plus whole calendar months, clamped to the month's last day (31 Jan + 1 month = 28/29 Feb)."""
    if months < 0:
        raise ValueError("months must not be negative")
    index = at.month - 1 + months
    year, month = at.year + index // 12, index % 12 + 1
    day = min(at.day, calendar.monthrange(year, month)[1])
    return at.replace(year=year, month=month, day=day)


def expiry_after_pass(passed_at: datetime, validity_months: int | None) -> datetime | None:
    """When a qualification granted at `passed_at` lapses by time (None: never)."""
    require_aware("passed_at", passed_at)
    return None if validity_months is None else add_months(passed_at, validity_months)


@dataclass(frozen=True, slots=True)
class Standing:
    """A qualification seen with both expiry rules. state: "valid" | "expired" | "disused"."""

    state: str
    lapses_at: datetime | None  # the earlier of the two limits (None: never, while used)
    reason: str | None = None  # "time" | "disuse" for the limit that decides

    @property
    def valid(self) -> bool:
        return self.state == "valid"


def standing(granted_at: datetime, expires_at: datetime | None, last_used_at: datetime | None,
             disuse_months: int | None, now: datetime) -> Standing:
    """Valid, expired by time (`expires_at` passed) or lapsed by disuse (no use of the type for
    `disuse_months` since the later of the grant and the last use)."""
    require_aware("now", now)
    limits: list[tuple[datetime, str]] = []
    if expires_at is not None:
        limits.append((expires_at, "time"))
    if disuse_months is not None:
        since = max(granted_at, last_used_at) if last_used_at is not None else granted_at
        limits.append((add_months(since, disuse_months), "disuse"))
    if not limits:
        return Standing("valid", None)
    at, reason = min(limits, key=lambda x: x[0])
    if now >= at:
        return Standing("expired" if reason == "time" else "disused", at, reason)
    return Standing("valid", at, reason)


def lapsing_within(st: Standing, now: datetime, ahead: timedelta = timedelta(days=30)) -> bool:
    """Whether a valid qualification lapses within `ahead` (the warning window)."""
    return st.valid and st.lapses_at is not None and st.lapses_at - now <= ahead
