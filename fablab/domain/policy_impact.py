"""Which existing bookings a new machine policy would refuse: listed before an admin saves the change,
so nobody loses a booking silently (keep them, or cancel them with a reason). Pure, like booking_rules."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo

from fablab.domain.booking_rules import (
    BookingRequest,
    ExistingBooking,
    MemberContext,
    RuleViolation,
    check_booking,
    is_effectively_active,
)
from fablab.domain.intervals import Interval
from fablab.domain.policy import BookingPolicy

# Rules that describe the moment of booking, not the booking: a booking made 14 days ahead stays valid
# when the horizon shrinks to 7, and one that starts now is not "in the past".
IGNORED = frozenset({"in_the_past", "beyond_horizon", "machine_unavailable", "maintenance"})


@dataclass(frozen=True, slots=True)
class BrokenBooking:
    booking: ExistingBooking
    violations: tuple[RuleViolation, ...]


def broken_by(
    policy: BookingPolicy,
    bookings: Sequence[ExistingBooking],
    members: Mapping[int | str, MemberContext],
    now: datetime,
    tz: tzinfo,
    blocks: Sequence[Interval] = (),
) -> list[BrokenBooking]:
    """The upcoming active bookings in `bookings` that `policy` would refuse, in start order. Each is checked
    as if booked after the member's earlier bookings (so a lowered quota flags the ones past the limit, not
    all of them) and beside everyone else's (a longer buffer flags the later of two neighbours)."""
    upcoming = sorted((b for b in bookings if b.start > now and b.status == "confirmed"
                       and is_effectively_active(b, policy, now)), key=lambda b: (b.start, str(b.id)))
    out: list[BrokenBooking] = []
    for b in upcoming:
        member = members.get(b.member_id)
        if member is None:
            continue
        before = [x for x in bookings if x.id != b.id and (x.start, str(x.id)) < (b.start, str(b.id))]
        request = BookingRequest(b.machine_id, b.member_id, b.start, b.end)
        violations = [v for v in check_booking(policy, request, before, member, now, tz, blocks=blocks)
                      if v.code not in IGNORED]
        if violations:
            out.append(BrokenBooking(b, tuple(violations)))
    return out
