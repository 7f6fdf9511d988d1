"""Machines, their types and the qualifications members need to use them."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Float, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import Model
from .members import Member
from .types import UTCDateTime, utcnow


class MachineStatus(StrEnum):
    AVAILABLE = "available"
    OUT_OF_ORDER = "out_of_order"
    RETIRED = "retired"


class MachineType(Model):
    __tablename__ = "machine_types"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(80))

    machines: Mapped[list[Machine]] = relationship(back_populates="machine_type")


class Machine(Model):
    __tablename__ = "machines"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(60), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    type_id: Mapped[int] = mapped_column(ForeignKey("machine_types.id"), index=True)
    location: Mapped[str] = mapped_column(String(120), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(20), default=MachineStatus.AVAILABLE.value)
    # "type": any qualification for the machine's type counts; "machine": this machine only.
    qualification_scope: Mapped[str] = mapped_column(String(10), default="type")
    # Booking policy as JSON (see fablab.domain.policy); None means the type's defaults.
    policy: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Live state from the machine's retained MQTT status (written by the worker).
    live_state: Mapped[str | None] = mapped_column(String(20))
    live_progress: Mapped[float | None] = mapped_column(Float)
    live_job: Mapped[str | None] = mapped_column(String(255))
    live_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    live_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    machine_type: Mapped[MachineType] = relationship(back_populates="machines", lazy="joined")

    def __repr__(self) -> str:
        return f"<Machine {self.slug}>"


class Qualification(Model):
    """A member may use a machine type (or one machine), granted by a steward/admin, maybe expiring."""

    __tablename__ = "qualifications"
    __table_args__ = (
        CheckConstraint(
            "(machine_type_id IS NULL) <> (machine_id IS NULL)", name="type_xor_machine"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    machine_type_id: Mapped[int | None] = mapped_column(ForeignKey("machine_types.id", ondelete="CASCADE"))
    machine_id: Mapped[int | None] = mapped_column(ForeignKey("machines.id", ondelete="CASCADE"))
    granted_by_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    note: Mapped[str] = mapped_column(String(255), default="")

    member: Mapped[Member] = relationship(foreign_keys=[member_id])
    granted_by: Mapped[Member | None] = relationship(foreign_keys=[granted_by_id])
    machine_type: Mapped[MachineType | None] = relationship()
    machine: Mapped[Machine | None] = relationship()

    @property
    def scope_label(self) -> str:
        if self.machine is not None:
            return self.machine.name
        return f"every {self.machine_type.name}" if self.machine_type else "?"  # "every Laser cutter"
