"""Sign in and out. Failures never tell whether the email exists, and repeated ones are slowed."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import (
    abort,
    after_this_request,
    current_app,
    flash,
    g,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import select

from ...auth import current_session, login_required, public, sign_out
from ...extensions import db
from ...models import ApiToken, Member, MemberSession
from ...models.types import utcnow
from ...security import hash_password, verify_password
from ...security import new_token as random_token
from ...services import members as member_service
from ...services import password_login, throttle
from ...services import sessions as session_service
from . import bp
from .forms import LoginForm, PasswordForm, PinForm, TokenForm
from .login_flow import finish_login

DEVICE_COOKIE = "fablab_device"


def _device_serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="fablab-known-device")


def _device_cookie() -> dict[str, Any]:
    try:
        data = _device_serializer().loads(request.cookies.get(DEVICE_COOKIE, ""))
    except BadSignature:
        return {}
    return data if isinstance(data, dict) and isinstance(data.get("d"), str) else {}


def _member_mark(member: Member) -> str:
    return throttle.mark(f"member:{member.id}")


def _known_device(member: Member | None) -> str | None:
    """This browser's id, if the member signed in with it before (a signed cookie names them)."""
    data = _device_cookie()
    if member is None or _member_mark(member) not in (data.get("m") or []):
        return None
    return str(data["d"])


def _remember_device(member: Member, device: str | None) -> None:
    data = _device_cookie()
    marks = [m for m in (data.get("m") or []) if isinstance(m, str) and m != _member_mark(member)]
    value = _device_serializer().dumps({"d": device or data.get("d") or random_token(),
                                        "m": [_member_mark(member), *marks][:5]})

    @after_this_request
    def _set(resp: Any) -> Any:
        resp.set_cookie(DEVICE_COOKIE, value, max_age=365 * 24 * 3600, httponly=True, samesite="Lax",
                        secure=current_app.config["SESSION_COOKIE_SECURE"] or request.is_secure,
                        path=url_for("auth.login"))
        return resp


@bp.route("/login", methods=["GET", "POST"])
@public
def login() -> Any:
    form = LoginForm()
    error = None
    status = 200
    if form.validate_on_submit():
        email = form.email.data.strip().lower()
        member = db.session.scalar(select(Member).where(Member.email == email))
        # Budgets of this source: for this account, and for all accounts (a spray); never the account's
        # own, so nobody elsewhere can lock its owner out. A browser the member signed in with before
        # has its own budget, so not even a guesser behind the same address can.
        device = _known_device(member)
        budgets = (throttle.device_budgets(device, email) if device
                   else throttle.login_budgets(request.remote_addr, email))
        now = utcnow()
        wait = throttle.seconds_locked(budgets, now)
        if wait:
            error = (f"Too many failed sign-in attempts from this network. Try again in "
                     f"{throttle.describe_wait(wait)}.")
            status = 429
        else:
            result = password_login.sign_in_with_password(email, form.password.data, now=now)
            signed = result.member
            if signed is not None:
                throttle.reset(budgets[:1])
                _remember_device(signed, device)
                return finish_login(signed, method=result.method, next_url=request.args.get("next"))
            # A refusal (directory down, account deactivated) is not a wrong guess: not counted.
            lock = None if result.refusal else throttle.record_failure(budgets, now)
            error = result.refusal or "Email or password is wrong."
            if lock:
                error += f" Too many failed attempts: wait {throttle.describe_wait(lock)} before the next one."
            status = result.status
    elif request.method == "POST":
        status = 422
    resp = make_response(render_template("auth/login.html", form=form, error=error), status)
    if status == 429:
        resp.headers["Retry-After"] = str(wait)
    return resp


@bp.post("/logout")
@public
def logout() -> Any:
    sign_out()
    db.session.commit()
    flash("Signed out.", "ok")
    return redirect(url_for("auth.login"))


def _account_page(token: str | None = None, status: int = 200, **forms: Any) -> Any:
    tokens = list(db.session.scalars(select(ApiToken).where(ApiToken.member_id == g.member.id,
                                                             ApiToken.revoked.is_(False))
                                     .order_by(ApiToken.created_at.desc())))
    ctx = {"token_form": TokenForm(prefix="t"), "password_form": PasswordForm(prefix="p"),
           "pin_form": PinForm(prefix="k"), **forms}
    return render_template("auth/account.html", tokens=tokens, new_token=token, now=utcnow(),
                           sessions=session_service.member_sessions(g.member), this_session=current_session(),
                           **ctx), status


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
    days = form.expires_days.data
    expires_at = utcnow() + timedelta(days=int(days)) if days else None
    token = member_service.create_api_token(g.member, form.name.data, scope=form.scope.data, expires_at=expires_at)
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
            # Whoever knew the old password may be signed in somewhere: every other session ends.
            ended = session_service.end_others(g.member, keep=current_session())
            db.session.commit()
            flash("Password changed." + (f" Signed out {ended} other session{'s' if ended != 1 else ''}."
                                         if ended else ""), "ok")
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


@bp.post("/account/sessions/others/end")
@login_required
def end_other_sessions() -> Any:
    ended = session_service.end_others(g.member, keep=current_session())
    db.session.commit()
    flash(f"Signed out {ended} other session{'s' if ended != 1 else ''}.", "ok")
    return redirect(url_for("auth.account"))


@bp.post("/account/sessions/<id:session_id>/end")
@login_required
def end_session(session_id: int) -> Any:
    row = db.session.get(MemberSession, session_id)
    if row is None or row.member_id != g.member.id:
        abort(404)
    this = current_session()
    session_service.end(row)
    db.session.commit()
    if this is not None and this.id == session_id:
        sign_out()
        flash("Signed out.", "ok")
        return redirect(url_for("auth.login"))
    flash("That session is signed out.", "ok")
    return redirect(url_for("auth.account"))
