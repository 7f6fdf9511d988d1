"""Usage sessions over the API: members see their own, stewards and admins any machine's."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import request

from ..models.types import utcnow
from ..models.usage import UsageSession
from ..services import machines as machine_service
from ..services import usage as usage_service
from . import bp
from .common import api_member, fail, iso, ok, parse_time, token_required
from .openapi import document, q


def usage_json(s: UsageSession, reveal_member: bool) -> dict[str, Any]:
    return {"id": s.id, "machine": s.machine.slug, "member_id": s.member_id if reveal_member else None,
            "booking_id": s.booking_id if reveal_member else None, "start": iso(s.start_at), "end": iso(s.end_at),
            "hours": round(s.hours, 4), "energy_wh": s.energy_wh, "source": s.source, "closed_by": s.closed_by,
            "open": s.open, "unbooked": s.unbooked, "overrun_minutes": round(s.overrun_minutes, 1),
            "counts_as_usage": s.counts_as_usage, "kind": s.kind, "job_file": s.job_file}


@bp.get("/usage")
@token_required()
def usage() -> Any:
    me = api_member()
    now = utcnow()
    start = parse_time("from", now - timedelta(days=30))
    end = parse_time("to", now)
    if end <= start:
        fail(422, "end_before_start", "'to' must be after 'from'.")
    machine = None
    if request.args.get("machine"):
        try:
            machine = machine_service.machine_by_slug(request.args["machine"])
        except machine_service.NotFound:
            fail(404, "not_found", f"No machine called {request.args['machine']!r}.")
    # Members see only their own use; stewards and admins see everyone's.
    rows = usage_service.sessions(machine=machine, member=None if me.is_staff else me, since=start, until=end)
    return ok({"from": iso(start), "to": iso(end),
               "sessions": [usage_json(s, me.is_staff or s.member_id == me.id) for s in rows]})


document("/usage", "GET", "Usage sessions (members: their own; staff: all)",
         params=[q("machine", "machine slug"), q("from", "ISO 8601 (default 30 days ago)", fmt="date-time"),
                 q("to", "ISO 8601 (default now)", fmt="date-time")],
         responses={"200": "sessions", "400": "malformed time", "404": "unknown machine", "422": "bad range"})
