"""Two-factor sign-in with TOTP (RFC 6238, pyotp): enrolment, codes, recovery codes, the lab's requirement
for staff, and the sign-ins that wait for their second factor.

The TOTP secret must be read back to check codes, so it cannot be hashed: it is stored encrypted (Fernet)
with a key derived by HKDF from the app's SECRET_KEY, and never logged or audited. Changing SECRET_KEY
therefore makes enrolled authenticators unreadable: those members sign in with a recovery code (stored as
a digest, unaffected) or an admin resets their two-factor sign-in. Every check takes `now`.
"""

from __future__ import annotations

import base64
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import pyotp
import segno
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app
from sqlalchemy import CursorResult, delete, func, or_, select, update
from sqlalchemy.orm.attributes import set_committed_value

from ..domain import audit_actions
from ..domain import totp_rules as rules
from ..extensions import db
from ..models import Member
from ..models.accounts import RecoveryCode
from ..models.two_factor import TwoFactorChallenge, TwoFactorSettings
from ..security import new_token, token_digest, verify_password
from . import audit, sessions, throttle

log = logging.getLogger(__name__)


class TwoFactorError(Exception):
    """A refusal with the sentence to show where the person acted, and the form field it is about."""

    def __init__(self, message: str, field: str = "code") -> None:
        super().__init__(message)
        self.field = field


# --- the secret at rest ---------------------------------------------------------------------------------

def _fernet() -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
               info=b"fablab:totp-secret:v1").derive(str(current_app.config["SECRET_KEY"]).encode())
    return Fernet(base64.urlsafe_b64encode(key))


def _seal(secret: str) -> str:
    return _fernet().encrypt(secret.encode()).decode()


def _secret(member: Member) -> str | None:
    if not member.totp_secret:
        return None
    try:
        return _fernet().decrypt(member.totp_secret.encode()).decode()
    except (InvalidToken, ValueError):
        # Not the secret: it must never reach a log. The member id says whom to help.
        log.warning("two-factor secret of member %s cannot be decrypted (was SECRET_KEY changed?)", member.id)
        return None


# --- the lab's requirement --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Requirement:
    deployment: bool  # FABLAB_REQUIRE_2FA_STAFF
    switch: bool  # the admin's switch

    @property
    def on(self) -> bool:
        return self.deployment or self.switch


def staff_requirement() -> Requirement:
    row = db.session.get(TwoFactorSettings, 1)
    return Requirement(bool(current_app.config.get("FABLAB_REQUIRE_2FA_STAFF")), bool(row and row.require_staff))


def set_staff_requirement(actor: Member, on: bool, now: datetime) -> bool:
    """The admin's switch; audited when it changes (the caller commits). Returns whether it changed."""
    row = db.session.get(TwoFactorSettings, 1)
    if row is None:
        row = TwoFactorSettings(id=1, require_staff=False, updated_at=now)
        db.session.add(row)
    if row.require_staff == on:
        return False
    row.require_staff, row.updated_at, row.updated_by_id = on, now, actor.id
    audit.record(actor, audit_actions.TWO_FACTOR_REQUIRED, target_type="lab", target_label="stewards and admins",
                 detail={"required": on}, now=now)
    return True


def enabled(member: Member) -> bool:
    return member.totp_enabled_at is not None


def required_for(member: Member) -> bool:
    if not member.is_staff:  # no query for most members
        return False
    req = staff_requirement()
    return rules.required_for(member.is_staff, req.deployment, req.switch)


def enrolment_due(member: Member) -> bool:
    """Staff the lab requires to use two-factor sign-in who have not enrolled yet."""
    return not enabled(member) and required_for(member)


@dataclass(frozen=True)
class Status:
    enabled: bool
    enabled_at: datetime | None
    pending: bool  # enrolment started, not confirmed
    codes_left: int
    required: bool


def codes_left(member: Member) -> int:
    return db.session.scalar(select(func.count()).select_from(RecoveryCode).where(
        RecoveryCode.member_id == member.id, RecoveryCode.used_at.is_(None))) or 0


def status(member: Member) -> Status:
    return Status(enabled(member), member.totp_enabled_at, not enabled(member) and bool(member.totp_secret),
                  codes_left(member) if enabled(member) else 0, required_for(member))


