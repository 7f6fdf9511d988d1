"""Who is asking: the signed-in member (web), and role checks for every route."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import abort, g, redirect, request, session, url_for

from .extensions import db
from .models import Member, Role

F = TypeVar("F", bound=Callable[..., Any])


def load_current_member() -> None:
    """before_request: put the signed-in member (or None) on g.member."""
    g.member = None
    member_id = session.get("member_id")
    if member_id is None:
        return
    member = db.session.get(Member, member_id)
    # A session outlives a deactivation or a password change only until the next request.
    if member is None or not member.active or session.get("auth_v") != auth_version(member):
        session.clear()
        return
    g.member = member


def auth_version(member: Member) -> str:
    """Changes when the password changes, so old sessions die with the old password."""
    return (member.password_hash or "")[-16:]


def sign_in(member: Member) -> None:
    session.clear()
    session["member_id"] = member.id
    session["auth_v"] = auth_version(member)
    session.permanent = True


def sign_out() -> None:
    session.clear()


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
