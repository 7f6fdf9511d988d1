"""Machines and qualifications: loading, saving, and who may use what."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select

from ..domain import audit_actions
from ..extensions import db
from ..models import Machine, MachineType, Member, Qualification
from ..models.types import utcnow
from . import audit, induction_lapse


class NotFound(LookupError):
    pass


def list_machines(include_retired: bool = False) -> list[Machine]:
    stmt = select(Machine).order_by(Machine.name)
    if not include_retired:
        stmt = stmt.where(Machine.status != "retired")
    return list(db.session.scalars(stmt))


def machine_by_slug(slug: str) -> Machine:
    machine = db.session.scalar(select(Machine).where(Machine.slug == slug))
    if machine is None:
        raise NotFound(f"No machine called {slug!r}.")
    return machine


def machine_types() -> list[MachineType]:
    return list(db.session.scalars(select(MachineType).order_by(MachineType.name)))


@dataclass(frozen=True)
class QualificationState:
    """What a member's qualifications say about one machine at one moment."""

    qualified: bool
    expires_at: datetime | None = None
    expired_at: datetime | None = None  # set when the only matching qualification has lapsed

    @property
    def label(self) -> str:
        if self.qualified:
            return "qualified" + (f" until {self.expires_at:%d %b %Y}" if self.expires_at else "")
        if self.expired_at:
            return f"qualification expired on {self.expired_at:%d %b %Y}"
        return "not qualified"


def qualifications_for(member: Member, machine: Machine) -> list[Qualification]:
    stmt = select(Qualification).where(
        Qualification.member_id == member.id,
        or_(Qualification.machine_id == machine.id, Qualification.machine_type_id == machine.type_id),
    )
    quals = list(db.session.scalars(stmt))
    if machine.qualification_scope == "machine":
        quals = [q for q in quals if q.machine_id == machine.id]
    return quals


def qualification_state(member: Member, machine: Machine, now: datetime) -> QualificationState:
    quals = qualifications_for(member, machine)
    # A qualification lapsed by disuse (the type's induction rule) counts as expired when it lapsed.
    lapsed = {q.id: induction_lapse.disused_at(q, machine.type_id, now) for q in quals}
    ends = {q.id: lapsed[q.id] or q.expires_at for q in quals}
    valid = [q for q in quals if lapsed[q.id] is None and (q.expires_at is None or q.expires_at > now)]
    if valid:
        # The longest-lasting one decides; None (never expires) wins.
        best = max(valid, key=lambda q: (q.expires_at is None, q.expires_at or now))
        return QualificationState(True, expires_at=best.expires_at)
    expired = [e for e in ends.values() if e is not None]
    return QualificationState(False, expired_at=max(expired) if expired else None)


def grant(member: Member, *, by: Member | None, machine_type: MachineType | None = None,
          machine: Machine | None = None, expires_at: datetime | None = None, note: str = "") -> Qualification:
    """Grant (or renew) a qualification; an existing one for the same scope is updated, not doubled."""
    if (machine_type is None) == (machine is None):
        raise ValueError("grant exactly one of machine_type or machine")
    stmt = select(Qualification).where(Qualification.member_id == member.id)
    if machine is not None:
        stmt = stmt.where(Qualification.machine_id == machine.id)
    else:
        assert machine_type is not None
        stmt = stmt.where(Qualification.machine_type_id == machine_type.id)
    qual = db.session.scalar(stmt)
    renewed = qual is not None
    if qual is None:
        qual = Qualification(member=member, machine_type=machine_type, machine=machine)
        db.session.add(qual)
    qual.granted_by = by
    qual.expires_at = expires_at
    qual.note = note
    if by is not None:
        qual.granted_at = utcnow()
    audit.record(by, audit_actions.QUALIFICATION_GRANTED, target=member, detail={
        "for": qual.scope_label, "expires": expires_at.isoformat() if expires_at else None, "renewed": renewed,
        "note": note})
    return qual


def revoke(qual: Qualification, *, by: Member) -> None:
    audit.record(by, audit_actions.QUALIFICATION_REVOKED, target=qual.member, detail={
        "for": qual.scope_label, "expires": qual.expires_at.isoformat() if qual.expires_at else None})
    db.session.delete(qual)
