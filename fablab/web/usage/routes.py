"""Usage pages: a machine's use (with maintenance counters), my use, unbooked use for stewards, dead
letters for admins, CSV exports."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from flask import Response, abort, current_app, flash, g, redirect, render_template, request, url_for
from sqlalchemy import select

from ...auth import admin_required, login_required, steward_required
from ...domain import bounded
from ...extensions import db
from ...models import Member
from ...models.types import utcnow
from ...models.usage import Bridge, DeadLetter, MaintenanceRule
from ...services import machines as machine_service
from ...services import usage as usage_service
from . import bp

PERIOD = timedelta(days=30)
MAX_RULE_HOURS = 100_000.0
MAX_RULE_DAYS = 3660


def _people(rows: list[Any]) -> dict[int, Member]:
    """Who used the machines, for the rows' "Who" column: staff see every name and member number; a member
    sees only their own use as "you", others' names only where the lab chose to show them (one query)."""
    if not (g.member.is_staff or current_app.config["FABLAB_SHOW_MEMBER_NAMES"]):
        return {}
    ids = {s.member_id for s in rows if s.member_id is not None}
    if not ids:
        return {}
    return {m.id: m for m in db.session.scalars(select(Member).where(Member.id.in_(ids)))}


def _machine(slug: str) -> Any:
    try:
        return machine_service.machine_by_slug(slug)
    except machine_service.NotFound:
        abort(404)


@bp.get("/usage/machines/<slug>")
@login_required
def machine(slug: str) -> Any:
    m = _machine(slug)
    now = utcnow()
    rows = usage_service.sessions(machine=m, since=now - PERIOD, limit=300)
    counted = [s for s in rows if s.counts_as_usage]
    rules, since_service = _maintenance(m, now)
    return render_template("usage/machine.html", machine=m, rows=rows, now=now, people=_people(rows),
                           total_hours=sum(s.hours for s in counted), since_service=since_service, rules=rules)


def _maintenance(m: Any, now: datetime) -> tuple[list[tuple[MaintenanceRule, Any]], float | None]:
    """The machine's rules with their status, and hours of use since service. A stored rule the counters
    cannot compute (an interval past the end of the calendar, or not positive) leaves them unknown (None)
    instead of failing the page."""
    try:
        return usage_service.maintenance_status(m, now), usage_service.hours_since_service(m, now)
    except (OverflowError, ValueError):
        rules = db.session.scalars(select(MaintenanceRule).where(MaintenanceRule.machine_id == m.id))
        return [(rule, None) for rule in rules], None


@bp.get("/usage/machines/<slug>.csv")
@steward_required
def machine_csv(slug: str) -> Any:
    m = _machine(slug)
    rows = usage_service.sessions(machine=m, since=utcnow() - timedelta(days=366))
    return _csv(usage_service.sessions_csv(rows), f"usage-{m.slug}.csv")


@bp.get("/usage")
@login_required
def mine() -> Any:
    now = utcnow()
    rows = usage_service.sessions(member=g.member, since=now - PERIOD, limit=300)
    return render_template("usage/mine.html", rows=rows, now=now, people={},
                           total_hours=sum(s.hours for s in rows if s.counts_as_usage))


@bp.get("/usage.csv")
@login_required
def mine_csv() -> Any:
    rows = usage_service.sessions(member=g.member, since=utcnow() - timedelta(days=366))
    return _csv(usage_service.sessions_csv(rows), "my-usage.csv")


@bp.get("/usage/unbooked")
@steward_required
def unbooked() -> Any:
    rows = usage_service.sessions(since=utcnow() - PERIOD, unbooked_only=True, limit=300)
    return render_template("usage/unbooked.html", rows=rows, people=_people(rows))


@bp.post("/usage/machines/<slug>/rules")
@steward_required
def add_rule(slug: str) -> Any:
    m = _machine(slug)
    task = (request.form.get("task") or "").strip()
    try:
        hours = float(request.form["every_hours"]) if request.form.get("every_hours") else None
        days = int(request.form["every_days"]) if request.form.get("every_days") else None
    except ValueError:
        hours = days = -1
    # "nan" and "inf" parse as floats; the counters need an interval they can add to a date.
    bad_hours = hours is not None and not 0 < hours <= MAX_RULE_HOURS
    bad_days = days is not None and not 0 < days <= MAX_RULE_DAYS
    if not task or (hours is None and days is None) or bad_hours or bad_days:
        flash(f"A maintenance rule needs a task and a positive interval: up to {MAX_RULE_HOURS:.0f} h of use or "
              f"{MAX_RULE_DAYS} days.", "error")
        return redirect(url_for("usage.machine", slug=slug))
    db.session.add(MaintenanceRule(machine_id=m.id, task=task[:200], every_hours=hours, every_days=days,
                                   last_done_at=utcnow(), created_by_id=g.member.id))
    db.session.commit()
    flash(f"Maintenance rule “{task}” added.", "ok")
    return redirect(url_for("usage.machine", slug=slug))


@bp.post("/usage/rules/<id:rule_id>/done")
@steward_required
def rule_done(rule_id: int) -> Any:
    rule = db.session.get(MaintenanceRule, rule_id)
    if rule is None:
        abort(404)
    usage_service.mark_service_done(rule, utcnow())
    db.session.commit()
    flash(f"“{rule.task}” done; the counter starts again.", "ok")
    return redirect(url_for("usage.machine", slug=rule.machine.slug))


@bp.route("/admin/dead-letters", methods=["GET", "POST"])
@admin_required
def dead_letters() -> Any:
    if request.method == "POST":
        ids = [bounded.parse_id(i, "id") for i in request.form.getlist("id")]
        for row in db.session.scalars(select(DeadLetter).where(DeadLetter.id.in_(ids))):
            row.reviewed = True
        db.session.commit()
        flash(f"{len(ids)} marked as reviewed.", "ok")
        return redirect(url_for("usage.dead_letters"))
    return render_template("usage/dead_letters.html", rows=usage_service.dead_letters())


def _csv(body: str, name: str) -> Response:
    return Response(body, mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


@bp.route("/admin/bridges", methods=["GET", "POST"])
@admin_required
def bridges() -> Any:
    """Bridges, their machines and whether they are online; registering one shows its password once."""
    created = None
    if request.method == "POST":
        bridge_id = (request.form.get("bridge_id") or "").strip()
        slugs = request.form.getlist("machines")
        try:
            if not slugs:
                raise usage_service.BridgeError("Choose at least one machine for the bridge.")
            bridge, password = usage_service.add_bridge(bridge_id, slugs, actor=g.member)
        except usage_service.BridgeError as exc:
            db.session.rollback()
            flash(str(exc), "error")
        else:
            db.session.commit()
            created = (bridge.bridge_id, password)
    rows = list(db.session.scalars(select(Bridge).order_by(Bridge.bridge_id)))
    return render_template("usage/bridges.html", bridges=rows, created=created,
                           machines=machine_service.list_machines())
