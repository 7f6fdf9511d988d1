"""Bookings: load what the rules need, call the pure rules, write atomically, tell why on refusal.

No two active bookings of a machine overlap: every write runs in `write_transaction()` (SQLite:
BEGIN IMMEDIATE, checks inside the lock) and PostgreSQL's exclusion constraint catches the race the
checks cannot see; a member's row is locked so concurrent requests cannot together break a quota.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, tzinfo
from functools import lru_cache

from flask import current_app
from sqlalchemy import and_, func, or_, select, text, update
from sqlalchemy.exc import IntegrityError, OperationalError

from .. import metrics
from ..database import write_transaction
from ..domain import booking_rules as rules
from ..domain import policy as pol
from ..domain import policy_impact
from ..domain.account_standing import account_state
from ..domain.availability import free_intervals, longest_bookable_from, next_free_slot
from ..domain.intervals import Interval
from ..extensions import db
from ..models import ACTIVE_STATUSES, Booking, BookingKind, BookingStatus, Machine, Member
from ..models.types import utcnow
from . import audit, event_data, lab_events
from . import machines as machine_service


class BookingRejected(Exception):
    """The rules (or a concurrent booking) refused the request; `violations[0]` is the main reason."""

    def __init__(self, violations: Sequence[rules.RuleViolation], suggestion: Interval | None = None) -> None:
        super().__init__(violations[0].message if violations else "rejected")
        self.violations = list(violations)
        self.suggestion = suggestion

    @property
    def status(self) -> int:
        return rules.http_status(self.violations)

    @property
    def code(self) -> str:
        return self.violations[0].code

    @property
    def message(self) -> str:
        return " ".join(v.message for v in self.violations)


class NotAllowed(Exception):
    """The person may not do this to this booking (not theirs, not staff)."""


def lab_tz() -> tzinfo:
    tz: tzinfo = current_app.config["TZ"]
    return tz


def policy_for(machine: Machine) -> pol.BookingPolicy:
    type_slug = machine.machine_type.slug if machine.machine_type.slug in pol.MACHINE_TYPES else "other"
    return _parse_policy(type_slug, json.dumps(machine.policy, sort_keys=True) if machine.policy else "")


@lru_cache(maxsize=256)
def _parse_policy(type_slug: str, raw: str) -> pol.BookingPolicy:
    # Policies are immutable values: parse and validate each distinct one once per process.
    base = pol.defaults_for(type_slug)
    return pol.BookingPolicy.from_dict(json.loads(raw), base=base) if raw else base


def member_context(member: Member, machine: Machine, now: datetime) -> rules.MemberContext:
    state = machine_service.qualification_state(member, machine, now)
    if state.qualified:
        qual = rules.Qualification("valid", state.expires_at)
    elif state.expired_at is not None:
        qual = rules.Qualification("expired", state.expired_at)
    else:
        qual = rules.Qualification("none")
    account = account_state(member.email_verified_at is not None, member.approved)
    return rules.MemberContext.for_staff(member.id, member.role, qual, account=account)


def _as_rule(b: Booking) -> rules.ExistingBooking:
    return rules.ExistingBooking(b.id, b.machine_id, b.member_id, b.start_at, b.end_at, b.status, b.checked_in_at)


@dataclass
class MachineBookings:
    """A machine's bookings around a period, split the way the rules want them."""

    existing: list[rules.ExistingBooking]
    blocks: list[Interval]


_BOOKING_COLUMNS = (Booking.id, Booking.machine_id, Booking.member_id, Booking.start_at, Booking.end_at,
                    Booking.status, Booking.checked_in_at, Booking.kind)


