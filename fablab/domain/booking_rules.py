"""Whether a booking request is allowed under a machine's policy: pure functions of data and `now`.

Conventions
- All datetimes are aware; naive ones raise ValueError (a caller bug, not a rule violation).
- Intervals are half-open: a booking ending at 10:00 and one starting at 10:00 do not overlap.
- The check functions return ALL violations, in a fixed order (see CODES); an empty list means allowed.
  Exception: `end_before_start` is returned alone (with `machine_unavailable` if that applies), because
  the other rules are meaningless for an empty interval. Report `violations[0]` as the primary one.
  An account that may not book yet (email not confirmed, not approved) gets that reason alone.
- `existing` is the machine's bookings in any status (cancelled ones may be included; they are ignored).
  Pass at least those that end after the start of the local week containing the request, plus all the
  machine's bookings that have not ended yet (needed for the future-bookings quota).
  Bookings for other machines are ignored: quotas are per member per machine.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import Any

from fablab.domain import account_standing
from fablab.domain.intervals import Interval, overlap_seconds, require_aware
from fablab.domain.policy import (
    BookingPolicy,
    ceil_to_slot,
    describe_hours,
    floor_to_slot,
    horizon_end,
    is_aligned,
    local_day_bounds,
    local_week_bounds,
    opening_pairs,
)

# Codes in the order violations are reported. Only `overlap` is a conflict (HTTP 409); all others are
# rule violations (HTTP 422).
CODES = (
    "account_not_verified",  # reported alone: until the account may book, no other rule matters
    "account_not_approved",
    "machine_unavailable",
    "end_before_start",
    "in_the_past",
    "not_aligned",
    "too_short",
    "too_long",
    "beyond_horizon",
    "outside_opening_hours",
    "maintenance",
    "not_qualified",
    "qualification_expired",
    "booking_not_active",  # extension/shortening of a booking that is no longer active
    "quota_day_hours",
    "quota_week_hours",
    "quota_future_bookings",
    "overlap",
    "buffer",
)
CONFLICT_CODES = frozenset({"overlap"})

# Booking statuses (the lifecycle: requested -> confirmed -> checked_in -> completed, or cancelled /
# no_show / released). Confirmed, checked_in and completed bookings hold machine time (as the database
# constraint says: a finished booking keeps the time it used); a "requested" booking is
# a window-mode request that competes for a slot and blocks nothing until it is confirmed.
BLOCKING_STATUSES = frozenset({"confirmed", "checked_in", "completed"})
# Statuses whose booked time counts towards a member's day/week quota. A no-show's reserved time counts
# (it was taken from others); cancelled and released (given back) time does not.
QUOTA_STATUSES = frozenset({"requested", "confirmed", "checked_in", "completed", "no_show"})
# Statuses that count as an open booking for the future-bookings quota (if not yet ended).
OPEN_STATUSES = frozenset({"requested", "confirmed", "checked_in"})

STAFF_ROLES = frozenset({"steward", "admin"})
_ABSURD = timedelta(days=31)  # longer than any policy allows (max_minutes <= 7 days)


@dataclass(frozen=True, slots=True)
class ExistingBooking:
    """A stored booking as the rules see it. `end` is the booked end (set it to the real end when a
    booking is completed early, so quotas count what was held)."""

    id: int | str
    machine_id: int | str
    member_id: int | str
    start: datetime
    end: datetime
    status: str = "confirmed"
    checked_in_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class BookingRequest:
    machine_id: int | str
    member_id: int | str
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class Qualification:
    """A member's qualification for one machine. state: "none" | "valid" | "expired".
    valid: `until` is the expiry (None = never expires); expired: `until` is when it expired."""

    state: str = "none"
    until: datetime | None = None

    def __post_init__(self) -> None:
        if self.state not in ("none", "valid", "expired"):
            raise ValueError(f"qualification state must be none/valid/expired, got {self.state!r}")


@dataclass(frozen=True, slots=True)
class MemberContext:
    member_id: int | str
    role: str = "member"  # "member" | "steward" | "admin"
    qualification: Qualification = field(default_factory=Qualification)
    quota_exempt: bool = False  # set by the service, typically for stewards/admins (see for_staff)
    account: str = "ok"  # fablab/domain/account_standing.py: a self-signed-up account books once confirmed

    @classmethod
    def for_staff(cls, member_id: int | str, role: str, qualification: Qualification,
                  account: str = "ok") -> MemberContext:
        """Context where stewards and admins are exempt from quotas and members are not."""
        return cls(member_id, role, qualification, quota_exempt=role in STAFF_ROLES, account=account)



@dataclass(frozen=True, slots=True)
class RuleViolation:
    code: str
    message: str  # for the member: which rule, and what would be allowed
    allowed: dict[str, Any] = field(default_factory=dict)  # machine-readable limits, JSON-safe

    @property
    def http_status(self) -> int:
        return 409 if self.code in CONFLICT_CODES else 422

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "allowed": self.allowed}


def http_status(violations: Sequence[RuleViolation]) -> int:
    """Status for a rejected request: that of the primary (first) violation; 200 if there is none."""
    return violations[0].http_status if violations else 200


# --- effective state -----------------------------------------------------------------------------------


def is_effectively_active(booking: ExistingBooking, policy: BookingPolicy, now: datetime) -> bool:
    """Does the booking hold machine time at `now`? A confirmed booking not checked in by start + grace is
    released even if no worker has recorded it yet (time-based state must not depend on the worker)."""
    if booking.status in ("checked_in", "completed"):
        return True  # a completed booking holds the time it used (ending early already gave the rest back)
    if booking.status != "confirmed":
        return False
    if booking.checked_in_at is not None:
        return True
    return now <= booking.start + policy.checkin_grace


CHECKIN_EARLY = timedelta(minutes=15)


def may_check_in(booking: ExistingBooking, policy: BookingPolicy, now: datetime) -> bool:
    """Check-in is possible from CHECKIN_EARLY before the start until start + grace. Refuse it later: a
    released booking must never come back (its time may have been booked by someone else)."""
    return (
        booking.status == "confirmed"
        and booking.checked_in_at is None
        and booking.start - CHECKIN_EARLY <= now <= booking.start + policy.checkin_grace
        and now < booking.end
    )


def is_effective_no_show(booking: ExistingBooking, policy: BookingPolicy, now: datetime) -> bool:
    """Confirmed, never checked in, grace passed: what the worker will record as no_show."""
    return (
        booking.status == "confirmed"
        and booking.checked_in_at is None
        and now > booking.start + policy.checkin_grace
    )


def blocking_bookings(
    policy: BookingPolicy, existing: Iterable[ExistingBooking], machine_id: Any, now: datetime
) -> list[ExistingBooking]:
    return [
        b for b in existing
        if b.machine_id == machine_id and b.status in BLOCKING_STATUSES
        and is_effectively_active(b, policy, now)
    ]


# --- the checks ----------------------------------------------------------------------------------------


def check_booking(
    policy: BookingPolicy,
    request: BookingRequest,
    existing: Sequence[ExistingBooking],
    member: MemberContext,
    now: datetime,
    tz: tzinfo,
    *,
    blocks: Sequence[Interval] = (),
    machine_out_of_order: bool = False,
) -> list[RuleViolation]:
    """All rule violations of a new booking request (empty = allowed). `blocks` are the machine's
    maintenance blocks; `machine_out_of_order` is true when the machine's status takes it out of service.
    The earliest allowed start is the start of the slot containing `now` (so "book now" works)."""
    start = require_aware("request.start", request.start)
    end = require_aware("request.end", request.end)
    require_aware("now", now)
    if member.account != "ok":
        return _account(member)
    out: list[RuleViolation] = []
    if machine_out_of_order:
        out.append(RuleViolation(
            "machine_unavailable", "This machine is out of order and cannot be booked until it is repaired.",
            {},
        ))
    if end <= start:
        out.append(_end_before_start(start, end, tz))
        return out
    earliest = floor_to_slot(policy, now, tz)
    if start < earliest:
        out.append(RuleViolation(
            "in_the_past",
            f"Bookings cannot start in the past; the earliest start now is {_local(earliest, tz)}.",
            {"earliest_start": earliest.isoformat()},
        ))
    out += _alignment(policy, start, end, tz)
    out += _length(policy, start, end)
    if end - start > _ABSURD:  # already too_long; spare the per-day work for absurd requests
        return out
    out += _horizon(policy, end, now, tz)
    out += _opening(policy, start, end, tz)
    out += _maintenance(blocks, start, end, tz)
    out += _qualification(policy, member, start, tz)
    mine = [b for b in existing if b.machine_id == request.machine_id and b.member_id == member.member_id]
    if not member.quota_exempt:
        out += _quotas(policy, mine, start, end, now, tz, new_booking=True)
    others = blocking_bookings(policy, existing, request.machine_id, now)
    out += _conflicts(policy, others, start, end, tz)
    return out


def check_extension(
    policy: BookingPolicy,
    booking: ExistingBooking,
    new_end: datetime,
    existing: Sequence[ExistingBooking],
    member: MemberContext,
    now: datetime,
    tz: tzinfo,
    *,
    blocks: Sequence[Interval] = (),
    machine_out_of_order: bool = False,
) -> list[RuleViolation]:
    """Violations of moving an active booking's end later to `new_end`. The booked part is already
    allowed; the rules apply to the added time [booking.end, new_end) and the total length/quotas."""
    require_aware("new_end", new_end)
    require_aware("now", now)
    if member.account != "ok":
        return _account(member)
    out: list[RuleViolation] = []
    if machine_out_of_order:
        out.append(RuleViolation(
            "machine_unavailable", "This machine is out of order; the booking cannot be extended.", {},
        ))
    if new_end <= booking.end:
        out.append(RuleViolation(
            "end_before_start",
            f"An extension must end after the current end {_local(booking.end, tz)}; "
            f"you asked for {_local(new_end, tz)}.",
            {"min_end": booking.end.isoformat()},
        ))
        return out
    if booking.end <= now or not is_effectively_active(booking, policy, now):
        out.append(_not_active(booking, "extended"))
        return out
    added = (booking.end, new_end)
    out += _alignment(policy, None, new_end, tz)
    out += _length(policy, booking.start, new_end)
    out += _horizon(policy, new_end, now, tz)
    out += _opening(policy, *added, tz)
    out += _maintenance(blocks, *added, tz)
    out += _qualification(policy, member, booking.end, tz)
    rest = [b for b in existing if b.id != booking.id]
    if not member.quota_exempt:
        mine = [b for b in rest if b.machine_id == booking.machine_id and b.member_id == member.member_id]
        out += _quotas(policy, mine, booking.start, new_end, now, tz, new_booking=False)
    others = blocking_bookings(policy, rest, booking.machine_id, now)
    out += _conflicts(policy, others, booking.start, new_end, tz)
    return out


def check_shorten(
    policy: BookingPolicy,
    booking: ExistingBooking,
    new_end: datetime,
    now: datetime,
    tz: tzinfo,
) -> list[RuleViolation]:
    """Violations of moving a booking's end earlier to `new_end` (freeing the rest). new_end must be on
    the slot grid and not before the current slot start (use ceil_to_slot(now) to "end now"). Before the
    booking has started, the minimum length still applies; once running, any remaining length is fine."""
    require_aware("new_end", new_end)
    require_aware("now", now)
    if booking.end <= now or not is_effectively_active(booking, policy, now):
        return [_not_active(booking, "shortened")]
    if not booking.start < new_end < booking.end:
        return [RuleViolation(
            "end_before_start",
            f"A shortened booking must end after its start {_local(booking.start, tz)} and before its "
            f"current end {_local(booking.end, tz)}; you asked for {_local(new_end, tz)}.",
            {"min_end_exclusive": booking.start.isoformat(), "max_end_exclusive": booking.end.isoformat()},
        )]
    out: list[RuleViolation] = []
    earliest = floor_to_slot(policy, now, tz)
    if new_end < earliest:
        out.append(RuleViolation(
            "in_the_past",
            f"A booking cannot be shortened to end in the past; the earliest end now is "
            f"{_local(ceil_to_slot(policy, now, tz), tz)}.",
            {"earliest_end": ceil_to_slot(policy, now, tz).isoformat()},
        ))
    out += _alignment(policy, None, new_end, tz)
    if booking.start > now and new_end - booking.start < policy.min_length:
        out += _length(policy, booking.start, new_end)
    return out


def member_violations(
    policy: BookingPolicy,
    existing: Sequence[ExistingBooking],
    member: MemberContext,
    start: datetime,
    end: datetime,
    now: datetime,
    tz: tzinfo,
) -> list[RuleViolation]:
    """Only the member's own rules (qualification, quotas) for a new booking [start, end); `existing` are
    this machine's bookings. Used by availability to bound "book now" lengths."""
    if member.account != "ok":
        return _account(member)
    out = _qualification(policy, member, start, tz)
    if not member.quota_exempt:
        mine = [b for b in existing if b.member_id == member.member_id]
        out += _quotas(policy, mine, start, end, now, tz, new_booking=True)
    return out


