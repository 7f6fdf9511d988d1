"""Booking pages: the week calendar (htmx partials), booking form, my bookings, booking detail,
lifecycle actions, maintenance blocks, the policy editor and the iCal feeds."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Response, abort, current_app, flash, g, redirect, render_template, request, session, url_for
from htmx_flask import request as hx_request

from ...auth import admin_required, login_required, public, steward_required
from ...domain import audit_actions, bounded
from ...domain.booking_rules import RuleViolation
from ...domain.policy import WEEKDAYS, BookingPolicy, PolicyError
from ...extensions import db
from ...models import Booking, Machine
from ...models.types import utcnow
from ...services import audit, calendar_view, ical
from ...services import bookings as svc
from ...services import machines as machine_service
from ...services import members as member_service
from ..formatting import minutes as minutes_text
from ..redirects import back
from . import bp
from .forms import BlockForm, PolicyForm
from .refusals import Refusal, check_in_refusal
from .refusals import for_booking as booking_refusal

# htmx swaps these refusals in place (static/js/booking.js lets 409/422 and marked 4xx through).
REFUSAL_HEADER = "X-Fablab-Refusal"


def _machine(slug: str) -> Machine:
    try:
        return machine_service.machine_by_slug(slug)
    except machine_service.NotFound:
        abort(404, f"There is no machine called “{slug}”.")


def _booking(booking_id: int) -> Booking:
    booking = svc.get_booking(booking_id)
    if booking is None or not svc.can_manage(g.member, booking):
        # Someone else's booking is as invisible as a missing one.
        abort(404, "There is no such booking of yours.")
    return booking


def _parse_local(raw: str | None, field: str) -> datetime:
    """A time from the page (lab time unless it has an offset); a bad one is a 400 (http_input.py)."""
    return bounded.parse_datetime(raw, field, current_app.config["TZ"])


def _week_context(machine: Machine, week: str | None) -> dict[str, Any]:
    tz = current_app.config["TZ"]
    now = utcnow()
    today = now.astimezone(tz).date()
    first = max(bounded.parse_date(week, "week"), today) if week else today
    monday = first
    night = request.args.get("night") == "1"
    return {"machine": machine, "week": calendar_view.build_week(machine, g.member, monday, now, tz, show_night=night),
            "policy": svc.policy_for(machine), "now": now}


@bp.get("/machines/<slug>/week")
@login_required
def week(slug: str) -> Any:
    """The calendar partial (htmx navigation); a plain request gets the machine page."""
    machine = _machine(slug)
    if not hx_request.htmx:
        return redirect(url_for("machines.detail", slug=slug, week=request.args.get("week")))
    return render_template("bookings/_week.html", **_week_context(machine, request.args.get("week")))


def _limit_note(machine: Machine, start: datetime, lengths: list[timedelta]) -> str:
    """Why the longest choice is what it is, when it is shorter than the machine's max length."""
    policy = svc.policy_for(machine)
    if not lengths or lengths[-1] >= policy.max_length:
        return ""
    return (f"Up to {minutes_text(int(lengths[-1].total_seconds() // 60))} from here: the next booking, "
            "closing time or your quota comes first.")


def _book_panel(machine: Machine, start: datetime, now: datetime, refusal: Refusal | None = None,
                chosen: int | None = None, status: int = 200) -> Any:
    tz = current_app.config["TZ"]
    lengths = calendar_view.lengths_from(machine, g.member, start, now, tz)
    if not lengths and refusal is None:
        # Nothing can be booked from here: say why, with the ways out, before the member tries.
        policy = svc.policy_for(machine)
        violations = svc.check_only(g.member, machine, start, start + policy.min_length, now) or [RuleViolation(
            "overlap", f"This time can no longer be booked: it was just taken, or the free time here is shorter "
            f"than the shortest booking ({minutes_text(policy.min_minutes)}).", {})]
        refusal = booking_refusal(machine, g.member, start, None, violations, now)
    ctx = {"machine": machine, "start": start, "lengths": lengths, "policy": svc.policy_for(machine),
           "refusal": refusal, "chosen": chosen, "limit_note": _limit_note(machine, start, lengths)}
    if hx_request.htmx:
        headers = {}
        if status >= 400:
            # The form targets the week (on success); a refusal replaces the panel where the member acted.
            headers = {"HX-Retarget": "#book-panel", "HX-Reswap": "outerHTML", REFUSAL_HEADER: "1"}
        return render_template("bookings/_book_form.html", **ctx), status, headers
    return render_template("bookings/book.html", **ctx), status


