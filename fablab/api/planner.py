"""The planner over the API: the lab's day across all machines, and find a time."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import current_app, request

from ..models.types import utcnow
from ..services import day_view, find_time, induction_offers
from . import bp
from .common import api_member, fail, iso, ok, parse_time, token_required
from .openapi import document, q


@bp.get("/day")
@token_required()
def day() -> Any:
    me = api_member()
    now = utcnow()
    tz = current_app.config["TZ"]
    raw = request.args.get("date", "").strip()
    try:
        chosen = date.fromisoformat(raw) if raw else now.astimezone(tz).date()
    except ValueError:
        fail(400, "bad_date", f"'date' is not a date: {raw!r}; use YYYY-MM-DD.")
    try:
        view = day_view.build_day(me, chosen, now, tz, full=True)
    except day_view.DayError as exc:
        fail(400, "bad_date", str(exc))
    machines = []
    for group in view.groups:
        for row in group.rows:
            cells = []
            for c in row.cells:
                cell: dict[str, Any] = {"state": c.state, "start": iso(c.start), "end": iso(c.end)}
                if c.booking_id is not None and (view.staff or c.who_id == me.id):
                    cell.update(booking_id=c.booking_id, member_no=c.who_no, member=c.who if view.staff else None)
                cells.append(cell)
            machines.append({"slug": row.machine.slug, "name": row.machine.name, "type": group.name,
                             "qualified": row.qualified, "cells": cells})
    return ok({"date": view.day.isoformat(), "machines": machines})


@bp.get("/find")
@token_required()
def find() -> Any:
    now = utcnow()
    try:
        minutes = int(request.args.get("minutes", ""))
    except ValueError:
        fail(400, "bad_length", "'minutes' must be a whole number of minutes.")
    after = parse_time("from", now)
    try:
        result = find_time.find(api_member(), request.args.get("what", ""), minutes, after, now)
    except find_time.FindError as exc:
        fail(400, "bad_request", str(exc))
    offers = induction_offers.for_machines(api_member(), result.machines, now)
    return ok({"slots": [{"machine": s.machine.slug, "start": iso(s.start), "end": iso(s.end)} for s in result.slots],
               "not_offered": [{"machine": m.slug, "reason": why} for m, why in result.excluded],
               # For machines the member is not qualified for: the next induction sessions (ids for sign-up).
               "inductions": [{"for": o.label, "machines": [m.slug for m in o.machines],
                               "sessions": [{"id": i.session.id, "start": iso(i.session.start_at),
                                             "end": iso(i.session.end_at), "places_left": i.places_left}
                                            for i in o.sessions]} for o in offers]})


document("/day", "get", "The lab's day: every machine's half-hour cells (free, booked, mine, maintenance, in use, "
         "closed, past); staff see who booked", params=[q("date", "YYYY-MM-DD, the lab's local date; default today")],
         responses={"200": "The day", "400": "Not a date, or too far away"})
document("/find", "get", "The earliest slots of a length that the member may book, on one machine or any of a type",
         params=[q("what", "machine:<slug> or type:<slug>", required=True),
                 q("minutes", "Length in minutes", required=True),
                 q("from", "Earliest start (ISO 8601; default now)", fmt="date-time")],
         responses={"200": "Slots, earliest first; the machines that offer none with the reason; for machines the "
                           "member is not qualified for, the next induction sessions",
                    "400": "Unknown machine or type, bad length or time"})