def load_machine_bookings(machine: Machine, lo: datetime, hi: datetime, now: datetime,
                          member_id: int | None = None,
                          near: tuple[datetime, datetime] | None = None) -> MachineBookings:
    """Bookings of `machine` touching [lo, hi). With `member_id`: the member's own there and all of theirs
    not yet ended (quotas), and everyone else's only within `near` (conflicts need neighbours only).
    Plain columns, not ORM objects: this runs inside every booking write."""
    touching = and_(Booking.end_at > lo, Booking.start_at < hi)
    if member_id is None:
        scope = touching
    else:
        n_lo, n_hi = near or (lo, hi)
        scope = or_(and_(Booking.end_at > n_lo, Booking.start_at < n_hi),
                    and_(Booking.member_id == member_id, or_(touching, Booking.end_at > now)))
    stmt = select(*_BOOKING_COLUMNS).where(
        Booking.machine_id == machine.id,
        Booking.status.in_([s.value for s in (*ACTIVE_STATUSES, BookingStatus.COMPLETED, BookingStatus.NO_SHOW)]),
        scope,
    ).order_by(Booking.start_at)
    existing, blocks = [], []
    for bid, mid, member, start, end, status, checked_in_at, kind in db.session.execute(stmt):
        if kind == BookingKind.MAINTENANCE:
            if status in ACTIVE_STATUSES:
                blocks.append(Interval(start, end))
        else:
            existing.append(rules.ExistingBooking(bid, mid, member, start, end, status, checked_in_at))
    return MachineBookings(existing, blocks)


def _context_window(start: datetime, end: datetime, policy: pol.BookingPolicy, tz: tzinfo) -> tuple[datetime, datetime]:
    # Quotas look at the whole local week (and day) around the request; conflicts at the buffer around it.
    wk_lo, _ = pol.local_week_bounds(start, tz)
    _, wk_hi = pol.local_week_bounds(end, tz)
    return min(wk_lo, start - policy.buffer), max(wk_hi, end + policy.buffer)


