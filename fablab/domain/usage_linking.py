"""Usage spans meet bookings: automatic check-in, unbooked use, overruns, no-shows.

Pure: the caller passes the machine's bookings around the span and ``now``. A confirmed booking counts
as used when machine use starts within its check-in grace (before or after its start); a booking
already checked in (kiosk, badge) links any use that starts during it. Maintenance and induction
bookings link as well but never count as member usage.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

NORMAL = "normal"
MAINTENANCE = "maintenance"
INDUCTION = "induction"
NOT_USAGE_KINDS = frozenset({MAINTENANCE, INDUCTION})

CONFIRMED = "confirmed"
CHECKED_IN = "checked_in"
LIVE_STATUSES = frozenset({CONFIRMED, CHECKED_IN})  # anything else (cancelled, released, …) is ignored


class SpanLike(Protocol):
    """What linking needs of a usage span (``sessionize.UsageSpan`` fits)."""

    @property
    def start(self) -> datetime: ...
    @property
    def end(self) -> datetime | None: ...  # None while the span is open
    @property
    def badge(self) -> str | None: ...


@dataclass(frozen=True)
class Booking:
    id: Hashable
    member: Hashable
    start: datetime
    end: datetime
    status: str  # "confirmed" | "checked_in" | others (cancelled, released, no_show) are ignored
    kind: str = NORMAL  # "normal" | "maintenance" | "induction"


@dataclass(frozen=True)
class LinkResult:
    booking_id: Hashable | None  # the booking this use belongs to, if any
    member: Hashable | None  # who used the machine: the booking's member, else the badge's
    member_source: str | None  # "booking" | "badge" | None
    check_in: Hashable | None  # booking id to mark checked in (it was only confirmed), else None
    check_in_at: datetime | None  # when: the start of use
    unbooked: bool  # use with no booking (shown to stewards)
    overrun: timedelta  # use past the booking's end (zero when none)
    counts_as_usage: bool  # False for maintenance and induction bookings
    booking_kind: str | None
    badge_mismatch: bool = False  # the badge names someone other than the booking's member

    @property
    def overrun_minutes(self) -> float:
        return self.overrun.total_seconds() / 60


@dataclass(frozen=True)
class NoShow:
    booking_id: Hashable
    member: Hashable
    kind: str
    deadline: datetime  # start + grace: the moment it became a no-show
    released_start: datetime  # max(now, deadline), capped at the end: what can still be offered
    released_end: datetime

    @property
    def released(self) -> tuple[datetime, datetime]:
        return (self.released_start, self.released_end)


def _end_of(span: SpanLike, now: datetime) -> datetime:
    return span.end if span.end is not None else max(now, span.start)


def _eligible(b: Booking, start: datetime, grace: timedelta) -> bool:
    if b.status == CHECKED_IN:
        return b.start - grace <= start < b.end
    if b.status == CONFIRMED:
        # past start + grace a confirmed booking is a no-show whose time is released
        return b.start - grace <= start <= min(b.start + grace, b.end)
    return False


def booking_for(span: SpanLike, bookings: Iterable[Booking], grace: timedelta) -> Booking | None:
    """The booking a span of use belongs to: the one whose start is nearest the start of use."""
    found = [b for b in bookings if _eligible(b, span.start, grace)]
    if not found:
        return None
    # prefer a booking the use started inside of, then the nearest start, then the id for determinism
    return min(
        found,
        key=lambda b: (not (b.start <= span.start < b.end), abs(b.start - span.start), str(b.id)),
    )


def link_usage(
    span: SpanLike,
    bookings: Iterable[Booking],
    now: datetime,
    grace: timedelta,
    members_by_badge: Mapping[str, Hashable] | None = None,
) -> LinkResult:
    """Link one span of machine use to the machine's bookings (pass only that machine's bookings)."""
    badge_member = (members_by_badge or {}).get(span.badge) if span.badge else None
    b = booking_for(span, bookings, grace)
    if b is None:
        return LinkResult(
            booking_id=None,
            member=badge_member,
            member_source="badge" if badge_member is not None else None,
            check_in=None,
            check_in_at=None,
            unbooked=True,
            overrun=timedelta(0),
            counts_as_usage=True,
            booking_kind=None,
        )
    mismatch = badge_member is not None and badge_member != b.member
    return LinkResult(
        booking_id=b.id,
        # a badge names who actually stood at the machine; the booking says who should have
        member=badge_member if mismatch else b.member,
        member_source="badge" if mismatch else "booking",
        check_in=b.id if b.status == CONFIRMED else None,
        check_in_at=span.start if b.status == CONFIRMED else None,
        unbooked=False,
        overrun=max(timedelta(0), _end_of(span, now) - b.end),
        counts_as_usage=b.kind not in NOT_USAGE_KINDS,
        booking_kind=b.kind,
        badge_mismatch=mismatch,
    )


def _protects(span: SpanLike, b: Booking, now: datetime, grace: timedelta) -> bool:
    deadline = b.start + grace
    # the machine was in use during the grace window (even by an overrun that kept the member out),
    # or use began within the grace before the start
    overlaps = span.start <= deadline and _end_of(span, now) >= b.start
    return overlaps or b.start - grace <= span.start <= deadline


def find_no_shows(
    bookings: Iterable[Booking], usage_spans: Iterable[SpanLike], now: datetime, grace: timedelta
) -> list[NoShow]:
    """Confirmed bookings whose grace has passed with no check-in and no use in [start, start + grace]."""
    spans = list(usage_spans)
    out: list[NoShow] = []
    for b in bookings:
        deadline = b.start + grace
        if b.status != CONFIRMED or deadline >= now:
            continue
        if any(_protects(s, b, now, grace) for s in spans):
            continue
        released_start = min(max(now, deadline), b.end)
        out.append(NoShow(b.id, b.member, b.kind, deadline, released_start, b.end))
    return sorted(out, key=lambda n: (n.deadline, str(n.booking_id)))
