"""Induction sessions: scheduling (with the machine blocked), sign-up and waitlist, cancelling, attendance,
requests.

Who may train: stewards and admins on every type; other members on the types they hold a trainer
qualification for (InductionTrainer, granted by staff). Only staff can block a machine (the booking core's
rule for blocks), so a member trainer schedules sessions away from the machine or asks a steward.

Sign-up is race-safe: the session row is locked (SELECT ... FOR UPDATE on PostgreSQL; SQLite's write lock,
BEGIN IMMEDIATE, via write_transaction) and places are re-counted inside the transaction, so 16 members
racing for the last 2 places give exactly 2 confirmed signups. Notices are rows written in the same
transaction (fablab.services.notify); nothing is sent from here.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import func, or_, select
from werkzeug.routing import BuildError

from ..database import write_transaction
from ..domain import inductions as ind
from ..domain.fairshare import UsageRecord
from ..extensions import db
from ..models import Booking, BookingKind, Machine, MachineType, Member, Qualification
from ..models.inductions import InductionRequest, InductionRule, InductionSession, InductionSignup, InductionTrainer
from ..models.types import utcnow
from . import bookings as booking_service
from . import effort as effort_service
from . import induction_invites
from . import machines as machine_service
from .induction_lapse import last_use
from .notify import notify


class InductionRefused(Exception):
    """A rule said no: `refusal` is (code, params); `message` the sentence for the reader."""

    def __init__(self, refusal: ind.Refusal, status: int = 422) -> None:
        self.refusal = refusal
        self.status = status
        super().__init__(refusal_message(refusal))

    @property
    def code(self) -> str:
        return self.refusal.code

    @property
    def message(self) -> str:
        return str(self)


class NotAllowed(PermissionError):
    pass


class NotFound(LookupError):
    pass


def _type_names(ids: Iterable[int]) -> str:
    names = [t.name for t in db.session.scalars(select(MachineType).where(MachineType.id.in_(list(ids))))]
    return ", ".join(sorted(names)) or "?"


def refusal_message(r: ind.Refusal) -> str:
    """The English sentence for a refusal (pages, API `message`)."""
    p = r.params
    if r.code == "session_cancelled":
        return "This induction session has been cancelled."
    if r.code == "session_done":
        return "This induction session is over."
    if r.code == "session_started":
        return "This induction session has already started; sign up for a later one."
    if r.code == "already_signed_up":
        return "You are already on the waitlist for this session." if p.get("status") == ind.WAITLISTED \
            else "You are already signed up for this session."
    if r.code == "already_qualified":
        return "You already hold a valid qualification for this machine type; only refresher sessions are open to you."
    if r.code == "missing_prerequisites":
        return f"Take the prerequisite induction first: {_type_names(p.get('type_ids', []))}."
    if r.code == "not_signed_up":
        return "You are not signed up for this session."
    if r.code == "not_started":
        return "Attendance can be marked once the session has started."
    if r.code == "bad_attendance":
        return "Attendance is attended, passed or missed."
    if r.code == "bad_session":
        return str(p.get("reason") or "These session details are not valid.")
    if r.code == "block_needs_staff":
        return (f"Only stewards and admins can block {p.get('machine') or 'a machine'}; schedule the session "
                "without the machine, or ask a steward to schedule it.")
    if r.code == "machine_booked":
        return str(p.get("reason") or "The machine is booked in that time.")
    return r.code.replace("_", " ")


def _path(endpoint: str, fallback: str, **values: Any) -> str:
    try:
        return current_app.url_map.bind("localhost").build(endpoint, values)
    except BuildError:
        return fallback


def _notice_params(s: InductionSession, **extra: Any) -> dict[str, Any]:
    return {"session_id": s.id, "machine_type": s.machine_type.name,
            "machine": s.machine.name if s.machine is not None else None, "start": s.start_at.isoformat(),
            "end": s.end_at.isoformat(), "place": s.place, "material_url": s.material_url,
            "trainer": s.trainer.name, **extra}


# The notices that carry a calendar invitation, and its METHOD (a waitlisted member gets none yet).
_INVITES = {"induction_confirmed": "REQUEST", "induction_moved_up": "REQUEST", "induction_cancelled": "CANCEL"}


def _tell(member: Member, kind: str, s: InductionSession, now: datetime, key: str, **extra: Any) -> None:
    method = _INVITES.get(kind)
    notify(member, kind, _notice_params(s, **extra), now=now, dedupe_key=f"induction:{s.id}:{key}",
           link=_path("inductions.index", "/inductions"),
           mail_params=induction_invites.mail_params(s, method, now) if method else None)


# --- reading -------------------------------------------------------------------------------------------


def may_train(member: Member, machine_type_id: int | None = None) -> bool:
    """Staff on every type; a member trainer on their types (`None`: on any type at all)."""
    if member.is_staff:
        return True
    stmt = select(InductionTrainer.id).where(InductionTrainer.member_id == member.id)
    if machine_type_id is not None:
        stmt = stmt.where(InductionTrainer.machine_type_id == machine_type_id)
    return db.session.scalar(stmt.limit(1)) is not None


def trainable_types(member: Member) -> list[MachineType]:
    """The types `member` may schedule sessions for."""
    types = machine_service.machine_types()
    if member.is_staff:
        return types
    mine = set(db.session.scalars(select(InductionTrainer.machine_type_id)
                                  .where(InductionTrainer.member_id == member.id)))
    return [t for t in types if t.id in mine]


def trainers() -> list[InductionTrainer]:
    return list(db.session.scalars(select(InductionTrainer).order_by(InductionTrainer.machine_type_id,
                                                                     InductionTrainer.id)))


def grant_trainer(actor: Member, member: Member, machine_type: MachineType,
                  now: datetime | None = None) -> InductionTrainer:
    """Staff make a member a trainer for a type (again: the same row)."""
    if not actor.is_staff:
        raise NotAllowed("Only stewards and admins can make a member a trainer.")
    with write_transaction():
        row = db.session.scalar(select(InductionTrainer).where(InductionTrainer.member_id == member.id,
                                                               InductionTrainer.machine_type_id == machine_type.id))
        if row is None:
            row = InductionTrainer(member_id=member.id, machine_type_id=machine_type.id, granted_by_id=actor.id,
                                   granted_at=now or utcnow())
            db.session.add(row)
    return row


def revoke_trainer(actor: Member, trainer_id: int) -> None:
    if not actor.is_staff:
        raise NotAllowed("Only stewards and admins can remove a trainer.")
    with write_transaction():
        row = db.session.get(InductionTrainer, trainer_id)
        if row is None:
            raise NotFound(f"No trainer entry {trainer_id}.")
        db.session.delete(row)


def rule_for(machine_type_id: int) -> InductionRule | None:
    return db.session.get(InductionRule, machine_type_id)


def valid_type_ids(member: Member, now: datetime) -> set[int]:
    """Machine types the member holds a valid type-wide qualification for, by time and by disuse."""
    out: set[int] = set()
    for q in db.session.scalars(select(Qualification).where(Qualification.member_id == member.id,
                                                            Qualification.machine_type_id.is_not(None))):
        assert q.machine_type_id is not None
        rule = rule_for(q.machine_type_id)
        disuse = rule.disuse_months if rule is not None else None
        last = last_use(member.id, q.machine_type_id) if disuse is not None else None
        if ind.standing(q.granted_at, q.expires_at, last, disuse, now).valid:
            out.add(q.machine_type_id)
    return out


def get_session(session_id: int) -> InductionSession:
    s = db.session.get(InductionSession, session_id)
    if s is None:
        raise NotFound(f"No induction session {session_id}.")
    return s


def _domain_session(s: InductionSession) -> ind.Session:
    return ind.Session(s.id, s.machine_type_id, s.start_at, s.end_at, s.capacity,
                       tuple(int(t) for t in (s.prerequisite_type_ids or [])), s.is_refresher, s.status)


def _domain_signups(rows: Iterable[InductionSignup]) -> list[ind.Signup]:
    return [ind.Signup(r.member_id, r.status, r.created_at, r.id) for r in rows]


def _signups(session_id: int) -> list[InductionSignup]:
    return list(db.session.scalars(select(InductionSignup).where(InductionSignup.session_id == session_id)
                                   .order_by(InductionSignup.id).execution_options(populate_existing=True)))


@dataclass(frozen=True)
class SessionInfo:
    session: InductionSession
    places_left: int
    confirmed: int
    waitlisted: int
    mine: InductionSignup | None  # the viewer's signup (not cancelled), if any


def info(s: InductionSession, viewer: Member | None = None) -> SessionInfo:
    rows = _signups(s.id)
    mine = next((r for r in rows if viewer is not None and r.member_id == viewer.id
                 and r.status != ind.CANCELLED), None)
    return SessionInfo(s, ind.places_left(_domain_session(s), _domain_signups(rows)),
                       sum(1 for r in rows if r.status in ind.HOLDS_PLACE),
                       sum(1 for r in rows if r.status == ind.WAITLISTED), mine)


def upcoming(now: datetime, viewer: Member | None = None, machine_type_id: int | None = None,
             limit: int = 50) -> list[SessionInfo]:
    """Scheduled sessions not yet ended, soonest first."""
    stmt = select(InductionSession).where(InductionSession.status == ind.SCHEDULED, InductionSession.end_at > now)
    if machine_type_id is not None:
        stmt = stmt.where(InductionSession.machine_type_id == machine_type_id)
    rows = db.session.scalars(stmt.order_by(InductionSession.start_at, InductionSession.id).limit(limit))
    return [info(s, viewer) for s in rows]


def trained_by(trainer: Member, now: datetime) -> list[SessionInfo]:
    """A trainer's sessions: staff see every session of the last 30 days and after."""
    stmt = select(InductionSession).where(InductionSession.end_at > now - timedelta(days=30))
    if not trainer.is_staff:
        stmt = stmt.where(InductionSession.trainer_id == trainer.id)
    return [info(s) for s in db.session.scalars(stmt.order_by(InductionSession.start_at))]


