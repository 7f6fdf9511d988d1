"""Members: creation, credentials (password, badge, PIN, tokens) and lookups."""

from __future__ import annotations

from datetime import datetime

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from ..extensions import db
from ..models import ApiToken, Member, Role
from ..models.types import utcnow
from ..security import badge_digest, hash_password, new_token, token_digest, verify_password


class MemberError(ValueError):
    """A member could not be saved; the message says why."""


class EmailTaken(MemberError):
    """Another member has this email address."""


MEMBER_NO_ATTEMPTS = 50  # concurrent sign-ups each retry with the next number; this many is never reached


def member_by_email(email: str) -> Member | None:
    return db.session.scalar(select(Member).where(Member.email == email.strip().lower()))


def member_by_no(member_no: int) -> Member | None:
    return db.session.scalar(select(Member).where(Member.member_no == member_no))


def member_by_badge(uid: str) -> Member | None:
    digest = badge_digest(current_app.config["SECRET_KEY"], uid)
    return db.session.scalar(select(Member).where(Member.badge_hash == digest, Member.active.is_(True)))


def create_member(email: str, name: str, role: Role | str = Role.MEMBER, password: str | None = None,
                  member_no: int | None = None, verified: bool = True, approved: bool = True) -> Member:
    """A new member with the next free member number. Staff-created members count as verified; self sign-up
    passes verified=False (and approved=False where staff approve newcomers).

    Two sign-ups at once may both read the same highest number: the unique index refuses the second insert,
    which is undone in its savepoint and tried again with the number after the one just taken."""
    email = email.strip().lower()
    if member_by_email(email) is not None:
        raise EmailTaken(f"A member with the email {email} already exists.")
    password_hash = hash_password(password) if password else None
    for _ in range(MEMBER_NO_ATTEMPTS):
        number = member_no if member_no is not None else (
            db.session.scalar(select(func.max(Member.member_no))) or 1000) + 1
        member = Member(email=email, name=name, role=Role(role).value, member_no=number, share=1.0, active=True,
                        email_verified_at=utcnow() if verified else None, approved=approved,
                        password_hash=password_hash)
        try:
            with db.session.begin_nested():
                db.session.add(member)
                db.session.flush()
        except IntegrityError:
            if member_by_email(email) is not None:  # the same address signed up at the same moment
                raise EmailTaken(f"A member with the email {email} already exists.") from None
            if member_no is not None:
                raise MemberError(f"The member number {member_no} is taken.") from None
            continue
        return member
    raise MemberError("Could not find a free member number; please try again.")


def set_badge(member: Member, uid: str | None) -> None:
    if not uid:
        member.badge_hash = None
        return
    digest = badge_digest(current_app.config["SECRET_KEY"], uid)
    other = db.session.scalar(select(Member).where(Member.badge_hash == digest, Member.id != member.id))
    if other is not None:
        raise MemberError("This badge already belongs to another member.")
    member.badge_hash = digest


def set_pin(member: Member, pin: str | None) -> None:
    member.pin_hash = hash_password(pin) if pin else None


def check_pin(member: Member, pin: str) -> bool:
    return verify_password(member.pin_hash, pin)


TOKEN_SCOPES = ("read", "write")
_READ_METHODS = ("GET", "HEAD", "OPTIONS")


def create_api_token(member: Member, name: str = "api", scope: str = "write",
                     expires_at: datetime | None = None) -> str:
    """Returns the token once; only its digest is stored. `scope` 'read' allows reading only."""
    if scope not in TOKEN_SCOPES:
        raise MemberError(f"A token's scope is 'read' or 'write', not {scope!r}.")
    token = new_token()
    db.session.add(ApiToken(member=member, name=name, token_hash=token_digest(token), scope=scope,
                            expires_at=expires_at))
    db.session.flush()
    return token


def token_refusal(row: ApiToken, method: str, now: datetime) -> tuple[int, str, str] | None:
    """Why this token may not make this request — (status, code, message) — or None when it may."""
    if row.expired(now):
        assert row.expires_at is not None
        return (401, "token_expired", f"This API token expired at {row.expires_at.isoformat(timespec='minutes')}. "
                "Create a new one on your account page.")
    if method.upper() not in _READ_METHODS and not row.can_write:
        return (403, "insufficient_scope", "This API token may only read. Create a read-and-write token on "
                "your account page to make changes.")
    return None


def member_by_api_token(token: str) -> tuple[Member, ApiToken] | None:
    row = db.session.scalar(
        select(ApiToken).where(ApiToken.token_hash == token_digest(token), ApiToken.revoked.is_(False))
    )
    if row is None or not row.member.active:
        return None
    return row.member, row


def new_ical_token(member: Member) -> str:
    token = new_token()
    member.ical_token_hash = token_digest(token)
    return token


def member_by_ical_token(token: str) -> Member | None:
    return db.session.scalar(select(Member).where(Member.ical_token_hash == token_digest(token)))
