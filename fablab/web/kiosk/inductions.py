"""Signing up for an induction session at the kiosk: the member panel lists the next sessions open to the
member (fablab.services.inductions.open_to); one tap signs up, or joins the waitlist of a full one."""

from __future__ import annotations

from typing import Any

from flask import abort

from ...services import bookings as booking_service
from ...services import inductions as svc
from . import bp
from .routes import _done, _member_or_identify, _panel, kiosk_required


@bp.post("/inductions/<id:session_id>/signup")
@kiosk_required
def induction_signup(session_id: int) -> Any:
    member = _member_or_identify()
    try:
        row = svc.sign_up(member, session_id)
    except svc.NotFound:
        abort(404, "There is no such induction session.")
    except svc.InductionRefused as exc:
        return _panel(member, error=exc.message), 200
    s = row.session
    when = s.start_at.astimezone(booking_service.lab_tz())
    what = f"the {s.machine_type.name} {'refresher' if s.is_refresher else 'induction'} on {when:%a %d %b, %H:%M}"
    if row.position is not None:
        return _done(f"You are number {row.position} on the waitlist for {what}; you will be told if a place frees.")
    return _done(f"Signed up for {what}. A confirmation with a calendar invitation is on its way.")