def _history(member_ids: Sequence[int]) -> list[UsageRecord]:
    """Inductions the members took part in, as 'service received' for the waitlist order."""
    if not member_ids:
        return []
    rows = db.session.execute(select(InductionSignup.member_id, InductionSession.start_at, InductionSession.end_at)
                              .join(InductionSession, InductionSession.id == InductionSignup.session_id)
                              .where(InductionSignup.member_id.in_(list(member_ids)),
                                     InductionSignup.status.in_(list(ind.TOOK_PART))))
    return [UsageRecord.from_interval(m, start, end) for m, start, end in rows]


def _renumber(session: ind.Session, rows: list[InductionSignup], now: datetime) -> None:
    """Store waitlist positions in the order they would move up."""
    waiting = [r for r in rows if r.status == ind.WAITLISTED]
    order = ind.positions(ind.waitlist_order(_domain_signups(waiting), _history([r.member_id for r in waiting]), now))
    for r in rows:
        r.position = order.get(r.member_id) if r.status == ind.WAITLISTED else None


def _lock_session(session_id: int) -> InductionSession:
    stmt = select(InductionSession).where(InductionSession.id == session_id)
    if db.session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(of=InductionSession)
    s = db.session.scalar(stmt.execution_options(populate_existing=True))
    if s is None:
        raise NotFound(f"No induction session {session_id}.")
    return s


