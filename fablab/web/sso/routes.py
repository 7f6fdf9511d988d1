"""Single sign-on with the lab's OpenID provider: start (/login/oidc), the provider's answer
(/login/oidc/callback), and linking or unlinking the provider account on the account page.

The round trip (state, nonce, PKCE verifier, where to go next) waits in the browser's signed session and is
taken out at the callback, so a replayed callback finds nothing. A failure renders the sign-in page with the
reason and opens no session."""

from __future__ import annotations

from typing import Any

from flask import abort, current_app, flash, g, make_response, redirect, render_template, request, session, url_for

from ...auth import login_required, public
from ...database import begin_write
from ...extensions import db
from ...models.types import utcnow
from ...services import identities, oidc_login
from ...services.oidc_login import OidcError, Pending
from ..auth.forms import LoginForm
from ..auth.login_flow import finish_login
from ..redirects import safe_path
from . import bp

PENDING_KEY = "oidc_pending"


@bp.app_context_processor
def _sso_context() -> dict[str, Any]:
    """For the sign-in button and the account page's "Linked sign-ins" section."""
    return {"oidc_enabled": oidc_login.enabled(current_app.config),
            "oidc_name": current_app.config.get("FABLAB_OIDC_NAME") or "single sign-on",
            "linked_signins": _linked_signins}


def _linked_signins() -> list[Any]:
    member = g.get("member")
    return identities.identities_of(member) if member is not None else []


def _redirect_uri() -> str:
    return current_app.config["FABLAB_BASE_URL"] + url_for("sso.callback")


def _settings() -> oidc_login.OidcSettings:
    if not oidc_login.enabled(current_app.config):
        abort(404)
    return oidc_login.settings(current_app.config)


def _failed(message: str, status: int, *, linking: bool = False) -> Any:
    """The page where the person started, with the reason and the way out; nothing signed in."""
    if linking:
        return make_response(render_template("sso/link_failed.html", error=message), status)
    return make_response(render_template("auth/login.html", form=LoginForm(), error=message), status)


def _sso_failed(exc: OidcError, *, linking: bool = False) -> Any:
    reason = exc.message[:1].upper() + exc.message[1:]
    if linking:
        return _failed(f"Linking failed: {reason} Try again from your account page.", exc.status, linking=True)
    return _failed(f"Single sign-on failed: {reason} Sign in with your password, or try again.", exc.status)


def _start(purpose: str, next_url: str | None) -> Any:
    try:
        s = _settings()
        url, pending = oidc_login.begin(s, redirect_uri=_redirect_uri(), next_url=next_url, now=utcnow(),
                                        purpose=purpose, member_id=g.member.id if purpose == "link" else None)
    except OidcError as exc:
        return _sso_failed(exc, linking=purpose == "link")
    session[PENDING_KEY] = pending.to_session()
    if purpose == "link":
        # A page, not a redirect: the CSP's form-action 'self' would stop a form's redirect to the provider.
        return render_template("sso/continue.html", url=url)
    return redirect(url)


@bp.get("/login/oidc")
@public
def start() -> Any:
    return _start("login", safe_path(request.args.get("next")))


@bp.post("/account/linked/oidc")
@login_required
def link() -> Any:
    return _start("link", url_for("auth.account"))


@bp.get("/login/oidc/callback")
@public
def callback() -> Any:
    pending = Pending.from_session(session.pop(PENDING_KEY, None))
    linking = pending is not None and pending.purpose == "link"
    args = {k: v for k, v in request.args.items() if isinstance(v, str)}
    try:
        s = _settings()
        identity = oidc_login.complete(s, pending, args, redirect_uri=_redirect_uri(), now=utcnow())
    except OidcError as exc:
        return _sso_failed(exc, linking=linking)
    assert pending is not None  # complete() refuses a callback without one
    db.session.commit()  # end the read snapshot: the writes below take the write lock up front
    begin_write()
    now = utcnow()
    if linking:
        member = g.get("member")
        if member is None or member.id != pending.member_id:
            return _failed("Linking failed: you are no longer signed in as the member who started it. Sign in "
                           "and try again from your account page.", 403, linking=True)
        refusal = identities.link_identity(member, identity, now=now)
        if refusal:
            db.session.rollback()
            return _failed(f"Linking failed: {refusal}", 409, linking=True)
        db.session.commit()
        flash(f"Linked: you can now sign in with {s.name} too.", "ok")
        return redirect(url_for("auth.account"))
    result = identities.sign_in_external(identity, role_map=s.role_map, create=s.create, now=now)
    if result.member is None:
        db.session.rollback()
        return _failed(f"Single sign-on failed: {result.message}", 403)
    return finish_login(result.member, method="oidc", next_url=pending.next_url)


@bp.post("/account/linked/<id:identity_id>/unlink")
@login_required
def unlink(identity_id: int) -> Any:
    begin_write()
    try:
        refusal = identities.unlink_identity(g.member, identity_id)
    except LookupError:
        abort(404)
    if refusal:
        db.session.rollback()
        return make_response(render_template("sso/link_failed.html", error=f"Not unlinked: {refusal}"), 409)
    db.session.commit()
    flash("Unlinked.", "ok")
    return redirect(url_for("auth.account"))
