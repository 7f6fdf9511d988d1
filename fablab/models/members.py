"""Members, their API tokens, their signed-in sessions and login throttling."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, Float, ForeignKey, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import Model
from .types import UTCDateTime, utcnow


class Role(StrEnum):
    MEMBER = "member"
    STEWARD = "steward"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return {"member": 0, "steward": 1, "admin": 2}[self.value]


class Member(Model):
    __tablename__ = "members"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Short number printed on the membership card, typed on the kiosk keypad with the PIN.
    member_no: Mapped[int] = mapped_column(Integer, unique=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default=Role.MEMBER.value)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Badge UIDs are low-entropy: stored as a keyed HMAC so a database leak does not reveal them.
    badge_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    pin_hash: Mapped[str | None] = mapped_column(String(255))
    # Private iCal feed: only the hash of the URL token is kept.
    ical_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    # Fair-share weight (1.0 = an equal share); labs may give groups different shares.
    share: Mapped[float] = mapped_column(Float, default=1.0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Accounts (issue 17). Staff-created members count as verified; a self-signed-up member is verified when
    # they follow the mailed link, and may book only once `approved` (when the lab asks staff to approve).
    email_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    approved: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    # Set when the member deleted their account: name and email are gone, the history stays pseudonymous.
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Two-factor sign-in: the TOTP secret, encrypted with a key derived from the app's secret key (it must be
    # read back to check codes, so it cannot be hashed); the last accepted time step stops a code's replay.
    totp_secret: Mapped[str | None] = mapped_column(String(255))
    totp_enabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    totp_last_step: Mapped[int | None] = mapped_column(Integer)
    # The member's language (issue 18); None follows the browser, then the lab's default.
    language: Mapped[str | None] = mapped_column(String(8))

    tokens: Mapped[list[ApiToken]] = relationship(back_populates="member", cascade="all, delete-orphan")

    @property
    def role_enum(self) -> Role:
        return Role(self.role)

    def has_role(self, role: Role) -> bool:
        return self.role_enum.rank >= role.rank

    @property
    def is_staff(self) -> bool:
        return self.has_role(Role.STEWARD)

    @property
    def pseudonym(self) -> str:
        return f"Member {self.member_no}"

    def __repr__(self) -> str:
        return f"<Member {self.member_no} {self.email} {self.role}>"


class ApiToken(Model):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(80), default="api")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    # 'read' (GET only) or 'write' (read and write); tokens from before scopes existed are 'write'.
    scope: Mapped[str] = mapped_column(String(8), default="write", server_default=text("'write'"))
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    member: Mapped[Member] = relationship(back_populates="tokens")

    @property
    def can_write(self) -> bool:
        return self.scope == "write"

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now


class MemberSession(Model):
    """A signed-in browser (web) or kiosk member: the cookie holds a random id, only its hash is here.

    Deleting the row signs that browser out, whatever copy of the cookie exists.
    """

    __tablename__ = "member_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(8), default="web")  # web, kiosk
    kiosk_id: Mapped[int | None] = mapped_column(ForeignKey("kiosk_devices.id", ondelete="CASCADE"))
    user_agent: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)

    member: Mapped[Member] = relationship()


class LoginThrottle(Model):
    """Failed identification attempts per key (a source, a source and account, a kiosk member number),
    shared by all workers. Keys carry keyed hashes, never a typed email or an address."""

    __tablename__ = "login_throttle"

    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failure_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