# --- scheduling ----------------------------------------------------------------------------------------


def schedule(trainer: Member, machine_type: MachineType, start: datetime, end: datetime, *, capacity: int,
             place: str = "", machine: Machine | None = None, prerequisite_type_ids: Sequence[int] = (),
             material_url: str = "", is_refresher: bool = False, note: str = "",
             now: datetime | None = None) -> InductionSession:
    """Schedule a session; with a machine, the machine is blocked for the session (refused if booked)."""
    now = now or utcnow()
    if not may_train(trainer, machine_type.id):
        raise NotAllowed(f"Only stewards, admins and {machine_type.name} trainers can schedule these sessions.")
    if machine is not None and not trainer.is_staff:
        raise InductionRefused(ind.Refusal("block_needs_staff", {"machine": machine.name}), 403)
    if end <= start:
        raise InductionRefused(ind.Refusal("bad_session", {"reason": "The session must end after it starts."}))
    if start <= now:
        raise InductionRefused(ind.Refusal("bad_session", {"reason": "The session must start in the future."}))
    if not 1 <= capacity <= 100:
        raise InductionRefused(ind.Refusal("bad_session", {"reason": "Capacity is 1 to 100 places."}))
    if machine is not None and machine.type_id != machine_type.id:
        raise InductionRefused(ind.Refusal("bad_session", {"reason": f"{machine.name} is not a {machine_type.name}."}))
    if material_url and not material_url.startswith(("https://", "http://")):
        raise InductionRefused(ind.Refusal("bad_session", {"reason": "The material link must be an http(s) URL."}))
    prereqs = sorted({int(t) for t in prerequisite_type_ids if int(t) != machine_type.id})
    known = set(db.session.scalars(select(MachineType.id).where(MachineType.id.in_(prereqs))))
    if set(prereqs) - known:
        raise InductionRefused(ind.Refusal("bad_session", {"reason": "Unknown prerequisite machine type."}))
    block: Booking | None = None
    if machine is not None:
        try:
            block, _ = booking_service.create_block(machine, trainer, start, end,
                                                    f"Induction: {machine_type.name}", now, refuse_if_booked=True)
        except booking_service.BookingRejected as exc:
            raise InductionRefused(ind.Refusal("machine_booked", {"reason": exc.message}), 409) from exc
    try:
        with write_transaction():
            if block is not None:
                block.kind = BookingKind.INDUCTION.value
            s = InductionSession(machine_type_id=machine_type.id, machine_id=machine.id if machine else None,
                                 trainer_id=trainer.id, start_at=start, end_at=end, place=place.strip()[:120],
                                 capacity=capacity, prerequisite_type_ids=prereqs, material_url=material_url[:2000],
                                 is_refresher=is_refresher, note=note, status=ind.SCHEDULED,
                                 booking_id=block.id if block is not None else None, created_at=now)
            db.session.add(s)
    except Exception:
        if block is not None:  # do not leave the machine blocked for a session that was not stored
            booking_service.cancel_booking(block, trainer, "Induction not scheduled", now)
        raise
    return s