@bp.route("/machines/<slug>/book", methods=["GET", "POST"])
@login_required
def book(slug: str) -> Any:
    machine = _machine(slug)
    tz = current_app.config["TZ"]
    now = utcnow()
    start = _parse_local(request.values.get("start"), "start")
    if request.method == "GET":
        return _book_panel(machine, start, now)
    minutes = bounded.parse_minutes(request.form.get("minutes"))
    try:
        booking = svc.create_booking(g.member, machine, start, start + timedelta(minutes=minutes), source="web")
    except svc.BookingRejected as exc:
        refusal = booking_refusal(machine, g.member, start, timedelta(minutes=minutes), exc.violations, now,
                                  suggestion=exc.suggestion)
        return _book_panel(machine, start, now, refusal, chosen=minutes, status=exc.status)
    message = (f"Booked {machine.name} on {booking.start_at.astimezone(tz):%a %d %b, %H:%M}–"
               f"{booking.end_at.astimezone(tz):%H:%M}.")
    if hx_request.htmx:
        ctx = _week_context(machine, booking.start_at.astimezone(tz).date().isoformat())
        return render_template("bookings/_week.html", message=message, **ctx)
    flash(message, "ok")
    return redirect(url_for("bookings.detail", booking_id=booking.id))


def _row_context(now: datetime) -> dict[str, Any]:
    return {"now": now, "checkin_window": svc.checkin_window}


@bp.get("/bookings")
@login_required
def mine() -> Any:
    now = utcnow()
    rows = svc.member_bookings(g.member, since=now - timedelta(days=30))
    upcoming = [b for b in rows if b.end_at > now and svc.effective_status(b, now) in ("confirmed", "checked_in")]
    past = [b for b in reversed(rows) if b not in upcoming]
    return render_template("bookings/mine.html", upcoming=upcoming, past=past, **_row_context(now),
                           effective=lambda b: svc.effective_status(b, now),
                           feed_url=session.pop("new_feed_url", None))


@bp.get("/bookings/<id:booking_id>")
@login_required
def detail(booking_id: int) -> Any:
    booking = _booking(booking_id)
    now = utcnow()
    return render_template("bookings/detail.html", b=booking, **_row_context(now),
                           status=svc.effective_status(booking, now),
                           policy=svc.policy_for(booking.machine))


def _after_action(booking: Booking, message: str) -> Any:
    if hx_request.htmx:
        now = utcnow()
        return render_template("bookings/_row.html", b=booking, message=message, **_row_context(now),
                               status=svc.effective_status(booking, now))
    flash(message, "ok")
    return redirect(back(url_for("bookings.detail", booking_id=booking.id)))


def _refused(booking: Booking, exc: Exception) -> Any:
    status = exc.status if isinstance(exc, svc.BookingRejected) else 403
    now = utcnow()
    if isinstance(exc, svc.BookingRejected) and exc.code == "checkin_closed":
        opens, _ = svc.checkin_window(booking)
        refusal = check_in_refusal(exc, opens if now < opens else None)
    else:
        refusal = Refusal.from_exception(exc)
    if hx_request.htmx:
        return render_template("bookings/_row.html", b=booking, refusal=refusal, **_row_context(now),
                               status=svc.effective_status(booking, now)), status, {REFUSAL_HEADER: "1"}
    flash(" ".join(refusal.reasons + refusal.notes), "error")
    return redirect(url_for("bookings.detail", booking_id=booking.id))


def _lifecycle(booking_id: int, action: Callable[[Booking], object], message: str) -> Any:
    booking = _booking(booking_id)
    try:
        action(booking)
    except (svc.BookingRejected, svc.NotAllowed) as exc:
        return _refused(booking, exc)
    return _after_action(booking, message)


