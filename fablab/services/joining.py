"""Joining the lab (FABLAB_SIGNUP): staff invitations, open sign-up with email verification, staff approval.

- closed: staff create members (admin pages); staff may still invite.
- invite: staff invite one or many addresses; each gets a one-time link valid 7 days.
- open: anyone signs up (name, email, password), confirms the address by a link valid 48 hours, and with
  FABLAB_SIGNUP_APPROVAL waits for a steward's approval. Until then they can sign in and look around; the
  booking rules refuse every booking (`account_not_verified`, `account_not_approved`).

Sign-up answers the same whether or not the address has an account (the owner gets a mail saying so), so
the form cannot be used to find out who is a member. Every function writes in the caller's transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from flask import current_app
from sqlalchemy import select

from ..domain import audit_actions, joining
from ..extensions import db
from ..models import Member, Role
from ..models.accounts import AccountLink
from ..security import hash_password
from . import account_links, audit, notify
from . import members as member_service


class JoinRefused(Exception):
    """The request cannot be done; the message says why and what to do instead."""

    def __init__(self, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.message, self.status = message, status


def mode() -> str:
    return joining.signup_mode(current_app.config.get("FABLAB_SIGNUP"))


def approval_required() -> bool:
    return bool(current_app.config.get("FABLAB_SIGNUP_APPROVAL"))


# --- invitations ---------------------------------------------------------------------------------------


@dataclass
class InviteResult:
    invited: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (address, why)


def invitable_roles(actor: Member) -> list[Role]:
    """Staff invite as at most what they may grant: stewards invite members, admins any role."""
    return list(Role) if actor.has_role(Role.ADMIN) else [Role.MEMBER]


def invite(actor: Member, addresses: list[str], now: datetime, *, name: str | None = None,
           role: str = Role.MEMBER.value) -> InviteResult:
    """One invitation per address (a repeated one replaces the older link); members already in are skipped."""
    if Role(role) not in invitable_roles(actor):
        raise JoinRefused(f"You may invite people as {', '.join(r.value for r in invitable_roles(actor))} only.", 403)
    if len(addresses) > joining.MAX_INVITES:
        raise JoinRefused(f"At most {joining.MAX_INVITES} addresses at once; split the list.", 422)
    out = InviteResult()
    for address in addresses:
        if member_service.member_by_email(address) is not None:
            out.skipped.append((address, "already has an account"))
            continue
        _send_invitation(actor, address, now, name=name if len(addresses) == 1 else None, role=role)
        out.invited.append(address)
    return out


def _send_invitation(actor: Member, address: str, now: datetime, *, name: str | None, role: str) -> AccountLink:
    link, token = account_links.issue(joining.INVITE, address, now, created_by=actor, role=role, name=name or None)
    account_links.mail_link(link, token, now, name=name or "", invited_by=actor.name)
    audit.record(actor, audit_actions.MEMBER_INVITED, target_type="invitation", target_id=link.id,
                 target_label=address, detail={"role": role}, now=now)
    return link


def invitations(now: datetime) -> list[AccountLink]:
    """Invitations not accepted nor withdrawn, newest first (expired ones too: staff may send them again)."""
    return list(db.session.scalars(select(AccountLink).where(
        AccountLink.purpose == joining.INVITE, AccountLink.used_at.is_(None), AccountLink.revoked_at.is_(None))
        .order_by(AccountLink.created_at.desc(), AccountLink.id.desc())))


def _open_invitation(link_id: int) -> AccountLink:
    link = db.session.get(AccountLink, link_id)
    if link is None or link.purpose != joining.INVITE:
        raise LookupError(link_id)
    if link.used_at is not None:
        raise JoinRefused(f"The invitation to {link.email} was accepted already.")
    if link.revoked_at is not None:
        raise JoinRefused(f"The invitation to {link.email} was withdrawn or replaced already.")
    return link


def resend_invitation(actor: Member, link_id: int, now: datetime) -> AccountLink:
    """A new link to the same address (name and role kept); the old link stops working."""
    old = _open_invitation(link_id)
    if member_service.member_by_email(old.email) is not None:
        raise JoinRefused(f"{old.email} has an account already: there is nothing to send.")
    return _send_invitation(actor, old.email, now, name=old.name, role=old.role or Role.MEMBER.value)


def revoke_invitation(actor: Member, link_id: int, now: datetime) -> AccountLink:
    link = _open_invitation(link_id)
    link.revoked_at = now
    audit.record(actor, audit_actions.INVITATION_REVOKED, target_type="invitation", target_id=link.id,
                 target_label=link.email, now=now)
    return link


def accept_invitation(token: object, name: str, password: str, pin: str | None, now: datetime) -> Member:
    """The invited person's account: verified (the link came by mail) and approved (staff invited them)."""
    link = account_links.check(joining.INVITE, token, now, for_update=True)
    if member_service.member_by_email(link.email) is not None:
        raise JoinRefused("There is an account with this address already: sign in (or reset the password).")
    member = member_service.create_member(link.email, name.strip() or link.email.split("@")[0],
                                          link.role or Role.MEMBER.value, password, verified=True, approved=True)
    if pin:
        member_service.set_pin(member, pin)
    account_links.use(link, now)
    return member


