"""Deleting an account: the member's name and email go, their history stays under a pseudonym.

A member who holds something others count on (future bookings, induction sessions they train, tasks they
claimed) asks, and staff confirm (`DeletionRequest`); otherwise the deletion happens at once. Deleting
ends every way in (sessions, tokens, identities, password, PIN, badge, calendar link, two-factor), cancels
what is still to come through the features' own services (so waitlists move up and people are told),
and rewrites every place that kept the name or address as text (design credits, audit labels, snapshots in
other members' notices, mails, webhook bodies). Past bookings, usage and credited work stay, linked to the
pseudonymous member, so the lab's figures keep counting them.

`HANDLING` says what happens to each column referencing members.id (a test checks none is forgotten).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import String, cast, delete, or_, select

from ..database import write_transaction
from ..domain import audit_actions
from ..domain import inductions as ind
from ..extensions import db
from ..models import ACTIVE_STATUSES, ApiToken, Booking, BookingKind, Member, MemberSession, Role
from ..models.accounts import AccountLink, AuditEntry, MemberIdentity, RecoveryCode
from ..models.designs import Design
from ..models.inductions import InductionRequest, InductionSession, InductionSignup, InductionTrainer
from ..models.notifications import Notice, NoticePreference, NoticeSettings, OutboxMail
from ..models.privacy import DeletionRequest
from ..models.scheduling import EffortTask, EntryStatus, RequestStatus, SlotRequest, TaskClaim, WaitlistEntry
from ..models.series import BookingSeries, SeriesStatus
from ..models.two_factor import TwoFactorChallenge
from ..models.webhooks import WebhookDelivery
from ..security import verify_password
from . import audit, inductions, notify, waitlist, windows
from . import bookings as booking_service
from . import effort as effort_service
from .designs import SEARCH_DESCRIPTION_CHARS
from .scheduling_common import SchedulingError

DELETED_DOMAIN = "deleted.invalid"
REASON = "The member's account was deleted."

# What deletion does with each column that references members.id.
HANDLING: dict[str, str] = {
    "api_tokens.member_id": "deleted", "member_sessions.member_id": "deleted",
    "member_identities.member_id": "deleted", "recovery_codes.member_id": "deleted",
    "two_factor_challenges.member_id": "deleted (no pending second-factor sign-in survives)",
    "account_links.member_id": "deleted (and links mailed to the old address)",
    "notice_preferences.member_id": "deleted", "notice_settings.member_id": "deleted",
    "notices.member_id": "deleted", "outbox_mails.member_id": "deleted (pending and sent: they hold the address)",
    "induction_trainers.member_id": "deleted (no more trainer rights)",
    "induction_requests.member_id": "open requests deleted; fulfilled ones kept",
    "deletion_requests.member_id": "deleted once done",
    "bookings.member_id": "future bookings cancelled (waitlists move up), maintenance blocks kept; past kept, "
                          "notes cleared",
    "booking_series.member_id": "active series marked cancelled (their future occurrences are cancelled)",
    "induction_sessions.trainer_id": "future sessions cancelled (sign-ups told); past kept",
    "induction_signups.member_id": "future sign-ups cancelled (the waitlist moves up); past kept",
    "waitlist_entries.member_id": "active entries left", "waitlist_offers.member_id": "open offers declined",
    "slot_requests.member_id": "pending requests withdrawn; decided ones kept",
    "window_participants.member_id": "kept (a random per-window label, the published draws stay verifiable)",
    "task_claims.member_id": "claims on open tasks given up", "task_completions.member_id": "kept (credited work)",
    "usage_sessions.member_id": "kept (usage figures)", "qualifications.member_id": "kept (history)",
    "designs.author_id": "kept: commons under open licences, credited to the pseudonym",
    "design_versions.author_id": "kept, credited to the pseudonym", "design_made.member_id": "kept",
    "audit_log.actor_id": "kept, labels rewritten to the pseudonym",
    "account_links.created_by_id": "kept", "bookings.cancelled_by_id": "kept",
    "qualifications.granted_by_id": "kept", "induction_trainers.granted_by_id": "kept",
    "booking_series.created_by_id": "kept", "request_windows.created_by_id": "kept",
    "effort_tasks.created_by_id": "kept", "effort_tasks.completed_by_id": "kept",
    "effort_tasks.confirmed_by_id": "kept", "maintenance_rules.created_by_id": "kept", "webhooks.created_by": "kept",
    "print_jobs.member_id": "queued prints withdrawn with their cancelled bookings (services/print_offers); past "
                            "ones kept, pseudonymous",
    "two_factor_settings.updated_by_id": "kept (the lab's switch)",
}


class DeletionRefused(Exception):
    """The deletion cannot go ahead; the message says why and what to do instead."""

    def __init__(self, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class Obligation:
    kind: str  # booking, block, induction_session, task
    text: str


def deleted_email(member: Member) -> str:
    return f"deleted-{member.id}@{DELETED_DOMAIN}"


def is_deleted(member: Member) -> bool:
    return member.deleted_at is not None


def sso_only(member: Member) -> bool:
    """No local password: the member proves it is them by typing their email instead."""
    return member.password_hash is None


def confirmation_ok(member: Member, typed: str) -> bool:
    if sso_only(member):
        return typed.strip().lower() == member.email.lower()
    return verify_password(member.password_hash, typed)


def _future_bookings(member: Member, now: datetime) -> list[Booking]:
    return list(db.session.scalars(select(Booking).where(
        Booking.member_id == member.id, Booking.status.in_([s.value for s in ACTIVE_STATUSES]),
        Booking.end_at > now).order_by(Booking.start_at)))


def _trained_sessions(member: Member, now: datetime) -> list[InductionSession]:
    return list(db.session.scalars(select(InductionSession).where(
        InductionSession.trainer_id == member.id, InductionSession.status == ind.SCHEDULED,
        InductionSession.end_at > now).order_by(InductionSession.start_at)))


def _open_claims(member: Member) -> list[TaskClaim]:
    return list(db.session.scalars(select(TaskClaim).join(EffortTask).where(
        TaskClaim.member_id == member.id, EffortTask.completed_at.is_(None), EffortTask.cancelled.is_(False))))


def obligations(member: Member, now: datetime) -> list[Obligation]:
    """What other people count on: while any is there, staff confirm the deletion."""
    out = []
    for b in _future_bookings(member, now):
        kind = "block" if b.kind != BookingKind.NORMAL else "booking"
        out.append(Obligation(kind, f"{'Block' if kind == 'block' else 'Booking'} of {b.machine.name} from "
                                    f"{b.start_at.isoformat(timespec='minutes')} ({b.status.replace('_', ' ')})"))
    out += [Obligation("induction_session", f"Induction on {s.machine_type.name} you train at "
                                            f"{s.start_at.isoformat(timespec='minutes')}")
            for s in _trained_sessions(member, now)]
    out += [Obligation("task", f"Task you claimed: {c.task.title}") for c in _open_claims(member)]
    return out


def pending_request(member: Member) -> DeletionRequest | None:
    return db.session.get(DeletionRequest, member.id)


def pending_requests() -> list[DeletionRequest]:
    return list(db.session.scalars(select(DeletionRequest).order_by(DeletionRequest.requested_at)))


def _only_admin(member: Member) -> bool:
    if member.role != Role.ADMIN.value:
        return False
    others = db.session.scalar(select(Member.id).where(Member.role == Role.ADMIN.value, Member.active.is_(True),
                                                       Member.deleted_at.is_(None), Member.id != member.id).limit(1))
    return others is None


def _refuse_if_not_deletable(member: Member) -> None:
    if is_deleted(member):
        raise DeletionRefused("This account is already deleted.", 404)
    if _only_admin(member):
        raise DeletionRefused("This is the lab's only admin account. Make another member admin first, then "
                              "delete it.")


def request_deletion(member: Member, now: datetime) -> str:
    """The member asks (their password or email already checked). Returns "deleted" (done at once) or
    "pending" (it waits for staff, because of `obligations`). The caller commits after a pending one."""
    _refuse_if_not_deletable(member)
    held = obligations(member, now)
    if held:
        if pending_request(member) is None:
            db.session.add(DeletionRequest(member_id=member.id, requested_at=now))
            notify.notify_staff("deletion_requested", {"name": member.name, "member_no": member.member_no,
                                                       "holds": len(held)},
                                now=now, link="/privacy/requests", dedupe_key=f"deletion:{member.id}:{now.isoformat()}")
        return "pending"
    delete_account(member, member, now)
    return "deleted"


def withdraw_request(member: Member) -> bool:
    row = pending_request(member)
    if row is None:
        return False
    db.session.delete(row)
    return True


def delete_account(member: Member, actor: Member, now: datetime) -> None:
    """Delete (pseudonymize) the account. `actor` is the member themselves, or the staff member who
    confirmed or decided it. Each feature's cancellation commits on its own; the member is made inactive
    first, so nothing new reaches them in between, and running it again after a crash finishes the job."""
    _refuse_if_not_deletable(member)
    if actor.id != member.id and not actor.is_staff:
        raise DeletionRefused("Only a steward or an admin can delete someone else's account.", 403)
    old_name, old_email = member.name, member.email
    with write_transaction():
        member.active = False
        db.session.execute(delete(MemberSession).where(MemberSession.member_id == member.id))
        db.session.execute(delete(ApiToken).where(ApiToken.member_id == member.id))
    counts = _cancel_what_is_to_come(member, actor, now)
    with write_transaction():
        _scrub(member, old_name, old_email, now)
        audit.record(actor, audit_actions.MEMBER_DELETED, target=member, now=now,
                     detail={"by": "self" if actor.id == member.id else "staff", **counts})


def _cancel_what_is_to_come(member: Member, actor: Member, now: datetime) -> dict[str, int]:
    counts = {"bookings_cancelled": 0, "inductions_cancelled": 0, "signups_cancelled": 0}
    for s in _trained_sessions(member, now):
        inductions.cancel_session(actor, s.id, REASON, now)
        counts["inductions_cancelled"] += 1
    reason = "" if actor.id == member.id else REASON
    for b in _future_bookings(member, now):
        if b.kind == BookingKind.NORMAL:
            booking_service.cancel_booking(b, actor, reason, now)
            counts["bookings_cancelled"] += 1
    signups = db.session.scalars(select(InductionSignup).join(InductionSession).where(
        InductionSignup.member_id == member.id, InductionSignup.status.in_(list(ind.OPEN)),
        InductionSession.start_at > now))
    for row in list(signups):
        inductions.cancel_signup(member, row.session_id, now)
        counts["signups_cancelled"] += 1
    for e in list(db.session.scalars(select(WaitlistEntry).where(WaitlistEntry.member_id == member.id,
                                                                 WaitlistEntry.status == EntryStatus.ACTIVE.value))):
        waitlist.leave_waitlist(member, e.id)
    for r in list(db.session.scalars(select(SlotRequest).where(SlotRequest.member_id == member.id,
                                                               SlotRequest.status == RequestStatus.PENDING.value))):
        try:
            windows.withdraw_request(member, r.id, now)
        except SchedulingError:  # the window no longer takes changes: the request is withdrawn as it stands
            with write_transaction():
                r.status = RequestStatus.WITHDRAWN.value
    for c in _open_claims(member):
        effort_service.unclaim_task(member, c.task, now)
    return counts


def _replace_values(data: Any, old: dict[str, str]) -> Any:
    """`data` with every string equal to a key of `old` replaced (at any depth)."""
    if isinstance(data, dict):
        return {k: _replace_values(v, old) for k, v in data.items()}
    if isinstance(data, list):
        return [_replace_values(v, old) for v in data]
    if isinstance(data, str):
        for was, new in old.items():
            # A short name ("Al") is replaced only where it is the whole value, not inside other words.
            if was and (data == was or (len(was) >= 4 and was in data)):
                data = data.replace(was, new)
    return data


def _like_any(column: Any, words: list[str]) -> Any:
    # JSON may store non-ASCII escaped: look for both spellings.
    spellings = {s for w in words if w for s in (w, json.dumps(w)[1:-1])}
    return or_(*(cast(column, String).like(f"%{s}%") for s in spellings))


def _rewrite_rows(model: Any, column: str, old: dict[str, str], load: Callable[[str], Any],
                  dump: Callable[[Any], str] | None = None) -> None:
    col = getattr(model, column)
    for row in db.session.scalars(select(model).where(_like_any(col, list(old)))):
        value = getattr(row, column)
        parsed = load(value) if isinstance(value, str) else value
        new = _replace_values(parsed, old)
        setattr(row, column, dump(new) if dump else new)


def _scrub(member: Member, old_name: str, old_email: str, now: datetime) -> None:
    mid = member.id
    for model in (MemberIdentity, RecoveryCode, TwoFactorChallenge, NoticePreference, NoticeSettings, Notice,
                  OutboxMail, InductionTrainer, DeletionRequest):
        db.session.execute(delete(model).where(model.member_id == mid))
    db.session.execute(delete(OutboxMail).where(OutboxMail.to_address == old_email))
    db.session.execute(delete(AccountLink).where(or_(AccountLink.member_id == mid, AccountLink.email == old_email)))
    db.session.execute(delete(InductionRequest).where(InductionRequest.member_id == mid,
                                                      InductionRequest.fulfilled_at.is_(None)))
    for s in db.session.scalars(select(BookingSeries).where(BookingSeries.member_id == mid,
                                                            BookingSeries.status == SeriesStatus.ACTIVE.value)):
        s.status = SeriesStatus.CANCELLED.value
    for b in db.session.scalars(select(Booking).where(Booking.member_id == mid, Booking.note != "")):
        b.note = ""
    member.name = member.pseudonym
    member.email = deleted_email(member)
    for attr in ("password_hash", "pin_hash", "badge_hash", "ical_token_hash", "totp_secret", "totp_enabled_at",
                 "totp_last_step", "language"):
        setattr(member, attr, None)
    member.active = False
    member.deleted_at = now
    label = audit.actor_label(member)
    old = {old_email: member.email, f"{old_name} (#{member.member_no})": label, old_name: member.pseudonym}
    for d in db.session.scalars(select(Design).where(Design.author_id == mid)):
        d.author_name = member.pseudonym
        d.search_text = " ".join(p for p in (d.title, d.tags_text, d.author_name, d.licence,
                                             d.description[:SEARCH_DESCRIPTION_CHARS]) if p).lower()
    for e in db.session.scalars(select(AuditEntry).where(or_(
            AuditEntry.actor_id == mid, (AuditEntry.target_type == "member") & (AuditEntry.target_id == mid),
            _like_any(AuditEntry.target_label, list(old)), _like_any(AuditEntry.detail, list(old))))):
        if e.actor_id == mid:
            e.actor_label = label
        if e.target_type == "member" and e.target_id == mid:
            e.target_label = label
        e.target_label = _replace_values(e.target_label, old)
        e.detail = json.dumps(_replace_values(json.loads(e.detail or "{}"), old), sort_keys=True)
    # Snapshots in other members' notices and mails (a trainer's or a steward's name) and webhook bodies.
    _rewrite_rows(Notice, "params", old, json.loads)
    _rewrite_rows(OutboxMail, "params", old, json.loads)
    _rewrite_rows(WebhookDelivery, "body", old, json.loads,
                  lambda v: json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=False))
