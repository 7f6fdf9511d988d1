"""Request windows: a machine's scheduling mode and window settings, the windows themselves (open,
cancel, list, the slots members rank), ranked slot requests, each participant's random label in a
window's draw, the guard that keeps direct bookings out
of a window's period (registered in fablab/wiring.py) and the timed `auto_open_windows(now)`.
The close of a window (the fair draw, bookings, waitlist, the published results and their re-check)
is fablab.services.window_draw, which builds on this module. Rules live in fablab.domain (policy,
booking rules, lottery); this module loads, calls them and writes the result atomically.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy import select, text

from ..database import write_transaction
from ..domain import audit_actions, lottery
from ..domain import booking_rules as rules
from ..domain import policy as pol
from ..extensions import db
from ..models import Machine, Member
from ..models.scheduling import (
    RequestStatus,
    RequestWindow,
    SchedulingSettings,
    SlotRequest,
    WindowParticipant,
    WindowStatus,
)
from ..models.types import utcnow
from . import audit
from . import bookings as booking_service
from .fairshare_data import settings_for
from .scheduling_common import SchedulingError
from .scheduling_common import is_postgres as _pg
from .scheduling_common import lab_tz as _tz

_OPEN_LOCK = 0x5C4ED000  # advisory-lock key space for opening windows (plus the machine id)
WINDOW_MODES = ("window", "hybrid")
# Rules that do not apply to a window request: the period may lie beyond the booking horizon, quotas
# are the allocator's (and re-checked at the close), overlaps are what the allocation decides.
_REQUEST_IGNORED = frozenset({"beyond_horizon", "overlap", "buffer", "quota_day_hours", "quota_week_hours",
                              "quota_future_bookings"})


# --- settings and mode -------------------------------------------------------------------------------------


def mode_of(machine: Machine) -> str:
    return booking_service.policy_for(machine).mode


def _parse_hhmm(text: str) -> time:
    hh, mm = text.split(":")
    return time(int(hh), int(mm))


SETTING_FIELDS = ("open_weekday", "open_time", "close_weekday", "close_time", "auto_open", "request_minutes",
                  "quota_hours", "quota_slots", "band_width", "half_life_days", "bonus_enabled", "hold_minutes",
                  "first_come_minutes")


def update_policy(machine: Machine, mode: str, *, actor: Member | None = None, **values: Any) -> SchedulingSettings:
    """Set the machine's mode (stored in its booking policy) and its window settings, then commit; with an
    `actor`, the changed fields are in the audit log."""
    if mode not in pol.MODES:
        raise SchedulingError("bad_mode", f"mode must be one of {', '.join(pol.MODES)}")
    unknown = set(values) - set(SETTING_FIELDS)
    if unknown:
        raise SchedulingError("bad_setting", f"unknown setting(s): {', '.join(sorted(unknown))}")
    with write_transaction():
        settings = db.session.get(SchedulingSettings, machine.id)
        if settings is None:
            settings = settings_for(machine)
            db.session.add(settings)
        old = {"mode": mode_of(machine), **{n: getattr(settings, n) for n in values}}
        for name, value in values.items():
            setattr(settings, name, value)
        _validate_settings(settings)
        policy = dict(machine.policy or {})
        policy["mode"] = mode
        pol.BookingPolicy.from_dict(policy, base=booking_service.policy_for(machine))  # still valid?
        machine.policy = policy
        diff = audit_actions.changes(old, {"mode": mode, **values})
        if actor is not None and diff:
            audit.record(actor, audit_actions.POLICY_CHANGED, target_type="machine", target_id=machine.id,
                         target_label=machine.name, detail=diff)
    return settings


def _validate_settings(s: SchedulingSettings) -> None:
    for name in ("open_weekday", "close_weekday"):
        if not 0 <= getattr(s, name) <= 6:
            raise SchedulingError("bad_setting", f"{name} must be 0 (Monday) to 6 (Sunday)")
    for name in ("open_time", "close_time"):
        try:
            _parse_hhmm(getattr(s, name))
        except (ValueError, AttributeError):
            raise SchedulingError("bad_setting", f"{name} must be HH:MM") from None
    if (s.open_weekday, _parse_hhmm(s.open_time)) >= (s.close_weekday, _parse_hhmm(s.close_time)):
        raise SchedulingError("bad_setting", "the window must open before it closes (in the same week)")
    if not 0 < s.band_width <= 1:
        raise SchedulingError("bad_setting", "band width must be above 0 and at most 1")
    if not 0 < s.half_life_days <= 365:
        raise SchedulingError("bad_setting", "half-life must be between 0 and 365 days")
    if s.quota_hours is not None and s.quota_hours <= 0:
        raise SchedulingError("bad_setting", "the hours quota must be positive (or empty for none)")
    if s.quota_slots is not None and s.quota_slots <= 0:
        raise SchedulingError("bad_setting", "the slots quota must be positive (or empty for none)")
    if not 15 <= s.request_minutes <= 24 * 60:
        raise SchedulingError("bad_setting", "request slots must be 15 minutes to 24 hours long")
    if s.hold_minutes <= 0 or s.first_come_minutes < 0:
        raise SchedulingError("bad_setting", "hold time must be positive, first-come time not negative")


# --- windows ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WindowTimes:
    period_start: datetime
    period_end: datetime
    opens_at: datetime
    closes_at: datetime


def upcoming_window_times(machine: Machine, now: datetime) -> WindowTimes:
    """The next weekly window whose close is still ahead: it collects requests for the following
    local week (Monday to Monday), opening and closing in the week before, per the machine's settings."""
    s = settings_for(machine)
    tz = _tz()
    week_start, _ = pol.local_week_bounds(now, tz)
    monday = week_start.astimezone(tz).date()
    for weeks_ahead in (1, 2):
        period_monday = monday + timedelta(days=7 * weeks_ahead)
        before = period_monday - timedelta(days=7)
        closes = pol.local_to_utc(before + timedelta(days=s.close_weekday), _parse_hhmm(s.close_time), tz)
        if closes > now:
            break
    opens = pol.local_to_utc(before + timedelta(days=s.open_weekday), _parse_hhmm(s.open_time), tz)
    return WindowTimes(pol.local_midnight(period_monday, tz),
                       pol.local_midnight(period_monday + timedelta(days=7), tz), opens, closes)


