"""Open designs (the lab's commons): designs, their versions and files, forks, and "made here" records.

A fork is a new Design whose `parent_id` is the design it came from; its first version records the exact
parent version. Counters used for sorting (forks, made) are cached on the design and kept up to date by
fablab.services.designs, so sorting 10,000 designs is an index scan, not a join.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, ForeignKey, Index, Integer, String, Table, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import Model, db
from .machines import Machine, MachineType
from .members import Member
from .types import UTCDateTime, utcnow

design_machine_types = Table(
    "design_machine_types",
    db.metadata,
    Column("design_id", ForeignKey("designs.id", ondelete="CASCADE"), primary_key=True),
    Column("machine_type_id", ForeignKey("machine_types.id", ondelete="CASCADE"), primary_key=True,
           index=True),
)


class Design(Model):
    __tablename__ = "designs"
    __table_args__ = (
        Index("ix_designs_forks_count", "forks_count", "id"),
        Index("ix_designs_made_count", "made_count", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(80))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    # Normalised tags, space separated, also kept one per row in design_tags for exact tag filters.
    tags_text: Mapped[str] = mapped_column(String(600), default="")
    # Lower-cased title, tags, author and the start of the description: what text search matches.
    search_text: Mapped[str] = mapped_column(Text, default="")
    # Designs outlive accounts: the author's name is kept for attribution even if the member is removed.
    author_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"), index=True)
    author_name: Mapped[str] = mapped_column(String(120), default="")
    licence: Mapped[str] = mapped_column(String(40), index=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("designs.id", ondelete="SET NULL"), index=True)
    latest_version: Mapped[int] = mapped_column(Integer, default=1)
    # Cover picture for lists (a PNG in the file store), from the newest version's best file.
    thumb_key: Mapped[str | None] = mapped_column(String(32))
    forks_count: Mapped[int] = mapped_column(Integer, default=0)
    made_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    author: Mapped[Member | None] = relationship()
    parent: Mapped[Design | None] = relationship(remote_side=[id])
    versions: Mapped[list[DesignVersion]] = relationship(
        back_populates="design", order_by="DesignVersion.number", cascade="all, delete-orphan")
    machine_types: Mapped[list[MachineType]] = relationship(secondary=design_machine_types,
                                                            order_by="MachineType.name")
    tag_rows: Mapped[list[DesignTag]] = relationship(cascade="all, delete-orphan")

    @property
    def tags(self) -> list[str]:
        return self.tags_text.split()

    def version(self, number: int | None = None) -> DesignVersion | None:
        wanted = number or self.latest_version
        return next((v for v in self.versions if v.number == wanted), None)

    def __repr__(self) -> str:
        return f"<Design {self.id} {self.slug}>"


class DesignTag(Model):
    __tablename__ = "design_tags"

    design_id: Mapped[int] = mapped_column(ForeignKey("designs.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(40), primary_key=True, index=True)


class DesignVersion(Model):
    __tablename__ = "design_versions"
    __table_args__ = (UniqueConstraint("design_id", "number", name="uq_design_versions_design_number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    design_id: Mapped[int] = mapped_column(ForeignKey("designs.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    changelog: Mapped[str] = mapped_column(Text, default="")
    author_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))
    # Set on the first version of a fork: the exact version it was forked from.
    parent_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("design_versions.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)

    design: Mapped[Design] = relationship(back_populates="versions")
    author: Mapped[Member | None] = relationship()
    parent_version: Mapped[DesignVersion | None] = relationship(remote_side=[id])
    files: Mapped[list[DesignFile]] = relationship(
        back_populates="version", order_by="DesignFile.id", cascade="all, delete-orphan")


class DesignFile(Model):
    """One file of a version. Unchanged files carried into a new version or a fork share the stored
    bytes (same storage key): the store is content that never changes once written."""

    __tablename__ = "design_files"

    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("design_versions.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(255))  # safe display name, never a path on disk
    storage_key: Mapped[str] = mapped_column(String(32), index=True)
    ext: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(16))  # mesh, cad, vector, gcode, document, image, text
    mime: Mapped[str] = mapped_column(String(80))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    meta: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    thumb_key: Mapped[str | None] = mapped_column(String(32))
    svg_safe: Mapped[str | None] = mapped_column(Text)  # sanitized SVG markup, shown inline
    # "ready"; "processing" while the worker still measures it and draws its picture (too heavy for the
    # web request); "failed" with `problem` saying why (the file stays downloadable).
    status: Mapped[str] = mapped_column(String(16), default="ready", server_default="ready", index=True)
    problem: Mapped[str | None] = mapped_column(Text)
    # Times the worker started on it: a file that stopped the worker twice is not tried a third time.
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    version: Mapped[DesignVersion] = relationship(back_populates="files")

    @property
    def viewer_format(self) -> str | None:
        """The 3D viewer's format for this file, or None if it is not a mesh the viewer shows."""
        return {".stl": "stl", ".3mf": "3mf", ".obj": "obj"}.get(self.ext)


class DesignMade(Model):
    """Someone made a design here: on a machine, during a booking or a usage session (either may be
    unknown). `usage_session_id` has no foreign key yet: the usage table arrives with another feature."""

    __tablename__ = "design_made"
    __table_args__ = (
        UniqueConstraint("design_id", "booking_id", name="uq_design_made_design_booking"),
        Index("ix_design_made_design_machine", "design_id", "machine_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    design_id: Mapped[int] = mapped_column(ForeignKey("designs.id", ondelete="CASCADE"))
    version_id: Mapped[int | None] = mapped_column(ForeignKey("design_versions.id", ondelete="SET NULL"))
    booking_id: Mapped[int | None] = mapped_column(ForeignKey("bookings.id", ondelete="SET NULL"), index=True)
    usage_session_id: Mapped[int | None] = mapped_column(Integer, index=True)
    machine_id: Mapped[int | None] = mapped_column(ForeignKey("machines.id", ondelete="SET NULL"))
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"), index=True)
    note: Mapped[str] = mapped_column(String(255), default="")
    made_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    design: Mapped[Design] = relationship()
    version: Mapped[DesignVersion | None] = relationship()
    machine: Mapped[Machine | None] = relationship()
    member: Mapped[Member | None] = relationship()