def _lock_member(member: Member) -> None:
    """Serialise one member's booking writes on PostgreSQL (quotas); SQLite already holds the write lock."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(select(Member.id).where(Member.id == member.id).with_for_update())


MACHINE_LOCK_CLASS = 7001  # first key of our PostgreSQL advisory locks on a machine's bookings


def _lock_machine_if_buffered(machine: Machine, policy: pol.BookingPolicy) -> None:
    """The exclusion constraint stops overlaps, not buffers: on PostgreSQL, writes to a machine with a
    buffer between bookings are serialised (for the transaction) so the buffer check sees every booking."""
    if policy.buffer_minutes and db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(text("SELECT pg_advisory_xact_lock(:cls, :machine)"),
                           {"cls": MACHINE_LOCK_CLASS, "machine": machine.id})


def _record_released(machine: Machine, lo: datetime, hi: datetime, policy: pol.BookingPolicy, now: datetime) -> None:
    """Time-based state is read, not waited for: a confirmed booking whose check-in grace passed is
    released, and recorded as a no-show here so the exclusion constraint lets the time be rebooked."""
    stale = (Booking.machine_id == machine.id, Booking.status == BookingStatus.CONFIRMED,
             Booking.kind == BookingKind.NORMAL, Booking.checked_in_at.is_(None),
             Booking.start_at < now - policy.checkin_grace, Booking.end_at > lo, Booking.start_at < hi)
    # Told before the update, which bumps their sequence (the event says so): the no-show notices and hooks.
    for row in db.session.execute(select(Booking.id, Booking.member_id, Booking.start_at, Booking.end_at,
                                         Booking.sequence).where(*stale)).all():
        lab_events.publish(event_data.released(row, machine, now))
    db.session.execute(
        update(Booking)
        .where(*stale)
        .values(status=BookingStatus.NO_SHOW.value, sequence=Booking.sequence + 1, updated_at=now)
        .execution_options(synchronize_session=False)
    )


def _has_stale(mb: MachineBookings, lo: datetime, hi: datetime, policy: pol.BookingPolicy, now: datetime) -> bool:
    """Is there a confirmed booking in [lo, hi) whose check-in grace passed? (Then it must be recorded as
    released before a new booking may take its time; usually there is none and no write is needed.)"""
    return any(b.status == BookingStatus.CONFIRMED and b.checked_in_at is None and b.end > lo and b.start < hi
               and b.start < now - policy.checkin_grace for b in mb.existing)


def _overlap_violation(machine: Machine, start: datetime, end: datetime) -> rules.RuleViolation:
    return rules.RuleViolation(
        "overlap", f"{machine.name} was just booked by someone else for part of that time.",
        {"start": start.isoformat(), "end": end.isoformat()})


def _is_conflict_error(exc: Exception) -> bool:
    text = str(getattr(exc, "orig", exc))
    return "ex_bookings_no_overlap" in text or "exclusion" in text.lower()


SUGGEST_WITHIN = timedelta(days=14)
PLAN_AHEAD_DAYS = 366  # how far staff may plan the lab's own time (series of courses)


def suggest_next(machine: Machine, after: datetime, length: timedelta, now: datetime) -> Interval | None:
    """The next free slot of about `length` from `after`, looking two weeks ahead at most."""
    policy = policy_for(machine)
    tz = lab_tz()
    length = min(max(length, policy.min_length), policy.max_length)
    after = max(after, now)
    until = min(pol.horizon_end(policy, now, tz), after + SUGGEST_WITHIN)
    mb = load_machine_bookings(machine, after - policy.buffer, until + policy.buffer, now)
    limited = replace(policy, horizon_days=min(policy.horizon_days, (until - now).days + 1))
    return next_free_slot(limited, mb.existing, mb.blocks, after, length, now, tz)


BookingGuard = Callable[[Machine, datetime, datetime, datetime], str | None]
_guards: list[BookingGuard] = []


def register_guard(guard: BookingGuard) -> BookingGuard:
    """A feature that reserves time another way (request windows) refuses direct bookings through this
    (registered in fablab/wiring.py; registering the same guard again keeps one)."""
    if guard not in _guards:
        _guards.append(guard)
    return guard


GUARDED_SOURCES_EXEMPT = ("window", "waitlist")


def guard_reason(machine: Machine, start: datetime, end: datetime, now: datetime) -> str | None:
    """Why a direct booking of [start, end) is refused by a registered guard (request windows), or None:
    what create_booking asks before anything else, for pages that look ahead (find a time, series)."""
    for guard in _guards:
        why = guard(machine, start, end, now)
        if why:
            return why
    return None


def create_booking(member: Member, machine: Machine, start: datetime, end: datetime, *, source: str = "web",
                   kind: BookingKind = BookingKind.NORMAL, note: str = "", now: datetime | None = None,
                   series_id: int | None = None, plan_ahead: bool = False) -> Booking:
    """Book [start, end) of `machine` for `member`, or raise BookingRejected with every reason.
    `plan_ahead`: staff planning the lab's own time (a course series) may go past the booking horizon."""
    now = now or utcnow()
    tz = lab_tz()
    policy = policy_for(machine)
    if plan_ahead:
        policy = replace(policy, horizon_days=PLAN_AHEAD_DAYS)
    if source not in GUARDED_SOURCES_EXEMPT and kind == BookingKind.NORMAL:
        for guard in _guards:
            why = guard(machine, start, end, now)
            if why:
                metrics.booking_refused("request_window")
                raise BookingRejected([rules.RuleViolation("request_window", why, {})])
    try:
        with write_transaction():
            _lock_member(member)
            _lock_machine_if_buffered(machine, policy)
            lo, hi = _context_window(start, end, policy, tz)
            near = (start - policy.buffer, end + policy.buffer)
            mb = load_machine_bookings(machine, lo, hi, now, member_id=member.id, near=near)
            if _has_stale(mb, start - policy.buffer, end + policy.buffer, policy, now):
                _record_released(machine, start - policy.buffer, end + policy.buffer, policy, now)
            violations = rules.check_booking(
                policy, rules.BookingRequest(machine.id, member.id, start, end), mb.existing,
                member_context(member, machine, now), now, tz, blocks=mb.blocks,
                machine_out_of_order=machine.status != "available")
            if violations:
                raise BookingRejected(violations)
            booking = Booking(machine_id=machine.id, member_id=member.id, start_at=start, end_at=end,
                              booked_end_at=end, status=BookingStatus.CONFIRMED.value, kind=kind.value,
                              source=source, note=note, created_at=now, updated_at=now, series_id=series_id)
            if start <= now:
                # Booking the slot that is already running means using it now: checked in at once,
                # or its check-in grace (counted from the slot's start) could release it immediately.
                booking.status = BookingStatus.CHECKED_IN.value
                booking.checked_in_at = now
            db.session.add(booking)
            db.session.flush()
            lab_events.publish(event_data.booking("booking.created", booking, now, actor_id=member.id,
                                                  series_id=series_id))
            if booking.checked_in_at is not None:
                lab_events.publish(event_data.booking("booking.checked_in", booking, now, actor_id=member.id,
                                                      series_id=series_id))
    except IntegrityError as exc:
        if not _is_conflict_error(exc):
            raise
        metrics.booking_refused("overlap")
        raise BookingRejected([_overlap_violation(machine, start, end)],
                              suggest_next(machine, start, end - start, now)) from None
    except OperationalError as exc:  # PostgreSQL serialisation failures surface here
        if "could not serialize" not in str(exc) and "deadlock" not in str(exc):
            raise
        metrics.booking_refused("overlap")
        raise BookingRejected([_overlap_violation(machine, start, end)]) from None
    except BookingRejected as exc:
        metrics.booking_refused(exc.code)
        if exc.code in ("overlap", "buffer") and exc.suggestion is None:
            exc.suggestion = suggest_next(machine, start, end - start, now)
        raise
    return booking


