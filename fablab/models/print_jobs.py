"""Prints sent to a booked printer: each machine's print queue, and what a printer can take.

A `PrintJob` waits in its machine's queue for a booking; shortly before the booking starts the worker
offers it to the machine's bridge (one-time download link), the bridge transfers it and answers ready,
and only the member at the machine (badge or kiosk) starts it. `outbox` is the message the worker still
has to publish for the job (offer, start, withdraw): the web app decides, the worker sends.

`PrinterProfile` is a machine's print side (build volume, firmware, nozzle, how its bridge takes a file);
a machine without one is not offered in "Print on…" unless its type is a 3D printer (then its type's
defaults apply and the volume is unknown, so only the firmware is checked).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import Model
from .bookings import Booking
from .designs import DesignFile
from .machines import Machine
from .members import Member
from .types import UTCDateTime, utcnow


class PrintState(StrEnum):
    QUEUED = "queued"  # waiting for its booking
    OFFERED = "offered"  # the bridge was told; it downloads the file
    TRANSFERRING = "transferring"  # on its way to the machine (SD upload, OctoPrint…)
    READY = "ready"  # on the machine, waiting for the member to start it there
    STARTED = "started"  # the member confirmed; the bridge starts it
    PRINTING = "printing"  # the machine said it started
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    WITHDRAWN = "withdrawn"


OPEN_STATES = (PrintState.QUEUED, PrintState.OFFERED, PrintState.TRANSFERRING, PrintState.READY,
               PrintState.STARTED, PrintState.PRINTING)
AT_MACHINE = (PrintState.OFFERED, PrintState.TRANSFERRING, PrintState.READY, PrintState.STARTED,
              PrintState.PRINTING)  # the one job a machine is busy with
ENDED_STATES = (PrintState.DONE, PrintState.FAILED, PrintState.CANCELLED, PrintState.WITHDRAWN)


class PrinterProfile(Model):
    __tablename__ = "printer_profiles"

    machine_id: Mapped[int] = mapped_column(ForeignKey("machines.id", ondelete="CASCADE"), primary_key=True)
    build_x_mm: Mapped[float | None] = mapped_column(Float)
    build_y_mm: Mapped[float | None] = mapped_column(Float)
    build_z_mm: Mapped[float | None] = mapped_column(Float)
    firmware: Mapped[str] = mapped_column(String(20), default="marlin")  # see fablab.domain.print_fit.RUNS
    nozzle_mm: Mapped[float | None] = mapped_column(Float)
    materials: Mapped[str] = mapped_column(String(120), default="")  # space separated; empty: any
    # How the bridge takes a file: sd, stream, octoprint, moonraker (the bridge's capability for it).
    transfer: Mapped[str] = mapped_column(String(12), default="sd")

    machine: Mapped[Machine] = relationship(lazy="joined")


class PrintJob(Model):
    __tablename__ = "print_jobs"
    __table_args__ = (
        Index("ix_print_jobs_machine_state", "machine_id", "state", "position"),
        Index("ix_print_jobs_outbox", "outbox"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    machine_id: Mapped[int] = mapped_column(ForeignKey("machines.id", ondelete="CASCADE"))
    # The design file it came from, or None for the member's own upload (then `storage_key` is theirs).
    design_file_id: Mapped[int | None] = mapped_column(ForeignKey("design_files.id", ondelete="SET NULL"),
                                                       index=True)
    booking_id: Mapped[int | None] = mapped_column(ForeignKey("bookings.id", ondelete="SET NULL"), index=True)
    name: Mapped[str] = mapped_column(String(255))  # display name of the file, never a path
    storage_key: Mapped[str] = mapped_column(String(32))
    own_upload: Mapped[bool] = mapped_column(default=False)
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    # From the file: slicer estimates (fablab.domain.gcode_meta) and the fit scan (fablab.domain.print_fit):
    # extent, flavour, nozzle, material, print_time_s, filament_g, filament_mm.
    meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    state: Mapped[str] = mapped_column(String(16), default=PrintState.QUEUED.value, index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)  # order in the machine's queue (lower first)
    transfer: Mapped[str] = mapped_column(String(12), default="sd")
    reason: Mapped[str | None] = mapped_column(Text)  # why it failed, was withdrawn or cancelled
    phase: Mapped[str | None] = mapped_column(String(12))  # download, transfer, print (the last progress)
    progress: Mapped[float | None] = mapped_column(Float)  # 0..1 of that phase
    # The bridge's one-time download: only the token's digest is kept.
    token_digest: Mapped[str | None] = mapped_column(String(64), unique=True)
    token_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    downloaded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outbox: Mapped[str | None] = mapped_column(String(10))  # offer, start, withdraw: still to publish
    started_by: Mapped[str | None] = mapped_column(String(20))  # badge, kiosk
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    offered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ready_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    member: Mapped[Member] = relationship(lazy="joined")
    machine: Mapped[Machine] = relationship(lazy="joined")
    booking: Mapped[Booking | None] = relationship()
    design_file: Mapped[DesignFile | None] = relationship()

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

    @property
    def public_id(self) -> str:
        """The job's id on the wire (job_id in the MQTT messages)."""
        return f"pj-{self.id}"
