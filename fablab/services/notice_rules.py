"""Which lab events tell a member something, and what: one listener, `on_event`, connected in fablab/wiring.py.

It runs in the transaction of the change (fablab/services/lab_events.py), so the notice and its mail commit
with the booking, offer or draw, or vanish with it. Every notice has a dedupe key naming the event's subject
and step (a booking's creation, its change to SEQUENCE n, ...): the same event published twice is told once.

Choices worth knowing:
- A recurring series (services/booking_series.py books each occurrence on its own) gets ONE confirmation,
  on its first occurrence, saying the pattern (from the series row) and keyed by the series; it carries no
  calendar invitation (one invitation would put one occurrence in the calendar: the member's feed has all).
  Changes and cancellations of single occurrences are told one by one, as for any booking.
- A booking granted by a request window is told by the window's result (with the invitation), not by a
  second "booking confirmed".
- Maintenance blocks are the lab's own time: nobody is told they were booked.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from flask import current_app
from werkzeug.routing import BuildError

from ..extensions import db
from ..models import Booking, BookingKind, Member
from ..models.scheduling import WaitlistOffer
from ..models.series import BookingSeries
from .event_data import iso
from .lab_events import LabEvent
from .notify import notify

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _path(endpoint: str, fallback: str, **values: Any) -> str:
    """The path of a page (no request to build it from in the worker): the route's own, or `fallback` when
    this app has no such page (an API-only deployment)."""
    try:
        return current_app.url_map.bind("localhost").build(endpoint, values)
    except BuildError:
        return fallback


def _member(member_id: Any) -> Member | None:
    return db.session.get(Member, member_id) if isinstance(member_id, int) else None


def _ics(data: Mapping[str, Any], method: str) -> dict[str, Any]:
    return {"ics": {"booking_id": data["booking_id"], "method": method, "sequence": int(data.get("sequence") or 0)}}


def _booking_params(data: Mapping[str, Any]) -> dict[str, Any]:
    return {"booking_id": data["booking_id"], "machine": data.get("machine"), "start": data.get("start"),
            "end": data.get("end"), "sequence": data.get("sequence")}


def _booking_link(data: Mapping[str, Any]) -> str:
    return _path("bookings.detail", f"/bookings/{data['booking_id']}", booking_id=data["booking_id"])


def _series_params(series_id: int) -> dict[str, Any] | None:
    s = db.session.get(BookingSeries, series_id)
    if s is None:
        return None
    return {"id": s.id, "title": s.title, "weekday": WEEKDAYS[s.weekday % 7],
            "at": f"{s.start_minute // 60:02d}:{s.start_minute % 60:02d}", "minutes": s.minutes,
            "every_weeks": s.every_weeks, "first_day": s.first_day.isoformat(), "until": s.until.isoformat(),
            "until_text": f"{s.until.day} {s.until:%b %Y}"}


def booking_created(event: LabEvent) -> None:
    data = event.data
    b = db.session.get(Booking, data["booking_id"])
    member = _member(data.get("member_id"))
    if b is None or member is None or b.kind == BookingKind.MAINTENANCE or b.source == "window":
        return
    params = _booking_params(data)
    series_id = data.get("series_id")
    if isinstance(series_id, int):
        params["series"] = _series_params(series_id)
        notify(member, "booking_confirmed", params, now=event.at, dedupe_key=f"series:{series_id}:created",
               link=_path("bookings.mine", "/bookings"))
        return
    notify(member, "booking_confirmed", params, now=event.at, link=_booking_link(data),
           dedupe_key=f"booking:{data['booking_id']}:created", mail_params=_ics(data, "REQUEST"))


def booking_changed(event: LabEvent) -> None:
    data = event.data
    member = _member(data.get("member_id"))
    if member is None:
        return
    notify(member, "booking_changed", _booking_params(data), now=event.at, link=_booking_link(data),
           dedupe_key=f"booking:{data['booking_id']}:changed:{data.get('sequence')}",
           mail_params=_ics(data, "REQUEST"))


def booking_cancelled(event: LabEvent) -> None:
    data = event.data
    member = _member(data.get("member_id"))
    if member is None:
        return
    params = _booking_params(data)
    params["reason"] = data.get("reason") or ""
    kind = "booking_cancelled"
    if data.get("by_staff"):
        kind = "booking_cancelled_by_staff"
        actor = _member(data.get("actor_id"))
        params["by"] = actor.name if actor is not None else "the lab's staff"
        params["by_role"] = actor.role if actor is not None else ""
    notify(member, kind, params, now=event.at, link=_path("bookings.mine", "/bookings"),
           dedupe_key=f"booking:{data['booking_id']}:cancelled", mail_params=_ics(data, "CANCEL"))


def booking_no_show(event: LabEvent) -> None:
    data = event.data
    member = _member(data.get("member_id"))
    b = db.session.get(Booking, data["booking_id"])
    if member is None or b is None:
        return
    # The time is no longer theirs: the invitation is withdrawn, as the feed marks it cancelled. The link
    # books the machine again.
    slug = b.machine.slug
    notify(member, "booking_no_show", _booking_params(data), now=event.at,
           link=_path("bookings.book", f"/machines/{slug}/book", slug=slug),
           dedupe_key=f"booking:{data['booking_id']}:no_show", mail_params=_ics(data, "CANCEL"))


def offer_made(event: LabEvent) -> None:
    data = event.data
    member = _member(data.get("member_id"))
    if member is None:
        return
    offer = db.session.get(WaitlistOffer, data["offer_id"])
    hold = datetime.fromisoformat(data["hold_until"]) - event.at if data.get("hold_until") else None
    params = {"offer_id": data["offer_id"], "machine": data.get("machine"), "start": data.get("start"),
              "end": data.get("end"), "hold_until": data.get("hold_until"),
              "hold_minutes": max(1, round(hold.total_seconds() / 60)) if hold is not None else None,
              "first_come": bool(offer.first_come) if offer is not None else False}
    # The waitlist page holds the claim button (a POST with its CSRF token): a link in a mail must not
    # claim by itself, or a mail scanner following links would book for the member.
    link = _path("scheduling.waitlist", "/scheduling/waitlist") + "#offers"
    notify(member, "waitlist_offer", params, now=event.at, link=link, dedupe_key=f"offer:{data['offer_id']}:made")


def window_result(event: LabEvent) -> None:
    data = event.data
    member = _member(data.get("member_id"))
    if member is None:
        return
    params: dict[str, Any] = {"window_id": data["window_id"], "machine": data.get("machine"),
                              "granted": bool(data.get("granted")), "position": data.get("position"),
                              "booking_id": data.get("booking_id")}
    mail_params = None
    b = db.session.get(Booking, data["booking_id"]) if isinstance(data.get("booking_id"), int) else None
    if b is not None:
        params.update(start=iso(b.start_at), end=iso(b.end_at))
        mail_params = {"ics": {"booking_id": b.id, "method": "REQUEST", "sequence": b.sequence or 0}}
    link = _path("scheduling.results", f"/scheduling/windows/{data['window_id']}", window_id=data["window_id"])
    notify(member, "window_result", params, now=event.at, link=link,
           dedupe_key=f"window:{data['window_id']}:result", mail_params=mail_params)


def task_assigned(event: LabEvent) -> None:
    data = event.data
    member = _member(data.get("assignee_id"))
    if member is None:
        return
    notify(member, "task_assigned", {"task_id": data["task_id"], "title": data.get("title")}, now=event.at,
           link=_path("scheduling.tasks", "/tasks"), dedupe_key=f"task:{data['task_id']}:assigned")


RULES: dict[str, Callable[[LabEvent], None]] = {
    "booking.created": booking_created,
    "booking.changed": booking_changed,
    "booking.cancelled": booking_cancelled,
    "booking.no_show": booking_no_show,
    "offer.made": offer_made,
    "window.result": window_result,
    "task.assigned": task_assigned,
}


def on_event(event: LabEvent) -> None:
    """The lab event bus's listener for member notices (fablab/wiring.py)."""
    rule = RULES.get(event.type)
    if rule is not None:
        rule(event)
