"""Demo data for notifications: what Ada (the README's first demo member) is told, through the same services
a real booking uses, so the demo's `fablab notify` mails it to the embedded sink (admin → Sent mail):

- a printer booking for tomorrow: the confirmation with its calendar invitation;
- a booking made this morning that starts within the hour: the worker's first round sends its reminder;
- a waitlist offer with its claim link: she waits for a taken slot, whose holder then cancels.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from ..domain import policy as pol
from ..extensions import db
from ..models import Booking, Machine, Member
from ..models.types import utcnow
from ..services import bookings as booking_service
from ..services import waitlist


def _book(member: Member, machine: Machine, starts: list[datetime], length: timedelta,
          now: datetime) -> Booking | None:
    """The first of `starts` the member may book (the rules decide, as on the web)."""
    for start in starts:
        if start <= now or booking_service.check_only(member, machine, start, start + length, now):
            continue
        try:
            return booking_service.create_booking(member, machine, start, start + length, source="web", now=now)
        except booking_service.BookingRejected:
            continue
    return None


def seed_notices_demo(machines: dict[str, Machine], members: list[Member]) -> str:
    ada, others = members[2], members[3:]
    now = utcnow()
    tz = booking_service.lab_tz()
    slot = pol.current_slot_start(booking_service.policy_for(machines["prusa-mk4-1"]), now, tz)
    tomorrow = (now.astimezone(tz) + timedelta(days=1)).replace(hour=10, minute=0, second=0, microsecond=0)
    told = []
    if _book(ada, machines["prusa-mk4-1"], [tomorrow + timedelta(hours=h) for h in range(8)],
             timedelta(hours=2), now):
        told.append("a booking confirmation")
    # Booked three hours ago (so not inside the reminder's hour), starting within the hour: a reminder is due.
    soon = [slot + timedelta(minutes=m) for m in (30, 60, 90)]
    if _book(ada, machines["prusa-mk4-1"], soon, timedelta(hours=1), now - timedelta(hours=3)):
        told.append("a reminder")
    printer = machines["prusa-mk4-2"]
    for other in others:
        taken = _book(other, printer, [tomorrow + timedelta(hours=h) for h in range(4, 10)], timedelta(hours=2), now)
        if taken is None:
            continue
        waitlist.join_waitlist(ada, printer, kind="slot", start=taken.start_at, end=taken.end_at, now=now)
        db.session.commit()
        booking_service.cancel_booking(taken, other, "plans changed", now=now)
        db.session.commit()
        told.append("a waitlist offer")
        break
    db.session.commit()
    return f"{ada.name} is told {', '.join(told)} (admin → Sent mail)" if told else ""