@bp.post("/bookings/<id:booking_id>/cancel")
@login_required
def cancel(booking_id: int) -> Any:
    return _lifecycle(booking_id, lambda b: svc.cancel_booking(b, g.member, request.form.get("reason", "")),
                      "Booking cancelled; the time is free for others.")


@bp.post("/bookings/<id:booking_id>/checkin")
@login_required
def checkin(booking_id: int) -> Any:
    return _lifecycle(booking_id, lambda b: svc.check_in(b, g.member), "Checked in. Have a good session!")


@bp.post("/bookings/<id:booking_id>/end")
@login_required
def end(booking_id: int) -> Any:
    return _lifecycle(booking_id, lambda b: svc.end_early(b, g.member),
                      "Booking ended; the rest of the time is free for others.")


@bp.post("/bookings/<id:booking_id>/change")
@login_required
def change(booking_id: int) -> Any:
    """Shorten or extend: the new end decides which."""
    booking = _booking(booking_id)
    new_end = _parse_local(request.form.get("end"), "end")
    try:
        if new_end < booking.end_at:
            svc.shorten_booking(booking, g.member, new_end)
            message = "Booking shortened; the freed time is open for others."
        else:
            svc.extend_booking(booking, g.member, new_end)
            message = "Booking extended."
    except (svc.BookingRejected, svc.NotAllowed) as exc:
        return _refused(booking, exc)
    return _after_action(booking, message)


@bp.route("/machines/<slug>/block", methods=["GET", "POST"])
@steward_required
def block(slug: str) -> Any:
    machine = _machine(slug)
    form = BlockForm()
    if form.validate_on_submit():
        tz = current_app.config["TZ"]
        start = form.start.data.replace(tzinfo=tz).astimezone(UTC)
        end_ = form.end.data.replace(tzinfo=tz).astimezone(UTC)
        try:
            _, cancelled = svc.create_block(machine, g.member, start, end_, form.reason.data)
        except svc.BookingRejected as exc:
            # shown under the field the steward has to change
            (form.start if exc.code == "overlaps_finished_use" else form.end).errors.append(exc.message)
        else:
            flash(f"{machine.name} is blocked for maintenance; {len(cancelled)} booking(s) cancelled.", "ok")
            return redirect(url_for("machines.detail", slug=slug))
    status = 422 if request.method == "POST" else 200
    return render_template("bookings/block.html", machine=machine, form=form), status


def _hours_text(ranges: list[list[str]]) -> str:
    return ", ".join(f"{a}-{b}" for a, b in ranges)


def _parse_hours(text: str) -> list[list[str]]:
    out = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        a, sep, b = part.partition("-")
        if not sep:
            raise PolicyError(f"“{part}” is not a range like 09:00-21:00.")
        out.append([a.strip(), b.strip()])
    return out


def _policy_error(form: PolicyForm, exc: PolicyError) -> None:
    """Show a policy error under the field it is about, in the form's words (not `opening_hours.tue`)."""
    key = exc.field
    name = key.split(".", 1)[1] if key.startswith("opening_hours.") else key
    text = str(exc)
    for prefix in (key, f"opening_hours[{name}]"):
        if key and text.startswith(prefix):
            text = text[len(prefix):].lstrip(": ")
    for fname, f in form._fields.items():
        if fname not in WEEKDAYS and fname in text:
            text = text.replace(fname, f"“{f.label.text}”")
    target = form._fields.get(name) or form.mode
    target.errors.append(text[:1].upper() + text[1:])


