"""Two-factor sign-in pages: the code at sign-in, setting it up, recovery codes, turning it off, and the
admin's requirement switch and reset. Thin: the rules are in services/two_factor.py."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, g, make_response, redirect, render_template, request, session, url_for
from sqlalchemy import select

from ...auth import admin_required, login_required, public
from ...domain import totp_rules
from ...extensions import db
from ...models import Member, Role
from ...models.types import utcnow
from ...services import throttle
from ...services import two_factor as tf
from ..auth.login_flow import PENDING, end_pending, open_session
from . import bp
from .forms import AppCodeForm, DisableForm, RequirementForm, SignInCodeForm

NO_STORE = {"Cache-Control": "no-store"}  # pages with a secret or recovery codes stay out of caches


@bp.app_template_global("two_factor_status")
def _status(member: Member) -> tf.Status:
    return tf.status(member)


def _throttled(member: Member) -> tuple[tuple[throttle.Budget, ...], int]:
    budgets = tf.budgets(request.remote_addr, member)
    return budgets, throttle.seconds_locked(budgets, utcnow())


def _wait_message(wait: int) -> str:
    return f"Too many wrong codes from this network. Try again in {throttle.describe_wait(wait)}."


# --- sign-in ------------------------------------------------------------------------------------------------

@bp.route("/login/2fa", methods=["GET", "POST"])
@public  # the first factor is proven, there is no session yet: the pending sign-in is the credential
def challenge() -> Any:
    now = utcnow()
    row = tf.find_challenge(session.get(PENDING), now)
    if row is None:
        started = PENDING in session
        end_pending()
        db.session.commit()
        flash("This sign-in waited too long for its code, or was started in another browser. Sign in again."
              if started else "Sign in with your email and password first.", "error")
        return redirect(url_for("auth.login"))
    member = row.member
    form = SignInCodeForm()
    status, headers = 200, dict(NO_STORE)
    if form.validate_on_submit():
        budgets, wait = _throttled(member)
        if wait:
            form.code.errors.append(_wait_message(wait))
            status, headers["Retry-After"] = 429, str(wait)
        else:
            kind = tf.check_second_factor(member, form.code.data, now)
            if kind is not None:
                throttle.reset(budgets[:1])
                next_url = end_pending()
                notice = None
                if kind == "recovery":
                    left = tf.codes_left(member)
                    notice = (f"You signed in with a recovery code; {left} left."
                              + (" Make new ones on your account page." if left < 4 else ""))
                return open_session(member, next_url, notice)
            row.failures += 1
            lock = throttle.record_failure(budgets, now)  # commits the failure count too
            if not totp_rules.challenge_open(row.expires_at, row.failures, now):
                end_pending()
                db.session.commit()
                flash("Too many wrong codes for this sign-in. Sign in again with your password.", "error")
                return redirect(url_for("auth.login"))
            form.code.errors.append("That code is not right, or it was used already. Type the code your app "
                                    "shows now." + (f" Wait {throttle.describe_wait(lock)} before the next try."
                                                    if lock else ""))
            status = 401
    elif request.method == "POST":
        status = 422
    return render_template("two_factor/challenge.html", form=form), status, headers


@bp.post("/login/2fa/cancel")
@public
def challenge_cancel() -> Any:
    end_pending()
    db.session.commit()
    return redirect(url_for("auth.login"))


# --- setting it up --------------------------------------------------------------------------------------------

def _setup_page(form: AppCodeForm | None = None, status: int = 200) -> Any:
    member = g.member
    return render_template("two_factor/setup.html", enrolment=tf.enrolment(member), status=tf.status(member),
                           form=form or AppCodeForm()), status, NO_STORE


@bp.get("/account/two-factor")
@login_required
def setup() -> Any:
    if tf.enabled(g.member):
        flash("Two-factor sign-in is on.", "ok")
        return redirect(url_for("auth.account") + "#two-factor")
    return _setup_page()


@bp.post("/account/two-factor/start")
@login_required
def setup_start() -> Any:
    try:
        tf.begin_enrolment(g.member)
    except tf.TwoFactorError as exc:
        flash(str(exc), "error")
        return redirect(url_for("auth.account") + "#two-factor")
    db.session.commit()
    return redirect(url_for("two_factor.setup"))


@bp.post("/account/two-factor/confirm")
@login_required
def setup_confirm() -> Any:
    form = AppCodeForm()
    if not form.validate_on_submit():
        return _setup_page(form, 422)
    if tf.enrolment(g.member) is None:
        flash("Start the setup first: the page shows a new QR code to scan.", "error")
        return redirect(url_for("two_factor.setup"))
    try:
        codes = tf.confirm_enrolment(g.member, form.code.data, utcnow())
    except tf.TwoFactorError as exc:
        db.session.rollback()
        form.code.errors.append(str(exc))
        return _setup_page(form, 422)
    db.session.commit()
    return render_template("two_factor/codes.html", codes=codes, fresh=True), 200, NO_STORE


# --- recovery codes and turning it off -----------------------------------------------------------------------

@bp.route("/account/two-factor/recovery-codes", methods=["GET", "POST"])
@login_required
def recovery_codes() -> Any:
    member = g.member
    if not tf.enabled(member):
        return redirect(url_for("two_factor.setup"))
    form = AppCodeForm()
    status = 200
    if form.validate_on_submit():
        budgets, wait = _throttled(member)
        if wait:
            form.code.errors.append(_wait_message(wait))
            status = 429
        else:
            try:
                codes = tf.regenerate_codes(member, form.code.data, utcnow())
            except tf.TwoFactorError as exc:
                db.session.rollback()
                throttle.record_failure(budgets, utcnow())
                form.code.errors.append(str(exc))
                status = 422
            else:
                db.session.commit()
                return render_template("two_factor/codes.html", codes=codes, fresh=False), 200, NO_STORE
    elif request.method == "POST":
        status = 422
    return render_template("two_factor/recovery_codes.html", form=form, left=tf.codes_left(member)), status


@bp.route("/account/two-factor/disable", methods=["GET", "POST"])
@login_required
def disable() -> Any:
    member = g.member
    if not tf.enabled(member):
        return redirect(url_for("auth.account") + "#two-factor")
    form = DisableForm()
    status = 200
    if form.validate_on_submit():
        budgets, wait = _throttled(member)
        if wait:
            form.code.errors.append(_wait_message(wait))
            status = 429
        else:
            try:
                tf.disable(member, form.password.data or "", form.code.data, utcnow())
            except tf.TwoFactorError as exc:
                db.session.rollback()
                throttle.record_failure(budgets, utcnow())
                (form.password if exc.field == "password" else form.code).errors.append(str(exc))
                status = 422
            else:
                db.session.commit()
                flash("Two-factor sign-in is off." + (" The lab requires it for your role: set it up again "
                                                      "with your new device." if tf.required_for(member) else ""),
                      "ok")
                return redirect(url_for("two_factor.setup") if tf.required_for(member)
                                else url_for("auth.account") + "#two-factor")
    elif request.method == "POST":
        status = 422
    return render_template("two_factor/disable.html", form=form, needs_password=tf.needs_password(member),
                           required=tf.required_for(member)), status


# --- admin -----------------------------------------------------------------------------------------------------

@bp.route("/admin/two-factor", methods=["GET", "POST"])
@admin_required
def admin_settings() -> Any:
    requirement = tf.staff_requirement()
    form = RequirementForm(data={"require_staff": requirement.switch})
    status = 200
    if form.validate_on_submit():
        on = bool(form.require_staff.data)
        changed = tf.set_staff_requirement(g.member, on, utcnow())
        db.session.commit()
        flash(("Two-factor sign-in is now required for stewards and admins." if on
               else "Two-factor sign-in is no longer required by this switch.") if changed else "Nothing changed.",
              "ok")
        return redirect(url_for("two_factor.admin_settings"))
    elif request.method == "POST":
        status = 422
    staff = list(db.session.scalars(select(Member).where(Member.role.in_([Role.STEWARD.value, Role.ADMIN.value]),
                                                         Member.active.is_(True)).order_by(Member.name)))
    return render_template("two_factor/admin.html", form=form, requirement=requirement, staff=staff), status


@bp.post("/admin/members/<id:member_id>/two-factor/reset")
@admin_required
def admin_reset(member_id: int) -> Any:
    member = db.session.get(Member, member_id)
    if member is None:
        abort(404)
    try:
        ended = tf.reset(member, g.member, utcnow())
    except tf.TwoFactorError as exc:
        db.session.rollback()
        resp = make_response(render_template("two_factor/refused.html", message=str(exc), member=member), 409)
        return resp
    db.session.commit()
    flash(f"Two-factor sign-in of {member.name} is reset; {ended} session{'s' if ended != 1 else ''} ended. "
          "They sign in with their password and set it up again.", "ok")
    return redirect(url_for("admin.member_detail", member_id=member.id))
