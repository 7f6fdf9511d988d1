"""The kiosk: a registered touch screen. It shows nobody's data until a member identifies by badge or
member number + PIN; that member is signed out after each completed action and after inactivity.

The kiosk's member is kept apart from the browser's web sign-in (session key "kiosk"), with the time
of the last action, so the server enforces the idle timeout even if the page's timer does not run.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import wraps
from typing import Any

from flask import abort, current_app, g, make_response, redirect, render_template, request, session, url_for

from ...auth import admin_required, public, touch_session
from ...database import write_transaction
from ...domain import audit_actions, bounded
from ...extensions import db
from ...models import KioskDevice, Machine, Member
from ...models.types import utcnow
from ...services import audit, throttle
from ...services import bookings as svc
from ...services import inductions as induction_service
from ...services import kiosk as kiosk_service
from ...services import machines as machine_service
from ...services import members as member_service
from ...services import notices as notices_service
from ...services import sessions as session_service
from ...services import waitlist as waitlist_service
from ...services.scheduling_common import SchedulingError
from . import bp
from .forms import KioskForm

COOKIE = "fablab_kiosk"


def kiosk_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """The kiosk role: only a registered device (its long-lived cookie) gets kiosk pages."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        device = kiosk_service.kiosk_by_token(request.cookies.get(COOKIE))
        if device is None:
            return render_template("kiosk/unregistered.html"), 403
        g.kiosk = device
        kiosk_service.touch(device)
        return view(*args, **kwargs)

    return wrapped


def _idle() -> timedelta:
    return timedelta(seconds=current_app.config["FABLAB_KIOSK_IDLE_SECONDS"])


def _kiosk_member() -> Member | None:
    """The member signed in at this kiosk: the cookie names a server-side session (kind kiosk, this
    device), and the time of the last action enforces the idle timeout."""
    data = session.get("kiosk")
    if not isinstance(data, dict) or data.get("device") != g.kiosk.id:
        return None
    now = utcnow()
    last = datetime.fromtimestamp(float(data.get("at") or 0), UTC)
    row = session_service.find(data.get("sid"), session_service.KIOSK, now, _idle() + session_service.TOUCH_EVERY)
    if now - last > _idle() or row is None or row.kiosk_id != g.kiosk.id:
        _sign_out()
        return None
    touch_session(row, now)
    data["at"] = now.timestamp()
    session["kiosk"] = data
    return row.member


def _sign_in(member: Member) -> None:
    _sign_out()
    now = utcnow()
    with write_transaction():
        _, sid = session_service.open_session(member, session_service.KIOSK, now,
                                              current_app.permanent_session_lifetime,
                                              user_agent=request.user_agent.string or "", kiosk_id=g.kiosk.id)
    session["kiosk"] = {"sid": sid, "device": g.kiosk.id, "at": now.timestamp()}


def _sign_out() -> None:
    """Ends the kiosk member's session on the server: a copy of the cookie is worthless afterwards."""
    data = session.pop("kiosk", None)
    if isinstance(data, dict) and data.get("sid"):
        with write_transaction():  # its own short write: sign-out also happens inside GET requests
            session_service.end_by_token(data["sid"])


def _lock_message(budgets: tuple[throttle.Budget, ...], now: datetime, member_no: int | None) -> str | None:
    """What is locked and what to do instead, or None. PIN budgets: (the number, this kiosk's PINs)."""
    if member_no is None:
        wait = throttle.seconds_locked(budgets, now)
        return (f"Badges are locked for {throttle.describe_wait(wait)} on this kiosk after unknown badges. "
                "Use your member number + PIN instead.") if wait else None
    wait = throttle.seconds_locked(budgets[:1], now)
    if wait:
        return (f"Member number {member_no} is locked for {throttle.describe_wait(wait)} after wrong PINs. "
                "Use your badge instead, or wait.")
    wait = throttle.seconds_locked(budgets[1:], now)
    return (f"PIN sign-in is locked for {throttle.describe_wait(wait)} on this kiosk after many wrong PINs. "
            "Use your badge instead.") if wait else None


def _panel(member: Member | None, **extra: Any) -> Any:
    now = utcnow()
    if member is None:
        return render_template("kiosk/_identify.html", **extra)
    return render_template("kiosk/_member.html", member=member, now=now,
                           offers=waitlist_service.member_offers(member, now),
                           inductions=induction_service.open_to(member, now),
                           warnings=notices_service.kiosk_warnings(member.id, now), summary=notices_service.summary,
                           today=kiosk_service.today_bookings(member, now),
                           options=kiosk_service.book_now_options(member, now),
                           extensions=lambda b: kiosk_service.extension_options(b, member, now),
                           status_of=lambda b: svc.effective_status(b, now), **extra)


def _done(message: str) -> Any:
    """A completed action: confirm in place and sign the member out (nothing of them stays visible)."""
    _sign_out()
    return render_template("kiosk/_done.html", message=message, ok=True)


