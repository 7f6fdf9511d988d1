"""Calendar invitations for induction sign-ups (iTIP over iMIP, as booking invitations are).

Not wired yet: the mail builder's invitations.invitation_for only knows bookings. The integrator adds one
branch there: a spec {"induction_session_id": N, "method": ..., "sequence": N} calls `build` below. The UID is
per session, so a confirmation (REQUEST) and a later cancellation (CANCEL, higher SEQUENCE) are one event.
"""

from __future__ import annotations

from flask import current_app
from icalendar import Calendar, Event

from ..models import Member
from ..models.inductions import InductionSession
from .invitations import add_people

METHODS = ("REQUEST", "CANCEL")


def session_uid(session_id: int) -> str:
    host = current_app.config.get("FABLAB_BASE_URL", "").split("//")[-1].split("/")[0] or "fablab.local"
    return f"induction-{session_id}@{host}"


def build(s: InductionSession, method: str, sequence: int, attendee: Member | None, to_address: str) -> bytes:
    """The iCalendar object of one induction session as an invitation for one participant."""
    if method not in METHODS:
        raise ValueError(f"unknown invitation method {method!r}")
    cal = Calendar()
    cal.add("prodid", "-//fablab//inductions//EN")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", method)
    ev = Event()
    ev.add("uid", session_uid(s.id))
    ev.add("dtstamp", s.created_at)
    ev.add("dtstart", s.start_at)
    ev.add("dtend", s.end_at)
    ev.add("sequence", sequence)
    ev.add("summary", f"{s.machine_type.name} induction")
    where = ", ".join(x for x in (s.place, s.machine.name if s.machine is not None else "") if x)
    if where:
        ev.add("location", where)
    ev.add("description", f"With {s.trainer.name}." + (f" Read first: {s.material_url}" if s.material_url else ""))
    add_people(ev, method, attendee, to_address)
    cal.add_component(ev)
    return bytes(cal.to_ical())
