"""Induction sessions over the API: the upcoming ones with places left, sign-up and cancel, attendance."""

from __future__ import annotations

from typing import Any

from flask import request

from ..domain import bounded
from ..domain import inductions as ind
from ..domain.bounded import MAX_ID
from ..domain.input_schema import Body, Field
from ..extensions import db
from ..models.types import utcnow
from ..services import inductions as svc
from . import bp
from .common import api_member, fail, iso, json_body, ok, token_required
from .openapi import document, p, q

ATTENDANCE = Body((
    Field("member_id", "id", required=True, description="the participant"),
    Field("status", required=True, choices=ind.ATTENDANCE, max_length=10,
          description="passed grants the qualification with the type's validity"),
))


def _session_json(i: svc.SessionInfo) -> dict[str, Any]:
    s = i.session
    return {"id": s.id, "machine_type": s.machine_type.slug, "machine": s.machine.slug if s.machine else None,
            "start": iso(s.start_at), "end": iso(s.end_at), "place": s.place, "capacity": s.capacity,
            "places_left": i.places_left, "waitlisted": i.waitlisted, "is_refresher": s.is_refresher,
            "prerequisites": list(s.prerequisite_type_ids or []), "material_url": s.material_url or None,
            "trainer": s.trainer.name, "status": s.status,
            "my_signup": ({"status": i.mine.status, "position": i.mine.position} if i.mine is not None else None)}


def _refused(exc: svc.InductionRefused) -> Any:
    db.session.rollback()
    fail(exc.status, exc.code, exc.message, **({"details": exc.refusal.params} if exc.refusal.params else {}))


def _session_or_404(session_id: int) -> None:
    try:
        svc.get_session(session_id)
    except svc.NotFound:
        fail(404, "not_found", f"No induction session {session_id}.")


@bp.get("/inductions")
@token_required()
def inductions() -> Any:
    raw = request.args.get("type", "").strip()
    type_id = bounded.parse_int(raw, "type", 1, MAX_ID) if raw else None
    now = utcnow()
    return ok({"sessions": [_session_json(i) for i in svc.upcoming(now, api_member(), type_id)]})


@bp.post("/inductions/<id:session_id>/signup")
@token_required()
def induction_signup(session_id: int) -> Any:
    _session_or_404(session_id)
    try:
        row = svc.sign_up(api_member(), session_id)
    except svc.InductionRefused as exc:
        _refused(exc)
    info = svc.info(svc.get_session(session_id), api_member())
    return ok({"status": row.status, "position": row.position, "session": _session_json(info)}, 201)


@bp.delete("/inductions/<id:session_id>/signup")
@token_required()
def induction_cancel(session_id: int) -> Any:
    _session_or_404(session_id)
    try:
        row = svc.cancel_signup(api_member(), session_id)
    except svc.InductionRefused as exc:
        _refused(exc)
    info = svc.info(svc.get_session(session_id), api_member())
    return ok({"status": row.status, "session": _session_json(info)})


@bp.post("/inductions/<id:session_id>/attendance")
@token_required()
def induction_attendance(session_id: int) -> Any:
    _session_or_404(session_id)
    body = json_body(ATTENDANCE)
    try:
        row = svc.mark_attendance(api_member(), session_id, body["member_id"], body["status"])
    except svc.NotAllowed as exc:
        fail(403, "forbidden", str(exc))
    except svc.InductionRefused as exc:
        _refused(exc)
    return ok({"member_id": row.member_id, "status": row.status})


document("/inductions", "get", "Upcoming induction sessions with places left and your signup, soonest first",
         params=[q("type", "Only sessions for this machine type id")],
         responses={"200": "The sessions", "400": "Not a type id"})
document("/inductions/{session_id}/signup", "post", "Sign up for a session: a place if one is free, else the "
         "waitlist (fair-share order: fewer recent inductions first)", params=[p("session_id", "id", "integer")],
         responses={"201": "Signed up: status confirmed or waitlisted, with the waitlist position",
                    "404": "No such session",
                    "409": "Already signed up (already_signed_up)",
                    "422": "Refused: session_started, session_cancelled, session_done, already_qualified, "
                           "missing_prerequisites (details.type_ids)"})
document("/inductions/{session_id}/signup", "delete", "Cancel your signup; the next on the waitlist moves up",
         params=[p("session_id", "id", "integer")],
         responses={"200": "Cancelled", "404": "Not signed up (not_signed_up) or no such session",
                    "422": "The session has started (session_started)"})
document("/inductions/{session_id}/attendance", "post", "Trainers: mark a participant attended, passed or "
         "missed (from the session's start on)", params=[p("session_id", "id", "integer")], body=ATTENDANCE,
         responses={"200": "Saved", "403": "Not this session's trainer, a steward or an admin",
                    "404": "No such session, or the member holds no place in it (not_signed_up)",
                    "409": "The session was cancelled (session_cancelled)",
                    "422": "Before the start (not_started)"})