def check_only(member: Member, machine: Machine, start: datetime, end: datetime,
               now: datetime | None = None) -> list[rules.RuleViolation]:
    """What create_booking would say, without writing anything (to explain a refusal)."""
    now = now or utcnow()
    tz = lab_tz()
    policy = policy_for(machine)
    lo, hi = _context_window(start, end, policy, tz)
    mb = load_machine_bookings(machine, lo, hi, now, member_id=member.id,
                               near=(start - policy.buffer, end + policy.buffer))
    return rules.check_booking(policy, rules.BookingRequest(machine.id, member.id, start, end), mb.existing,
                               member_context(member, machine, now), now, tz, blocks=mb.blocks,
                               machine_out_of_order=machine.status != "available")


def get_booking(booking_id: int) -> Booking | None:
    return db.session.get(Booking, booking_id)


def can_manage(actor: Member, booking: Booking) -> bool:
    return booking.member_id == actor.id or actor.is_staff


def _reload_for_write(booking_id: int) -> Booking:
    stmt = select(Booking).where(Booking.id == booking_id)
    if db.session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(of=Booking)
    found = db.session.scalar(stmt.execution_options(populate_existing=True))
    if found is None:
        raise LookupError(f"booking {booking_id} not found")
    return found


TimeFreedHook = Callable[[Machine, Interval, datetime], None]
_time_freed_hooks: list[TimeFreedHook] = []


def on_time_freed(hook: TimeFreedHook) -> TimeFreedHook:
    """Register a callback run after a commit that gave time back (cancel, shorten, end early), in
    fablab/wiring.py; registering the same callback again keeps one."""
    if hook not in _time_freed_hooks:
        _time_freed_hooks.append(hook)
    return hook


def _time_freed(machine: Machine, start: datetime, end: datetime, now: datetime) -> None:
    if end <= max(start, now):
        return
    for hook in _time_freed_hooks:
        hook(machine, Interval(max(start, now), end), now)


def cancel_booking(booking: Booking, actor: Member, reason: str = "", now: datetime | None = None) -> Booking:
    """Cancel a booking that has not started, or end a running one now. Staff may cancel anyone's,
    with a reason; members only their own."""
    now = now or utcnow()
    if not can_manage(actor, booking):
        raise NotAllowed("Only the member who booked, a steward or an admin can cancel this booking.")
    if booking.member_id != actor.id and not reason.strip():
        raise BookingRejected([rules.RuleViolation("reason_required",
                                                   "Say why you cancel someone else's booking.", {})])
    with write_transaction():
        b = _reload_for_write(booking.id)
        if b.status not in ACTIVE_STATUSES:
            raise BookingRejected([rules.RuleViolation(
                "booking_not_active", f"This booking is already {b.status.replace('_', ' ')}.", {})])
        freed = (max(b.start_at, now), b.end_at)
        if b.start_at < now and b.status == BookingStatus.CHECKED_IN:
            # Running: cancelling means ending now (the used part stays on record).
            # (Never past its own end: a completed booking keeps holding its time, and the next one starts there.)
            b.end_at = min(b.end_at, max(pol.ceil_to_slot(policy_for(b.machine), now, lab_tz()),
                                         b.start_at + timedelta(minutes=1)))
            b.status = BookingStatus.COMPLETED.value
            freed = (b.end_at, freed[1])
        else:
            b.status = BookingStatus.CANCELLED.value
        b.cancelled_at = now
        b.cancelled_by_id = actor.id
        b.cancel_reason = reason.strip()[:255]
        b.sequence += 1
        b.updated_at = now
        audit.booking_cancelled(actor, b, now)
        lab_events.publish(event_data.booking("booking.cancelled", b, now, actor_id=actor.id,
                                              reason=b.cancel_reason))
    _time_freed(b.machine, freed[0], freed[1], now)
    return b


