"""Induction sessions, who signed up, members asking for one, per-type expiry rules, and trainers.

A session blocks its machine through the booking core: `booking_id` is the block (a booking of kind
"induction") so no member booking collides with it. Statuses follow fablab.domain.inductions.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, CheckConstraint, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import Model
from .machines import Machine, MachineType
from .members import Member
from .types import UTCDateTime, utcnow


class InductionRule(Model):
    """How long a qualification for a type lasts after passing its induction, and after how many months
    without use it lapses (None: no limit). No row: neither limit."""

    __tablename__ = "induction_rules"

    machine_type_id: Mapped[int] = mapped_column(ForeignKey("machine_types.id", ondelete="CASCADE"),
                                                 primary_key=True)
    validity_months: Mapped[int | None] = mapped_column(Integer)
    disuse_months: Mapped[int | None] = mapped_column(Integer)


class InductionTrainer(Model):
    """A member who may run inductions for a machine type (the "trainer" qualification), granted by staff.
    Stewards and admins may train on every type without one."""

    __tablename__ = "induction_trainers"
    __table_args__ = (UniqueConstraint("member_id", "machine_type_id", name="uq_induction_trainers_member_type"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    machine_type_id: Mapped[int] = mapped_column(ForeignKey("machine_types.id", ondelete="CASCADE"))
    granted_by_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    member: Mapped[Member] = relationship(foreign_keys=[member_id], lazy="joined")
    machine_type: Mapped[MachineType] = relationship(lazy="joined")


class InductionSession(Model):
    __tablename__ = "induction_sessions"
    __table_args__ = (
        CheckConstraint("end_at > start_at", name="end_after_start"),
        CheckConstraint("capacity > 0", name="capacity_positive"),
        Index("ix_induction_sessions_type_start", "machine_type_id", "start_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    machine_type_id: Mapped[int] = mapped_column(ForeignKey("machine_types.id", ondelete="CASCADE"))
    machine_id: Mapped[int | None] = mapped_column(ForeignKey("machines.id", ondelete="SET NULL"))
    trainer_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    start_at: Mapped[datetime] = mapped_column(UTCDateTime)
    end_at: Mapped[datetime] = mapped_column(UTCDateTime)
    place: Mapped[str] = mapped_column(String(120), default="")
    capacity: Mapped[int] = mapped_column(Integer)
    prerequisite_type_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    material_url: Mapped[str] = mapped_column(String(2000), default="")
    note: Mapped[str] = mapped_column(Text, default="")
    is_refresher: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(12), default="scheduled", index=True)
    booking_id: Mapped[int | None] = mapped_column(ForeignKey("bookings.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancel_reason: Mapped[str] = mapped_column(String(255), default="")
    # The trainer's shared effort for this session on the task board's ledger, once it is recorded (no foreign
    # key: see migration 0019; a deleted task simply shows no credit).
    effort_task_id: Mapped[int | None] = mapped_column(Integer)
    # When the trainer was reminded to record attendance (once), for a session that ended unmarked.
    attendance_reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    machine_type: Mapped[MachineType] = relationship(lazy="joined")
    machine: Mapped[Machine | None] = relationship(lazy="joined")
    trainer: Mapped[Member] = relationship(lazy="joined")
    signups: Mapped[list[InductionSignup]] = relationship(back_populates="session", order_by="InductionSignup.id")


class InductionSignup(Model):
    __tablename__ = "induction_signups"
    __table_args__ = (UniqueConstraint("session_id", "member_id", name="uq_induction_signups_session_member"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("induction_sessions.id", ondelete="CASCADE"), index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(12))
    position: Mapped[int | None] = mapped_column(Integer)  # waitlist position (1 = next), None otherwise
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    session: Mapped[InductionSession] = relationship(back_populates="signups")
    member: Mapped[Member] = relationship(lazy="joined")


class InductionRequest(Model):
    """A member asks for an induction on a type; fulfilled when they sign up for (or pass) one."""

    __tablename__ = "induction_requests"
    __table_args__ = (Index("ix_induction_requests_open", "machine_type_id", "fulfilled_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    machine_type_id: Mapped[int] = mapped_column(ForeignKey("machine_types.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    fulfilled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    member: Mapped[Member] = relationship(lazy="joined")
    machine_type: Mapped[MachineType] = relationship(lazy="joined")