# --- individual rules ----------------------------------------------------------------------------------


def _account(member: MemberContext) -> list[RuleViolation]:
    return [RuleViolation(*account_standing.refusal(member.account))]


def _end_before_start(start: datetime, end: datetime, tz: tzinfo) -> RuleViolation:
    return RuleViolation(
        "end_before_start",
        f"The end must be after the start; you asked for {_local(start, tz)} to {_local(end, tz)}.",
        {"min_end_exclusive": start.isoformat()},
    )


def _not_active(booking: ExistingBooking, verb: str) -> RuleViolation:
    return RuleViolation(
        "booking_not_active",
        f"Only a confirmed or checked-in booking that has not ended can be {verb}; this one is "
        f"{booking.status} or already over (a booking not checked in within the grace time is released).",
        {"status": booking.status},
    )


def _alignment(
    policy: BookingPolicy, start: datetime | None, end: datetime, tz: tzinfo
) -> list[RuleViolation]:
    bad_start = start is not None and not is_aligned(policy, start, tz)
    if not bad_start and is_aligned(policy, end, tz):
        return []
    allowed: dict[str, Any] = {"slot_minutes": policy.slot_minutes}
    parts = []
    if start is not None:
        s = floor_to_slot(policy, start, tz)
        allowed["suggested_start"] = s.isoformat()
        parts.append(f"from {_local(s, tz)}")
    e = ceil_to_slot(policy, end, tz)
    allowed["suggested_end"] = e.isoformat()
    parts.append(f"to {_local(e, tz)}")
    return [RuleViolation(
        "not_aligned",
        f"Bookings on this machine go in {_minutes(policy.slot_minutes)} steps; try {' '.join(parts)}.",
        allowed,
    )]