def shorten_booking(booking: Booking, actor: Member, new_end: datetime, now: datetime | None = None) -> Booking:
    now = now or utcnow()
    if not can_manage(actor, booking):
        raise NotAllowed("Only the member who booked, a steward or an admin can change this booking.")
    policy = policy_for(booking.machine)
    with write_transaction():
        b = _reload_for_write(booking.id)
        violations = rules.check_shorten(policy, _as_rule(b), new_end, now, lab_tz())
        if violations:
            raise BookingRejected(violations)
        old_end = b.end_at
        b.end_at = new_end
        b.sequence += 1
        b.updated_at = now
        lab_events.publish(event_data.booking("booking.changed", b, now, actor_id=actor.id))
    _time_freed(b.machine, new_end, old_end, now)
    return b


def end_early(booking: Booking, actor: Member, now: datetime | None = None) -> Booking:
    """Finish a running booking now (rounded up to the slot), freeing the rest for others."""
    now = now or utcnow()
    if not can_manage(actor, booking):
        raise NotAllowed("Only the member who booked, a steward or an admin can end this booking.")
    policy = policy_for(booking.machine)
    new_end = pol.ceil_to_slot(policy, now, lab_tz())
    with write_transaction():
        b = _reload_for_write(booking.id)
        if b.status not in ACTIVE_STATUSES or b.start_at > now:
            raise BookingRejected([rules.RuleViolation(
                "booking_not_active", "Only a running booking can be ended early; cancel an upcoming one.", {})])
        old_end = b.end_at
        if new_end < old_end:
            b.end_at = max(new_end, b.start_at + timedelta(minutes=1))
        b.status = BookingStatus.COMPLETED.value
        b.sequence += 1
        b.updated_at = now
        if b.end_at != old_end:
            lab_events.publish(event_data.booking("booking.changed", b, now, actor_id=actor.id))
    _time_freed(b.machine, b.end_at, old_end, now)
    return b


def extend_booking(booking: Booking, actor: Member, new_end: datetime, now: datetime | None = None) -> Booking:
    now = now or utcnow()
    if not can_manage(actor, booking):
        raise NotAllowed("Only the member who booked can extend this booking.")
    machine = booking.machine
    policy = policy_for(machine)
    tz = lab_tz()
    member = db.session.get(Member, booking.member_id)
    assert member is not None
    try:
        with write_transaction():
            _lock_member(member)
            _lock_machine_if_buffered(machine, policy)
            b = _reload_for_write(booking.id)
            lo, hi = _context_window(b.start_at, new_end, policy, tz)
            _record_released(machine, b.end_at, new_end + policy.buffer, policy, now)
            mb = load_machine_bookings(machine, lo, hi, now, member_id=member.id,
                                       near=(b.start_at - policy.buffer, new_end + policy.buffer))
            violations = rules.check_extension(policy, _as_rule(b), new_end, mb.existing,
                                               member_context(member, machine, now), now, tz, blocks=mb.blocks,
                                               machine_out_of_order=machine.status != "available")
            if violations:
                raise BookingRejected(violations)
            b.end_at = new_end
            b.booked_end_at = max(b.booked_end_at or new_end, new_end)
            b.sequence += 1
            b.updated_at = now
            lab_events.publish(event_data.booking("booking.changed", b, now, actor_id=actor.id))
    except IntegrityError as exc:
        if not _is_conflict_error(exc):
            raise
        raise BookingRejected([_overlap_violation(machine, booking.end_at, new_end)]) from None
    return b


