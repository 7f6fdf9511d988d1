"""Two-factor sign-in: the lab's requirement switch and the sign-ins waiting for their second factor.

The member's own TOTP columns live on `Member`; recovery codes in `accounts.RecoveryCode`."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import Model
from .members import Member
from .types import UTCDateTime, utcnow


class TwoFactorSettings(Model):
    """One row (id 1): whether an admin requires two-factor sign-in of stewards and admins, on top of the
    deployment's FABLAB_REQUIRE_2FA_STAFF."""

    __tablename__ = "two_factor_settings"

    id: Mapped[int] = mapped_column(primary_key=True)
    require_staff: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))


class TwoFactorChallenge(Model):
    """A sign-in whose first factor was proven and that waits for the code: no session yet.

    The browser's cookie holds a random token, this table only its hash (the member id cannot be forged
    and a copy of the cookie is worthless once the row is gone). It expires after a few minutes, ends at the
    first right code and after a few wrong ones."""

    __tablename__ = "two_factor_challenges"

    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    method: Mapped[str] = mapped_column(String(16))  # how the first factor was proven: password, ldap, oidc...
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)

    member: Mapped[Member] = relationship()