def _length(policy: BookingPolicy, start: datetime, end: datetime) -> list[RuleViolation]:
    minutes = (end - start).total_seconds() / 60
    if minutes < policy.min_minutes:
        return [RuleViolation(
            "too_short",
            f"Min {_minutes(policy.min_minutes)} on this machine; you asked for {_minutes(minutes)}.",
            {"min_minutes": policy.min_minutes},
        )]
    if minutes > policy.max_minutes:
        return [RuleViolation(
            "too_long",
            f"Max {_minutes(policy.max_minutes)} on this machine; you asked for {_minutes(minutes)}.",
            {"max_minutes": policy.max_minutes},
        )]
    return []


def _horizon(policy: BookingPolicy, end: datetime, now: datetime, tz: tzinfo) -> list[RuleViolation]:
    limit = horizon_end(policy, now, tz)
    if end <= limit:
        return []
    return [RuleViolation(
        "beyond_horizon",
        f"This machine can be booked {policy.horizon_days} days ahead, up to {_local(limit, tz)}; "
        f"you asked for a booking ending {_local(end, tz)}.",
        {"horizon_days": policy.horizon_days, "latest_end": limit.isoformat()},
    )]


def _opening(policy: BookingPolicy, start: datetime, end: datetime, tz: tzinfo) -> list[RuleViolation]:
    pairs = opening_pairs(policy, start - timedelta(days=1), end + timedelta(days=1), tz)
    if any(s <= start and end <= e for s, e in pairs):
        return []
    day = start.astimezone(tz)
    ranges = policy.opening_hours[day.weekday()]
    periods = [
        {"start": s.isoformat(), "end": e.isoformat()}
        for s, e in opening_pairs(policy, *local_day_bounds(start, tz), tz)
    ]
    return [RuleViolation(
        "outside_opening_hours",
        f"Outside opening hours: on {day:%a %d %b} this machine is "
        + (f"open {describe_hours(ranges)} ({_tz_name(tz)})" if ranges else "closed")
        + f"; you asked for {_local(start, tz)} to {_local(end, tz)}.",
        {"opening_hours": periods},
    )]


