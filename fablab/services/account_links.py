"""One-time links mailed to someone: an invitation, an email verification, a password reset.

Only the token's digest is stored (`AccountLink.token_hash`); the token itself travels in the mail, whose
outbox row drops it once the mail went out (notify.SECRET_PARAM). A link works once, until it expires, and
a newer link of the same purpose for the same address revokes the older ones. Checking a link that does not
work changes nothing and says why, so the page can offer the way out (ask for a new link).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, select, update

from ..domain import joining
from ..extensions import db
from ..models import Member
from ..models.accounts import AccountLink
from ..security import new_token, token_digest
from . import notify, throttle


class LinkRefused(Exception):
    """The link does not work; `reason` is unknown, malformed, used, revoked or expired."""

    STATUS = {"malformed": 400, "unknown": 404, "used": 410, "revoked": 410, "expired": 410}

    def __init__(self, reason: str, purpose: str, message: str, link: AccountLink | None = None) -> None:
        super().__init__(message)
        self.reason, self.purpose, self.message, self.link = reason, purpose, message, link

    @property
    def status(self) -> int:
        return self.STATUS[self.reason]


_WHAT = {joining.INVITE: "invitation", joining.VERIFY: "confirmation link", joining.RESET: "password reset link"}


def link_url(purpose: str, token: str) -> str:
    return notify.absolute_url(f"{joining.PATHS[purpose]}?token={token}")


def supersede(purpose: str, email: str, now: datetime) -> int:
    """Revoke every live link of this purpose for this address; how many."""
    result = db.session.execute(update(AccountLink).where(
        AccountLink.purpose == purpose, AccountLink.email == email.strip().lower(),
        AccountLink.used_at.is_(None), AccountLink.revoked_at.is_(None)).values(revoked_at=now),
        execution_options={"synchronize_session": False})
    return cast(CursorResult[Any], result).rowcount or 0


def issue(purpose: str, email: str, now: datetime, *, member: Member | None = None,
          created_by: Member | None = None, role: str | None = None,
          name: str | None = None) -> tuple[AccountLink, str]:
    """A new link (older ones of the purpose for the address stop working) and its token, returned once."""
    email = email.strip().lower()
    supersede(purpose, email, now)
    token = new_token()
    link = AccountLink(purpose=purpose, token_hash=token_digest(token), email=email,
                       member_id=member.id if member else None, created_by_id=created_by.id if created_by else None,
                       role=role, name=name, created_at=now, expires_at=now + joining.lifetime(purpose))
    db.session.add(link)
    db.session.flush()
    return link, token


def mail_link(link: AccountLink, token: str, now: datetime, **params: Any) -> None:
    """Queue the mail that carries the link (the token only in the secret part of its params)."""
    notify.queue_mail_to(link.email, "account_link", now, member_id=link.member_id, params={
        "purpose": link.purpose, "expires_at": link.expires_at.isoformat(), **params,
        notify.SECRET_PARAM: {"url": link_url(link.purpose, token)}})


def check(purpose: str, token: object, now: datetime, *, for_update: bool = False) -> AccountLink:
    """The live link for this token, or LinkRefused. With `for_update` the row is locked (PostgreSQL), so two
    requests with the same link cannot both use it."""
    what = _WHAT[purpose]
    if not isinstance(token, str) or not token or len(token) > joining.TOKEN_MAX or \
            not all(c.isalnum() or c in "-_" for c in token):
        raise LinkRefused("malformed", purpose, f"This {what} is incomplete or damaged: copy the whole link from "
                          "the mail, or ask for a new one.")
    stmt = select(AccountLink).where(AccountLink.token_hash == token_digest(token))
    if for_update:
        stmt = stmt.with_for_update()
    link = db.session.scalar(stmt)
    if link is None or link.purpose != purpose:
        raise LinkRefused("unknown", purpose, f"This {what} is not valid. Check that you copied the whole link, "
                          "or ask for a new one.")
    if link.used_at is not None:
        raise LinkRefused("used", purpose, f"This {what} was already used. Each link works once.", link)
    if link.revoked_at is not None:
        raise LinkRefused("revoked", purpose, f"This {what} was replaced by a newer one or withdrawn: use the "
                          "newest mail, or ask for a new link.", link)
    if link.expires_at <= now:
        raise LinkRefused("expired", purpose, f"This {what} expired. Ask for a new one.", link)
    return link


def use(link: AccountLink, now: datetime) -> None:
    """Spend the link (and any other live link of its purpose for the address)."""
    link.used_at = now
    supersede(link.purpose, link.email, now)


def live(purpose: str, email: str, now: datetime) -> AccountLink | None:
    return db.session.scalar(select(AccountLink).where(
        AccountLink.purpose == purpose, AccountLink.email == email.strip().lower(), AccountLink.used_at.is_(None),
        AccountLink.revoked_at.is_(None), AccountLink.expires_at > now).order_by(AccountLink.id.desc()))


def mail_budgets(action: str, remote_addr: str | None) -> tuple[throttle.Budget, ...]:
    """Every mail a visitor can make the lab send (sign-up, a link again, a password reset) counts against
    their source: 5 in a quarter of an hour, then a growing wait. Never per address: nobody can stop the
    owner of an address from asking for their own link."""
    source = throttle.mark("src:" + throttle.source_of(remote_addr))
    return (throttle.Budget(f"mail-{action}:{source}", 5, 60),)
