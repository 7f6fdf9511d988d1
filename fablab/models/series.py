"""Recurring bookings: a weekly or fortnightly series whose occurrences are ordinary bookings or
maintenance blocks (bookings.series_id), each checked and written by the booking core."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Date, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import Model
from .machines import Machine
from .members import Member
from .types import UTCDateTime, utcnow


class SeriesKind(StrEnum):
    BOOKING = "booking"  # for a member, under every member rule
    COURSE = "course"  # a course or open-lab evening, booked by staff for the lab
    MAINTENANCE = "maintenance"  # a maintenance block


class SeriesStatus(StrEnum):
    ACTIVE = "active"
    CANCELLED = "cancelled"  # every occurrence still to come was cancelled


class BookingSeries(Model):
    __tablename__ = "booking_series"
    __table_args__ = (
        CheckConstraint("weekday >= 0 AND weekday <= 6", name="weekday_range"),
        CheckConstraint("start_minute >= 0 AND start_minute < 1440", name="start_minute_range"),
        CheckConstraint("every_weeks IN (1, 2)", name="every_weeks_allowed"),
        CheckConstraint("minutes > 0", name="minutes_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    machine_id: Mapped[int] = mapped_column(ForeignKey("machines.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    # Whose bookings the occurrences are: the member (kind booking) or the steward who planned it.
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))
    title: Mapped[str] = mapped_column(String(200), default="")
    weekday: Mapped[int] = mapped_column(Integer)  # 0 = Monday
    start_minute: Mapped[int] = mapped_column(Integer)  # local wall clock, minutes after midnight
    minutes: Mapped[int] = mapped_column(Integer)
    every_weeks: Mapped[int] = mapped_column(Integer, default=1)
    first_day: Mapped[date] = mapped_column(Date)
    until: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16), default=SeriesStatus.ACTIVE.value)
    # Occurrences not created when the series was saved, with the reason: [{start, code, message}].
    skipped: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    machine: Mapped[Machine] = relationship(lazy="joined")
    member: Mapped[Member] = relationship(foreign_keys=[member_id], lazy="joined")
    created_by: Mapped[Member | None] = relationship(foreign_keys=[created_by_id])
