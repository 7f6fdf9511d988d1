"""Every way of signing in ends in `finish_login`: password, LDAP, OpenID Connect, an accepted invitation,
a password reset. It is the one place that decides what is still due before the session opens (a second
factor, for instance), so no sign-in path can skip it."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, session, url_for

from ...auth import sign_in
from ...extensions import db
from ...models import Member
from ...models.types import utcnow
from ...services import two_factor
from ..redirects import safe_next, safe_path

# This browser's pending sign-in (the token of a two-factor challenge, whose row names the member) and
# where to go once it is complete. The signed cookie only carries them; the server decides.
PENDING = "2fa_pending"
PENDING_NEXT = "2fa_next"


def finish_login(member: Member, *, method: str, next_url: str | None = None) -> Any:
    """Opens the session for `member`, who proved who they are by `method` ("password", "ldap", "oidc",
    "invite", "reset"), commits, and redirects to `next_url` (checked to stay on this site).

    A member with two-factor sign-in gets no session yet: this browser waits at /login/2fa for the code."""
    if two_factor.enabled(member):
        end_pending()
        session[PENDING] = two_factor.open_challenge(member, method, utcnow())
        if safe_path(next_url):
            session[PENDING_NEXT] = next_url
        db.session.commit()
        return redirect(url_for("two_factor.challenge"))
    return open_session(member, next_url)


def open_session(member: Member, next_url: str | None, notice: str | None = None) -> Any:
    """Every factor is proven: the session opens (commits). Staff who must enrol first go to the setup.
    `notice` is flashed too (after sign_in, which starts a fresh cookie)."""
    sign_in(member)
    db.session.commit()
    flash(f"Welcome, {member.name}.", "ok")
    if notice:
        flash(notice, "warn")
    if two_factor.enrolment_due(member):
        return redirect(url_for("two_factor.setup"))
    return redirect(safe_next(next_url, url_for("machines.overview")))


def end_pending() -> str | None:
    """Forgets this browser's pending sign-in (its row too; the caller commits); returns its next URL."""
    two_factor.end_challenge(session.pop(PENDING, None))
    next_url = session.pop(PENDING_NEXT, None)
    return next_url if isinstance(next_url, str) else None
