"""Notifications: what a member is told (notices), the mails waiting to go out (the outbox), and what each
member chose to receive.

A notice and its outbox mail are written in the same transaction as the change that causes them, so a
rolled-back booking sends nothing and a committed one is never lost; `fablab notify` delivers the outbox.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import Model
from .members import Member
from .types import UTCDateTime, utcnow


class Notice(Model):
    """One thing told to one member: shown in-app (unless they chose mail off and in-app off) and the source
    of their mail. `params` is a snapshot (names, times as ISO strings, ids) so it renders the same later."""

    __tablename__ = "notices"

    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(40))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Where the notice leads (a path in the app, e.g. /bookings/12), or None.
    link: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The same event never makes two notices for one member (a job that runs twice, a retried request).
    dedupe_key: Mapped[str | None] = mapped_column(String(200))
    # 'none' (in-app only), 'queued' (its mail is in the outbox), 'digest' (waits for the daily digest),
    # 'digested' (went out in a digest).
    email_state: Mapped[str] = mapped_column(String(10), default="none")

    member: Mapped[Member] = relationship()

    __table_args__ = (
        UniqueConstraint("member_id", "dedupe_key"),
        Index("ix_notices_member_unread", "member_id", "read_at"),
        Index("ix_notices_digest", "email_state", "member_id"),
    )


class OutboxMail(Model):
    """One mail to one address, waiting or done. Its Message-ID is fixed when it is queued, so the one repeat
    that can happen (the server accepted it, the worker died before recording that) has the same id."""

    __tablename__ = "outbox_mails"

    id: Mapped[int] = mapped_column(primary_key=True)
    notice_id: Mapped[int | None] = mapped_column(ForeignKey("notices.id", ondelete="SET NULL"), index=True)
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    to_address: Mapped[str] = mapped_column(String(254))
    message_id: Mapped[str] = mapped_column(String(200), unique=True)
    # Extra context for rendering beyond the notice (a digest's notice ids, an invitation's method).
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # 'pending' (to send at next_attempt_at), 'sent', 'failed' (retry budget spent; admins see last_error).
    status: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # A worker that took the mail holds it until then; a worker that died lets it go when the lease ends.
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    notice: Mapped[Notice | None] = relationship()

    __table_args__ = (Index("ix_outbox_mails_due", "status", "next_attempt_at"),)


class NoticePreference(Model):
    """A member's choice for one kind of notice (no row: the kind's default)."""

    __tablename__ = "notice_preferences"

    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(40), primary_key=True)
    channel: Mapped[str] = mapped_column(String(8))  # fablab.domain.notice_kinds.Channel


class NoticeSettings(Model):
    """A member's settings that hold for every kind: how long before a booking the reminder comes, whether
    non-urgent mail is gathered into one daily digest."""

    __tablename__ = "notice_settings"

    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), primary_key=True)
    reminder_minutes: Mapped[int] = mapped_column(Integer, default=60)  # 0: no reminder
    digest: Mapped[bool] = mapped_column(Boolean, default=False)
    # The local hour the digest goes out (lab time zone).
    digest_hour: Mapped[int] = mapped_column(Integer, default=7)
    last_digest_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
