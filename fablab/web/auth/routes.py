"""Sign in and out. Failures never tell whether the email exists, and repeated ones are slowed."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import flash, redirect, render_template, request, url_for
from sqlalchemy import select

from ...auth import public, sign_in, sign_out
from ...extensions import db
from ...models import Member
from ...models.types import utcnow
from ...security import verify_password
from ...services import throttle
from . import bp
from .forms import LoginForm


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