def cancel_session(actor: Member, session_id: int, reason: str = "", now: datetime | None = None) -> InductionSession:
    """The trainer (or staff) cancels: every participant is told, the machine block is cancelled."""
    now = now or utcnow()
    s = get_session(session_id)
    if s.trainer_id != actor.id and not actor.is_staff:
        raise NotAllowed("Only the session's trainer, a steward or an admin can cancel it.")
    with write_transaction():
        s = _lock_session(session_id)
        if s.status != ind.SCHEDULED:
            raise InductionRefused(ind.Refusal("session_cancelled" if s.status == ind.SESSION_CANCELLED
                                               else "session_done"), 409)
        s.status = ind.SESSION_CANCELLED
        s.cancelled_at = now
        s.cancel_reason = reason.strip()[:255]
        for r in _signups(s.id):
            if r.status in ind.OPEN:
                r.status = ind.CANCELLED
                r.position = None
                r.updated_at = now
                _tell(r.member, "induction_cancelled", s, now, f"cancelled:{r.member_id}",
                      reason=s.cancel_reason, by_trainer=True)
        block_id = s.booking_id
    if block_id is not None:
        block = booking_service.get_booking(block_id)
        if block is not None and block.is_active:
            booking_service.cancel_booking(block, actor, f"Induction cancelled: {reason}"[:255], now)
    return s


