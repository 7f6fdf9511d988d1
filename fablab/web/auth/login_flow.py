"""Every way of signing in ends in `finish_login`: password, LDAP, OpenID Connect, an accepted invitation,
a password reset. It is the one place that decides what is still due before the session opens (a second
factor, for instance), so no sign-in path can skip it."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, url_for

from ...auth import sign_in
from ...extensions import db
from ...models import Member
from ..redirects import safe_next


def finish_login(member: Member, *, method: str, next_url: str | None = None) -> Any:
    """Opens the session for `member`, who proved who they are by `method` ("password", "ldap", "oidc",
    "invite", "reset"), commits, and redirects to `next_url` (checked to stay on this site)."""
    sign_in(member)
    db.session.commit()
    flash(f"Welcome, {member.name}.", "ok")
    return redirect(safe_next(next_url, url_for("machines.overview")))
