"""Calendar invitations for induction sign-ups (iTIP over iMIP, as booking invitations are).

The mail builder's invitations.invitation_for calls `build` for a mail's spec {"induction_session_id": N,
"method": ..., "sequence": N}; fablab.services.inductions asks for it with the confirmed, moved-up and cancelled
notices. The UID is per session, so a confirmation (REQUEST) and a later cancellation (CANCEL, higher
SEQUENCE) are one event. SEQUENCE is `sequence_at(session, now)`: seconds since the session was created, so it
only rises (a sign-up again after a cancellation is a higher REQUEST) without a counter column.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import current_app
from icalendar import Calendar, Event

from ..models import Member
from ..models.inductions import InductionSession
from .invitations import add_people

METHODS = ("REQUEST", "CANCEL")


def session_uid(session_id: int) -> str:
    host = current_app.config.get("FABLAB_BASE_URL", "").split("//")[-1].split("/")[0] or "fablab.local"
    return f"induction-{session_id}@{host}"


def sequence_at(s: InductionSession, now: datetime) -> int:
    return max(0, int((now - s.created_at).total_seconds()))


def mail_params(s: InductionSession, method: str, now: datetime) -> dict[str, Any]:
    """The mail params that ask the mail builder for this session's invitation."""
    return {"ics": {"induction_session_id": s.id, "method": method, "sequence": sequence_at(s, now)}}


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
