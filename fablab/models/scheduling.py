"""Fair scheduling: per-machine window settings, request windows and their requests, the waitlist and
its offers, and effort-sharing tasks (see fablab.domain.allocation, waitlist, effort)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import Model
from .bookings import Booking
from .machines import Machine
from .members import Member
from .types import UTCDateTime, utcnow


class SchedulingSettings(Model):
    """How a machine's request windows run. The mode itself (open/window/hybrid) lives in the
    machine's booking policy (`Machine.policy["mode"]`); everything else about windows lives here."""

    __tablename__ = "scheduling_settings"

    machine_id: Mapped[int] = mapped_column(ForeignKey("machines.id", ondelete="CASCADE"), primary_key=True)
    # Weekly rhythm, on the lab's local clock: a window for next week (Mon..Mon) opens on
    # open_weekday at open_time and closes on close_weekday at close_time (0 = Monday).
    open_weekday: Mapped[int] = mapped_column(Integer, default=0)
    open_time: Mapped[str] = mapped_column(String(5), default="00:00")
    close_weekday: Mapped[int] = mapped_column(Integer, default=3)
    close_time: Mapped[str] = mapped_column(String(5), default="20:00")
    auto_open: Mapped[bool] = mapped_column(Boolean, default=False)  # the jobs open the next window
    request_minutes: Mapped[int] = mapped_column(Integer, default=120)  # length of the slots offered for requests
    quota_hours: Mapped[float | None] = mapped_column(Float)  # per member per window; None = no limit
    quota_slots: Mapped[int | None] = mapped_column(Integer)
    band_width: Mapped[float] = mapped_column(Float, default=0.1)
    half_life_days: Mapped[float] = mapped_column(Float, default=14.0)
    # Capped contribution bonus (at most +25 % share): off by default, contributions are not exchange.
    bonus_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    hold_minutes: Mapped[int] = mapped_column(Integer, default=15)  # a waitlist offer is held this long
    first_come_minutes: Mapped[int] = mapped_column(Integer, default=120)  # closer than this: first claim wins
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    machine: Mapped[Machine] = relationship()


class WindowStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"  # allocated, seed revealed
    CANCELLED = "cancelled"


