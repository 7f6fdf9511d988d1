"""Fair scheduling pages: my priority, request windows and their results, the waitlist, the task board,
and the admin's policy editor. Every page first brings time-based state up to date (catch_up)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import abort, current_app, flash, g, jsonify, redirect, render_template, request, url_for
from htmx_flask import request as hx_request

from ...auth import admin_required, login_required, steward_required
from ...domain import bounded
from ...domain import policy as pol
from ...extensions import db
from ...models import Machine, Member
from ...models.scheduling import RequestWindow
from ...models.types import utcnow
from ...services import bookings as booking_service
from ...services import catch_up, window_draw
from ...services import effort as effort_service
from ...services import fairshare_data as fsd
from ...services import machines as machine_service
from ...services import waitlist as waitlist_service
from ...services import windows as window_service
from ...services.scheduling_common import SchedulingError
from ..choices import options
from . import bp
from .forms import OpenWindowForm, SchedulingPolicyForm, TaskForm, WaitlistForm


def _machine(slug: str) -> Machine:
    try:
        return machine_service.machine_by_slug(slug)
    except machine_service.NotFound:
        abort(404, f"There is no machine called “{slug}”.")


def _window(window_id: int) -> RequestWindow:
    w = window_service.get_window(window_id)
    if w is None:
        abort(404, "There is no such request window.")
    return w


def _now() -> datetime:
    now = utcnow()
    catch_up.scheduling_state_quietly(now)
    return now


def _tz() -> Any:
    return current_app.config["TZ"]


def _local(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=_tz()).astimezone(UTC) if value.tzinfo is None else value.astimezone(UTC)


def _usable(member: Member, now: datetime) -> list[Machine]:
    out = []
    for m in machine_service.list_machines():
        if not booking_service.policy_for(m).qualification_required:
            out.append(m)
        elif machine_service.qualification_state(member, m, now).qualified:
            out.append(m)
    return out


def _refused(exc: SchedulingError) -> None:
    flash(exc.message, "error")


# --- my priority and the windows -------------------------------------------------------------------------


@bp.get("/scheduling")
@login_required
def index() -> Any:
    now = _now()
    machines = _usable(g.member, now)
    views = fsd.factor_views(g.member, machines, now)
    windows = window_service.open_windows()
    recent = [w for m in machines for w in window_service.windows_of(m, limit=3) if w.status == "closed"]
    recent.sort(key=lambda w: w.closed_at or now, reverse=True)
    my_counts = {w.id: sum(1 for r in w.requests if r.member_id == g.member.id) for w in windows}
    return render_template("scheduling/index.html", views=views, windows=windows, recent=recent[:10],
                           my_counts=my_counts, modes={m.id: window_service.mode_of(m) for m in machines}, now=now)


@bp.get("/scheduling/machines/<slug>")
@login_required
def machine(slug: str) -> Any:
    now = _now()
    m = _machine(slug)
    windows = window_service.open_windows(m)
    slots = {w.id: window_service.window_slots(w, g.member) for w in windows}
    mine = {w.id: [r for r in w.requests if r.member_id == g.member.id] for w in windows}
    labels = {w.id: window_service.label_of(w, g.member) for w in windows}
    past = [w for w in window_service.windows_of(m) if w.status != "open"]
    return render_template("scheduling/machine.html", machine=m, mode=window_service.mode_of(m), windows=windows,
                           slots=slots, mine=mine, labels=labels, past=past, view=fsd.factor_view(g.member, m, now),
                           settings=fsd.settings_for(m), now=now, accepting=lambda w: window_service.accepting(w, now))


@bp.post("/scheduling/windows/<id:window_id>/requests")
@login_required
def set_requests(window_id: int) -> Any:
    now = utcnow()
    w = _window(window_id)
    wishes = []
    for name, value in request.form.items():
        if not name.startswith("rank:") or not value.strip():
            continue
        start_s, _, end_s = name[5:].partition("/")
        start, end = bounded.parse_datetime(start_s, "start", _tz()), bounded.parse_datetime(end_s, "end", _tz())
        wishes.append((start, end, bounded.parse_int(value, "rank", -10**6, 10**6)))
    try:
        window_service.set_requests(g.member, w, wishes, now)
    except SchedulingError as exc:
        _refused(exc)
    else:
        flash(f"Saved {len(wishes)} request{'s' if len(wishes) != 1 else ''}. You can change them until "
              f"{w.closes_at.astimezone(_tz()):%a %d %b %H:%M}.", "ok")
    return redirect(url_for("scheduling.machine", slug=w.machine.slug))


@bp.post("/scheduling/requests/<id:request_id>/withdraw")
@login_required
def withdraw(request_id: int) -> Any:
    from ...models.scheduling import SlotRequest

    req = db.session.get(SlotRequest, request_id)
    slug = req.window.machine.slug if req is not None else None
    try:
        window_service.withdraw_request(g.member, request_id)
    except SchedulingError as exc:
        if exc.status == 404:
            abort(404, exc.message)
        _refused(exc)
    else:
        flash("Request withdrawn.", "ok")
    return redirect(url_for("scheduling.machine", slug=slug))


@bp.get("/scheduling/windows/<id:window_id>")
@login_required
def results(window_id: int) -> Any:
    _now()
    w = _window(window_id)
    res = window_draw.window_results(w, g.member)
    return render_template("scheduling/results.html", w=w, res=res, trace=window_draw.published_trace(w, g.member))


@bp.get("/scheduling/windows/<id:window_id>/trace.json")
@login_required
def trace(window_id: int) -> Any:
    w = _window(window_id)
    if w.trace is None or w.revealed_seed is None:
        abort(404, "The draw has not run yet.")
    published = window_draw.published_trace(w, g.member)
    if published is None:
        abort(404, "This window was drawn before labels were random: its trace could be traced back to members, "
                   "so it is no longer published. Its results page still shows the outcome.")
    return jsonify({"window": w.id, "commitment": w.commitment, "seed": w.revealed_seed, "trace": published})


# --- waitlist --------------------------------------------------------------------------------------------


def _waitlist_form(now: datetime) -> WaitlistForm:
    form = WaitlistForm()
    form.machine.choices = options((m.slug, m.name) for m in _usable(g.member, now))
    return form


@bp.route("/scheduling/waitlist", methods=["GET", "POST"])
@login_required
def waitlist() -> Any:
    now = _now()
    form = _waitlist_form(now)
    if form.validate_on_submit():
        m = _machine(form.machine.data)
        try:
            waitlist_service.join_waitlist(g.member, m, kind=form.kind.data, start=_local(form.start.data),
                                           end=_local(form.end.data), min_hours=form.min_hours.data or 0.0, now=now)
        except SchedulingError as exc:
            form.machine.errors.append(exc.message)
        else:
            flash(f"You are on the waitlist for {m.name}.", "ok")
            return redirect(url_for("scheduling.waitlist"))
    entries = waitlist_service.member_waitlist(g.member, now)
    positions = {e.id: waitlist_service.waitlist_position(e, now) for e in entries}
    status = 422 if request.method == "POST" else 200
    return render_template("scheduling/waitlist.html", form=form, entries=entries, positions=positions,
                           offers=waitlist_service.member_offers(g.member, now), now=now), status


@bp.get("/scheduling/offers")
@login_required
def offers() -> Any:
    """My open offers: the partial (polled by htmx on the waitlist page and usable on the kiosk)."""
    now = _now()
    return render_template("scheduling/_offers.html", offers=waitlist_service.member_offers(g.member, now), now=now)


@bp.post("/scheduling/waitlist/<id:entry_id>/leave")
@login_required
def leave(entry_id: int) -> Any:
    try:
        waitlist_service.leave_waitlist(g.member, entry_id)
    except SchedulingError as exc:
        abort(exc.status, exc.message)
    flash("You left the waitlist.", "ok")
    return redirect(url_for("scheduling.waitlist"))


@bp.post("/scheduling/offers/<id:offer_id>/claim")
@login_required
def claim(offer_id: int) -> Any:
    try:
        booking = waitlist_service.claim_offer(g.member, offer_id)
    except SchedulingError as exc:
        if exc.status == 404:
            abort(404, exc.message)
        _refused(exc)
        return redirect(url_for("scheduling.waitlist"))
    flash(f"Booked {booking.machine.name} {booking.start_at.astimezone(_tz()):%a %d %b %H:%M}–"
          f"{booking.end_at.astimezone(_tz()):%H:%M}.", "ok")
    if "bookings.detail" in current_app.view_functions:
        return redirect(url_for("bookings.detail", booking_id=booking.id))
    return redirect(url_for("scheduling.waitlist"))


@bp.post("/scheduling/offers/<id:offer_id>/decline")
@login_required
def decline(offer_id: int) -> Any:
    try:
        waitlist_service.decline_offer(g.member, offer_id)
    except SchedulingError as exc:
        abort(exc.status, exc.message)
    flash("Offer declined; it goes to the next member.", "ok")
    return redirect(url_for("scheduling.waitlist"))


# --- tasks -----------------------------------------------------------------------------------------------


@bp.get("/tasks")
@login_required
def tasks() -> Any:
    now = _now()
    if hx_request.htmx:
        return _board_partial(now)
    return _tasks_page(now)


def _tasks_page(now: datetime, status: int = 200) -> Any:
    top = [(m, effort_service.display_name(g.member, m), h)
           for m, h in effort_service.lab_contributions(since=now - timedelta(days=90))[:10]]
    mine = effort_service.member_contributions(g.member)
    confirmed = effort_service.confirmed_total(mine)
    return render_template("scheduling/tasks.html", board=effort_service.task_board(g.member, now),
                           awaiting=effort_service.awaiting_confirmation(g.member, now), top=top, mine=mine,
                           my_total=confirmed, my_pending=sum(c.credited_hours for c in mine) - confirmed,
                           now=now), status


def _task_or_404(task_id: int) -> Any:
    try:
        return effort_service.get_task(task_id)
    except SchedulingError:
        abort(404, "There is no such task.")


def _task_action(task_id: int, action: Callable[[Member, Any], object]) -> Any:
    try:
        action(g.member, _task_or_404(task_id))
    except SchedulingError as exc:
        _refused(exc)
        return _board_response(exc.status)
    return _board_response()


@bp.post("/tasks/<id:task_id>/claim")
@login_required
def task_claim(task_id: int) -> Any:
    return _task_action(task_id, effort_service.claim_task)


@bp.post("/tasks/<id:task_id>/unclaim")
@login_required
def task_unclaim(task_id: int) -> Any:
    return _task_action(task_id, effort_service.unclaim_task)


@bp.post("/tasks/<id:task_id>/complete")
@login_required
def task_complete(task_id: int) -> Any:
    try:
        done = effort_service.complete_task(g.member, _task_or_404(task_id))
    except SchedulingError as exc:
        _refused(exc)
        return _board_response(exc.status)
    task = done[0].task
    if task.confirmed_at is not None:
        flash(f"Done and confirmed: {done[0].credited_hours:.1f} h credited to each of {len(done)}.", "ok")
    else:
        flash(f"Thank you! {done[0].credited_hours:.1f} h each for {len(done)}; they count once "
              f"{effort_service.who_confirms(task)}.", "ok")
    return _board_response()


@bp.post("/tasks/<id:task_id>/confirm")
@login_required
def task_confirm(task_id: int) -> Any:
    try:
        effort_service.confirm_task(g.member, _task_or_404(task_id))
    except SchedulingError as exc:
        _refused(exc)
        return _board_response(exc.status)
    flash("Confirmed: the hours now count.", "ok")
    return _board_response()


def _board_partial(now: datetime, status: int = 200) -> Any:
    return render_template("scheduling/_board.html", board=effort_service.task_board(g.member, now),
                           awaiting=effort_service.awaiting_confirmation(g.member, now), partial=True), status


def _board_response(status: int = 200) -> Any:
    """htmx: the board in place, with what happened; otherwise the board page (after a success by a
    redirect, a refusal in place with its 4xx status). Either way the flash says why."""
    if hx_request.htmx:
        body, code = _board_partial(utcnow(), status)
        # A refusal is swapped in place like any answer (static/js/app.js lets marked 4xx through).
        return body, code, ({"X-Fablab-Refusal": "1"} if code >= 400 else {})
    if status >= 400:
        return _tasks_page(utcnow(), status)
    return redirect(url_for("scheduling.tasks"))


@bp.route("/tasks/new", methods=["GET", "POST"])
@steward_required
def task_new() -> Any:
    form = TaskForm()
    form.machine.choices = options([("", "— none —")] + [(str(m.id), m.name) for m in machine_service.list_machines()])
    if form.validate_on_submit():
        m = db.session.get(Machine, int(form.machine.data)) if form.machine.data else None
        try:
            effort_service.create_task(form.title.data, kind=form.kind.data, base_hours=form.base_hours.data,
                                       people_needed=form.people_needed.data, machine=m,
                                       description=form.description.data or "", actor=g.member,
                                       rise_per_day=form.rise_per_day.data, max_factor=form.max_factor.data)
        except SchedulingError as exc:
            form.title.errors.append(exc.message)
        else:
            flash("Task added to the board.", "ok")
            return redirect(url_for("scheduling.tasks"))
    status = 422 if request.method == "POST" else 200
    return render_template("scheduling/task_form.html", form=form), status


@bp.get("/scheduling/members/<id:member_id>/contributions")
@login_required
def contributions(member_id: int) -> Any:
    """A member's contributions: the effort is visible to the lab; the name only to the member, staff,
    or everyone where the lab made contributions public."""
    member = db.session.get(Member, member_id)
    if member is None:
        abort(404, "There is no such member.")
    rows = effort_service.member_contributions(member)
    confirmed = effort_service.confirmed_total(rows)
    return render_template("scheduling/contributions.html", member=member, rows=rows, total=confirmed,
                           pending=sum(c.credited_hours for c in rows) - confirmed,
                           show_name=effort_service.names_visible(g.member, member.id),
                           is_confirmed=effort_service.is_confirmed)


# --- admin -----------------------------------------------------------------------------------------------


@bp.get("/admin/scheduling")
@admin_required
def admin_list() -> Any:
    machines = machine_service.list_machines()
    return render_template("scheduling/admin_list.html", machines=machines,
                           modes={m.id: window_service.mode_of(m) for m in machines},
                           open_w={m.id: window_service.open_windows(m) for m in machines})


@bp.route("/admin/scheduling/<slug>", methods=["GET", "POST"])
@admin_required
def admin_machine(slug: str) -> Any:
    now = _now()
    m = _machine(slug)
    settings = fsd.settings_for(m)
    form = SchedulingPolicyForm(obj=settings, prefix="p")
    if request.method == "GET":
        form.mode.data = window_service.mode_of(m)
    if form.validate_on_submit():
        values = {name: getattr(form, name).data for name in window_service.SETTING_FIELDS}
        try:
            window_service.update_policy(m, form.mode.data, actor=g.member, **values)
        except (SchedulingError, pol.PolicyError) as exc:
            db.session.rollback()
            form.mode.errors.append(getattr(exc, "message", str(exc)))
        else:
            flash(f"Scheduling of {m.name} saved.", "ok")
            return redirect(url_for("scheduling.admin_machine", slug=slug))
    status = 422 if request.method == "POST" else 200
    return render_template("scheduling/admin_machine.html", machine=m, form=form, open_form=OpenWindowForm(prefix="w"),
                           windows=window_service.windows_of(m), upcoming=window_service.upcoming_window_times(m, now),
                           mode=window_service.mode_of(m), now=now), status


@bp.post("/admin/scheduling/<slug>/open")
@admin_required
def admin_open(slug: str) -> Any:
    m = _machine(slug)
    form = OpenWindowForm(prefix="w")
    if not form.validate_on_submit():
        flash("Check the window's dates.", "error")
        return redirect(url_for("scheduling.admin_machine", slug=slug))
    period_start = period_end = None
    if form.period_start.data:
        period_start = pol.local_midnight(form.period_start.data, _tz())
        period_end = pol.local_midnight(form.period_start.data + timedelta(days=form.period_days.data or 7), _tz())
    try:
        w = window_service.open_window(m, g.member, utcnow(), period_start=period_start, period_end=period_end,
                                       closes_at=_local(form.closes_at.data))
    except SchedulingError as exc:
        _refused(exc)
        return redirect(url_for("scheduling.admin_machine", slug=slug))
    flash(f"Window opened; its seed commitment {w.commitment[:12]}… is published.", "ok")
    return redirect(url_for("scheduling.admin_machine", slug=slug))


@bp.post("/admin/scheduling/windows/<id:window_id>/close")
@admin_required
def admin_close(window_id: int) -> Any:
    w = _window(window_id)
    try:
        window_draw.close_window(w, utcnow(), force=True)
    except SchedulingError as exc:
        _refused(exc)
        return redirect(url_for("scheduling.admin_machine", slug=w.machine.slug))
    flash("Window closed and allocated; the seed is revealed.", "ok")
    return redirect(url_for("scheduling.results", window_id=w.id))


@bp.post("/admin/scheduling/windows/<id:window_id>/cancel")
@admin_required
def admin_cancel(window_id: int) -> Any:
    w = _window(window_id)
    try:
        window_service.cancel_window(w)
    except SchedulingError as exc:
        _refused(exc)
    else:
        flash("Window cancelled.", "ok")
    return redirect(url_for("scheduling.admin_machine", slug=w.machine.slug))