def _refused(member: Member, exc: Exception, machine: Machine | None = None) -> Any:
    suggestion = getattr(exc, "suggestion", None)
    if machine is not None and suggestion is None and getattr(exc, "code", "") in ("overlap", "buffer"):
        suggestion = svc.next_free(machine)
    message = exc.message if isinstance(exc, svc.BookingRejected) else str(exc)
    return _panel(member, error=message, suggestion=suggestion, suggestion_machine=machine), 200


@bp.get("/")
@kiosk_required
def index() -> Any:
    member = _kiosk_member()
    return render_template("kiosk/index.html", member=member, board=kiosk_service.board(
        utcnow(), current_app.config["FABLAB_KIOSK_SHOW_NAMES"]), now=utcnow(),
        idle_seconds=current_app.config["FABLAB_KIOSK_IDLE_SECONDS"],
        panel=_panel(member))


@bp.get("/board")
@kiosk_required
def board() -> Any:
    return render_template("kiosk/_board.html", now=utcnow(),
                           board=kiosk_service.board(utcnow(), current_app.config["FABLAB_KIOSK_SHOW_NAMES"]))


@bp.get("/panel")
@kiosk_required
def panel() -> Any:
    member = _kiosk_member()
    return _panel(member, keypad=member is None and request.args.get("keypad") == "1")


@bp.post("/identify")
@kiosk_required
def identify() -> Any:
    """Badge or member number + PIN. Wrong PINs lock that member number (at every kiosk), not the kiosk:
    other members and every badge keep working. Unknown badges slow only badges at this kiosk."""
    now = utcnow()
    badge = (request.form.get("badge") or "").strip()
    member: Member | None = None
    member_no: int | None = None
    if badge:
        budgets = throttle.kiosk_badge_budgets(g.kiosk.id)
        failure = "This badge is not known here. Ask a steward to register it."
    else:
        raw_no = (request.form.get("member_no") or "").strip()
        pin = (request.form.get("pin") or "").strip()
        try:
            member_no = bounded.parse_id(raw_no, "member_no")
        except bounded.InputError:
            member_no = None
        if member_no is None or not pin:
            return _panel(None, error="Type your member number, then your PIN.", keypad=True), 422
        budgets = throttle.kiosk_pin_budgets(g.kiosk.id, member_no)
        failure = "Member number or PIN is wrong."
    locked = _lock_message(budgets, now, member_no)
    if locked:
        return _panel(None, error=locked, keypad=not badge), 429
    if badge:
        member = member_service.member_by_badge(badge)
    else:
        candidate = member_service.member_by_no(member_no or 0)
        ok = candidate is not None and candidate.active and member_service.check_pin(candidate, pin)
        member = candidate if ok else None
    if member is None:
        if throttle.record_failure(budgets, now):
            failure += " " + (_lock_message(budgets, now, member_no) or "")
        return _panel(None, error=failure.strip(), keypad=not badge), 401
    throttle.reset(budgets[:1])
    _sign_in(member)
    return _panel(member)


@bp.post("/signout")
@kiosk_required
def signout() -> Any:
    _sign_out()
    return _panel(None)


def _member_or_identify() -> Member:
    member = _kiosk_member()
    if member is None:
        abort(make_response(_panel(None, error="Signed out after inactivity. Scan your badge again."), 401))
    return member


def _machine(slug: str) -> Machine:
    try:
        return machine_service.machine_by_slug(slug)
    except machine_service.NotFound:
        abort(404)


@bp.post("/book")
@kiosk_required
def book() -> Any:
    member = _member_or_identify()
    machine = _machine(request.form.get("machine", ""))
    try:
        minutes = bounded.parse_minutes(request.form.get("minutes"))
        start = bounded.parse_datetime(request.form.get("start"), "start", svc.lab_tz())
    except bounded.InputError:
        return _panel(member, error="Choose a machine and a length."), 422
    try:
        b = svc.create_booking(member, machine, start, start + timedelta(minutes=minutes), source="kiosk")
    except svc.BookingRejected as exc:
        return _refused(member, exc, machine)
    tz = svc.lab_tz()
    return _done(f"Booked {machine.name} {b.start_at.astimezone(tz):%H:%M}–{b.end_at.astimezone(tz):%H:%M}"
                 + (" and checked in. Enjoy!" if b.status == "checked_in" else "."))


def _own_booking(member: Member, booking_id: int) -> Any:
    b = svc.get_booking(booking_id)
    if b is None or b.member_id != member.id:
        abort(404)
    return b


@bp.post("/bookings/<id:booking_id>/checkin")
@kiosk_required
def checkin(booking_id: int) -> Any:
    member = _member_or_identify()
    b = _own_booking(member, booking_id)
    try:
        svc.check_in(b, member, source="kiosk")
    except (svc.BookingRejected, svc.NotAllowed) as exc:
        return _refused(member, exc)
    return _done(f"Checked in on {b.machine.name}. Have a good session!")


