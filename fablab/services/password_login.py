"""Who a typed identifier and password belong to: the local password first, then any directory the lab
configured (LDAP). Throttling stays with the caller; this only answers who, or why not."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask import current_app
from sqlalchemy import select

from ..extensions import db
from ..models import Member
from ..models.types import utcnow
from ..security import verify_password
from . import ldap_login


@dataclass(frozen=True)
class PasswordSignIn:
    """Who signed in and how (`method`: "password" for the local one, "ldap"), or nobody. `refusal` is said
    instead of the generic "wrong" when the credentials could not be checked (the directory is down: 503) or
    were right but may not sign in here (403); neither is a wrong guess, so the caller does not count it."""

    member: Member | None = None
    method: str = ""
    refusal: str = ""
    status: int = 401


def local_member(identifier: str) -> Member | None:
    return db.session.scalar(select(Member).where(Member.email == identifier.strip().lower()))


def _local(identifier: str, password: str) -> Member | None:
    member = local_member(identifier)
    # verify_password runs even for an unknown address, so timing does not tell whether it exists.
    ok = verify_password(member.password_hash if member else None, password)
    if ok and member is not None and member.active and member.deleted_at is None:
        return member
    return None


def sign_in_with_password(identifier: str, password: str, *, now: datetime) -> PasswordSignIn:
    member = _local(identifier, password)
    if member is not None:
        return PasswordSignIn(member=member, method="password")
    settings = ldap_login.LdapSettings.from_config(current_app.config)
    if settings is None:
        return PasswordSignIn()
    try:
        signed = ldap_login.sign_in(identifier, password, settings=settings, now=now)
    except ldap_login.DirectoryUnavailable:
        # Said for every failed attempt while it lasts, known name or not, so it tells nothing about accounts.
        return PasswordSignIn(refusal=ldap_login.UNAVAILABLE_MESSAGE, status=503)
    if signed is None:
        return PasswordSignIn()
    if signed.member is None:
        return PasswordSignIn(refusal=signed.message, status=403)
    return PasswordSignIn(member=signed.member, method="ldap")


def authenticate(identifier: str, password: str, now: datetime | None = None) -> Member | None:
    """The active member these credentials sign in, or None (the same answer for every kind of failure)."""
    return sign_in_with_password(identifier, password, now=now or utcnow()).member
