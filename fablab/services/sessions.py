"""Signed-in sessions kept on the server: the cookie holds a random id, the table its hash.

Signing out deletes the row, so a cookie copied before then is worthless; a password change ends the
member's other sessions. Rows that went unused for longer than their lifetime are pruned at sign-in.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, and_, delete, or_, select

from ..extensions import db
from ..models import Member, MemberSession
from ..security import new_token, token_digest

WEB = "web"
KIOSK = "kiosk"
# last_seen_at is written at most this often: a write per request would serialise SQLite.
TOUCH_EVERY = timedelta(minutes=1)
# A kiosk member is signed out after a minute or so of inactivity (enforced per request); a row left by
# a kiosk that lost power is pruned after this.
KIOSK_ROW_LIFETIME = timedelta(hours=1)


def open_session(member: Member, kind: str, now: datetime, lifetime: timedelta, user_agent: str = "",
                 kiosk_id: int | None = None) -> tuple[MemberSession, str]:
    """A new session row and the id for the cookie (returned once; only its digest is stored)."""
    prune(now, lifetime)
    token = new_token()
    row = MemberSession(member_id=member.id, token_hash=token_digest(token), kind=kind, kiosk_id=kiosk_id,
                        user_agent=user_agent[:200], created_at=now, last_seen_at=now)
    db.session.add(row)
    db.session.flush()
    return row, token


def find(token: object, kind: str, now: datetime, lifetime: timedelta) -> MemberSession | None:
    """The live session for a cookie's id, or None (unknown, ended, idle too long, member deactivated)."""
    if not isinstance(token, str) or not token:
        return None
    row = db.session.scalar(select(MemberSession).where(MemberSession.token_hash == token_digest(token),
                                                        MemberSession.kind == kind))
    if row is None or now - row.last_seen_at > lifetime or not row.member.active:
        return None
    return row


def needs_touch(row: MemberSession, now: datetime) -> bool:
    return now - row.last_seen_at >= TOUCH_EVERY


def end(row: MemberSession) -> None:
    db.session.delete(row)


def end_by_token(token: object) -> None:
    if isinstance(token, str) and token:
        db.session.execute(delete(MemberSession).where(MemberSession.token_hash == token_digest(token)))


def end_others(member: Member, keep: MemberSession | None) -> int:
    """Ends every session of the member but `keep` (web and kiosk); returns how many ended."""
    stmt = delete(MemberSession).where(MemberSession.member_id == member.id)
    if keep is not None:
        stmt = stmt.where(MemberSession.id != keep.id)
    return cast(CursorResult[Any], db.session.execute(stmt)).rowcount or 0


def end_all(member: Member) -> int:
    return end_others(member, None)


def member_sessions(member: Member) -> list[MemberSession]:
    return list(db.session.scalars(select(MemberSession).where(MemberSession.member_id == member.id)
                                   .order_by(MemberSession.last_seen_at.desc())))


def prune(now: datetime, lifetime: timedelta) -> None:
    """Delete sessions nobody can use any more (idle past their lifetime)."""
    db.session.execute(delete(MemberSession).where(or_(
        MemberSession.last_seen_at < now - lifetime,
        and_(MemberSession.kind == KIOSK, MemberSession.last_seen_at < now - KIOSK_ROW_LIFETIME))))
