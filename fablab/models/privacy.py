"""Account deletions waiting for staff: a member asked to delete their account while holding something
other people count on (future bookings, induction sessions they train, claimed tasks)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import Model
from .members import Member
from .types import UTCDateTime, utcnow


class DeletionRequest(Model):
    """One pending request per member; the row goes when staff confirm (the account is deleted) or the
    member withdraws it. The outcome is in the audit log."""

    __tablename__ = "deletion_requests"

    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), primary_key=True)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    member: Mapped[Member] = relationship()
