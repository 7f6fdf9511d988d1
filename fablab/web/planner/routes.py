"""The lab-wide planner: the day across all machines, find a time, and recurring series for staff."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from flask import abort, current_app, flash, g, redirect, render_template, request, url_for
from htmx_flask import request as hx_request

from ...auth import login_required, steward_required
from ...domain.series import SeriesError, SeriesSpec
from ...models.series import SeriesKind
from ...models.types import utcnow
from ...services import booking_series as series_svc
from ...services import bookings as booking_svc
from ...services import day_view, find_time, induction_offers
from ...services import machines as machine_service
from ...services import members as member_service
from ..choices import options
from . import bp
from .forms import SeriesForm

FIND_LENGTHS = (15, 30, 60, 90, 120, 180, 240, 360, 480, 720)


def _tz() -> Any:
    return current_app.config["TZ"]


# --- the day view --------------------------------------------------------------------------------------


@bp.get("/day")
@login_required
def day() -> Any:
    now = utcnow()
    tz = _tz()
    today = now.astimezone(tz).date()
    raw = request.args.get("date", "").strip()
    full = request.args.get("hours") == "all"
    template = "planner/_day.html" if hx_request.htmx else "planner/day.html"
    try:
        chosen = date.fromisoformat(raw) if raw else today
    except ValueError:
        return render_template(template, view=None, tz=tz, today=today, raw=raw,
                               error=f"“{raw}” is not a date; use YYYY-MM-DD, e.g. {today.isoformat()}."), 400
    try:
        view = day_view.build_day(g.member, chosen, now, tz, full=full)
    except day_view.DayError as exc:
        return render_template(template, view=None, tz=tz, today=today, raw=raw, error=str(exc)), 400
    return render_template(template, view=view, tz=tz, today=today, raw=raw, error=None)


# --- find a time ---------------------------------------------------------------------------------------


def _targets() -> list[tuple[str, list[tuple[str, str]]]]:
    """The select's groups: any machine of a type, or one machine."""
    machines = machine_service.list_machines()
    types = sorted({(m.machine_type.slug, m.machine_type.name) for m in machines}, key=lambda t: t[1])
    return [("Any machine of a type", [(f"type:{slug}", f"Any {name}") for slug, name in types]),
            ("One machine", [(f"machine:{m.slug}", m.name) for m in machines])]


def _parse_from(raw: str, now: datetime) -> datetime | None:
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise find_time.FindError(f"“{raw}” is not a date and time; use the picker, e.g. 2026-12-01T18:00.") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=_tz())
    return value.astimezone(UTC)


@bp.get("/find")
@login_required
def find() -> Any:
    now = utcnow()
    args = request.args
    target, raw_minutes, raw_from = args.get("what", ""), args.get("minutes", ""), args.get("from", "").strip()
    ctx: dict[str, Any] = {"targets": _targets(), "lengths": FIND_LENGTHS, "what": target, "minutes": raw_minutes,
                           "from_": raw_from, "result": None, "error": None, "tz": _tz(), "inductions": []}
    if not target and not raw_minutes:
        return render_template("planner/find.html", **ctx)
    try:
        try:
            minutes = int(raw_minutes)
        except ValueError:
            raise find_time.FindError("Choose how long you need the machine.") from None
        after = _parse_from(raw_from, now)
        ctx["result"] = find_time.find(g.member, target, minutes, after, now)
        # Machines refused for a missing or lapsed qualification: the next induction sessions for them.
        ctx["inductions"] = induction_offers.for_machines(g.member, ctx["result"].machines, now)
        ctx["now"] = now
    except find_time.FindError as exc:
        ctx["error"] = str(exc)
        return render_template("planner/find.html", **ctx), 400
    return render_template("planner/find.html", **ctx)


# --- recurring series (staff) --------------------------------------------------------------------------


def _series_form() -> SeriesForm:
    form = SeriesForm()
    form.machine.choices = options((m.slug, m.name) for m in machine_service.list_machines())
    form.kind.choices = options(series_svc.KIND_LABELS.items())
    return form


class _FormInvalid(Exception):
    """The form's fields carry the errors (shown under them)."""


