"""RFC 5545 feeds: a member's own bookings (private URL) and a machine's busy times (public, no names).

Times are written in UTC, which every calendar app converts to its own zone; that is what keeps them
right across DST changes. UIDs are stable per booking and SEQUENCE grows with every change, so apps
update an event instead of duplicating it; cancelled bookings stay in the feed as CANCELLED for a while.
"""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

from flask import current_app
from icalendar import Calendar, Event
from sqlalchemy import select

from ..extensions import db
from ..models import ACTIVE_STATUSES, Booking, BookingStatus, Machine, Member
from ..models.types import utcnow

KEEP_PAST = timedelta(days=60)


def booking_uid(booking_id: int) -> str:
    """A booking's UID, shared by the feeds and the mailed invitations (fablab/services/invitations.py) so a
    calendar app sees one event: the host is FABLAB_BASE_URL's, not the host a request came in on."""
    host = urlsplit(current_app.config["FABLAB_BASE_URL"]).netloc or "fablab.invalid"
    return f"booking-{booking_id}@{host}"


def _calendar(name: str) -> Calendar:
    cal = Calendar()
    cal.add("prodid", "-//fablab//bookings//EN")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("x-wr-calname", name)
    return cal


def _event(b: Booking, host: str, summary: str, description: str = "") -> Event:
    ev = Event()
    ev.add("uid", booking_uid(b.id))
    ev.add("dtstamp", b.updated_at or utcnow())
    ev.add("dtstart", b.start_at)
    ev.add("dtend", b.end_at)
    ev.add("sequence", b.sequence)
    ev.add("summary", summary)
    if description:
        ev.add("description", description)
    ev.add("status", "CANCELLED" if b.status in (BookingStatus.CANCELLED, BookingStatus.RELEASED,
                                                  BookingStatus.NO_SHOW) else "CONFIRMED")
    return ev


def member_calendar(member: Member, host: str) -> bytes:
    since = utcnow() - KEEP_PAST
    rows = db.session.scalars(select(Booking).where(Booking.member_id == member.id, Booking.end_at > since)
                              .order_by(Booking.start_at))
    cal = _calendar(f"My lab bookings ({member.name})")
    for b in rows:
        location = f"{b.machine.name}" + (f", {b.machine.location}" if b.machine.location else "")
        ev = _event(b, host, f"{b.machine.name} booked", f"Booking #{b.id} on {location}.")
        ev.add("location", location)
        cal.add_component(ev)
    return cal.to_ical()


def machine_calendar(machine: Machine, host: str) -> bytes:
    since = utcnow() - KEEP_PAST
    rows = db.session.scalars(select(Booking).where(
        Booking.machine_id == machine.id, Booking.end_at > since,
        Booking.status.in_([s.value for s in (*ACTIVE_STATUSES, BookingStatus.COMPLETED, BookingStatus.CANCELLED)]),
    ).order_by(Booking.start_at))
    cal = _calendar(f"{machine.name}: busy times")
    for b in rows:
        summary = "Maintenance" if b.kind == "maintenance" else "Busy"
        ev = _event(b, host, f"{machine.name}: {summary}")  # no member names in a public feed
        ev.add("transp", "OPAQUE")
        cal.add_component(ev)
    return cal.to_ical()
