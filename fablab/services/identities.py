"""Members signing in through an external identity provider (OIDC, LDAP): find, link or create the member
for a (provider, subject), and let the provider's groups decide the role when the lab maps them.

Shared by services/oidc_login.py and services/ldap_login.py; the caller has verified the identity."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select

from ..domain import audit_actions
from ..domain.role_mapping import role_for_groups
from ..extensions import db
from ..models import Member
from ..models.accounts import MemberIdentity
from . import audit
from . import members as member_service


@dataclass(frozen=True)
class ExternalIdentity:
    provider: str  # "oidc:<issuer>" or "ldap"
    subject: str
    email: str | None
    email_verified: bool
    name: str
    groups: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ExternalSignIn:
    """The member to sign in, or a refusal (`code`, and `message` for the person at the login page)."""

    member: Member | None = None
    code: str = ""
    message: str = ""
    created: bool = False
    linked: bool = False


def _refuse(code: str, message: str) -> ExternalSignIn:
    return ExternalSignIn(code=code, message=message)


def _apply_role(member: Member, identity: ExternalIdentity, role_map: dict[str, str], now: datetime) -> None:
    """With a role map, the provider decides: the highest mapped role, else member (so taking someone out of
    the stewards' group in the directory takes the role away here at their next sign-in)."""
    if not role_map:
        return
    role = role_for_groups(identity.groups, role_map, default="member") or "member"
    if role != member.role:
        audit.record(None, audit_actions.ROLE_CHANGED, target=member,
                     detail={"from": member.role, "to": role, "source": identity.provider}, now=now)
        member.role = role


def sign_in_external(identity: ExternalIdentity, *, role_map: dict[str, str], create: bool,
                     now: datetime) -> ExternalSignIn:
    """Find the member by (provider, subject); else link by verified email; else create (if `create`).

    The caller commits on success. Linking needs a verified email: an unverified claim could otherwise take
    over the local account that owns that address."""
    row = db.session.scalar(select(MemberIdentity).where(MemberIdentity.provider == identity.provider,
                                                         MemberIdentity.subject == identity.subject))
    if row is not None:
        member = db.session.get(Member, row.member_id)
        if member is None or not member.active or member.deleted_at is not None:
            return _refuse("account_inactive", "Your account here is deactivated. Ask the lab's staff.")
        row.last_login_at = now
        if identity.email and identity.email_verified:
            row.email = identity.email.strip().lower()
        _apply_role(member, identity, role_map, now)
        return ExternalSignIn(member=member)
    email = (identity.email or "").strip().lower()
    existing = member_service.member_by_email(email) if email else None
    if existing is not None:
        if not identity.email_verified:
            return _refuse("email_unverified",
                           f"An account with {email} exists here, but your provider has not verified that "
                           "address. Sign in with your password, or verify the address at your provider.")
        if not existing.active or existing.deleted_at is not None:
            return _refuse("account_inactive", "Your account here is deactivated. Ask the lab's staff.")
        db.session.add(MemberIdentity(member_id=existing.id, provider=identity.provider, subject=identity.subject,
                                      email=email, created_at=now, last_login_at=now))
        if existing.email_verified_at is None:
            existing.email_verified_at = now
        _apply_role(existing, identity, role_map, now)
        return ExternalSignIn(member=existing, linked=True)
    if not create:
        return _refuse("no_account", "There is no member account for you here yet. Ask the lab's staff for "
                                     "an invitation, then sign in this way again.")
    if not email and identity.provider == "ldap":
        return _refuse("no_email", "Your entry in the lab's directory has no email address, which the lab needs "
                                   "to create your account. Ask the lab's staff to add one.")
    if not email:
        return _refuse("no_email", "Your provider did not share an email address, which the lab needs to "
                                   "create your account. Allow the email scope, or ask the lab's staff.")
    if not identity.email_verified:
        # An account made from an unverified claim would hold someone else's address (and keep its owner out).
        return _refuse("email_unverified", f"Your provider has not verified {email}, so no account is made "
                                           "for it here. Verify the address at your provider, then try again.")
    member = member_service.create_member(email, identity.name or email.split("@")[0], verified=True)
    db.session.add(MemberIdentity(member_id=member.id, provider=identity.provider, subject=identity.subject,
                                  email=email, created_at=now, last_login_at=now))
    _apply_role(member, identity, role_map, now)
    return ExternalSignIn(member=member, created=True)


def identities_of(member: Member) -> list[MemberIdentity]:
    return list(db.session.scalars(select(MemberIdentity).where(MemberIdentity.member_id == member.id)
                                   .order_by(MemberIdentity.created_at)))


def link_identity(member: Member, identity: ExternalIdentity, *, now: datetime) -> str | None:
    """Adds this provider account as a way in for a signed-in `member` (the caller commits); a refusal's
    message when the account already signs in someone else."""
    row = db.session.scalar(select(MemberIdentity).where(MemberIdentity.provider == identity.provider,
                                                         MemberIdentity.subject == identity.subject))
    if row is not None:
        if row.member_id == member.id:
            return None
        return "That account is already linked to another member here. Sign in with it to use that member."
    email = (identity.email or "").strip().lower() if identity.email_verified else None
    db.session.add(MemberIdentity(member_id=member.id, provider=identity.provider, subject=identity.subject,
                                  email=email or None, created_at=now))
    return None


def unlink_identity(member: Member, identity_id: int) -> str | None:
    """Removes one of the member's linked sign-ins (the caller commits); a refusal's message when it is their
    only way in. LookupError when it is not theirs."""
    row = db.session.get(MemberIdentity, identity_id)
    if row is None or row.member_id != member.id:
        raise LookupError(identity_id)
    if not member.password_hash and len(identities_of(member)) <= 1:
        return ("This is your only way to sign in. Set a password first (by the password reset on the "
                "sign-in page, or ask the lab's staff), or link another sign-in, then unlink this one.")
    db.session.delete(row)
    return None