@bp.post("/bookings/<id:booking_id>/extend")
@kiosk_required
def extend(booking_id: int) -> Any:
    member = _member_or_identify()
    b = _own_booking(member, booking_id)
    try:
        new_end = bounded.parse_datetime(request.form.get("end"), "end", svc.lab_tz())
        svc.extend_booking(b, member, new_end)
    except ValueError:  # an InputError too
        return _panel(member, error="Choose how long to extend."), 422
    except (svc.BookingRejected, svc.NotAllowed) as exc:
        return _refused(member, exc)
    return _done(f"Extended {b.machine.name} until {b.end_at.astimezone(svc.lab_tz()):%H:%M}.")


@bp.post("/bookings/<id:booking_id>/end")
@kiosk_required
def end(booking_id: int) -> Any:
    member = _member_or_identify()
    b = _own_booking(member, booking_id)
    try:
        svc.end_early(b, member)
    except (svc.BookingRejected, svc.NotAllowed) as exc:
        return _refused(member, exc)
    return _done(f"Ended your session on {b.machine.name}; the rest of the time is free for others. Thank you!")


@bp.post("/offers/<id:offer_id>/claim")
@kiosk_required
def claim_offer(offer_id: int) -> Any:
    member = _member_or_identify()
    try:
        b = waitlist_service.claim_offer(member, offer_id)
    except SchedulingError as exc:
        return _panel(member, error=exc.message), 200
    except svc.BookingRejected as exc:
        return _refused(member, exc)
    tz = svc.lab_tz()
    return _done(f"Booked {b.machine.name} {b.start_at.astimezone(tz):%a %H:%M}–{b.end_at.astimezone(tz):%H:%M}.")


# --- device registration (admin, in the normal web app) -------------------------------------------------


def _admin_page(form: KioskForm, link: str | None = None, link_for: KioskDevice | None = None) -> Any:
    return render_template("kiosk/admin.html", form=form, kiosks=kiosk_service.list_kiosks(), link=link,
                           link_for=link_for, valid_hours=int(kiosk_service.ACTIVATION_VALID.total_seconds() // 3600))


@bp.route("/admin", methods=["GET", "POST"])
@admin_required
def admin() -> Any:
    form = KioskForm()
    if form.validate_on_submit():
        device, token = kiosk_service.register_kiosk(form.name.data, utcnow())
        _audit(audit_actions.KIOSK_REGISTERED, device)
        db.session.commit()
        return _admin_page(KioskForm(formdata=None), url_for("kiosk.activate", token=token, _external=True), device)
    return _admin_page(form)


@bp.post("/admin/<id:device_id>/link")
@admin_required
def new_link(device_id: int) -> Any:
    """A new one-time link for a kiosk whose link expired or was used (e.g. a replaced screen)."""
    device = db.session.get(KioskDevice, device_id)
    if device is None:
        abort(404, "There is no such kiosk.")
    if device.revoked:
        abort(409, f"The kiosk “{device.name}” was revoked; register a new kiosk instead.")
    token = kiosk_service.new_activation(device, utcnow())
    _audit(audit_actions.KIOSK_LINK_ISSUED, device)
    db.session.commit()
    return _admin_page(KioskForm(formdata=None), url_for("kiosk.activate", token=token, _external=True), device)


@bp.post("/admin/<id:device_id>/revoke")
@admin_required
def revoke(device_id: int) -> Any:
    device = db.session.get(KioskDevice, device_id)
    if device is None:
        abort(404)
    device.revoked = True
    _audit(audit_actions.KIOSK_REVOKED, device)
    db.session.commit()
    return redirect(url_for("kiosk.admin"))


def _audit(action: str, device: KioskDevice) -> None:
    db.session.flush()
    audit.record(g.member, action, target_type="kiosk", target_id=device.id, target_label=device.name)


@bp.get("/activate/<token>")
@public
def activate(token: str) -> Any:
    """Opened once on the kiosk itself: the one-time link becomes a device cookie kept for years."""
    try:
        device, device_token = kiosk_service.activate(token, utcnow())
    except kiosk_service.ActivationRefused as refused:
        current = kiosk_service.kiosk_by_token(request.cookies.get(COOKIE))
        if refused.reason == "used" and current is not None:
            return redirect(url_for("kiosk.index"))  # this screen is the kiosk already (a reload, a bookmark)
        return render_template("kiosk/activation_refused.html", refused=refused), refused.status
    resp = redirect(url_for("kiosk.index"))
    resp.set_cookie(COOKIE, device_token, max_age=10 * 365 * 24 * 3600, httponly=True, samesite="Strict",
                    secure=current_app.config["SESSION_COOKIE_SECURE"] or request.is_secure, path="/kiosk")
    # The link must not travel on as a Referer, nor be kept by a cache.
    resp.headers["Referrer-Policy"] = "no-referrer"
    resp.headers["Cache-Control"] = "no-store"
    return resp