def _maintenance(
    blocks: Sequence[Interval], start: datetime, end: datetime, tz: tzinfo
) -> list[RuleViolation]:
    hits = sorted((b for b in blocks if b.start < end and start < b.end), key=lambda b: b.start)
    if not hits:
        return []
    first = hits[0]
    return [RuleViolation(
        "maintenance",
        f"The machine is blocked for maintenance from {_local(first.start, tz)} to {_local(first.end, tz)}; "
        f"choose a time outside it.",
        {"blocked": [b.to_dict() for b in hits]},
    )]


def _qualification(
    policy: BookingPolicy, member: MemberContext, at: datetime, tz: tzinfo
) -> list[RuleViolation]:
    """The qualification must be valid when the (added) booked time starts: that is when the machine is
    unlocked. Expiry is checked against the booking, not `now`."""
    if not policy.qualification_required:
        return []
    q = member.qualification
    if q.state == "none":
        return [RuleViolation(
            "not_qualified",
            "This machine needs a qualification (an induction by a steward) before you can book it.",
            {"qualification_required": True},
        )]
    if q.state == "expired":
        when = f" at {_local(q.until, tz)}" if q.until is not None else ""
        return [RuleViolation(
            "qualification_expired",
            f"Your qualification for this machine expired{when}; renew it with a steward to book again.",
            {"valid_until": q.until.isoformat() if q.until else None},
        )]
    if q.until is not None and q.until <= at:
        return [RuleViolation(
            "qualification_expired",
            f"Your qualification for this machine expires at {_local(q.until, tz)}, before this booking "
            f"starts; renew it with a steward, or book a time before then.",
            {"valid_until": q.until.isoformat()},
        )]
    return []


