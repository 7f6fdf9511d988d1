"""Induction pages. Views are thin: fablab/services/inductions.py holds the rules; a refusal is shown in place
with the one error partial (templates/_refusal.html)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import abort, current_app, flash, g, redirect, render_template, request, url_for
from htmx_flask import request as hx_request

from ...auth import login_required, steward_required
from ...domain import bounded
from ...domain import inductions as ind
from ...extensions import db
from ...models import Machine, MachineType, Member
from ...models.types import utcnow
from ...services import induction_effort
from ...services import inductions as svc
from ...services import machines as machine_service
from ...services import members as member_service
from ..bookings.refusals import Action, Refusal
from . import bp
from .forms import RequestForm, ScheduleForm

REFUSAL_HEADER = "X-Fablab-Refusal"


@bp.app_context_processor
def _machine_page_helpers() -> dict[str, Any]:
    """`next_inductions(machine)` for the machine page (shown when the member lacks the qualification)."""

    def next_inductions(machine: Machine) -> list[svc.SessionInfo]:
        member: Member | None = g.get("member")
        return svc.sessions_for_machine(machine, utcnow(), member)

    return {"next_inductions": next_inductions}


def _session_or_404(session_id: int) -> Any:
    try:
        return svc.get_session(session_id)
    except svc.NotFound:
        abort(404, "No such induction session.")


def _refusal(exc: svc.InductionRefused) -> Refusal:
    r = Refusal(exc.code, [exc.message])
    if exc.code in ("session_started", "session_cancelled", "session_done"):
        r.actions.append(Action("Other sessions", url_for("inductions.index"), method="get", primary=True))
    elif exc.code == "missing_prerequisites":
        for type_id in exc.refusal.params.get("type_ids", []):
            r.actions.append(Action("Sessions for the prerequisite", url_for("inductions.index", type=type_id),
                                    method="get", primary=True))
            break
    return r


def _row(session_id: int, message: str | None = None, refusal: Refusal | None = None, status: int = 200) -> Any:
    s = _session_or_404(session_id)
    if hx_request.htmx:
        headers = {REFUSAL_HEADER: "1"} if refusal is not None else {}
        return render_template("inductions/_session.html", i=svc.info(s, g.member), now=utcnow(), message=message,
                               refusal=refusal), status, headers
    if refusal is not None:
        flash(" ".join(refusal.reasons), "error")
    elif message:
        flash(message, "ok")
    return redirect(url_for("inductions.index"))


@bp.get("")
@login_required
def index() -> Any:
    now = utcnow()
    raw_type = request.args.get("type")
    type_id = bounded.parse_int(raw_type, "type", 1, 2**31 - 1) if raw_type else None
    form = RequestForm()
    form.machine_type.choices = [(t.id, t.name) for t in machine_service.machine_types()]
    return render_template("inductions/index.html", sessions=svc.upcoming(now, g.member, type_id), now=now,
                           form=form, may_train=svc.may_train(g.member),
                           my_requests={t.id for t in machine_service.machine_types()
                                        if svc.open_request_of(g.member, t.id) is not None})


@bp.post("/<id:session_id>/signup")
@login_required
def signup(session_id: int) -> Any:
    _session_or_404(session_id)
    try:
        row = svc.sign_up(g.member, session_id)
    except svc.InductionRefused as exc:
        db.session.rollback()
        return _row(session_id, refusal=_refusal(exc), status=exc.status)
    message = "You have a place." if row.status == ind.CONFIRMED else \
        f"The session is full: you are number {row.position} on the waitlist."
    return _row(session_id, message)


@bp.post("/<id:session_id>/cancel")
@login_required
def cancel(session_id: int) -> Any:
    _session_or_404(session_id)
    try:
        svc.cancel_signup(g.member, session_id)
    except svc.InductionRefused as exc:
        db.session.rollback()
        return _row(session_id, refusal=_refusal(exc), status=exc.status)
    return _row(session_id, "Cancelled; your place goes to the next on the waitlist.")


@bp.post("/requests")
@login_required
def ask() -> Any:
    form = RequestForm()
    form.machine_type.choices = [(t.id, t.name) for t in machine_service.machine_types()]
    if not form.validate_on_submit():
        abort(400, "Choose a machine type.")
    mtype = db.session.get(MachineType, form.machine_type.data)
    if mtype is None:
        abort(400, "Unknown machine type.")
    try:
        svc.request_induction(g.member, mtype)
    except svc.InductionRefused as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return redirect(url_for("inductions.index")), 303
    flash(f"Asked for a {mtype.name} induction; trainers see the request.", "ok")
    return redirect(url_for("inductions.index")), 303


# --- trainers ------------------------------------------------------------------------------------------


def _require_trainer() -> None:
    if not svc.may_train(g.member):
        abort(403, "Only stewards, admins and trainers can do this.")


def _schedule_form() -> ScheduleForm:
    form = ScheduleForm()
    form.machine_type.choices = [(t.id, t.name) for t in svc.trainable_types(g.member)]
    form.prerequisites.choices = [(t.id, t.name) for t in machine_service.machine_types()]
    # Only staff can block a machine (the booking core's rule for blocks).
    form.machine.choices = [(0, "none")] + ([(m.id, f"{m.name} ({m.machine_type.name})")
                                            for m in machine_service.list_machines()] if g.member.is_staff else [])
    return form


@bp.route("/train", methods=["GET", "POST"])
@login_required
def train() -> Any:
    _require_trainer()
    form = _schedule_form()
    now = utcnow()
    status = 200
    if request.method == "POST":
        status = 422
        if form.validate_on_submit():
            mtype = db.session.get(MachineType, form.machine_type.data)
            machine = db.session.get(Machine, form.machine.data) if form.machine.data else None
            start = bounded.parse_datetime(form.start.data, "start", current_app.config["TZ"])
            assert form.minutes.data is not None and form.capacity.data is not None
            try:
                if mtype is None:
                    raise svc.NotAllowed("Unknown machine type.")
                svc.schedule(g.member, mtype, start, start + timedelta(minutes=form.minutes.data),
                             capacity=form.capacity.data, place=form.place.data or "", machine=machine,
                             prerequisite_type_ids=form.prerequisites.data or [],
                             material_url=form.material_url.data or "", is_refresher=form.is_refresher.data)
            except svc.NotAllowed as exc:
                abort(403, str(exc))
            except svc.InductionRefused as exc:
                db.session.rollback()
                form.start.errors = [*form.start.errors, exc.message]
            else:
                flash("Session scheduled.", "ok")
                return redirect(url_for("inductions.train"), 303)
    sessions = svc.trained_by(g.member, now)
    credits = induction_effort.credits(i.session for i in sessions)
    return render_template("inductions/train.html", form=form, sessions=sessions, now=now, credits=credits,
                           credit_totals=induction_effort.total(credits)), status


@bp.post("/<id:session_id>/cancel-session")
@login_required
def cancel_session(session_id: int) -> Any:
    _session_or_404(session_id)
    try:
        svc.cancel_session(g.member, session_id, request.form.get("reason", "")[:255])
    except svc.NotAllowed as exc:
        abort(403, str(exc))
    except svc.InductionRefused as exc:
        db.session.rollback()
        flash(exc.message, "error")
    else:
        flash("Session cancelled; every participant is told and the machine is free again.", "ok")
    return redirect(url_for("inductions.train"), 303)


@bp.get("/<id:session_id>/attendance")
@login_required
def attendance(session_id: int) -> Any:
    s = _session_or_404(session_id)
    if s.trainer_id != g.member.id and not g.member.is_staff:
        abort(403)
    return render_template("inductions/attendance.html", s=s, signups=svc.signups_of(s.id), now=utcnow())


@bp.post("/<id:session_id>/attendance")
@login_required
def mark(session_id: int) -> Any:
    _session_or_404(session_id)
    member_id = bounded.parse_int(request.form.get("member_id"), "member_id", 1, 2**31 - 1)
    try:
        svc.mark_attendance(g.member, session_id, member_id, request.form.get("status", ""))
    except svc.NotAllowed as exc:
        abort(403, str(exc))
    except svc.InductionRefused as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return redirect(url_for("inductions.attendance", session_id=session_id), 303)
    flash("Attendance saved.", "ok")
    return redirect(url_for("inductions.attendance", session_id=session_id), 303)


@bp.get("/requests")
@login_required
def requests_page() -> Any:
    _require_trainer()
    return render_template("inductions/requests.html", demand=svc.open_requests())


@bp.route("/rules", methods=["GET", "POST"])
@steward_required
def rules() -> Any:
    """How long each type's qualification lasts after its induction, and after how many months unused."""
    if request.method == "POST":
        type_id = bounded.parse_int(request.form.get("machine_type"), "machine_type", 1, 2**31 - 1)
        mtype = db.session.get(MachineType, type_id)
        if mtype is None:
            abort(400, "Unknown machine type.")
        months = {k: bounded.parse_int(request.form.get(k), k, 1, 120) if request.form.get(k, "").strip() else None
                  for k in ("validity_months", "disuse_months")}
        svc.set_rule(g.member, mtype, months["validity_months"], months["disuse_months"])
        flash(f"Saved for {mtype.name}.", "ok")
        return redirect(url_for("inductions.rules"), 303)
    return render_template("inductions/rules.html", types=machine_service.machine_types(), rules=svc.rules())


@bp.route("/trainers", methods=["GET", "POST"])
@steward_required
def trainers() -> Any:
    """Staff make members trainers for a type (they then schedule and run its sessions) or remove them."""
    if request.method == "POST":
        remove = request.form.get("remove")
        if remove:
            try:
                svc.revoke_trainer(g.member, bounded.parse_int(remove, "remove", 1, 2**31 - 1))
            except svc.NotFound:
                abort(404, "No such trainer entry.")
            flash("Trainer removed.", "ok")
            return redirect(url_for("inductions.trainers"), 303)
        member = member_service.member_by_email(bounded.parse_text(request.form.get("email"), "email", 254).strip())
        mtype = db.session.get(MachineType, bounded.parse_int(request.form.get("machine_type"), "machine_type",
                                                               1, 2**31 - 1))
        if member is None or mtype is None:
            flash("No member with that e-mail address, or no such machine type.", "error")
            return redirect(url_for("inductions.trainers"), 303)
        svc.grant_trainer(g.member, member, mtype)
        flash(f"{member.name} can now run {mtype.name} inductions.", "ok")
        return redirect(url_for("inductions.trainers"), 303)
    return render_template("inductions/trainers.html", trainers=svc.trainers(), types=machine_service.machine_types())