def open_window(machine: Machine, actor: Member | None = None, now: datetime | None = None, *,
                period_start: datetime | None = None, period_end: datetime | None = None,
                opens_at: datetime | None = None, closes_at: datetime | None = None) -> RequestWindow:
    """Open a request window and publish the commitment (SHA-256) of its secret lottery seed.
    Missing times come from the machine's weekly rhythm; a window opened by hand opens now."""
    now = now or utcnow()
    mode = mode_of(machine)
    if mode not in WINDOW_MODES:
        raise SchedulingError("not_window_mode", f"{machine.name} is in {mode!r} mode; switch it to window or "
                              "hybrid mode first.")
    default = upcoming_window_times(machine, now)
    period_start = period_start or default.period_start
    period_end = period_end or (period_start + timedelta(days=7) if period_start != default.period_start
                                else default.period_end)
    closes_at = closes_at or default.closes_at
    opens_at = opens_at or min(now, closes_at - timedelta(minutes=1))
    if period_end <= period_start:
        raise SchedulingError("bad_period", "The period must end after it starts.")
    if closes_at <= max(opens_at, now):
        raise SchedulingError("bad_close", "The window must close in the future, after it opens.")
    if closes_at > period_start:
        raise SchedulingError("bad_close", "The window must close before the period it allocates begins.")
    seed = lottery.new_seed()
    with write_transaction():
        if _pg():  # serialise openings per machine (SQLite's BEGIN IMMEDIATE already does)
            db.session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _OPEN_LOCK + machine.id})
        clash = db.session.scalar(select(RequestWindow).where(
            RequestWindow.machine_id == machine.id, RequestWindow.status != WindowStatus.CANCELLED.value,
            RequestWindow.period_end > period_start, RequestWindow.period_start < period_end))
        if clash is not None:
            raise SchedulingError("window_exists", "A request window for this machine already covers part of "
                                  "that period.", 409)
        window = RequestWindow(machine_id=machine.id, mode=mode, period_start=period_start, period_end=period_end,
                               opens_at=opens_at, closes_at=closes_at, status=WindowStatus.OPEN.value,
                               commitment=lottery.commitment(seed), secret_seed=seed.hex(),
                               created_by_id=actor.id if actor else None, created_at=now)
        db.session.add(window)
        db.session.flush()
    return window