# --- open sign-up ------------------------------------------------------------------------------------------


def sign_up(email: str, name: str, password: str, now: datetime) -> None:
    """A new member waiting for their address to be confirmed, and the mail with the link. An address that
    has an account already gets a mail saying so instead (the page answers the same either way)."""
    if mode() != "open":
        raise JoinRefused("This lab does not take sign-ups online. Ask the lab's staff for an invitation.", 404)
    email = email.strip().lower()
    existing = member_service.member_by_email(email)
    if existing is not None:
        hash_password(password)  # the time a new account's hash takes: the answer must not be quicker
        if existing.active and existing.deleted_at is None:
            notify.queue_mail_to(existing.email, "account_link", now, member_id=existing.id,
                                 params={"purpose": "exists", "name": existing.name,
                                         "login_url": notify.absolute_url("/login")})
        return
    try:
        member = member_service.create_member(email, name.strip(), Role.MEMBER, password, verified=False,
                                              approved=not approval_required())
    except member_service.EmailTaken:  # the same address signed up at this very moment: answer the same
        return
    send_verification(member, now)


def send_verification(member: Member, now: datetime) -> AccountLink:
    """A (new) confirmation link for the member's address; older ones stop working."""
    if member.email_verified_at is not None:
        raise JoinRefused("Your email address is confirmed already.")
    link, token = account_links.issue(joining.VERIFY, member.email, now, member=member)
    account_links.mail_link(link, token, now, name=member.name, approval=not member.approved)
    return link


def verify(token: object, now: datetime) -> Member:
    """Confirm the address the link went to; stewards hear of it when the account still needs approval."""
    link = account_links.check(joining.VERIFY, token, now, for_update=True)
    member = db.session.get(Member, link.member_id) if link.member_id is not None else None
    if member is None or member.email != link.email or not member.active:
        raise account_links.LinkRefused("unknown", joining.VERIFY, "This confirmation link belongs to no account "
                                        "any more. Sign up again, or ask the lab's staff.")
    account_links.use(link, now)
    if member.email_verified_at is None:
        member.email_verified_at = now
        if not member.approved:
            notify.notify_staff("signup_pending", {"name": member.name, "member_no": member.member_no}, now=now,
                                link="/join/approvals", dedupe_key=f"signup_pending:{member.id}")
    return member


# --- approval ------------------------------------------------------------------------------------------------


def pending_approval() -> list[Member]:
    """Active members waiting for approval: those who confirmed their address first, then oldest first."""
    rows = db.session.scalars(select(Member).where(Member.approved.is_(False), Member.active.is_(True),
                                                   Member.deleted_at.is_(None)).order_by(Member.created_at, Member.id))
    return sorted(rows, key=lambda m: m.email_verified_at is None)


def _pending(member_id: int) -> Member:
    member = db.session.get(Member, member_id)
    if member is None:
        raise LookupError(member_id)
    if member.approved or not member.active:
        raise JoinRefused(f"{member.name} is not waiting for approval (decided already).")
    return member


def approve(actor: Member, member_id: int, now: datetime) -> Member:
    member = _pending(member_id)
    member.approved = True
    notify.notify(member, "account_review", {"decision": "approved", "by": actor.name}, now=now, link="/",
                  dedupe_key=f"account_review:{member.id}:approved")
    audit.record(actor, audit_actions.MEMBER_APPROVED, target=member, now=now)
    return member


def reject(actor: Member, member_id: int, now: datetime, reason: str = "") -> Member:
    """The sign-up is not accepted: the account is deactivated (its address stays taken) and they are told."""
    member = _pending(member_id)
    reason = " ".join(reason.split())[:300]
    notify.queue_mail(member, "account_review", now, params={"decision": "rejected", "reason": reason})
    member.active = False
    audit.record(actor, audit_actions.MEMBER_REJECTED, target=member, detail={"reason": reason}, now=now)
    return member