# --- signing up ----------------------------------------------------------------------------------------


def _fulfil_requests(member_id: int, machine_type_id: int, now: datetime) -> None:
    for r in db.session.scalars(select(InductionRequest).where(InductionRequest.member_id == member_id,
                                                               InductionRequest.machine_type_id == machine_type_id,
                                                               InductionRequest.fulfilled_at.is_(None))):
        r.fulfilled_at = now


def sign_up(member: Member, session_id: int, now: datetime | None = None) -> InductionSignup:
    """Sign up: a place when one is free, the waitlist when full, InductionRefused otherwise."""
    now = now or utcnow()
    get_session(session_id)
    with write_transaction():
        s = _lock_session(session_id)
        rows = _signups(s.id)  # re-counted under the lock
        decision = ind.check_signup(_domain_session(s), member.id, valid_type_ids(member, now),
                                    _domain_signups(rows), now)
        if decision.refusal is not None:
            raise InductionRefused(decision.refusal, 409 if decision.refusal.code == "already_signed_up" else 422)
        assert decision.status is not None
        row = next((r for r in rows if r.member_id == member.id), None)  # a cancelled one is reused
        if row is None:
            row = InductionSignup(session_id=s.id, member_id=member.id, member=member)
            db.session.add(row)
            rows.append(row)
        row.status = decision.status
        row.created_at = now
        row.updated_at = now
        _renumber(_domain_session(s), rows, now)
        db.session.flush()
        if row.status == ind.CONFIRMED:
            _tell(member, "induction_confirmed", s, now, f"confirmed:{member.id}:{now.isoformat()}")
        else:
            _tell(member, "induction_waitlisted", s, now, f"waitlisted:{member.id}:{now.isoformat()}",
                  position=row.position)
    return row


def cancel_signup(member: Member, session_id: int, now: datetime | None = None) -> InductionSignup:
    """The member cancels; the first in the waitlist's order takes the freed place and is told."""
    now = now or utcnow()
    get_session(session_id)
    with write_transaction():
        s = _lock_session(session_id)
        rows = _signups(s.id)
        row = next((r for r in rows if r.member_id == member.id and r.status in ind.OPEN), None)
        if row is None:
            raise InductionRefused(ind.Refusal("not_signed_up"), 404)
        if now >= s.start_at:
            raise InductionRefused(ind.Refusal("session_started", {"start": s.start_at.isoformat()}))
        row.status = ind.CANCELLED
        row.position = None
        row.updated_at = now
        _move_up(s, rows, now)
        _tell(member, "induction_cancelled", s, now, f"cancelled:{member.id}:{now.isoformat()}", by_trainer=False)
    return row


def _move_up(s: InductionSession, rows: list[InductionSignup], now: datetime) -> None:
    waiting = [r for r in rows if r.status == ind.WAITLISTED]
    chosen = ind.to_move_up(_domain_session(s), _domain_signups(rows), _history([r.member_id for r in waiting]), now)
    by_id: dict[Hashable, InductionSignup] = {r.id: r for r in rows}
    for c in chosen:
        r = by_id[c.id]
        r.status = ind.CONFIRMED
        r.updated_at = now
        _tell(r.member, "induction_moved_up", s, now, f"moved_up:{r.member_id}:{now.isoformat()}")
    _renumber(_domain_session(s), rows, now)


def signups_of(session_id: int) -> list[InductionSignup]:
    return [r for r in _signups(session_id) if r.status != ind.CANCELLED]


# --- attendance ----------------------------------------------------------------------------------------


