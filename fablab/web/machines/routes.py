"""The machine list (the lab's front page) and one machine's page."""

from __future__ import annotations

from typing import Any

from flask import abort, g, render_template

from ...auth import login_required
from ...models.types import utcnow
from ...services import machines as machine_service
from . import bp


@bp.get("/")
@login_required
def overview() -> Any:
    machines = machine_service.list_machines()
    return render_template("machines/overview.html", machines=machines, now=utcnow())


@bp.get("/machines/<slug>")
@login_required
def detail(slug: str) -> Any:
    try:
        machine = machine_service.machine_by_slug(slug)
    except machine_service.NotFound:
        abort(404, f"There is no machine called “{slug}”.")
    qual = machine_service.qualification_state(g.member, machine, utcnow())
    return render_template("machines/detail.html", machine=machine, qual=qual)
