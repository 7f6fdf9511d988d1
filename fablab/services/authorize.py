"""Badge authorization at the machine: allow with a current booking of this member, or when the
machine is free now and the member is qualified and within quota (which books it on the spot)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from ..extensions import db
from ..models import ACTIVE_STATUSES, Booking, BookingKind, Machine
from . import bookings as booking_service
from . import members as member_service
from . import print_offers

WALK_UP_LENGTH = timedelta(hours=1)  # a badge at a free machine books up to this long (extend at the kiosk)


@dataclass(frozen=True)
class Decision:
    allow: bool
    reason: str
    booking_id: int | None = None
    valid_until: datetime | None = None


def authorize(machine: Machine, badge_uid: str, now: datetime) -> Decision:
    member = member_service.member_by_badge(badge_uid)
    if member is None:
        return Decision(False, "Unknown badge: ask a steward to register it.")
    policy = booking_service.policy_for(machine)
    if machine.status != "available":
        return Decision(False, f"{machine.name} is out of order.")
    # A booking of this member that covers now (or starts within check-in reach).
    mine = db.session.scalars(select(Booking).where(
        Booking.machine_id == machine.id, Booking.member_id == member.id,
        Booking.status.in_([s.value for s in ACTIVE_STATUSES]), Booking.end_at > now,
        Booking.start_at <= now + timedelta(minutes=15)).order_by(Booking.start_at))
    for b in mine:
        if booking_service.effective_status(b, now) not in ("confirmed", "checked_in"):
            continue
        if b.status != "checked_in":
            try:
                booking_service.check_in(b, None, now=now, source="badge")
            except booking_service.BookingRejected as exc:
                return Decision(False, exc.message)
        started = print_offers.start_on_badge(machine, member, now)  # the badge confirms a ready print
        return Decision(True, f"Your booking until {b.end_at.astimezone(booking_service.lab_tz()):%H:%M}.{started}",
                        b.id, b.end_at)
    start, longest = booking_service.longest_now(machine, member, now)
    if not longest:
        nxt = db.session.scalar(select(Booking).where(
            Booking.machine_id == machine.id, Booking.status.in_([s.value for s in ACTIVE_STATUSES]),
            Booking.end_at > now, Booking.start_at <= now, Booking.kind == BookingKind.NORMAL.value))
        if nxt is not None:
            until = nxt.end_at.astimezone(booking_service.lab_tz())
            return Decision(False, f"Booked by someone else until {until:%H:%M}.")
        # Say which rule stops it (qualification, quota, opening hours…).
        violations = booking_service.check_only(member, machine, start, start + policy.min_length, now)
        return Decision(False, violations[0].message if violations else "Not bookable now.")
    length = min(longest, max(WALK_UP_LENGTH, policy.min_length))
    try:
        b = booking_service.create_booking(member, machine, start, start + length, source="badge", now=now)
    except booking_service.BookingRejected as exc:
        return Decision(False, exc.violations[0].message)
    return Decision(True, f"Booked for you until {b.end_at.astimezone(booking_service.lab_tz()):%H:%M}.",
                    b.id, b.end_at)