def _quotas(
    policy: BookingPolicy,
    mine: Sequence[ExistingBooking],
    start: datetime,
    end: datetime,
    now: datetime,
    tz: tzinfo,
    *,
    new_booking: bool,
) -> list[RuleViolation]:
    """Per member on this machine. `mine` are the member's other bookings here (the checked one excluded)."""
    out: list[RuleViolation] = []
    counted = [b for b in mine if b.status in QUOTA_STATUSES and _counts_for_quota(b, policy, now)]
    if policy.max_hours_per_day is not None:
        out += _window_quota(
            "quota_day_hours", "day", policy.max_hours_per_day, counted, start, end, tz, local_day_bounds
        )
    if policy.max_hours_per_week is not None:
        out += _window_quota(
            "quota_week_hours", "week", policy.max_hours_per_week, counted, start, end, tz, local_week_bounds
        )
    if new_booking and policy.max_future_bookings is not None:
        open_count = sum(1 for b in mine if is_open_booking(b, policy, now))
        if open_count + 1 > policy.max_future_bookings:
            out.append(RuleViolation(
                "quota_future_bookings",
                f"Max {policy.max_future_bookings} open bookings on this machine per member; you already "
                f"have {open_count}. Cancel one or wait until one is over.",
                {"max_future_bookings": policy.max_future_bookings, "current": open_count},
            ))
    return out