# --- enrolment ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Enrolment:
    secret: str  # base32, for typing into the app by hand
    uri: str  # otpauth://, what the QR code holds
    qr_svg: str  # inline SVG

    @property
    def secret_groups(self) -> str:
        return " ".join(self.secret[i:i + 4] for i in range(0, len(self.secret), 4))


def begin_enrolment(member: Member) -> None:
    """A new random secret, not yet in force (the caller commits). Starting again replaces an unconfirmed one."""
    if enabled(member):
        raise TwoFactorError("Two-factor sign-in is already on. Turn it off first to move to a new device.")
    member.totp_secret = _seal(pyotp.random_base32(length=32))
    member.totp_last_step = None


def enrolment(member: Member) -> Enrolment | None:
    """What the setup page shows for a started, unconfirmed enrolment (None: none started, or unreadable)."""
    if enabled(member):
        return None
    secret = _secret(member)
    if secret is None:
        return None
    # The app shows "issuer:account"; a colon in the lab's name would split it in the wrong place.
    issuer = str(current_app.config["FABLAB_LAB_NAME"]).replace(":", " ").strip() or "fablab"
    uri = pyotp.TOTP(secret).provisioning_uri(name=member.email, issuer_name=issuer)
    svg = segno.make(uri, error="m").svg_inline(scale=5, light="#fff")
    return Enrolment(secret, uri, svg)


def confirm_enrolment(member: Member, typed: str, now: datetime) -> list[str]:
    """Turns two-factor sign-in on once a code from the new app is right; returns the recovery codes to
    show once (the caller commits)."""
    if enabled(member):
        raise TwoFactorError("Two-factor sign-in is already on.")
    code = rules.read_code(typed)
    if code is None or code.kind != "totp":
        raise TwoFactorError("Type the 6-digit code your authenticator app shows now.")
    if not _accept_totp(member, code.value, now):
        raise TwoFactorError("That code is not right. Check that the app shows this lab's entry, that the phone's "
                             "clock is set automatically, and type the code it shows now.")
    member.totp_enabled_at = now
    return _new_recovery_codes(member)


# --- checking codes ----------------------------------------------------------------------------------------

def _accept_totp(member: Member, digits: str, now: datetime) -> bool:
    """The code is right for a step in the window that was not used yet; records that step atomically,
    so two requests racing with the same code cannot both pass."""
    secret = _secret(member)
    if secret is None:
        return False
    totp = pyotp.TOTP(secret, digits=rules.DIGITS, interval=rules.PERIOD_SECONDS)
    step = totp.timecode(now)
    for candidate in rules.fresh_steps(step, member.totp_last_step):
        if secrets.compare_digest(totp.at(now, counter_offset=candidate - step), digits):
            won = cast(CursorResult[Any], db.session.execute(
                update(Member).where(Member.id == member.id,
                                     or_(Member.totp_last_step.is_(None), Member.totp_last_step < candidate))
                .values(totp_last_step=candidate).execution_options(synchronize_session=False))).rowcount
            if won:  # the row has it already: no second UPDATE at flush
                set_committed_value(member, "totp_last_step", candidate)
            return bool(won)
    return False


def _accept_recovery(member: Member, value: str, now: datetime) -> bool:
    """Marks the recovery code used; true once per code (an UPDATE that only an unused row matches)."""
    result = cast(CursorResult[Any], db.session.execute(
        update(RecoveryCode).where(RecoveryCode.member_id == member.id, RecoveryCode.used_at.is_(None),
                                   RecoveryCode.code_hash == token_digest(value))
        .values(used_at=now).execution_options(synchronize_session=False)))
    return bool(result.rowcount)


def check_second_factor(member: Member, typed: str | None, now: datetime) -> str | None:
    """How `typed` proves the second factor: "totp", "recovery", or None (wrong, used, or unreadable).
    The caller commits (a success uses the code up)."""
    if not enabled(member):
        return None
    code = rules.read_code(typed)
    if code is None:
        return None
    if code.kind == "totp":
        return "totp" if _accept_totp(member, code.value, now) else None
    return "recovery" if _accept_recovery(member, code.value, now) else None


# --- recovery codes, turning off, the admin's reset --------------------------------------------------------

def _new_recovery_codes(member: Member) -> list[str]:
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.member_id == member.id))
    codes = ["".join(secrets.choice(rules.RECOVERY_ALPHABET) for _ in range(rules.RECOVERY_LENGTH))
             for _ in range(rules.RECOVERY_CODE_COUNT)]
    db.session.add_all(RecoveryCode(member_id=member.id, code_hash=token_digest(c)) for c in codes)
    return [rules.format_recovery(c) for c in codes]


