"""The audit log: `record()` writes one staff action in the caller's transaction (so a rolled-back change
leaves no entry, and a committed one always has its entry)."""

from __future__ import annotations

import json
from datetime import datetime

from ..domain.audit_actions import BOOKING_CANCELLED_FOR, clean_detail
from ..extensions import db
from ..models import Booking, Member
from ..models.accounts import AuditEntry
from ..models.types import utcnow


def actor_label(member: Member | None) -> str:
    if member is None:
        return "system"
    return f"{member.name} (#{member.member_no})"


def record(actor: Member | None, action: str, *, target: Member | None = None, target_type: str = "",
           target_id: int | None = None, target_label: str = "", detail: dict[str, object] | None = None,
           now: datetime | None = None) -> AuditEntry:
    """Adds an entry (the caller commits). `target` is a shortcut for a member as the target."""
    if target is not None:
        target_type, target_id, target_label = "member", target.id, target_label or actor_label(target)
    entry = AuditEntry(at=now or utcnow(), actor_id=actor.id if actor else None, actor_label=actor_label(actor),
                       action=action, target_type=target_type, target_id=target_id,
                       target_label=target_label[:200],
                       detail=json.dumps(clean_detail(detail or {}), sort_keys=True, default=str))
    db.session.add(entry)
    return entry


def booking_cancelled(actor: Member, booking: Booking, now: datetime | None = None) -> None:
    """Records the cancel of someone else's booking; a member cancelling their own is not a staff action."""
    if booking.member_id == actor.id:
        return
    record(actor, BOOKING_CANCELLED_FOR, target=booking.member, now=now, detail={
        "booking": booking.id, "machine": booking.machine.slug, "start": booking.start_at.isoformat(),
        "end": booking.end_at.isoformat(), "status": booking.status, "reason": booking.cancel_reason})
