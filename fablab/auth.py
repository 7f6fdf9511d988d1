"""Who is asking: the signed-in member (web), and role checks for every route."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import abort, current_app, g, make_response, redirect, request, session, url_for

from .database import begin_write, write_transaction
from .models import Member, MemberSession, Role
from .models.types import utcnow
from .services import sessions, two_factor

F = TypeVar("F", bound=Callable[..., Any])


def _lifetime() -> timedelta:
    return current_app.permanent_session_lifetime


def load_current_member() -> Any:
    """before_request: put the signed-in member (or None) on g.member, from the server-side session.

    The cookie carries only a random session id; the row decides (signed out, password changed,
    deactivated: the row is gone or the member inactive, and the cookie no longer works).
    """
    g.member = None
    g.member_session = None
    if "sid" not in session:
        if "member_id" in session:  # a cookie from before server-side sessions: it no longer signs in
            session.clear()
        return
    now = utcnow()
    row = sessions.find(session.get("sid"), sessions.WEB, now, _lifetime())
    if row is None:
        session.pop("sid", None)
        return
    touch_session(row, now)
    g.member = row.member
    g.member_session = row
    return enrolment_guard(row.member)


# Where staff who still have to enrol in two-factor sign-in may go: the enrolment itself and signing out.
# The kiosk (badge and PIN) and the API (bearer tokens) have their own sign-in and are not affected.
_ENROLMENT_OPEN_BLUEPRINTS = frozenset({"kiosk", "api", "ops"})
_ENROLMENT_OPEN_ENDPOINTS = frozenset({"static", "auth.logout", "two_factor.setup", "two_factor.setup_start",
                                       "two_factor.setup_confirm"})


def enrolment_guard(member: Member) -> Any:
    """Sends staff the lab requires to use two-factor sign-in to its setup until they have enrolled."""
    if not member.is_staff or member.totp_enabled_at is not None:
        return None
    if request.blueprint in _ENROLMENT_OPEN_BLUEPRINTS or request.endpoint in _ENROLMENT_OPEN_ENDPOINTS:
        return None
    if not two_factor.enrolment_due(member):
        return None
    target = url_for("two_factor.setup")
    if request.headers.get("HX-Request"):  # a swap would put the setup page in a fragment: navigate instead,
        resp = make_response("", 204)  # unless the setup is open already (the notice badge polls there)
        if urlsplit(request.headers.get("HX-Current-URL", "")).path != target:
            resp.headers["HX-Redirect"] = target
        return resp
    return redirect(target)


def touch_session(row: MemberSession, now: datetime) -> None:
    """Record use at most once a minute, in its own short write (GET requests write too)."""
    if not sessions.needs_touch(row, now):
        return
    with write_transaction():
        row.last_seen_at = now
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        begin_write()  # the request's own writes still take the write lock up front


def sign_in(member: Member) -> None:
    """Opens a server-side session for this browser (the caller commits)."""
    now = utcnow()
    _, token = sessions.open_session(member, sessions.WEB, now, _lifetime(),
                                     user_agent=request.user_agent.string or "")
    kiosk = session.get("kiosk")
    if isinstance(kiosk, dict):  # a fresh cookie (no fixation): whatever it held before ends on the server
        sessions.end_by_token(kiosk.get("sid"))
    sessions.end_by_token(session.get("sid"))
    session.clear()
    session["sid"] = token
    session.permanent = True


def current_session() -> MemberSession | None:
    row: MemberSession | None = g.get("member_session")
    return row


def sign_out() -> None:
    """Ends this browser's web session on the server too (the caller commits): a copy of the cookie
    stops working."""
    sessions.end_by_token(session.get("sid"))
    session.pop("sid", None)
    session.pop("member_id", None)


def current_member() -> Member:
    member: Member | None = g.get("member")
    if member is None:
        abort(401)
    return member


def role_required(role: Role) -> Callable[[F], F]:
    """Route decorator: signed in (else to the login page) and at least `role` (else 403)."""

    def decorator(view: F) -> F:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            member: Member | None = g.get("member")
            if member is None:
                return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
            if not member.has_role(role):
                abort(403)
            return view(*args, **kwargs)

        return wrapped  # type: ignore[return-value]

    return decorator


login_required = role_required(Role.MEMBER)
steward_required = role_required(Role.STEWARD)
admin_required = role_required(Role.ADMIN)


def public(view: F) -> F:
    """Marks a route as deliberately open to anonymous visitors (checked by a test)."""
    view.fablab_public = True  # type: ignore[attr-defined]
    return view