def regenerate_codes(member: Member, typed: str, now: datetime) -> list[str]:
    """New recovery codes (the old ones stop working) after a current code proves the device is at hand."""
    if not enabled(member):
        raise TwoFactorError("Two-factor sign-in is off: there are no recovery codes to renew.")
    code = rules.read_code(typed)
    if code is None or code.kind != "totp" or not _accept_totp(member, code.value, now):
        raise TwoFactorError("That code is not right (or was used already). Type the code your app shows now.")
    return _new_recovery_codes(member)


def _clear(member: Member) -> None:
    member.totp_secret = None
    member.totp_enabled_at = None
    member.totp_last_step = None
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.member_id == member.id))
    db.session.execute(delete(TwoFactorChallenge).where(TwoFactorChallenge.member_id == member.id))


def needs_password(member: Member) -> bool:
    """Turning off asks for the password too, when the account has a local one (OIDC-only accounts have none)."""
    return bool(member.password_hash)


def disable(member: Member, password: str, typed: str, now: datetime) -> None:
    """The member turns it off: the password (if the account has one) and a current code or a recovery
    code (the caller commits)."""
    if not enabled(member):
        raise TwoFactorError("Two-factor sign-in is already off.")
    if needs_password(member) and not verify_password(member.password_hash, password):
        raise TwoFactorError("This is not your password.", field="password")
    if check_second_factor(member, typed, now) is None:
        raise TwoFactorError("That code is not right (or was used already). Type the code your app shows "
                             "now, or one of your unused recovery codes.")
    _clear(member)


def reset(member: Member, actor: Member, now: datetime) -> int:
    """An admin turns it off for a member who lost their device: secret and codes gone, every session of
    theirs ended; audited (the caller commits). Returns how many sessions ended."""
    if member.id == actor.id:
        raise TwoFactorError("You cannot reset your own two-factor sign-in here: turn it off on your account page.")
    if not enabled(member) and not member.totp_secret:
        raise TwoFactorError(f"{member.name} does not use two-factor sign-in: there is nothing to reset.")
    was_on = enabled(member)
    _clear(member)
    ended = sessions.end_all(member)
    audit.record(actor, audit_actions.TWO_FACTOR_RESET, target=member, now=now,
                 detail={"was_enabled": was_on, "sessions_ended": ended})
    return ended


# --- sign-ins waiting for the second factor ----------------------------------------------------------------

def open_challenge(member: Member, method: str, now: datetime) -> str:
    """A pending sign-in for this browser; returns the token for its cookie (only its digest is stored).
    The caller commits."""
    db.session.execute(delete(TwoFactorChallenge).where(TwoFactorChallenge.expires_at <= now))
    token = new_token()
    db.session.add(TwoFactorChallenge(member_id=member.id, token_hash=token_digest(token), method=method[:16],
                                      created_at=now, expires_at=now + rules.CHALLENGE_LIFETIME))
    return token


def find_challenge(token: object, now: datetime) -> TwoFactorChallenge | None:
    """The pending sign-in a cookie's token names, while it still takes codes (else None)."""
    if not isinstance(token, str) or not token:
        return None
    row = db.session.scalar(select(TwoFactorChallenge).where(TwoFactorChallenge.token_hash == token_digest(token)))
    if row is None or not rules.challenge_open(row.expires_at, row.failures, now):
        return None
    if not row.member.active or row.member.deleted_at is not None or not enabled(row.member):
        return None
    return row


def end_challenge(token: object) -> None:
    if isinstance(token, str) and token:
        db.session.execute(delete(TwoFactorChallenge).where(TwoFactorChallenge.token_hash == token_digest(token)))


def budgets(remote_addr: str | None, member: Member) -> tuple[throttle.Budget, ...]:
    """Wrong second factors from one source: for this account (5 free) and for all accounts (20 free).
    Like sign-in, none is the account's alone; each pending sign-in also ends after a few wrong codes, and a
    new one needs the password again (which the sign-in throttle counts)."""
    src = throttle.mark(throttle.source_of(remote_addr))
    return (throttle.Budget(f"2fa:{src}:{throttle.mark(f'member:{member.id}')}", 5, 30),
            throttle.Budget(f"2fa-src:{src}", 20, 30))