class RequestWindow(Model):
    """Requests for [period_start, period_end) of one machine are collected until closes_at."""

    __tablename__ = "request_windows"
    __table_args__ = (
        CheckConstraint("period_end > period_start", name="period_positive"),
        CheckConstraint("closes_at > opens_at", name="closes_after_opens"),
        Index("ix_request_windows_machine_period", "machine_id", "period_start"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    machine_id: Mapped[int] = mapped_column(ForeignKey("machines.id", ondelete="CASCADE"))
    mode: Mapped[str] = mapped_column(String(10), default="window")  # window | hybrid, as when opened
    period_start: Mapped[datetime] = mapped_column(UTCDateTime)
    period_end: Mapped[datetime] = mapped_column(UTCDateTime)
    opens_at: Mapped[datetime] = mapped_column(UTCDateTime)
    closes_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(10), default=WindowStatus.OPEN.value, index=True)
    # SHA-256 of the seed, published from the opening; the seed is kept secret until the close.
    commitment: Mapped[str] = mapped_column(String(64))
    secret_seed: Mapped[str] = mapped_column(String(64))
    revealed_seed: Mapped[str | None] = mapped_column(String(64))
    # Everything needed to re-run the draw: inputs (requests, fair-share usage and shares, quotas,
    # band width) and the outcome, keyed by per-window participant labels, never by member.
    trace: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # How the trace's labels were made: "random" (WindowParticipant.label, nobody can recompute it) or
    # "member-hmac" (windows drawn before 0008: HMAC(revealed seed, member id), reversible by anyone who
    # knows the member ids, so their trace is no longer published; see migrations/versions/0008).
    label_scheme: Mapped[str] = mapped_column(String(12), default="random", server_default="random")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    machine: Mapped[Machine] = relationship(lazy="joined")
    requests: Mapped[list[SlotRequest]] = relationship(back_populates="window", cascade="all, delete-orphan",
                                                       order_by="SlotRequest.start_at")
    participants: Mapped[list[WindowParticipant]] = relationship(back_populates="window",
                                                                 cascade="all, delete-orphan")


class WindowParticipant(Model):
    """A member's pseudonym in one window's draw: random, drawn when they first request, unique in the
    window. The draw's order is derived from (seed, label), so the published trace verifies, but only
    the member themself (and staff) can tell which label is theirs."""

    __tablename__ = "window_participants"
    __table_args__ = (
        UniqueConstraint("window_id", "member_id", name="uq_window_participants_member"),
        UniqueConstraint("window_id", "label", name="uq_window_participants_label"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    window_id: Mapped[int] = mapped_column(ForeignKey("request_windows.id", ondelete="CASCADE"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(String(12))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    window: Mapped[RequestWindow] = relationship(back_populates="participants")


class RequestStatus(StrEnum):
    PENDING = "pending"
    GRANTED = "granted"
    WAITLISTED = "waitlisted"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"


class SlotRequest(Model):
    """A member's wish for one slot in a window, ranked (1 = most wanted)."""

    __tablename__ = "slot_requests"
    __table_args__ = (
        CheckConstraint("end_at > start_at", name="end_after_start"),
        UniqueConstraint("window_id", "member_id", "start_at", "end_at", name="uq_slot_requests_once"),
        Index("ix_slot_requests_member", "member_id", "window_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    window_id: Mapped[int] = mapped_column(ForeignKey("request_windows.id", ondelete="CASCADE"), index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    machine_id: Mapped[int] = mapped_column(ForeignKey("machines.id", ondelete="CASCADE"))
    start_at: Mapped[datetime] = mapped_column(UTCDateTime)
    end_at: Mapped[datetime] = mapped_column(UTCDateTime)
    rank: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[str] = mapped_column(String(12), default=RequestStatus.PENDING.value)
    reason: Mapped[str] = mapped_column(String(20), default="")
    message: Mapped[str] = mapped_column(Text, default="")
    round_no: Mapped[int | None] = mapped_column(Integer)
    factor: Mapped[float | None] = mapped_column(Float)
    booking_id: Mapped[int | None] = mapped_column(ForeignKey("bookings.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    window: Mapped[RequestWindow] = relationship(back_populates="requests")
    member: Mapped[Member] = relationship()
    booking: Mapped[Booking | None] = relationship()


class EntryStatus(StrEnum):
    ACTIVE = "active"
    FULFILLED = "fulfilled"
    LEFT = "left"


class WaitlistEntry(Model):
    """Wants a slot (kind "slot": exactly start..end) or any free time in start..end (kind "any")."""

    __tablename__ = "waitlist_entries"
    __table_args__ = (
        CheckConstraint("end_at > start_at", name="end_after_start"),
        Index("ix_waitlist_entries_machine", "machine_id", "status", "end_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    machine_id: Mapped[int] = mapped_column(ForeignKey("machines.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(5), default="slot")
    start_at: Mapped[datetime] = mapped_column(UTCDateTime)
    end_at: Mapped[datetime] = mapped_column(UTCDateTime)
    min_hours: Mapped[float] = mapped_column(Float, default=0.0)
    sequence: Mapped[int] = mapped_column(Integer, default=0)  # draft order when a window put it here
    request_id: Mapped[int | None] = mapped_column(ForeignKey("slot_requests.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(10), default=EntryStatus.ACTIVE.value)
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    machine: Mapped[Machine] = relationship(lazy="joined")
    member: Mapped[Member] = relationship()


class FreedTime(Model):
    """Machine time given back (cancel, shortened, ended early, no-show release), offered to the waitlist."""

    __tablename__ = "freed_times"
    __table_args__ = (
        CheckConstraint("end_at > start_at", name="end_after_start"),
        Index("ix_freed_times_machine", "machine_id", "done", "end_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    machine_id: Mapped[int] = mapped_column(ForeignKey("machines.id", ondelete="CASCADE"))
    start_at: Mapped[datetime] = mapped_column(UTCDateTime)
    end_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The released booking, for no-shows found by the jobs (so one release is offered once).
    source_booking_id: Mapped[int | None] = mapped_column(ForeignKey("bookings.id", ondelete="SET NULL"),
                                                          unique=True)
    done: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    machine: Mapped[Machine] = relationship(lazy="joined")
    offers: Mapped[list[WaitlistOffer]] = relationship(back_populates="freed", order_by="WaitlistOffer.id")


class OfferStatus(StrEnum):
    OPEN = "open"
    CLAIMED = "claimed"
    DECLINED = "declined"
    EXPIRED = "expired"
    TAKEN = "taken"  # first-come: somebody else claimed it first


class WaitlistOffer(Model):
    __tablename__ = "waitlist_offers"
    __table_args__ = (
        CheckConstraint("end_at > start_at", name="end_after_start"),
        Index("ix_waitlist_offers_member", "member_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    freed_id: Mapped[int] = mapped_column(ForeignKey("freed_times.id", ondelete="CASCADE"), index=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("waitlist_entries.id", ondelete="CASCADE"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    machine_id: Mapped[int] = mapped_column(ForeignKey("machines.id", ondelete="CASCADE"))
    start_at: Mapped[datetime] = mapped_column(UTCDateTime)
    end_at: Mapped[datetime] = mapped_column(UTCDateTime)
    offered_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    first_come: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(10), default=OfferStatus.OPEN.value)
    booking_id: Mapped[int | None] = mapped_column(ForeignKey("bookings.id", ondelete="SET NULL"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    freed: Mapped[FreedTime] = relationship(back_populates="offers")
    entry: Mapped[WaitlistEntry] = relationship()
    machine: Mapped[Machine] = relationship(lazy="joined")
    member: Mapped[Member] = relationship()


class EffortTask(Model):
    """Work that keeps the lab running; its weight (hours credited) rises while nobody takes it."""

    __tablename__ = "effort_tasks"
    __table_args__ = (
        CheckConstraint("base_hours > 0", name="base_positive"),
        CheckConstraint("people_needed >= 1", name="people_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(160))
    kind: Mapped[str] = mapped_column(String(20), default="cleaning")  # maintenance, induction, cleaning, restocking
    description: Mapped[str] = mapped_column(Text, default="")
    machine_id: Mapped[int | None] = mapped_column(ForeignKey("machines.id", ondelete="SET NULL"))
    base_hours: Mapped[float] = mapped_column(Float, default=1.0)
    people_needed: Mapped[int] = mapped_column(Integer, default=1)
    # Weight policy: weight = base × min(max_factor, 1 + rise_per_day × days unclaimed)
    rise_per_day: Mapped[float] = mapped_column(Float, default=0.1)
    max_factor: Mapped[float] = mapped_column(Float, default=2.0)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # first claim: stops the rise
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    completed_by_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))
    # Credits count once somebody other than the claimants confirmed the work (a steward, or for kinds the
    # lab lets peers confirm, a member qualified on the machine): FABLAB_TASK_CONFIRM.
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    confirmed_by_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))
    cancelled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))

    machine: Mapped[Machine | None] = relationship()
    confirmed_by: Mapped[Member | None] = relationship(foreign_keys=[confirmed_by_id])
    claims: Mapped[list[TaskClaim]] = relationship(back_populates="task", cascade="all, delete-orphan",
                                                   order_by="TaskClaim.claimed_at")


class TaskClaim(Model):
    __tablename__ = "task_claims"
    __table_args__ = (UniqueConstraint("task_id", "member_id", name="uq_task_claims_once"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("effort_tasks.id", ondelete="CASCADE"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    claimed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    task: Mapped[EffortTask] = relationship(back_populates="claims")
    member: Mapped[Member] = relationship()


class TaskCompletion(Model):
    """Hours credited to one member for a completed task, fixed when it was completed; they count
    (ledger, fair share, bonus) only once the task is confirmed (`EffortTask.confirmed_at`)."""

    __tablename__ = "task_completions"
    __table_args__ = (UniqueConstraint("task_id", "member_id", name="uq_task_completions_once"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("effort_tasks.id", ondelete="CASCADE"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    credited_hours: Mapped[float] = mapped_column(Float)
    completed_at: Mapped[datetime] = mapped_column(UTCDateTime)

    task: Mapped[EffortTask] = relationship()
    member: Mapped[Member] = relationship()
