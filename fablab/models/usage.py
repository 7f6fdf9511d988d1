"""What machines report: bridges and their credentials, accepted messages, dead letters, usage
sessions (linked to bookings) and maintenance rules."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Column, Float, ForeignKey, Index, Integer, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import Model, db
from .machines import Machine
from .types import UTCDateTime, utcnow

bridge_machines = Table(
    "bridge_machines",
    db.metadata,
    Column("bridge_id", ForeignKey("bridges.id", ondelete="CASCADE"), primary_key=True),
    Column("machine_id", ForeignKey("machines.id", ondelete="CASCADE"), primary_key=True),
)


class Bridge(Model):
    """A firmware bridge: its own MQTT credentials, allowed to write only below its machines."""

    __tablename__ = "bridges"

    id: Mapped[int] = mapped_column(primary_key=True)
    bridge_id: Mapped[str] = mapped_column(String(128), unique=True)
    # Mosquitto's own PBKDF2-SHA512 format ($7$...), written into its password file as is.
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    online: Mapped[bool | None] = mapped_column(Boolean)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    machines: Mapped[list[Machine]] = relationship(secondary=bridge_machines)


class MqttMessage(Model):
    """Every accepted message, once: msg_id is unique, so redelivery and duplicates are no-ops."""

    __tablename__ = "mqtt_messages"
    __table_args__ = (Index("ix_mqtt_messages_machine_ts", "machine_id", "ts"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    msg_id: Mapped[str] = mapped_column(String(64), unique=True)
    topic: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(20))
    src: Mapped[str] = mapped_column(String(128))
    machine_id: Mapped[int | None] = mapped_column(ForeignKey("machines.id", ondelete="SET NULL"))
    ts: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)  # as received, badge UIDs replaced by keyed hashes
    note: Mapped[str | None] = mapped_column(String(255))  # what the worker changed, e.g. a clock far off


class DeadLetter(Model):
    """A message that could not be accepted, kept with the reason for an admin to review."""

    __tablename__ = "dead_letters"

    id: Mapped[int] = mapped_column(primary_key=True)
    topic: Mapped[str] = mapped_column(String(512))
    payload: Mapped[str] = mapped_column(Text)  # raw bytes, decoded as UTF-8 with replacement
    reason: Mapped[str] = mapped_column(String(500))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    reviewed: Mapped[bool] = mapped_column(Boolean, default=False)


class UsageSession(Model):
    """A stretch of real machine use, sessionized from what the machine reported."""

    __tablename__ = "usage_sessions"
    __table_args__ = (Index("ix_usage_sessions_machine_start", "machine_id", "start_at"),
                      Index("ix_usage_sessions_member_start", "member_id", "start_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(255), unique=True)  # the sessionizer's span key
    machine_id: Mapped[int] = mapped_column(ForeignKey("machines.id", ondelete="CASCADE"))
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))
    booking_id: Mapped[int | None] = mapped_column(ForeignKey("bookings.id", ondelete="SET NULL"), index=True)
    session_id: Mapped[str | None] = mapped_column(String(128))
    start_at: Mapped[datetime] = mapped_column(UTCDateTime)
    end_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    duration_s: Mapped[float] = mapped_column(Float, default=0.0)
    energy_wh: Mapped[float | None] = mapped_column(Float)
    badge: Mapped[str | None] = mapped_column(String(64))  # keyed hash of the UID (security.badge_digest)
    badge_last4: Mapped[str | None] = mapped_column(String(4))  # for a steward to recognise the card
    job_file: Mapped[str | None] = mapped_column(String(255))
    source: Mapped[str] = mapped_column(String(16))  # event, status, power
    closed_by: Mapped[str | None] = mapped_column(String(20))  # end_event, next_start, timeout, ...
    open: Mapped[bool] = mapped_column(Boolean, default=True)
    start_estimated: Mapped[bool] = mapped_column(Boolean, default=False)
    unbooked: Mapped[bool] = mapped_column(Boolean, default=False)
    overrun_minutes: Mapped[float] = mapped_column(Float, default=0.0)
    # Maintenance and induction use never counts as member usage (fair share, review).
    counts_as_usage: Mapped[bool] = mapped_column(Boolean, default=True)
    kind: Mapped[str] = mapped_column(String(16), default="normal")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    machine: Mapped[Machine] = relationship(lazy="joined")

    @property
    def hours(self) -> float:
        return self.duration_s / 3600.0


class MaintenanceRule(Model):
    """"Clean the laser lens every 20 h of use": raises a task when due."""

    __tablename__ = "maintenance_rules"

    id: Mapped[int] = mapped_column(primary_key=True)
    machine_id: Mapped[int] = mapped_column(ForeignKey("machines.id", ondelete="CASCADE"), index=True)
    task: Mapped[str] = mapped_column(String(200))
    every_hours: Mapped[float | None] = mapped_column(Float)
    every_days: Mapped[int | None] = mapped_column(Integer)
    last_done_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    raised_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # when the current due task was raised
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))

    machine: Mapped[Machine] = relationship()
