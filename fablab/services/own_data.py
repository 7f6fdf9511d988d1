"""A member's own data: everything the lab holds about them, as JSON files in a zip (with a README.txt).

Only their data: other members appear as pseudonyms ("Member 1042") if at all, and secrets (password, PIN
and badge hashes, token hashes, the TOTP secret) are said to exist, never given. The zip is written to a
temporary file, not memory: the member's uploaded design files can be large.

`COVERED` and `SKIPPED` name every column that points at members.id (a test checks that a new one is
added to one of them, with its reason).
"""

from __future__ import annotations

import json
import re
import tempfile
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from sqlalchemy import or_, select

from ..domain.webhook_body import strip_people
from ..extensions import db
from ..models import ApiToken, Booking, Member, MemberSession, Qualification
from ..models.accounts import AuditEntry, MemberIdentity, RecoveryCode
from ..models.designs import Design, DesignMade, DesignVersion
from ..models.inductions import InductionRequest, InductionSession, InductionSignup, InductionTrainer
from ..models.notifications import Notice, NoticePreference, NoticeSettings, OutboxMail
from ..models.print_jobs import PrintJob
from ..models.privacy import DeletionRequest
from ..models.scheduling import SlotRequest, TaskClaim, TaskCompletion, WaitlistEntry, WaitlistOffer, WindowParticipant
from ..models.series import BookingSeries
from ..models.usage import UsageSession
from .design_processing import file_store
from .file_store import FileStore

Row = dict[str, Any]


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


class _People:
    """How other members are named in the export: "you", or their pseudonym."""

    def __init__(self, me: Member) -> None:
        self.me = me
        self._cache: dict[int, str] = {}

    def __call__(self, member_id: int | None) -> str | None:
        if member_id is None:
            return None
        if member_id == self.me.id:
            return "you"
        if member_id not in self._cache:
            other = db.session.get(Member, member_id)
            self._cache[member_id] = other.pseudonym if other is not None else "a former member"
        return self._cache[member_id]


def _profile(me: Member, who: _People) -> list[Row]:
    codes = db.session.scalars(select(RecoveryCode).where(RecoveryCode.member_id == me.id)).all()
    return [{
        "member_no": me.member_no, "name": me.name, "email": me.email, "role": me.role, "active": me.active,
        "approved": me.approved, "created_at": _iso(me.created_at), "email_verified_at": _iso(me.email_verified_at),
        "fair_share_weight": me.share, "language": me.language,
        # Secrets: whether they exist, never their values (the lab keeps only hashes, or an encrypted secret).
        "password_set": me.password_hash is not None, "kiosk_pin_set": me.pin_hash is not None,
        "badge_registered": me.badge_hash is not None, "calendar_feed_link_exists": me.ical_token_hash is not None,
        "two_factor_enabled": me.totp_enabled_at is not None, "two_factor_enabled_at": _iso(me.totp_enabled_at),
        "recovery_codes_unused": sum(1 for c in codes if c.used_at is None),
        "deletion_requested_at": _iso(db.session.scalar(
            select(DeletionRequest.requested_at).where(DeletionRequest.member_id == me.id))),
    }]


def _qualifications(me: Member, who: _People) -> list[Row]:
    rows = db.session.scalars(select(Qualification).where(Qualification.member_id == me.id)
                              .order_by(Qualification.granted_at))
    out = [{"for": q.scope_label, "granted_at": _iso(q.granted_at), "granted_by": who(q.granted_by_id),
            "expires_at": _iso(q.expires_at), "note": q.note} for q in rows]
    trainer = db.session.scalars(select(InductionTrainer).where(InductionTrainer.member_id == me.id))
    out += [{"for": f"training inductions on {t.machine_type.name}", "granted_at": _iso(t.granted_at),
             "granted_by": who(t.granted_by_id), "expires_at": None, "note": ""} for t in trainer]
    return out


def _bookings(me: Member, who: _People) -> list[Row]:
    rows = db.session.scalars(select(Booking).where(Booking.member_id == me.id).order_by(Booking.start_at))
    out = [{"id": b.id, "machine": b.machine.name, "start": _iso(b.start_at), "end": _iso(b.end_at),
            "booked_end": _iso(b.booked_end_at), "status": b.status, "kind": b.kind, "note": b.note,
            "source": b.source, "created_at": _iso(b.created_at), "checked_in_at": _iso(b.checked_in_at),
            "cancelled_at": _iso(b.cancelled_at), "cancelled_by": who(b.cancelled_by_id),
            "cancel_reason": b.cancel_reason} for b in rows]
    series = db.session.scalars(select(BookingSeries).where(BookingSeries.member_id == me.id))
    out += [{"series": s.id, "machine": s.machine.name, "title": s.title, "weekday": s.weekday,
             "start_minute": s.start_minute, "minutes": s.minutes, "every_weeks": s.every_weeks,
             "first_day": s.first_day.isoformat(), "until": s.until.isoformat(), "status": s.status,
             "created_at": _iso(s.created_at)} for s in series]
    return out