def cancel_window(window: RequestWindow, now: datetime | None = None) -> None:
    now = now or utcnow()
    with write_transaction():
        w = _lock_window(window.id)
        if w.status != WindowStatus.OPEN:
            raise SchedulingError("window_closed", "Only an open window can be cancelled.", 409)
        w.status = WindowStatus.CANCELLED.value
        w.closed_at = now
        for r in w.requests:
            if r.status == RequestStatus.PENDING:
                r.status = RequestStatus.WITHDRAWN.value
                r.message = "the window was cancelled"
                r.decided_at = now


def get_window(window_id: int) -> RequestWindow | None:
    return db.session.get(RequestWindow, window_id)


def windows_of(machine: Machine, limit: int = 20) -> list[RequestWindow]:
    return list(db.session.scalars(select(RequestWindow).where(RequestWindow.machine_id == machine.id)
                                   .order_by(RequestWindow.period_start.desc()).limit(limit)))


def open_windows(machine: Machine | None = None) -> list[RequestWindow]:
    stmt = select(RequestWindow).where(RequestWindow.status == WindowStatus.OPEN.value)
    if machine is not None:
        stmt = stmt.where(RequestWindow.machine_id == machine.id)
    return list(db.session.scalars(stmt.order_by(RequestWindow.closes_at)))


def accepting(window: RequestWindow, now: datetime) -> bool:
    return window.status == WindowStatus.OPEN and window.opens_at <= now < window.closes_at


@dataclass(frozen=True)
class Slot:
    start: datetime
    end: datetime
    demand: int = 0  # pending requests of all members for exactly this slot (anonymous count)
    my_rank: int | None = None  # the viewer's rank, if they requested it

    @property
    def key(self) -> str:
        return f"{self.start.isoformat()}/{self.end.isoformat()}"