def mark_attendance(actor: Member, session_id: int, member_id: int, status: str,
                    now: datetime | None = None) -> InductionSignup:
    """attended / passed / missed, by the session's trainer or staff; passing grants the qualification with
    the type's validity (InductionRule.validity_months) and fulfils the member's requests."""
    now = now or utcnow()
    s = get_session(session_id)
    if s.trainer_id != actor.id and not actor.is_staff:
        raise NotAllowed("Only the session's trainer, a steward or an admin can mark attendance.")
    if status not in ind.ATTENDANCE:
        raise InductionRefused(ind.Refusal("bad_attendance"))
    with write_transaction():
        s = _lock_session(session_id)
        if s.status == ind.SESSION_CANCELLED:
            raise InductionRefused(ind.Refusal("session_cancelled"), 409)
        if now < s.start_at:
            raise InductionRefused(ind.Refusal("not_started"))
        rows = _signups(s.id)
        row = next((r for r in rows if r.member_id == member_id and r.status in ind.HOLDS_PLACE), None)
        if row is None:
            raise InductionRefused(ind.Refusal("not_signed_up"), 404)
        row.status = status
        row.updated_at = now
        if status == ind.PASSED:
            rule = rule_for(s.machine_type_id)
            expires = ind.expiry_after_pass(now, rule.validity_months if rule is not None else None)
            note = f"Induction session {s.id}"
            if s.machine is not None and s.machine.qualification_scope == "machine":
                machine_service.grant(row.member, by=actor, machine=s.machine, expires_at=expires, note=note)
            else:
                machine_service.grant(row.member, by=actor, machine_type=s.machine_type, expires_at=expires, note=note)
            _fulfil_requests(row.member_id, s.machine_type_id, now)
        if not any(r.status == ind.CONFIRMED for r in rows) and s.status == ind.SCHEDULED:
            s.status = ind.DONE
            record_trainer_effort(s, actor, now)
    return row


def record_trainer_effort(s: InductionSession, actor: Member, now: datetime) -> None:
    """The trainer's session time as shared effort on the task board's ledger (kind "induction"). Its
    weight rises, as a board task's, from the oldest request for the type that was waiting when the session
    was offered until it was offered: sessions asked for and long not offered count more."""
    if s.effort_task_id is not None:  # recorded once, whoever settles the session
        return
    waited = db.session.scalar(select(func.min(InductionRequest.created_at)).where(
        InductionRequest.machine_type_id == s.machine_type_id, InductionRequest.created_at < s.created_at,
        or_(InductionRequest.fulfilled_at.is_(None), InductionRequest.fulfilled_at >= s.created_at)))
    if waited is not None and waited.tzinfo is None:  # SQLite aggregates come back naive (UTC)
        waited = waited.replace(tzinfo=UTC)
    hours = (s.end_at - s.start_at).total_seconds() / 3600
    task = effort_service.record_done_work(
        s.trainer, f"Induction: {s.machine_type.name} (session #{s.id})", kind="induction", base_hours=hours,
        opened_at=waited or s.created_at, offered_at=s.created_at, actor=actor, machine=s.machine,
        description=f"Ran the {s.machine_type.name} induction on {s.start_at:%d %b %Y}.", now=now)
    s.effort_task_id = task.id


# --- requests ------------------------------------------------------------------------------------------


def request_induction(member: Member, machine_type: MachineType, now: datetime | None = None) -> InductionRequest:
    """Ask for an induction on a type; asking again while the request is open returns the same one."""
    now = now or utcnow()
    with write_transaction():
        open_one = db.session.scalar(select(InductionRequest).where(
            InductionRequest.member_id == member.id, InductionRequest.machine_type_id == machine_type.id,
            InductionRequest.fulfilled_at.is_(None)))
        if open_one is not None:
            return open_one
        if machine_type.id in valid_type_ids(member, now):
            raise InductionRefused(ind.Refusal("already_qualified", {"machine_type_id": machine_type.id}))
        req = InductionRequest(member_id=member.id, machine_type_id=machine_type.id, created_at=now)
        db.session.add(req)
    return req


@dataclass(frozen=True)
class Demand:
    machine_type: MachineType
    waiting: int
    since: datetime  # the oldest open request
    members: list[Member]