def _usage(me: Member, who: _People) -> list[Row]:
    rows = db.session.scalars(select(UsageSession).where(UsageSession.member_id == me.id)
                              .order_by(UsageSession.start_at))
    return [{"machine": u.machine.name, "start": _iso(u.start_at), "end": _iso(u.end_at),
             "duration_s": u.duration_s, "energy_wh": u.energy_wh, "booking_id": u.booking_id,
             "badge_last4": u.badge_last4, "job_file": u.job_file, "kind": u.kind, "unbooked": u.unbooked,
             "overrun_minutes": u.overrun_minutes} for u in rows]


def _designs(me: Member, who: _People) -> list[Row]:
    out: list[Row] = []
    for d in db.session.scalars(select(Design).where(Design.author_id == me.id).order_by(Design.id)):
        out.append({"id": d.id, "title": d.title, "slug": d.slug, "description": d.description, "tags": d.tags,
                    "licence": d.licence, "credited_as": d.author_name, "forked_from_design": d.parent_id,
                    "created_at": _iso(d.created_at), "versions": [
                        {"number": v.number, "changelog": v.changelog, "by": who(v.author_id),
                         "created_at": _iso(v.created_at),
                         "files": [{"name": f.name, "size": f.size, "sha256": f.sha256, "kind": f.kind,
                                    "in_zip": _file_arcname(d, v, f.id, f.name) if v.author_id == me.id else None}
                                   for f in v.files]} for v in d.versions]})
    # Versions I added to someone else's design (they credit me there).
    others = db.session.scalars(select(DesignVersion).join(Design).where(
        DesignVersion.author_id == me.id, or_(Design.author_id.is_(None), Design.author_id != me.id)))
    out += [{"version_of_design": v.design_id, "title": v.design.title, "number": v.number,
             "changelog": v.changelog, "created_at": _iso(v.created_at)} for v in others]
    made = db.session.scalars(select(DesignMade).where(DesignMade.member_id == me.id).order_by(DesignMade.made_at))
    out += [{"made_design": m.design_id, "title": m.design.title, "machine": m.machine.name if m.machine else None,
             "booking_id": m.booking_id, "note": m.note, "made_at": _iso(m.made_at)} for m in made]
    return out


def _notices(me: Member, who: _People) -> list[Row]:
    rows = db.session.scalars(select(Notice).where(Notice.member_id == me.id).order_by(Notice.created_at))
    # Snapshot params may name the staff member or trainer involved: names are left out.
    return [{"kind": n.kind, "created_at": _iso(n.created_at), "read_at": _iso(n.read_at), "link": n.link,
             "email": n.email_state, "details": strip_people(n.params or {}, show_names=False)} for n in rows]


def _mails(me: Member, who: _People) -> list[Row]:
    rows = db.session.scalars(select(OutboxMail).where(OutboxMail.member_id == me.id).order_by(OutboxMail.created_at))
    return [{"kind": m.kind, "to": m.to_address, "status": m.status, "created_at": _iso(m.created_at),
             "sent_at": _iso(m.sent_at), "attempts": m.attempts} for m in rows]


def _notice_choices(me: Member, who: _People) -> list[Row]:
    prefs = db.session.scalars(select(NoticePreference).where(NoticePreference.member_id == me.id))
    out: list[Row] = [{"kind": p.kind, "channel": p.channel} for p in prefs]
    s = db.session.get(NoticeSettings, me.id)
    if s is not None:
        out.append({"reminder_minutes": s.reminder_minutes, "digest": s.digest, "digest_hour": s.digest_hour,
                    "last_digest_at": _iso(s.last_digest_at)})
    return out