def check_in(booking: Booking, actor: Member | None, now: datetime | None = None, source: str = "web") -> Booking:
    """Check in from 15 min before the start until the grace ends; a released booking never comes back."""
    now = now or utcnow()
    if actor is not None and not can_manage(actor, booking):
        raise NotAllowed("Only the member who booked can check in.")
    policy = policy_for(booking.machine)
    with write_transaction():
        b = _reload_for_write(booking.id)
        if b.status == BookingStatus.CHECKED_IN:
            return b
        if not rules.may_check_in(_as_rule(b), policy, now):
            if now < b.start_at - rules.CHECKIN_EARLY:
                msg = (f"Check-in opens {int(rules.CHECKIN_EARLY.total_seconds() // 60)} minutes before the start, "
                       f"at {(b.start_at - rules.CHECKIN_EARLY).astimezone(lab_tz()):%H:%M}.")
            else:
                msg = (f"Check-in closed {policy.checkin_grace_minutes} minutes after the start; "
                       "the booking was released for others.")
            raise BookingRejected([rules.RuleViolation("checkin_closed", msg, {})])
        b.status = BookingStatus.CHECKED_IN.value
        b.checked_in_at = now
        b.sequence += 1
        b.updated_at = now
        lab_events.publish(event_data.booking("booking.checked_in", b, now,
                                              actor_id=actor.id if actor is not None else None))
    return b


def create_block(machine: Machine, actor: Member, start: datetime, end: datetime, reason: str,
                 now: datetime | None = None, *, series_id: int | None = None,
                 refuse_if_booked: bool = False) -> tuple[Booking, list[Booking]]:
    """Take the machine out of booking for [start, end); overlapping member bookings are cancelled
    with the reason (in the same transaction, so no booking slips in between). `refuse_if_booked`:
    refuse instead (a series that must not displace anyone)."""
    now = now or utcnow()
    if not actor.is_staff:
        raise NotAllowed("Only stewards and admins can block a machine for maintenance.")
    if end <= start:
        raise BookingRejected([rules.RuleViolation("end_before_start", "The block must end after it starts.", {})])
    with write_transaction():
        finished = db.session.scalar(select(func.max(Booking.end_at)).where(
            Booking.machine_id == machine.id, Booking.status == BookingStatus.COMPLETED.value,
            Booking.end_at > start, Booking.start_at < end))
        if finished is not None:
            # Time already used stays on record; a block may cover what is still to come.
            raise BookingRejected([rules.RuleViolation(
                "overlaps_finished_use", "The block would cover a booking that has already been used; "
                f"start it at {finished.astimezone(lab_tz()):%H:%M on %d %b} or later.",
                {"start": finished.isoformat()})])
        clashing = list(db.session.scalars(select(Booking).where(
            Booking.machine_id == machine.id, Booking.status.in_([s.value for s in ACTIVE_STATUSES]),
            Booking.end_at > start, Booking.start_at < end)))
        if clashing and refuse_if_booked:
            first = min(clashing, key=lambda b: b.start_at)
            raise BookingRejected([rules.RuleViolation(
                "booked", f"{machine.name} is booked {first.start_at.astimezone(lab_tz()):%a %d %b %H:%M}–"
                f"{first.end_at.astimezone(lab_tz()):%H:%M} in that time.", {"booking_id": first.id})])
        for b in clashing:
            b.status = BookingStatus.CANCELLED.value
            b.cancelled_at = now
            b.cancelled_by_id = actor.id
            b.cancel_reason = f"Maintenance: {reason}"[:255]
            b.sequence += 1
            audit.booking_cancelled(actor, b, now)
            lab_events.publish(event_data.booking("booking.cancelled", b, now, actor_id=actor.id,
                                                  reason=b.cancel_reason))
        db.session.flush()
        block = Booking(machine_id=machine.id, member_id=actor.id, start_at=start, end_at=end, booked_end_at=end,
                        status=BookingStatus.CONFIRMED.value, kind=BookingKind.MAINTENANCE.value, note=reason,
                        source="web", created_at=now, updated_at=now, series_id=series_id)
        db.session.add(block)
    return block, clashing


# --- reading -------------------------------------------------------------------------------------------


def availability(machine: Machine, start: datetime, end: datetime, now: datetime | None = None) -> list[Interval]:
    now = now or utcnow()
    policy = policy_for(machine)
    mb = load_machine_bookings(machine, start - policy.buffer, end + policy.buffer, now)
    if machine.status != "available":
        return []
    return free_intervals(policy, mb.existing, mb.blocks, start, end, now, lab_tz())


def next_free(machine: Machine, now: datetime | None = None) -> Interval | None:
    now = now or utcnow()
    if machine.status != "available":
        return None
    return suggest_next(machine, now, policy_for(machine).min_length, now)


