"""Bookings and availability over the API. Rejections: 409 (overlap) or 422 (a rule), code names the rule."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import request

from ..domain import bounded
from ..domain.input_schema import Body, Field
from ..extensions import db
from ..models import Booking, Member
from ..models.types import utcnow
from ..services import bookings as svc
from ..services import machines as machine_service
from . import bp
from .common import api_member, fail, iso, json_body, ok, parse_time, query, token_required
from .openapi import document, p, q, qf

MAX_RANGE = timedelta(days=62)

NEW_BOOKING = Body((
    Field("machine", required=True, max_length=60, description="the machine's slug"),
    Field("start", "datetime", required=True),
    Field("end", "datetime", description="the end; or give minutes"),
    Field("minutes", "integer", lo=1, hi=bounded.MAX_MINUTES, description="the length, when no end is given"),
))
MEMBER_ID = Field("member_id", "id", description="staff only: this member's bookings")
MACHINE = Field("machine", max_length=60, description="machine slug")
REASON = Field("reason", max_length=500, description="required when cancelling someone else's")


def booking_json(b: Booking) -> dict[str, Any]:
    return {
        "id": b.id,
        "machine": b.machine.slug,
        "member_id": b.member_id,
        "start": iso(b.start_at),
        "end": iso(b.end_at),
        "status": svc.effective_status(b),
        "kind": b.kind,
        "source": b.source,
        "checked_in_at": iso(b.checked_in_at),
        "cancel_reason": b.cancel_reason or None,
    }


def _rejected(exc: svc.BookingRejected) -> Any:
    extra: dict[str, Any] = {"violations": [v.to_dict() for v in exc.violations]}
    if exc.suggestion is not None:
        extra["next_free"] = {"start": iso(exc.suggestion.start), "end": iso(exc.suggestion.end)}
    fail(exc.status, exc.code, exc.message, **extra)


def _machine(slug: str | None) -> Any:
    if not slug:
        fail(400, "missing_field", "'machine' (the machine's slug) is required.")
    try:
        return machine_service.machine_by_slug(slug)
    except machine_service.NotFound:
        fail(404, "not_found", f"No machine called {slug!r}.")


def _range(default_days: int = 7) -> tuple[Any, Any]:
    now = utcnow()
    start = parse_time("from", now)
    end = parse_time("to", start + timedelta(days=default_days))
    if end <= start:
        fail(422, "end_before_start", "'to' must be after 'from'.")
    if end - start > MAX_RANGE:
        fail(422, "range_too_long", "Ask for at most 62 days at a time.")
    return start, end


@bp.get("/machines/<slug>/availability")
@token_required()
def availability(slug: str) -> Any:
    machine = _machine(slug)
    start, end = _range()
    free = svc.availability(machine, start, end)
    return ok({"machine": slug, "from": iso(start), "to": iso(end),
               "free": [{"start": iso(iv.start), "end": iso(iv.end)} for iv in free]})


@bp.get("/bookings")
@token_required()
def list_bookings() -> Any:
    me = api_member()
    start, end = _range(default_days=30)
    member: Member = me
    args = query(MEMBER_ID, MACHINE)
    if "member_id" in args:
        if not me.is_staff:
            fail(403, "forbidden", "Only stewards and admins can list other members' bookings.")
        other = db.session.get(Member, args["member_id"])
        if other is None:
            fail(404, "not_found", "No such member.")
        member = other
    machine = _machine(args["machine"]) if args.get("machine") else None
    if machine is not None and me.is_staff and "member_id" not in args:
        rows = svc.bookings_between(machine, start, end)
    else:
        rows = svc.member_bookings(member, since=start, until=end, machine=machine)
    return ok({"bookings": [booking_json(b) for b in rows]})


@bp.post("/bookings")
@token_required()
def create() -> Any:
    body = json_body(NEW_BOOKING)
    machine = _machine(body["machine"])
    start = body["start"]
    if "end" in body:
        end = body["end"]
    elif "minutes" in body:
        end = start + timedelta(minutes=body["minutes"])
    else:
        fail(400, "missing_field", "Give 'end' or 'minutes'.", field="end")
    try:
        booking = svc.create_booking(api_member(), machine, start, end, source="api")
    except svc.BookingRejected as exc:
        _rejected(exc)
    return ok(booking_json(booking), 201)


def _own(booking_id: int) -> Booking:
    b = svc.get_booking(booking_id)
    if b is None or not svc.can_manage(api_member(), b):
        fail(404, "not_found", f"No booking {booking_id} of yours.")
    return b


@bp.get("/bookings/<id:booking_id>")
@token_required()
def get(booking_id: int) -> Any:
    return ok(booking_json(_own(booking_id)))


@bp.delete("/bookings/<id:booking_id>")
@token_required()
def delete(booking_id: int) -> Any:
    b = _own(booking_id)
    body = request.get_json(silent=True) or {}
    raw = request.args.get("reason") or (body.get("reason") if isinstance(body, dict) else None) or ""
    reason = bounded.parse_text(raw, "reason", REASON.max_length)
    try:
        svc.cancel_booking(b, api_member(), reason)
    except svc.BookingRejected as exc:
        _rejected(exc)
    return ok(booking_json(b))


_TIME = {"type": "string", "format": "date-time"}
_TEXT_OR_NULL = {"type": ["string", "null"]}
BOOKING_SCHEMA = {"type": "object", "required": ["id", "machine", "member_id", "start", "end", "status", "kind"],
                  "properties": {"id": {"type": "integer"}, "machine": {"type": "string"},
                                 "member_id": {"type": "integer"}, "start": _TIME, "end": _TIME,
                                 "status": {"type": "string"}, "kind": {"type": "string"}, "source": _TEXT_OR_NULL,
                                 "checked_in_at": {"type": ["string", "null"], "format": "date-time"},
                                 "cancel_reason": _TEXT_OR_NULL}}
_ONE = {"application/json": {"schema": BOOKING_SCHEMA}}
_LIST = {"application/json": {"schema": {"type": "object", "required": ["bookings"], "properties": {
    "bookings": {"type": "array", "items": BOOKING_SCHEMA}}}}}
_T = [q("from", "start of the period (ISO 8601; default now)", fmt="date-time"),
      q("to", "end of the period (ISO 8601)", fmt="date-time")]
document("/machines/{slug}/availability", "GET", "Free intervals of a machine under its rules",
         params=[p("slug", "machine"), *_T], responses={"200": "free intervals", "404": "unknown machine",
                                                        "400": "malformed time", "422": "bad range"})
document("/bookings", "GET", "Your bookings (staff: ?machine= for all of a machine, ?member_id=)",
         params=[*_T, qf(MACHINE), qf(MEMBER_ID)], content=_LIST,
         responses={"200": "bookings", "403": "member_id given by a member", "404": "unknown machine or member",
                    "422": "bad range"})
document("/bookings", "POST", "Book machine time",
         body=NEW_BOOKING, content=_ONE,
         responses={"201": "booked", "400": "malformed", "404": "unknown machine",
                    "409": "overlaps another booking (error.next_free suggests a slot)",
                    "422": "a rule refused it; error.code names the rule, error.violations lists all"})
document("/bookings/{booking_id}", "GET", "One of your bookings", params=[p("booking_id", "id", "integer")],
         responses={"200": "OK", "404": "not found"}, content=_ONE)
document("/bookings/{booking_id}", "DELETE", "Cancel a booking (staff: with ?reason=)",
         params=[p("booking_id", "id", "integer"), qf(REASON)], content=_ONE,
         responses={"200": "cancelled", "404": "not found", "422": "not active / reason missing"})