def _counts_for_quota(b: ExistingBooking, policy: BookingPolicy, now: datetime) -> bool:
    # A stale window-mode request (never confirmed, already started) holds nothing.
    return not (b.status == "requested" and b.start <= now)


def is_open_booking(b: ExistingBooking, policy: BookingPolicy, now: datetime) -> bool:
    """Counts towards the future-bookings quota: not ended, and still holding or requesting time."""
    if b.end <= now or b.status not in OPEN_STATUSES:
        return False
    if b.status == "requested":
        return b.start > now
    return is_effectively_active(b, policy, now)


def _window_quota(
    code: str,
    label: str,
    limit_hours: float,
    counted: Sequence[ExistingBooking],
    start: datetime,
    end: datetime,
    tz: tzinfo,
    bounds: Any,
) -> list[RuleViolation]:
    limit = limit_hours * 3600
    cursor = start
    while cursor < end:  # a request may touch several local days (or weeks)
        w_start, w_end = bounds(cursor, tz)
        asked = overlap_seconds(start, end, w_start, w_end)
        used = sum(overlap_seconds(b.start, b.end, w_start, w_end) for b in counted)
        if used + asked > limit + 1e-6:
            remaining = max(0.0, limit - used)
            period = f"on {w_start.astimezone(tz):%a %d %b}" if label == "day" else (
                f"in the week of {w_start.astimezone(tz):%a %d %b}"
            )
            return [RuleViolation(
                code,
                f"Max {_minutes(limit / 60)} per {label} on this machine; you have {_minutes(used / 60)} "
                f"booked {period} and asked for {_minutes(asked / 60)} more "
                f"({_minutes(remaining / 60)} left)."
                if used else
                f"Max {_minutes(limit / 60)} per {label} on this machine; you asked for "
                f"{_minutes(asked / 60)} {period}.",
                {
                    f"max_hours_per_{label}": limit_hours,
                    "used_hours": round(used / 3600, 4),
                    "remaining_minutes": int(remaining // 60),
                    "period_start": w_start.isoformat(),
                },
            )]
        cursor = w_end
    return []


def _conflicts(
    policy: BookingPolicy, others: Sequence[ExistingBooking], start: datetime, end: datetime, tz: tzinfo
) -> list[RuleViolation]:
    out: list[RuleViolation] = []
    overlapping = sorted((b for b in others if b.start < end and start < b.end), key=lambda b: b.start)
    if overlapping:
        out.append(RuleViolation(
            "overlap",
            "This time is already booked: "
            + "; ".join(f"{_local(b.start, tz)} to {_local(b.end, tz)}" for b in overlapping[:3])
            + ". Choose a free time.",
            {"conflicts": [{"id": b.id, "start": b.start.isoformat(), "end": b.end.isoformat()}
                           for b in overlapping]},
        ))
    buf = policy.buffer
    if buf:
        near = sorted(
            (b for b in others if not (b.start < end and start < b.end)
             and b.start - buf < end and start < b.end + buf),
            key=lambda b: b.start,
        )
        if near:
            b = near[0]
            out.append(RuleViolation(
                "buffer",
                f"This machine needs {_minutes(policy.buffer_minutes)} free between bookings; another "
                f"booking runs {_local(b.start, tz)} to {_local(b.end, tz)}.",
                {"buffer_minutes": policy.buffer_minutes,
                 "conflicts": [{"id": x.id, "start": x.start.isoformat(), "end": x.end.isoformat()}
                               for x in near]},
            ))
    return out


# --- formatting ----------------------------------------------------------------------------------------


def _minutes(m: float) -> str:
    """90 -> "1 h 30 min", 180 -> "3 h", 45 -> "45 min"."""
    total = int(round(m))
    h, mm = divmod(total, 60)
    if h and mm:
        return f"{h} h {mm} min"
    if h:
        return f"{h} h"
    return f"{mm} min"


def _local(t: datetime, tz: tzinfo) -> str:
    return f"{t.astimezone(tz):%a %d %b %H:%M}"


def _tz_name(tz: tzinfo) -> str:
    return str(getattr(tz, "key", None) or tz)
