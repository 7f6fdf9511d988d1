"""Bookings of machine time. Maintenance blocks are bookings of kind "maintenance"."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import Model
from .machines import Machine
from .members import Member
from .types import UTCDateTime, utcnow


class BookingStatus(StrEnum):
    REQUESTED = "requested"
    CONFIRMED = "confirmed"
    CHECKED_IN = "checked_in"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    NO_SHOW = "no_show"
    RELEASED = "released"


# Bookings in these states hold their time on the machine and can still change (cancel, extend, check in).
# A "requested" booking (a request-window entry) competes for a slot but holds nothing yet.
ACTIVE_STATUSES = (BookingStatus.CONFIRMED, BookingStatus.CHECKED_IN)
# Statuses the database keeps from overlapping on one machine (ex_bookings_no_overlap: PostgreSQL exclusion
# constraint, SQLite triggers; migration 0005): completed time was held and used, no-show time was given back.
HELD_STATUSES = (BookingStatus.CONFIRMED, BookingStatus.CHECKED_IN, BookingStatus.COMPLETED)


class BookingKind(StrEnum):
    NORMAL = "normal"
    MAINTENANCE = "maintenance"
    INDUCTION = "induction"


class Booking(Model):
    __tablename__ = "bookings"
    __table_args__ = (
        CheckConstraint("end_at > start_at", name="end_after_start"),
        Index("ix_bookings_machine_time", "machine_id", "start_at", "end_at"),
        Index("ix_bookings_member_time", "member_id", "start_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    machine_id: Mapped[int] = mapped_column(ForeignKey("machines.id", ondelete="CASCADE"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    start_at: Mapped[datetime] = mapped_column(UTCDateTime)
    end_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The end as first booked: shortening/early end keeps the reservation's original length on record.
    booked_end_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16), default=BookingStatus.CONFIRMED.value, index=True)
    kind: Mapped[str] = mapped_column(String(16), default=BookingKind.NORMAL.value)
    note: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[str] = mapped_column(String(16), default="web")  # web, api, kiosk, badge, window
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    checked_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_by_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))
    cancel_reason: Mapped[str] = mapped_column(String(255), default="")
    # RFC 5545 SEQUENCE: bumped on every change so calendar apps update the event.
    sequence: Mapped[int] = mapped_column(Integer, default=0)
    # The recurring series this occurrence belongs to (fablab/models/series.py), if any. Deferred: loaded
    # only where a series is read, so a plain select(Booking) reads the columns of every schema since 0005.
    series_id: Mapped[int | None] = mapped_column(ForeignKey("booking_series.id", ondelete="SET NULL"), index=True,
                                                  deferred=True)

    machine: Mapped[Machine] = relationship(lazy="joined")
    member: Mapped[Member] = relationship(foreign_keys=[member_id], lazy="joined")
    cancelled_by: Mapped[Member | None] = relationship(foreign_keys=[cancelled_by_id])

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def is_block(self) -> bool:
        return self.kind == BookingKind.MAINTENANCE