def longest_now(machine: Machine, member: Member | None, now: datetime | None = None) -> tuple[datetime, timedelta]:
    """For "book now": the current slot's start and how long a booking from there may run."""
    now = now or utcnow()
    start = pol.current_slot_start(policy_for(machine), now, lab_tz())
    return start, longest_from(machine, member, start, now)


def longest_from(machine: Machine, member: Member | None, start: datetime, now: datetime | None = None) -> timedelta:
    """How long a booking of `member` starting at `start` may run: free time, max length, qualification
    and quotas (so a form offers only lengths the rules then accept). 0 if none can start there."""
    now = now or utcnow()
    policy = policy_for(machine)
    tz = lab_tz()
    if machine.status != "available":
        return timedelta(0)
    lo, hi = _context_window(start, start + policy.max_length, policy, tz)
    reach = (start - policy.buffer, start + policy.max_length + policy.slot + policy.buffer)
    mb = load_machine_bookings(machine, lo, hi, now, member_id=member.id if member is not None else None,
                               near=reach)
    ctx = member_context(member, machine, now) if member is not None else None
    return longest_bookable_from(policy, mb.existing, mb.blocks, start, now, tz, member=ctx)


def bookings_between(machine: Machine, start: datetime, end: datetime) -> list[Booking]:
    """Active and finished bookings of a machine in a period (the calendar shows them)."""
    return list(db.session.scalars(select(Booking).where(
        Booking.machine_id == machine.id,
        Booking.status.in_([s.value for s in (*ACTIVE_STATUSES, BookingStatus.COMPLETED)]),
        Booking.end_at > start, Booking.start_at < end).order_by(Booking.start_at)))


def effective_status(booking: Booking, now: datetime | None = None) -> str:
    """The status as the rules see it now (a passed grace means released even before a write)."""
    now = now or utcnow()
    if booking.status == BookingStatus.CONFIRMED and booking.kind == BookingKind.NORMAL:
        if rules.is_effective_no_show(_as_rule(booking), policy_for(booking.machine), now):
            return BookingStatus.NO_SHOW.value
        if booking.end_at <= now:
            return BookingStatus.COMPLETED.value
    if booking.status == BookingStatus.CHECKED_IN and booking.end_at <= now:
        return BookingStatus.COMPLETED.value
    return booking.status


def member_bookings(member: Member, since: datetime | None = None, until: datetime | None = None,
                    machine: Machine | None = None) -> list[Booking]:
    stmt = select(Booking).where(Booking.member_id == member.id)
    if since is not None:
        stmt = stmt.where(Booking.end_at > since)
    if until is not None:
        stmt = stmt.where(Booking.start_at < until)
    if machine is not None:
        stmt = stmt.where(Booking.machine_id == machine.id)
    return list(db.session.scalars(stmt.order_by(Booking.start_at)))


def checkin_window(booking: Booking) -> tuple[datetime, datetime]:
    """When check-in opens and closes for a booking (the page shows the button only in between)."""
    policy = policy_for(booking.machine)
    return booking.start_at - rules.CHECKIN_EARLY, min(booking.start_at + policy.checkin_grace, booking.end_at)


def broken_by_policy(machine: Machine, policy: pol.BookingPolicy,
                     now: datetime | None = None) -> list[tuple[Booking, list[rules.RuleViolation]]]:
    """The machine's upcoming bookings that `policy` would refuse (shown before an admin saves it)."""
    now = now or utcnow()
    tz = lab_tz()
    lo, _ = pol.local_week_bounds(now, tz)
    hi = now + timedelta(days=400)  # beyond any horizon: every booking not yet over
    mb = load_machine_bookings(machine, lo - timedelta(days=1), hi, now)
    members = {m.id: m for m in db.session.scalars(select(Member).where(
        Member.id.in_({b.member_id for b in mb.existing if b.start > now})))}
    contexts: dict[int | str, rules.MemberContext] = {
        mid: member_context(m, machine, now) for mid, m in members.items()}
    broken = policy_impact.broken_by(policy, mb.existing, contexts, now, tz, blocks=mb.blocks)
    rows = {b.id: b for b in db.session.scalars(select(Booking).where(Booking.id.in_([x.booking.id for x in broken])))}
    return [(rows[x.booking.id], list(x.violations)) for x in broken if x.booking.id in rows]