def window_slots(window: RequestWindow, viewer: Member | None = None) -> list[Slot]:
    """The slots members rank on the window page: the opening hours of the period cut into pieces of
    the machine's request length, a buffer apart."""
    machine = window.machine
    policy = booking_service.policy_for(machine)
    s = settings_for(machine)
    length = timedelta(minutes=max(policy.min_minutes, min(policy.max_minutes, s.request_minutes)))
    length = max(policy.slot, length // policy.slot * policy.slot)
    step = length + policy.buffer
    demand: dict[tuple[datetime, datetime], int] = {}
    mine: dict[tuple[datetime, datetime], int] = {}
    for r in window.requests:
        if r.status in (RequestStatus.WITHDRAWN,):
            continue
        demand[(r.start_at, r.end_at)] = demand.get((r.start_at, r.end_at), 0) + 1
        if viewer is not None and r.member_id == viewer.id:
            mine[(r.start_at, r.end_at)] = r.rank
    out = []
    for a, b in pol.opening_pairs(policy, window.period_start, window.period_end, _tz()):
        start = pol.ceil_to_slot(policy, a, _tz())
        while start + length <= b:
            k = (start, start + length)
            out.append(Slot(start, start + length, demand.get(k, 0), mine.get(k)))
            start += step
    return out


# --- participant labels ------------------------------------------------------------------------------------

LABEL_ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"  # no 0/o, 1/l/i: read aloud or typed from a screen
LABEL_LENGTH = 8  # 31^8 ≈ 8.5e11: a collision in one window is rare, and retried


def new_label(taken: set[str]) -> str:
    """A fresh random label not in `taken` (and added to it)."""
    while True:
        label = "".join(secrets.choice(LABEL_ALPHABET) for _ in range(LABEL_LENGTH))
        if label not in taken:
            taken.add(label)
            return label


def participant_labels(window: RequestWindow, member_ids: Iterable[int], now: datetime | None = None) -> dict[int, str]:
    """The labels of `member_ids` in the window's draw, drawing (and storing) one for whoever has none.
    Call inside the write transaction that holds the window's lock, so two entries cannot race."""
    rows = {p.member_id: p for p in db.session.scalars(select(WindowParticipant).where(
        WindowParticipant.window_id == window.id))}
    taken = {p.label for p in rows.values()}
    out = {}
    for mid in dict.fromkeys(member_ids):
        if mid not in rows:
            rows[mid] = WindowParticipant(window_id=window.id, member_id=mid, label=new_label(taken),
                                          created_at=now or utcnow())
            db.session.add(rows[mid])
        out[mid] = rows[mid].label
    db.session.flush()
    return out


def label_of(window: RequestWindow, member: Member) -> str | None:
    """The member's own label in the window (None until they requested something)."""
    return db.session.scalar(select(WindowParticipant.label).where(WindowParticipant.window_id == window.id,
                                                                   WindowParticipant.member_id == member.id))


# --- requests --------------------------------------------------------------------------------------------


def _request_problems(member: Member, machine: Machine, window: RequestWindow, start: datetime, end: datetime,
                      now: datetime) -> list[str]:
    if not (window.period_start <= start and end <= window.period_end):
        return ["The time must lie inside the window's period."]
    policy = booking_service.policy_for(machine)
    mb = booking_service.load_machine_bookings(machine, start, end, now)
    violations = rules.check_booking(
        policy, rules.BookingRequest(machine.id, member.id, start, end), [],
        booking_service.member_context(member, machine, now), now, _tz(), blocks=mb.blocks,
        machine_out_of_order=machine.status != "available")
    return [v.message for v in violations if v.code not in _REQUEST_IGNORED]


def _lock_window(window_id: int) -> RequestWindow:
    stmt = select(RequestWindow).where(RequestWindow.id == window_id)
    if _pg():
        stmt = stmt.with_for_update(of=RequestWindow)
    w = db.session.scalar(stmt.execution_options(populate_existing=True))
    if w is None:
        raise SchedulingError("not_found", "No such request window.", 404)
    return w


def _check_accepting(w: RequestWindow, now: datetime) -> None:
    if w.status != WindowStatus.OPEN or now >= w.closes_at:
        raise SchedulingError("window_closed", "This request window is closed.", 409)
    if now < w.opens_at:
        raise SchedulingError("window_not_open", "This request window is not open yet.", 409)


def add_request(member: Member, window: RequestWindow, start: datetime, end: datetime, rank: int = 1,
                now: datetime | None = None) -> SlotRequest:
    """Add one ranked request (1 = most wanted) to an open window."""
    now = now or utcnow()
    if rank < 1 or rank > 99:
        raise SchedulingError("bad_rank", "Rank must be 1 (most wanted) to 99.")
    problems = _request_problems(member, window.machine, window, start, end, now)
    if problems:
        raise SchedulingError("rule", " ".join(problems))
    with write_transaction():
        w = _lock_window(window.id)
        _check_accepting(w, now)
        dup = db.session.scalar(select(SlotRequest).where(
            SlotRequest.window_id == w.id, SlotRequest.member_id == member.id, SlotRequest.start_at == start,
            SlotRequest.end_at == end))
        if dup is not None and dup.status == RequestStatus.PENDING:
            raise SchedulingError("duplicate", "You already requested this time.", 409)
        if dup is not None:
            db.session.delete(dup)
            db.session.flush()
        req = SlotRequest(window_id=w.id, member_id=member.id, machine_id=w.machine_id, start_at=start, end_at=end,
                          rank=rank, status=RequestStatus.PENDING.value, created_at=now)
        db.session.add(req)
        participant_labels(w, [member.id], now)
    return req


def set_requests(member: Member, window: RequestWindow, wishes: Sequence[tuple[datetime, datetime, int]],
                 now: datetime | None = None) -> list[SlotRequest]:
    """Replace the member's pending requests in the window by `wishes` (start, end, rank)."""
    now = now or utcnow()
    seen = set()
    for start, end, rank in wishes:
        if (start, end) in seen:
            raise SchedulingError("duplicate", "Each slot can be ranked once.")
        seen.add((start, end))
        if rank < 1 or rank > 99:
            raise SchedulingError("bad_rank", "Rank must be 1 (most wanted) to 99.")
        problems = _request_problems(member, window.machine, window, start, end, now)
        if problems:
            raise SchedulingError("rule", f"{start.astimezone(_tz()):%a %d %b %H:%M}: " + " ".join(problems))
    with write_transaction():
        w = _lock_window(window.id)
        _check_accepting(w, now)
        for r in list(w.requests):
            if r.member_id == member.id:
                w.requests.remove(r)
        db.session.flush()
        out = []
        for start, end, rank in wishes:
            req = SlotRequest(window_id=w.id, member_id=member.id, machine_id=w.machine_id, start_at=start,
                              end_at=end, rank=rank, status=RequestStatus.PENDING.value, created_at=now)
            w.requests.append(req)
            out.append(req)
        if wishes:
            participant_labels(w, [member.id], now)
        db.session.flush()
    return out


def withdraw_request(member: Member, request_id: int, now: datetime | None = None) -> None:
    now = now or utcnow()
    req = db.session.get(SlotRequest, request_id)
    if req is None or req.member_id != member.id:
        raise SchedulingError("not_found", "No such request of yours.", 404)
    with write_transaction():
        w = _lock_window(req.window_id)
        _check_accepting(w, now)
        req = db.session.get(SlotRequest, request_id)
        if req is not None:
            db.session.delete(req)


def member_requests(member: Member, window: RequestWindow | None = None) -> list[SlotRequest]:
    stmt = select(SlotRequest).where(SlotRequest.member_id == member.id)
    if window is not None:
        stmt = stmt.where(SlotRequest.window_id == window.id)
    return list(db.session.scalars(stmt.order_by(SlotRequest.window_id.desc(), SlotRequest.rank,
                                                 SlotRequest.start_at)))


# --- the direct-booking guard (registered with bookings in fablab/wiring.py) --------------------------------


def direct_booking_block(machine: Machine, start: datetime, end: datetime, now: datetime | None = None) -> str | None:
    """Why a direct (first-come) booking of [start, end) must wait for a window, or None.
    Window mode: the period of an open window is allocated at its close. Hybrid mode: only time that a
    pending request in an open window asks for is (it is contested, or may become so)."""
    if mode_of(machine) == "open":
        return None  # the common case, decided without a query: this runs on every booking
    now = now or utcnow()
    for w in open_windows(machine):
        if not (w.period_start < end and start < w.period_end):
            continue
        when = w.closes_at.astimezone(_tz())
        if w.mode == "window":
            return (f"{machine.name} shares this week's time through a request window closing {when:%a %d %b %H:%M}; "
                    "add a request there instead.")
        if any(r.status == RequestStatus.PENDING and r.start_at < end and start < r.end_at for r in w.requests):
            return (f"Members asked for this time in the request window closing {when:%a %d %b %H:%M}; "
                    "add your request there and the fair draw decides.")
    return None


# --- timed work (fablab/worker/jobs.py; pages catch up through fablab/services/catch_up.py) ---------------

def auto_open_windows(now: datetime) -> int:
    """Open the next weekly window of every machine that opens them automatically, once its opening time
    came; returns how many were opened. Idempotent: a window already covering the period is kept."""
    opened = 0
    for s in db.session.scalars(select(SchedulingSettings).where(SchedulingSettings.auto_open.is_(True))).all():
        machine = s.machine
        if mode_of(machine) not in WINDOW_MODES:
            continue
        t = upcoming_window_times(machine, now)
        if now < t.opens_at:
            continue
        exists = db.session.scalar(select(RequestWindow.id).where(
            RequestWindow.machine_id == machine.id, RequestWindow.period_end > t.period_start,
            RequestWindow.period_start < t.period_end).limit(1))
        if exists is None:
            try:
                open_window(machine, None, now, period_start=t.period_start, period_end=t.period_end,
                            opens_at=t.opens_at, closes_at=t.closes_at)
                opened += 1
            except SchedulingError as exc:
                if exc.code != "window_exists":
                    raise
    return opened