def _policy_from_form(form: PolicyForm) -> BookingPolicy | None:
    data: dict[str, Any] = {k: getattr(form, k).data for k in (
        "slot_minutes", "min_minutes", "max_minutes", "horizon_days", "buffer_minutes", "checkin_grace_minutes",
        "mode", "qualification_required")}
    ok = True
    for k in ("max_hours_per_day", "max_hours_per_week", "max_future_bookings"):
        raw = (getattr(form, k).data or "").strip().replace(",", ".")
        try:
            data[k] = (int(raw) if k == "max_future_bookings" else float(raw)) if raw else None
        except ValueError:
            getattr(form, k).errors.append(f"“{raw}” is not a number; leave it empty for no limit.")
            ok = False
    hours = {}
    for d in WEEKDAYS:
        try:
            hours[d] = _parse_hours(getattr(form, d).data or "")
        except PolicyError as exc:
            getattr(form, d).errors.append(str(exc))
            ok = False
    if not ok:
        return None
    data["opening_hours"] = hours
    try:
        return BookingPolicy.from_dict(data)
    except PolicyError as exc:
        _policy_error(form, exc)
        return None


@bp.route("/admin/machines/<slug>/policy", methods=["GET", "POST"])
@admin_required
def policy_edit(slug: str) -> Any:
    machine = _machine(slug)
    current = svc.policy_for(machine).to_dict()
    form = PolicyForm(data={**current, **{d: _hours_text(current["opening_hours"][d]) for d in WEEKDAYS},
                            **{k: "" if current[k] is None else str(current[k])
                               for k in ("max_hours_per_day", "max_hours_per_week", "max_future_bookings")}})
    broken: list[tuple[Booking, list[Any]]] = []
    existing_error = ""
    status = 200
    if form.validate_on_submit():
        policy = _policy_from_form(form)
        status = 422
        if policy is not None:
            now = utcnow()
            broken = svc.broken_by_policy(machine, policy, now)
            seen = request.form.get("broken_ids", "")
            choice = request.form.get("existing", "")
            reason = (request.form.get("cancel_reason") or "").strip()
            ids = ",".join(str(b.id) for b, _ in broken)
            if broken and (seen != ids or choice not in ("keep", "cancel")):
                status = 409  # shown first: which bookings the new rules would refuse, and the choice
            elif broken and choice == "cancel" and not reason:
                existing_error = "Say why the bookings are cancelled; their members see the reason."
            else:
                for b, _ in broken if choice == "cancel" else []:
                    svc.cancel_booking(b, g.member, f"New booking rules: {reason}", now=now)
                if diff := audit_actions.changes(current, policy.to_dict()):
                    audit.record(g.member, audit_actions.POLICY_CHANGED, target_type="machine", target_id=machine.id,
                                 target_label=machine.name, detail=diff)
                machine.policy = policy.to_dict()
                db.session.commit()
                kept = f" {len(broken)} booking(s) that break them were kept." if choice == "keep" and broken else ""
                gone = f" {len(broken)} booking(s) cancelled." if choice == "cancel" and broken else ""
                flash(f"Booking rules of {machine.name} saved.{kept}{gone}", "ok")
                return redirect(url_for("machines.detail", slug=slug))
    elif request.method == "POST":
        status = 422
    return render_template("bookings/policy.html", machine=machine, form=form, weekdays=WEEKDAYS, broken=broken,
                           broken_ids=",".join(str(b.id) for b, _ in broken),
                           existing_error=existing_error), status


# --- iCal ----------------------------------------------------------------------------------------------


@bp.post("/bookings/feed")
@login_required
def new_feed() -> Any:
    token = member_service.new_ical_token(g.member)
    db.session.commit()
    url = url_for("bookings.member_feed", token=token, _external=True)
    flash("Your new calendar feed address is below; the old one stops working.", "ok")
    # Shown once on the next page, through the session: in the URL it would land in access logs and history.
    session["new_feed_url"] = url
    return redirect(url_for("bookings.mine"))


@bp.get("/ical/member/<token>.ics")
@public
def member_feed(token: str) -> Any:
    member = member_service.member_by_ical_token(token)
    if member is None:
        abort(404)
    body = ical.member_calendar(member, request.host)
    return Response(body, mimetype="text/calendar", headers={"Cache-Control": "private, max-age=300"})


@bp.get("/ical/machine/<slug>.ics")
@public
def machine_feed(slug: str) -> Any:
    machine = _machine(slug)
    body = ical.machine_calendar(machine, request.host)
    return Response(body, mimetype="text/calendar", headers={"Cache-Control": "public, max-age=300"})