def _waitlist(me: Member, who: _People) -> list[Row]:
    rows = db.session.scalars(select(WaitlistEntry).where(WaitlistEntry.member_id == me.id)
                              .order_by(WaitlistEntry.joined_at))
    out: list[Row] = [{"machine": e.machine.name, "kind": e.kind, "start": _iso(e.start_at), "end": _iso(e.end_at),
                       "min_hours": e.min_hours, "status": e.status, "joined_at": _iso(e.joined_at)} for e in rows]
    offers = db.session.scalars(select(WaitlistOffer).where(WaitlistOffer.member_id == me.id)
                                .order_by(WaitlistOffer.offered_at))
    out += [{"offer_on": o.machine.name, "start": _iso(o.start_at), "end": _iso(o.end_at),
             "offered_at": _iso(o.offered_at), "expires_at": _iso(o.expires_at), "status": o.status,
             "booking_id": o.booking_id} for o in offers]
    return out


def _windows(me: Member, who: _People) -> list[Row]:
    labels = {p.window_id: p.label for p in db.session.scalars(
        select(WindowParticipant).where(WindowParticipant.member_id == me.id))}
    rows = db.session.scalars(select(SlotRequest).where(SlotRequest.member_id == me.id)
                              .order_by(SlotRequest.created_at))
    return [{"window": r.window_id, "machine": r.window.machine.name, "your_label_in_the_draw": labels.get(r.window_id),
             "start": _iso(r.start_at), "end": _iso(r.end_at), "rank": r.rank, "status": r.status,
             "reason": r.reason, "message": r.message, "booking_id": r.booking_id, "created_at": _iso(r.created_at),
             "decided_at": _iso(r.decided_at)} for r in rows]


def _inductions(me: Member, who: _People) -> list[Row]:
    signups = db.session.scalars(select(InductionSignup).where(InductionSignup.member_id == me.id)
                                 .order_by(InductionSignup.created_at))
    out: list[Row] = [{"signed_up_for": s.session.machine_type.name, "start": _iso(s.session.start_at),
                       "trainer": who(s.session.trainer_id), "status": s.status, "waitlist_position": s.position,
                       "created_at": _iso(s.created_at)} for s in signups]
    requests = db.session.scalars(select(InductionRequest).where(InductionRequest.member_id == me.id))
    out += [{"requested_induction_on": r.machine_type.name, "created_at": _iso(r.created_at),
             "fulfilled_at": _iso(r.fulfilled_at)} for r in requests]
    trained = db.session.scalars(select(InductionSession).where(InductionSession.trainer_id == me.id)
                                 .order_by(InductionSession.start_at))
    out += [{"you_train": s.machine_type.name, "start": _iso(s.start_at), "end": _iso(s.end_at), "place": s.place,
             "capacity": s.capacity, "status": s.status, "signed_up": len(s.signups)} for s in trained]
    return out


def _effort(me: Member, who: _People) -> list[Row]:
    claims = db.session.scalars(select(TaskClaim).where(TaskClaim.member_id == me.id))
    out: list[Row] = [{"claimed_task": c.task.title, "claimed_at": _iso(c.claimed_at),
                       "completed_at": _iso(c.task.completed_at)} for c in claims]
    done = db.session.scalars(select(TaskCompletion).where(TaskCompletion.member_id == me.id)
                              .order_by(TaskCompletion.completed_at))
    out += [{"credited_task": c.task.title, "kind": c.task.kind, "credited_hours": c.credited_hours,
             "completed_at": _iso(c.completed_at), "confirmed_at": _iso(c.task.confirmed_at),
             "confirmed_by": who(c.task.confirmed_by_id)} for c in done]
    return out


def _tokens(me: Member, who: _People) -> list[Row]:
    rows = db.session.scalars(select(ApiToken).where(ApiToken.member_id == me.id).order_by(ApiToken.created_at))
    return [{"name": t.name, "scope": t.scope, "created_at": _iso(t.created_at), "last_used_at": _iso(t.last_used_at),
             "expires_at": _iso(t.expires_at), "revoked": t.revoked} for t in rows]


def _sessions(me: Member, who: _People) -> list[Row]:
    rows = db.session.scalars(select(MemberSession).where(MemberSession.member_id == me.id))
    return [{"kind": s.kind, "user_agent": s.user_agent, "signed_in_at": _iso(s.created_at),
             "last_seen_at": _iso(s.last_seen_at)} for s in rows]


def _identities(me: Member, who: _People) -> list[Row]:
    rows = db.session.scalars(select(MemberIdentity).where(MemberIdentity.member_id == me.id))
    return [{"provider": i.provider, "email": i.email, "linked_at": _iso(i.created_at),
             "last_login_at": _iso(i.last_login_at)} for i in rows]