def _plan(form: SeriesForm) -> series_svc.SeriesPlan:
    """The form as a plan; what the fields cannot say by themselves becomes their errors (_FormInvalid)."""
    try:
        machine = machine_service.machine_by_slug(form.machine.data)
    except machine_service.NotFound:
        form.machine.errors.append("Choose a machine from the list.")
        raise _FormInvalid from None
    kind = SeriesKind(form.kind.data)
    member = g.member
    if kind == SeriesKind.BOOKING:
        found = member_service.member_by_no(form.member_no.data) if form.member_no.data else None
        if found is None or not found.active:
            form.member_no.errors.append("Give the member number of an active member (it is on their card)."
                                         if form.member_no.data else "A booking for a member needs their number.")
            raise _FormInvalid
        member = found
    if kind == SeriesKind.MAINTENANCE and not (form.title.data or "").strip():
        form.title.errors.append("Say what the maintenance is; members whose bookings are affected see it.")
        raise _FormInvalid
    spec = SeriesSpec(form.weekday.data, form.start_time.data.replace(second=0, microsecond=0), form.minutes.data,
                      form.every_weeks.data, form.first_day.data, form.until.data)
    return series_svc.SeriesPlan(machine, kind, member, g.member, spec, (form.title.data or "").strip(),
                                 displace=bool(form.displace.data) and kind == SeriesKind.MAINTENANCE)


@bp.route("/series/new", methods=["GET", "POST"])
@steward_required
def series_new() -> Any:
    form = _series_form()
    now = utcnow()
    today = now.astimezone(_tz()).date()
    if request.method == "GET":
        form.machine.data = request.args.get("machine") or form.machine.data
        form.kind.data = SeriesKind.COURSE.value
        form.weekday.data = today.weekday()
        form.start_time.data = time(18, 0)
        form.minutes.data = 120
        form.first_day.data = today
        form.until.data = today + timedelta(weeks=8)
        return render_template("planner/series_new.html", form=form, items=None, error=None)
    items = None
    error = None
    status = 422
    if form.validate_on_submit():
        try:
            plan = _plan(form)
            items = series_svc.preview(plan, now)
            conflicts = sum(1 for i in items if not i.ok)
            expected = request.form.get("expected")
            if request.form.get("action") != "save":
                status = 200
            elif expected is not None and expected != series_svc.fingerprint(items):
                raise series_svc.SeriesChanged(items)
            elif not any(i.ok for i in items):
                error = "No occurrence can be created; change the time, the machine or the dates."
            elif conflicts and not form.confirm.data:
                error = (f"{conflicts} occurrence(s) cannot be booked. Tick the box to create the others and "
                         "skip these, or change the series.")
                form.confirm.errors.append("Confirm that the conflicting occurrences are skipped.")
            else:
                series = series_svc.save(plan, now, expected)
                created = len(series_svc.occurrences_of(series))
                flash(f"Series saved: {created} occurrence(s) created, {len(series.skipped)} skipped.", "ok")
                return redirect(url_for("planner.series_detail", series_id=series.id))
        except _FormInvalid:
            pass
        except SeriesError as exc:
            error = exc.message
        except series_svc.SeriesChanged as exc:
            items = exc.items
            error = "Bookings changed since the preview; check the occurrences again and confirm."
            status = 409
    return render_template("planner/series_new.html", form=form, items=items, error=error,
                           fingerprint=series_svc.fingerprint(items) if items else ""), status


@bp.get("/series")
@steward_required
def series_list() -> Any:
    return render_template("planner/series_list.html", rows=series_svc.list_series(),
                           labels=series_svc.KIND_LABELS)


def _series(series_id: int) -> Any:
    series = series_svc.get_series(series_id)
    if series is None:
        abort(404, "There is no such series.")
    return series


def _detail(series: Any, error: str | None = None) -> str:
    now = utcnow()
    return render_template("planner/series_detail.html", series=series, rows=series_svc.occurrences_of(series),
                           now=now, spec=series_svc.spec_of(series), labels=series_svc.KIND_LABELS, error=error,
                           skipped=series_svc.skipped_of(series),
                           status=lambda b: booking_svc.effective_status(b, now),
                           cancellable=lambda b: series_svc.cancellable(b, now))


@bp.get("/series/<id:series_id>")
@steward_required
def series_detail(series_id: int) -> Any:
    return _detail(_series(series_id))


@bp.post("/series/<id:series_id>/occurrences/<id:booking_id>/cancel")
@steward_required
def series_cancel(series_id: int, booking_id: int) -> Any:
    series = _series(series_id)
    booking = series_svc.occurrence(series, booking_id)
    if booking is None:
        abort(404, "That booking is not part of this series.")
    rest = request.form.get("scope") == "rest"
    try:
        done = series_svc.cancel_from(series, booking, g.member, request.form.get("reason", ""), utcnow(), rest)
    except (booking_svc.BookingRejected, booking_svc.NotAllowed) as exc:
        message = exc.message if isinstance(exc, booking_svc.BookingRejected) else str(exc)
        status = exc.status if isinstance(exc, booking_svc.BookingRejected) else 403
        return _detail(series, f"Not cancelled: {message}"), status
    flash(f"{len(done)} occurrence(s) cancelled; the time is free for others.", "ok")
    return redirect(url_for("planner.series_detail", series_id=series.id))
