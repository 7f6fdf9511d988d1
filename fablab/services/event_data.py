"""The data of each lab event, built in one place so every publisher sends the same fields (the webhooks'
documented bodies, the notice rules' input). See fablab/services/lab_events.py for the event types.

Each function returns the LabEvent; the service that made the change publishes it in its transaction:
`lab_events.publish(event_data.booking("booking.created", b, now))`. Times are ISO 8601 in UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ..models import Booking, Machine
from .lab_events import LabEvent


def iso(t: datetime | None) -> str | None:
    return t.astimezone(UTC).isoformat() if t is not None else None


def booking(type_: str, b: Booking, now: datetime, *, actor_id: int | None = None, reason: str | None = None,
            series_id: int | None = None, sequence: int | None = None) -> LabEvent:
    """booking.* — `sequence` is the iCal SEQUENCE after the change (the booking's own counter, which the
    feed writes too); `by_staff`: someone other than the booking's member did it."""
    data: dict[str, Any] = {
        "booking_id": b.id, "member_id": b.member_id, "machine_id": b.machine_id, "machine": b.machine.name,
        "start": iso(b.start_at), "end": iso(b.end_at), "actor_id": actor_id, "reason": reason,
        "by_staff": actor_id is not None and actor_id != b.member_id,
        "sequence": (b.sequence or 0) if sequence is None else sequence,
        "series_id": series_id,
    }
    return LabEvent(type_, now, data)


def released(row: Any, machine: Machine, now: datetime) -> LabEvent:
    """booking.no_show for a booking released by a bulk update (`row`: id, member_id, start_at, end_at,
    sequence as they were before it; the update bumps the sequence by one)."""
    return LabEvent("booking.no_show", now, {
        "booking_id": row.id, "member_id": row.member_id, "machine_id": machine.id, "machine": machine.name,
        "start": iso(row.start_at), "end": iso(row.end_at), "actor_id": None, "reason": None, "by_staff": False,
        "sequence": (row.sequence or 0) + 1, "series_id": None})


def usage(type_: str, session: Any, machine: Machine, now: datetime) -> LabEvent:
    """usage.started / usage.ended for a UsageSession row."""
    return LabEvent(type_, now, {
        "session_id": session.id, "machine_id": machine.id, "machine": machine.name,
        "member_id": session.member_id, "booking_id": session.booking_id,
        "start": iso(session.start_at), "end": iso(session.end_at)})


def machine_status(machine: Machine, state: str, previous: str | None, at: datetime,
                   detail: str | None = None) -> LabEvent:
    return LabEvent("machine.status", at, {"machine_id": machine.id, "machine": machine.name, "state": state,
                                           "previous": previous, "detail": detail})


def offer(o: Any, now: datetime) -> LabEvent:
    """offer.made for a WaitlistOffer row (`hold_until`: when the hold ends)."""
    return LabEvent("offer.made", now, {
        "offer_id": o.id, "member_id": o.member_id, "machine_id": o.machine_id, "machine": o.machine.name,
        "start": iso(o.start_at), "end": iso(o.end_at), "hold_until": iso(o.expires_at)})


def window_result(window_id: int, member_id: int, machine: Machine, granted: bool, position: int | None,
                  booking_id: int | None, now: datetime) -> LabEvent:
    return LabEvent("window.result", now, {"window_id": window_id, "member_id": member_id, "machine": machine.name,
                                           "granted": granted, "position": position, "booking_id": booking_id})


def task(type_: str, t: Any, now: datetime, assignee_id: int | None = None) -> LabEvent:
    """task.assigned / task.due for an EffortTask row."""
    return LabEvent(type_, now, {"task_id": t.id, "title": t.title, "machine_id": t.machine_id,
                                 "assignee_id": assignee_id})


def design_published(d: Any, now: datetime) -> LabEvent:
    return LabEvent("design.published", now, {"design_id": d.id, "title": d.title, "author_id": d.author_id})
