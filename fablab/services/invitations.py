"""Calendar invitations mailed with booking notices (RFC 5546 iTIP over iMIP): METHOD:REQUEST puts the booking
in the member's calendar or updates it, METHOD:CANCEL removes it.

The UID is the feed's (ical.booking_uid) and SEQUENCE the booking's, the number the feed shows too, so an
app that has both the feed and the mail sees one event. The organizer is the lab's mail address.
"""

from __future__ import annotations

from collections.abc import Mapping
from email.utils import parseaddr
from typing import Any

from flask import current_app
from icalendar import Calendar, Event, vCalAddress, vText

from ..extensions import db
from ..models import Booking, Member
from ..models.inductions import InductionSession
from ..models.types import utcnow
from .ical import booking_uid

METHODS = ("REQUEST", "CANCEL")


class InvitationError(ValueError):
    """The mail asks for an invitation that cannot be made (no such booking, unknown method)."""


def invitation_for(spec: Mapping[str, Any], attendee: Member | None, to_address: str) -> tuple[str, bytes]:
    """(method, ICS bytes) for a mail's params["ics"] = {booking_id, method, sequence}, or for an induction
    signup {induction_session_id, method, sequence}."""
    method = str(spec.get("method", "REQUEST")).upper()
    if method not in METHODS:
        raise InvitationError(f"unknown invitation method {method!r}")
    if "induction_session_id" in spec:
        return method, _session_invitation(spec, method, attendee, to_address)
    try:
        booking_id = int(spec["booking_id"])
    except (KeyError, TypeError, ValueError):
        raise InvitationError("invitation without a booking id") from None
    booking = db.session.get(Booking, booking_id)
    if booking is None:
        raise InvitationError(f"no booking {booking_id} for the invitation")
    seq_raw = spec.get("sequence")
    sequence = int(seq_raw) if isinstance(seq_raw, int | str) and str(seq_raw).isdigit() else booking.sequence
    return method, build(booking, method, sequence, attendee, to_address)


def _session_invitation(spec: Mapping[str, Any], method: str, attendee: Member | None, to_address: str) -> bytes:
    from . import induction_invites  # it imports add_people from here

    try:
        session_id = int(spec["induction_session_id"])
    except (TypeError, ValueError):
        raise InvitationError("invitation without a valid induction session id") from None
    s = db.session.get(InductionSession, session_id)
    if s is None:
        raise InvitationError(f"no induction session {session_id} for the invitation")
    seq_raw = spec.get("sequence")
    sequence = int(seq_raw) if isinstance(seq_raw, int | str) and str(seq_raw).isdigit() else 0
    return induction_invites.build(s, method, sequence, attendee, to_address)


def build(booking: Booking, method: str, sequence: int, attendee: Member | None, to_address: str) -> bytes:
    """The iCalendar object of one booking as an invitation."""
    cal = Calendar()
    cal.add("prodid", "-//fablab//bookings//EN")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", method)
    ev = Event()
    ev.add("uid", booking_uid(booking.id))
    ev.add("dtstamp", booking.updated_at or utcnow())
    ev.add("dtstart", booking.start_at)
    ev.add("dtend", booking.end_at)
    ev.add("sequence", sequence)
    machine = booking.machine
    location = machine.name + (f", {machine.location}" if machine.location else "")
    ev.add("summary", f"{machine.name} booked")
    ev.add("description", f"Booking #{booking.id} on {location}.")
    ev.add("location", location)
    add_people(ev, method, attendee, to_address)
    cal.add_component(ev)
    return bytes(cal.to_ical())


def add_people(ev: Event, method: str, attendee: Member | None, to_address: str) -> None:
    """The lab as organizer, the member as the (accepted) attendee, and the status the method means: the
    part every invitation fablab sends shares (bookings here, induction sessions in induction_invites)."""
    _, lab_address = parseaddr(current_app.config["FABLAB_MAIL_FROM"])
    organizer = vCalAddress(f"mailto:{lab_address or 'fablab@localhost'}")
    organizer.params["cn"] = vText(current_app.config["FABLAB_LAB_NAME"])
    ev.add("organizer", organizer)
    att = vCalAddress(f"mailto:{to_address}")
    if attendee is not None:
        att.params["cn"] = vText(attendee.name)
    att.params["role"] = vText("REQ-PARTICIPANT")
    att.params["partstat"] = vText("ACCEPTED")
    att.params["rsvp"] = vText("FALSE")
    ev.add("attendee", att)
    ev.add("status", "CANCELLED" if method == "CANCEL" else "CONFIRMED")