def _prints(me: Member, who: _People) -> list[Row]:
    rows = db.session.scalars(select(PrintJob).where(PrintJob.member_id == me.id).order_by(PrintJob.created_at))
    return [{"file": j.name, "machine": j.machine.name, "state": j.state, "reason": j.reason,
             "own_upload": j.own_upload, "size_bytes": j.size, "sha256": j.sha256, "booking_id": j.booking_id,
             "progress": j.progress, "queued_at": _iso(j.created_at), "started_at": _iso(j.started_at),
             "ended_at": _iso(j.ended_at)} for j in rows]


def _audit(me: Member, who: _People) -> list[Row]:
    rows = db.session.scalars(select(AuditEntry).where(AuditEntry.target_type == "member",
                                                       AuditEntry.target_id == me.id).order_by(AuditEntry.at))
    out = []
    for e in rows:
        try:
            detail = json.loads(e.detail or "{}")
        except ValueError:
            detail = {}
        out.append({"at": _iso(e.at), "action": e.action, "by": who(e.actor_id) or "the system",
                    "detail": strip_people(detail, show_names=False)})
    return out


@dataclass(frozen=True)
class Part:
    filename: str
    says: str
    rows: Callable[[Member, _People], list[Row]]


PARTS: tuple[Part, ...] = (
    Part("profile.json", "Your account: name, email, member number, role, dates; whether a password, PIN, badge, "
         "calendar link or two-factor sign-in exists (the lab keeps only their hashes, never shown).", _profile),
    Part("qualifications.json", "What you are qualified for (and may train), who granted it, until when.",
         _qualifications),
    Part("bookings.json", "Every booking of yours (any status) with its machine, and your recurring series.",
         _bookings),
    Part("usage.json", "Machine use recorded for you (sessions, duration, energy).", _usage),
    Part("designs.json", "Designs you published, versions you added, and designs you made here. The files you "
         "uploaded are in designs/.", _designs),
    Part("notices.json", "What the lab told you in the app (other people's names left out).", _notices),
    Part("mails.json", "Mails the lab queued or sent to you.", _mails),
    Part("notice_choices.json", "Your notification choices and digest settings.", _notice_choices),
    Part("waitlist.json", "Your waitlist entries and the offers you got.", _waitlist),
    Part("request_windows.json", "Your requests in request windows, with your label in each draw.", _windows),
    Part("inductions.json", "Induction sign-ups, requests, and sessions you train.", _inductions),
    Part("shared_effort.json", "Tasks you claimed and the hours credited to you.", _effort),
    Part("print_jobs.json", "Prints you sent to the lab's printers (the files are not included).", _prints),
    Part("api_tokens.json", "Your API tokens: names, scopes, dates (never the token).", _tokens),
    Part("sessions.json", "Where you are signed in (browser, dates).", _sessions),
    Part("external_identities.json", "Accounts at other sign-in providers linked to yours.", _identities),
    Part("audit_log.json", "Staff actions recorded about your account (staff appear as pseudonyms).", _audit),
)

