"""Sign in and out. Failures never tell whether the email exists, and repeated ones are slowed."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import abort, flash, g, redirect, render_template, request, url_for
from sqlalchemy import select

from ...auth import login_required, public, sign_in, sign_out
from ...extensions import db
from ...models import ApiToken, Member
from ...models.types import utcnow
from ...security import hash_password, verify_password
from ...services import members as member_service
from ...services import throttle
from . import bp
from .forms import LoginForm, PasswordForm, PinForm, TokenForm


def _safe_next(target: str | None) -> str:
    # Only same-site paths: an open redirect after login is a phishing tool.
    if target and target.startswith("/") and not target.startswith("//") and not urlsplit(target).netloc:
        return target
    return url_for("machines.overview")


@bp.route("/login", methods=["GET", "POST"])
@public
def login() -> Any:
    form = LoginForm()
    error = None
    status = 200
    if form.validate_on_submit():
        email = form.email.data.strip().lower()
        key = f"login:{email}"
        now = utcnow()
        wait = throttle.seconds_locked(key, now)
        if wait:
            error = f"Too many failed sign-in attempts. Try again in {wait} seconds."
            status = 429
        else:
            member = db.session.scalar(select(Member).where(Member.email == email))
            ok = verify_password(member.password_hash if member else None, form.password.data)
            if ok and member is not None and member.active:
                throttle.reset(key)
                sign_in(member)
                flash(f"Welcome, {member.name}.", "ok")
                return redirect(_safe_next(request.args.get("next")))
            throttle.record_failure(key, now)
            error = "Email or password is wrong."
            status = 401
    elif request.method == "POST":
        status = 422
    return render_template("auth/login.html", form=form, error=error), status


@bp.post("/logout")
@public
def logout() -> Any:
    sign_out()
    flash("Signed out.", "ok")
    return redirect(url_for("auth.login"))


def _account_page(token: str | None = None, status: int = 200, **forms: Any) -> Any:
    tokens = list(db.session.scalars(select(ApiToken).where(ApiToken.member_id == g.member.id,
                                                             ApiToken.revoked.is_(False))))
    ctx = {"token_form": TokenForm(prefix="t"), "password_form": PasswordForm(prefix="p"),
           "pin_form": PinForm(prefix="k"), **forms}
    return render_template("auth/account.html", tokens=tokens, new_token=token, **ctx), status


@bp.get("/account")
@login_required
def account() -> Any:
    return _account_page()


@bp.post("/account/tokens")
@login_required
def new_token() -> Any:
    form = TokenForm(prefix="t")
    if not form.validate_on_submit():
        return _account_page(status=422, token_form=form)
    token = member_service.create_api_token(g.member, form.name.data)
    db.session.commit()
    return _account_page(token=token)


@bp.post("/account/tokens/<id:token_id>/revoke")
@login_required
def revoke_token(token_id: int) -> Any:
    row = db.session.get(ApiToken, token_id)
    if row is None or row.member_id != g.member.id:
        abort(404)
    row.revoked = True
    db.session.commit()
    flash("Token revoked.", "ok")
    return redirect(url_for("auth.account"))


@bp.post("/account/password")
@login_required
def change_password() -> Any:
    form = PasswordForm(prefix="p")
    if form.validate_on_submit():
        if not verify_password(g.member.password_hash, form.current.data):
            form.current.errors.append("This is not your current password.")
        else:
            g.member.password_hash = hash_password(form.new.data)
            db.session.commit()
            sign_in(g.member)  # other sessions with the old password end
            flash("Password changed.", "ok")
            return redirect(url_for("auth.account"))
    return _account_page(status=422, password_form=form)


@bp.post("/account/pin")
@login_required
def change_pin() -> Any:
    form = PinForm(prefix="k")
    if form.validate_on_submit():
        if not verify_password(g.member.password_hash, form.current.data):
            form.current.errors.append("This is not your password.")
        else:
            member_service.set_pin(g.member, form.pin.data)
            db.session.commit()
            flash("Kiosk PIN set.", "ok")
            return redirect(url_for("auth.account"))
    return _account_page(status=422, pin_form=form)
