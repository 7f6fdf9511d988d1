"""Who a typed identifier and password belong to: the local password first, then any directory the lab
configured (LDAP). Throttling stays with the caller; this only answers who, or None."""

from __future__ import annotations

from sqlalchemy import select

from ..extensions import db
from ..models import Member
from ..security import verify_password


def local_member(identifier: str) -> Member | None:
    return db.session.scalar(select(Member).where(Member.email == identifier.strip().lower()))


def authenticate(identifier: str, password: str) -> Member | None:
    """The active member these credentials sign in, or None (the same answer for every kind of failure)."""
    member = local_member(identifier)
    # verify_password runs even for an unknown address, so timing does not tell whether it exists.
    ok = verify_password(member.password_hash if member else None, password)
    if ok and member is not None and member.active and member.deleted_at is None:
        return member
    return None