def open_requests(now: datetime | None = None) -> list[Demand]:
    """Unmet requests per type, most asked-for first (then longest waiting). A request is fulfilled when the
    member passes; until then it counts unless the member holds a place in a session still to come (a
    waitlisted member is still unmet demand, and one who cancels counts again)."""
    now = now or utcnow()
    placed = {(m, t) for m, t in db.session.execute(select(InductionSignup.member_id, InductionSession.machine_type_id)
                                    .join(InductionSession, InductionSession.id == InductionSignup.session_id)
                                    .where(InductionSignup.status == ind.CONFIRMED,
                                           InductionSession.status == ind.SCHEDULED,
                                           InductionSession.end_at > now))}
    rows = list(db.session.scalars(select(InductionRequest).where(InductionRequest.fulfilled_at.is_(None))
                                   .order_by(InductionRequest.created_at)))
    by_type: dict[int, list[InductionRequest]] = {}
    for r in rows:
        if (r.member_id, r.machine_type_id) not in placed:
            by_type.setdefault(r.machine_type_id, []).append(r)
    out = [Demand(rs[0].machine_type, len(rs), rs[0].created_at, [r.member for r in rs]) for rs in by_type.values()]
    return sorted(out, key=lambda d: (-d.waiting, d.since))


def open_request_of(member: Member, machine_type_id: int) -> InductionRequest | None:
    return db.session.scalar(select(InductionRequest).where(
        InductionRequest.member_id == member.id, InductionRequest.machine_type_id == machine_type_id,
        InductionRequest.fulfilled_at.is_(None)))


def open_to(member: Member, now: datetime, limit: int = 3) -> list[SessionInfo]:
    """The next sessions `member` may sign up for now (a place or the waitlist), soonest first: the kiosk's
    list. The same check as sign_up, so a session shown is one the tap will not refuse."""
    valid = valid_type_ids(member, now)
    out: list[SessionInfo] = []
    for i in upcoming(now, member):
        if len(out) >= limit:
            break
        d = ind.check_signup(_domain_session(i.session), member.id, valid, _domain_signups(_signups(i.session.id)), now)
        if d.allowed:
            out.append(i)
    return out


def sessions_for_machine(machine: Machine, now: datetime, viewer: Member | None = None,
                         limit: int = 3) -> list[SessionInfo]:
    """The next sessions a member could take for this machine: its type's, on it or on no machine."""
    stmt = select(InductionSession).where(
        InductionSession.status == ind.SCHEDULED, InductionSession.start_at > now,
        InductionSession.machine_type_id == machine.type_id,
        or_(InductionSession.machine_id.is_(None), InductionSession.machine_id == machine.id)
        if machine.qualification_scope == "machine" else InductionSession.machine_type_id == machine.type_id)
    rows = db.session.scalars(stmt.order_by(InductionSession.start_at).limit(limit))
    return [info(s, viewer) for s in rows]


def set_rule(actor: Member, machine_type: MachineType, validity_months: int | None,
             disuse_months: int | None) -> InductionRule | None:
    """Set (or clear, with both None) how long a type's qualification lasts and after how much disuse it lapses.
    Applies to qualifications granted from now on (validity) and to every qualification of the type (disuse)."""
    if not actor.is_staff:
        raise NotAllowed("Only stewards and admins can change how long qualifications last.")
    for v in (validity_months, disuse_months):
        if v is not None and not 1 <= v <= 120:
            raise InductionRefused(ind.Refusal("bad_session", {"reason": "Months are 1 to 120 (or empty: no limit)."}))
    with write_transaction():
        rule = db.session.get(InductionRule, machine_type.id)
        if validity_months is None and disuse_months is None:
            if rule is not None:
                db.session.delete(rule)
            return None
        if rule is None:
            rule = InductionRule(machine_type_id=machine_type.id)
            db.session.add(rule)
        rule.validity_months = validity_months
        rule.disuse_months = disuse_months
    return rule


def rules() -> dict[int, InductionRule]:
    return {r.machine_type_id: r for r in db.session.scalars(select(InductionRule))}
