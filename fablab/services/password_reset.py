"""Password reset by mail: a single-use link valid one hour; a newer link supersedes older ones.

Asking for a link answers the same whether or not the address has an account (the web page also takes the
same time either way). Using it sets the new password, confirms the address (the link came by mail), ends
every session of the member (whoever knew the old password is signed out) and tells them their password
changed; the page then signs them in through the one login path.
"""

from __future__ import annotations

from datetime import datetime

from ..domain import joining
from ..extensions import db
from ..models import Member
from ..models.accounts import AccountLink
from ..security import hash_password
from . import account_links, notify, sessions
from . import members as member_service


def request_reset(email: str, now: datetime) -> None:
    """Mail a reset link if an active account has this address; nothing otherwise (the caller says the same)."""
    member = member_service.member_by_email(email)
    if member is None or not member.active or member.deleted_at is not None:
        return
    link, token = account_links.issue(joining.RESET, member.email, now, member=member)
    account_links.mail_link(link, token, now, name=member.name)


def check(token: object, now: datetime) -> Member:
    """The member a live reset link belongs to (LinkRefused otherwise); changes nothing."""
    link = account_links.check(joining.RESET, token, now)
    return _member_of(link)


def _member_of(link: AccountLink) -> Member:
    member = db.session.get(Member, link.member_id) if link.member_id is not None else None
    if member is None or not member.active or member.deleted_at is not None or member.email != link.email:
        raise account_links.LinkRefused("unknown", joining.RESET, "This reset link belongs to no account any more. "
                                        "Ask for a new one.")
    return member


def reset(token: object, new_password: str, now: datetime) -> Member:
    """Set the new password and end every session; the link is spent."""
    link = account_links.check(joining.RESET, token, now, for_update=True)
    member = _member_of(link)
    member.password_hash = hash_password(new_password)
    if member.email_verified_at is None:
        member.email_verified_at = now
    account_links.use(link, now)
    sessions.end_all(member)
    notify.notify(member, "account_changed", {"change": "password", "at": now.isoformat()}, now=now,
                  link="/account")
    return member