# Every column referencing members.id, and the file that holds the member's rows of it...
COVERED: dict[str, str] = {
    "recovery_codes.member_id": "profile.json",
    "deletion_requests.member_id": "profile.json",
    "qualifications.member_id": "qualifications.json", "induction_trainers.member_id": "qualifications.json",
    "bookings.member_id": "bookings.json", "booking_series.member_id": "bookings.json",
    "usage_sessions.member_id": "usage.json",
    "designs.author_id": "designs.json", "design_versions.author_id": "designs.json",
    "design_made.member_id": "designs.json",
    "notices.member_id": "notices.json", "outbox_mails.member_id": "mails.json",
    "notice_preferences.member_id": "notice_choices.json", "notice_settings.member_id": "notice_choices.json",
    "waitlist_entries.member_id": "waitlist.json", "waitlist_offers.member_id": "waitlist.json",
    "slot_requests.member_id": "request_windows.json", "window_participants.member_id": "request_windows.json",
    "induction_signups.member_id": "inductions.json", "induction_requests.member_id": "inductions.json",
    "induction_sessions.trainer_id": "inductions.json",
    "task_claims.member_id": "shared_effort.json", "task_completions.member_id": "shared_effort.json",
    "api_tokens.member_id": "api_tokens.json", "member_sessions.member_id": "sessions.json",
    "member_identities.member_id": "external_identities.json",
    "print_jobs.member_id": "print_jobs.json",
}
# ...or why it is not exported: these rows record what the member did to others or for the lab.
SKIPPED: dict[str, str] = {
    "two_factor_settings.updated_by_id": "the lab's two-factor switch, last set as admin: a setting of the lab",
    "two_factor_challenges.member_id": "pending second-factor sign-ins: a token hash and an expiry, minutes long",
    "account_links.member_id": "one-time links (invite, verify, reset): a token hash and an expiry, nothing else",
    "account_links.created_by_id": "invitations sent as staff: they name other people's addresses",
    "audit_log.actor_id": "staff actions taken on other members: they name those members",
    "bookings.cancelled_by_id": "other members' bookings cancelled as staff: they are those members' data",
    "qualifications.granted_by_id": "qualifications granted to other members",
    "induction_trainers.granted_by_id": "trainer rights granted to other members",
    "booking_series.created_by_id": "series planned as staff for other members or the lab",
    "request_windows.created_by_id": "request windows opened as staff: the lab's schedule",
    "effort_tasks.created_by_id": "tasks created for the lab; the member's own claims and credits are exported",
    "effort_tasks.completed_by_id": "who pressed 'done'; the member's own credits are in shared_effort.json",
    "effort_tasks.confirmed_by_id": "confirmations of other members' work",
    "maintenance_rules.created_by_id": "maintenance rules set up as staff: the lab's configuration",
    "webhooks.created_by": "webhooks set up as an admin: the lab's configuration",
}

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _safe_name(name: str) -> str:
    """A file name that stays one path component in the zip, whatever was uploaded."""
    base = _UNSAFE.sub("_", Path(name.replace("\\", "/")).name).strip("._") or "file"
    return base[:120]


def _file_arcname(design: Design, version: DesignVersion, file_id: int, name: str) -> str:
    return f"designs/{design.id}-{_safe_name(design.slug)}/v{version.number}/{file_id}-{_safe_name(name)}"


def _design_files(me: Member) -> Iterable[tuple[str, int, str]]:
    """(zip name, size, storage key) of each file in a version the member authored of their own designs."""
    stmt = (select(DesignVersion).join(Design).where(Design.author_id == me.id, DesignVersion.author_id == me.id)
            .order_by(Design.id, DesignVersion.number))
    for v in db.session.scalars(stmt):
        for f in v.files:
            yield _file_arcname(v.design, v, f.id, f.name), f.size, f.storage_key


def _stored_path(store: FileStore, key: str) -> Path | None:
    """The file on disk for a storage key, only if it is a real file under the upload directory."""
    try:
        path = store.path(key)
    except ValueError:
        return None
    root = store.root.resolve()
    real = path.resolve()
    if not real.is_relative_to(root) or not real.is_file():
        return None
    return real


def readme(now: datetime, missing: list[str]) -> str:
    lines = ["Your data at the lab", f"Made {now.isoformat(timespec='seconds')} (UTC).", "",
             "Each file is JSON: a list of records. Times are UTC (ISO 8601). Other members appear as",
             "pseudonyms (\"Member 1042\") or not at all; \"you\" is you.", ""]
    lines += [f"{p.filename}: {p.says}" for p in PARTS]
    lines += ["designs/: the files you uploaded to your own designs, by design and version.", "",
              "Not included, because it is about other people: actions you took as staff, bookings of others",
              "you cancelled, qualifications you granted. Secrets are never included, only whether they exist."]
    if missing:
        lines += ["", "These files were listed but are missing from the lab's storage:"] + [f"  {m}" for m in missing]
    return "\n".join(lines) + "\n"


def export_zip(member: Member, now: datetime) -> IO[bytes]:
    """The member's data as a zip in an anonymous temporary file, positioned at the start (the caller
    closes it; the file disappears then)."""
    who = _People(member)
    out: IO[bytes] = tempfile.TemporaryFile(prefix="fablab-export-")
    missing: list[str] = []
    try:
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for part in PARTS:
                zf.writestr(part.filename, json.dumps(part.rows(member, who), indent=2, ensure_ascii=False,
                                                      default=str))
            store = file_store()
            for arcname, _size, key in _design_files(member):
                path = _stored_path(store, key)
                if path is None:
                    missing.append(arcname)
                    continue
                zf.write(path, arcname)  # streamed from disk in chunks
            zf.writestr("README.txt", readme(now, missing))
    except BaseException:
        out.close()
        raise
    out.seek(0)
    return out
