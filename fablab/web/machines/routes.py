"""The machine list (the lab's front page) and one machine's page with its week calendar."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import abort, current_app, g, render_template, request

from ...auth import login_required
from ...domain import bounded
from ...models.types import utcnow
from ...services import bookings as booking_service
from ...services import calendar_view
from ...services import machines as machine_service
from ...services import waitlist as waitlist_service
from . import bp

MAX_AHEAD = timedelta(days=3660)  # far beyond any booking horizon


@bp.get("/")
@login_required
def overview() -> Any:
    now = utcnow()
    machines = machine_service.list_machines()
    next_free = {m.id: slot.start for m in machines if (slot := booking_service.next_free(m, now)) is not None}
    offers = waitlist_service.member_offers(g.member, now)
    return render_template("machines/overview.html", machines=machines, now=now, next_free=next_free, offers=offers)


@bp.get("/machines/<slug>/status")
@login_required
def status(slug: str) -> Any:
    """The live-state badge alone (polled by the machine page)."""
    try:
        machine = machine_service.machine_by_slug(slug)
    except machine_service.NotFound:
        abort(404)
    return render_template("machines/_status.html", machine=machine)


@bp.get("/machines/<slug>")
@login_required
def detail(slug: str) -> Any:
    try:
        machine = machine_service.machine_by_slug(slug)
    except machine_service.NotFound:
        abort(404, f"There is no machine called “{slug}”.")
    now = utcnow()
    tz = current_app.config["TZ"]
    raw_week = request.args.get("week")
    today = now.astimezone(tz).date()
    day = bounded.parse_date(raw_week, "week") if raw_week else today
    if day > today + MAX_AHEAD:  # the calendar's week would run past the last day there is
        abort(400, f"{day.isoformat()} is too far ahead to show.")
    week = calendar_view.build_week(machine, g.member, max(day, today), now, tz)
    qual = machine_service.qualification_state(g.member, machine, now)
    # ?start= (a tap on a free cell of the day view or find-a-time): open the booking dialog for that time.
    raw_start = request.args.get("start")
    open_start = bounded.parse_datetime(raw_start, "start", tz) if raw_start else None
    return render_template("machines/detail.html", machine=machine, qual=qual, week=week, now=now,
                           policy=booking_service.policy_for(machine), open_start=open_start)
