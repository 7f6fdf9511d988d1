"""Member import from CSV: a preview of every row's effect, then applying it (all or nothing, or only the
valid rows when the admin asks).

The preview and the apply run the same plan over the same file (kept server-side by the web layer), so
what is written is what was shown, never a client-sent list. Members are matched by email, else by member
number; a value the file leaves empty keeps what the member has, qualifications are only added or their
expiry changed (never revoked), so importing the same file again changes nothing.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from pathlib import Path

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..domain import audit_actions as actions
from ..domain import member_csv as mcsv
from ..extensions import db
from ..models import MachineType, Member, Qualification, Role
from ..models.types import utcnow
from ..security import badge_digest
from . import audit, machines
from . import members as member_service

CREATE, CHANGE, UNCHANGED, ERROR = "create", "change", "unchanged", "error"
# The badge field's name in a preview and in the audit detail: its value is only set / replaced / none.
BADGE = "badge card"


@dataclass(frozen=True)
class FieldChange:
    field: str
    old: str
    new: str


@dataclass
class PlannedRow:
    row: int
    email: str
    kind: str
    member: Member | None = None
    changes: list[FieldChange] = field(default_factory=list)
    errors: list[mcsv.RowError] = field(default_factory=list)
    source: mcsv.MemberRow | None = None
    member_no: int | None = None  # for a new member: the number it will get


@dataclass
class Preview:
    rows: list[PlannedRow] = field(default_factory=list)
    refusal: str | None = None
    file_errors: list[mcsv.RowError] = field(default_factory=list)  # rows that could not even be read

    def of(self, kind: str) -> list[PlannedRow]:
        return [r for r in self.rows if r.kind == kind]

    @property
    def errors(self) -> list[mcsv.RowError]:
        return sorted(self.file_errors + [e for r in self.rows for e in r.errors], key=lambda e: e.row)

    @property
    def has_errors(self) -> bool:
        return bool(self.refusal or self.errors)


@dataclass(frozen=True)
class Applied:
    created: int
    changed: int
    unchanged: int
    skipped: int  # rows with errors left out (only when the admin asked for the valid rows only)


@dataclass
class _Lab:
    """Every member and type-wide qualification, loaded once: a 5000-row file must not cost 20000 queries."""

    by_email: dict[str, Member]
    by_no: dict[int, Member]
    by_badge: dict[str, Member]
    quals: dict[int, list[Qualification]]

    @classmethod
    def load(cls) -> _Lab:
        members = list(db.session.scalars(select(Member)))
        quals: dict[int, list[Qualification]] = {}
        for q in db.session.scalars(select(Qualification).where(Qualification.machine_type_id.is_not(None))):
            quals.setdefault(q.member_id, []).append(q)
        return cls({m.email: m for m in members}, {m.member_no: m for m in members},
                   {m.badge_hash: m for m in members if m.badge_hash}, quals)


class ImportRefused(ValueError):
    def __init__(self, preview: Preview, message: str) -> None:
        super().__init__(message)
        self.preview = preview


def _lab_day(at: datetime | None, tz: tzinfo) -> date | None:
    return at.astimezone(tz).date() if at is not None else None


def expiry_instant(day: date, tz: tzinfo) -> datetime:
    """The last minute of a lab-local day, as the admin page grants it."""
    return datetime.combine(day, time(23, 59), tzinfo=tz).astimezone(UTC)


def _day_text(day: date | None) -> str:
    return f"until {day.isoformat()}" if day else "no expiry"


def preview(data: bytes, actor: Member) -> Preview:
    types = {t.slug: t for t in db.session.scalars(select(MachineType))}
    parsed = mcsv.parse(data, types)
    if parsed.refusal:
        return Preview(refusal=parsed.refusal)
    tz = current_app.config["TZ"]
    secret = current_app.config["SECRET_KEY"]
    out = Preview(file_errors=list(parsed.errors))
    claimed: dict[int, int] = {}  # member id → the file's row that writes it
    explicit = {r.member_no for r in parsed.rows if r.member_no is not None}
    lab = _Lab.load()
    next_no = max([1000, *lab.by_no, *explicit]) + 1
    for src in parsed.rows:
        plan = _plan_row(src, actor, lab, tz, secret)
        if plan.member is not None and plan.kind != ERROR:
            first = claimed.setdefault(plan.member.id, src.row)
            if first != src.row:
                plan.errors.append(mcsv.RowError(src.row, "", f"This is the same member as row {first} "
                                                 f"(no. {plan.member.member_no}); merge the two rows."))
                plan.kind = ERROR
        if plan.kind == CREATE:
            plan.member_no = src.member_no if src.member_no is not None else next_no
            if src.member_no is None:
                next_no += 1
        out.rows.append(plan)
    return out


def _plan_row(src: mcsv.MemberRow, actor: Member, lab: _Lab, tz: tzinfo, secret: str) -> PlannedRow:
    plan = PlannedRow(src.row, src.email, UNCHANGED, source=src)

    def err(column: str, message: str) -> None:
        plan.errors.append(mcsv.RowError(src.row, column, message))

    member = lab.by_email.get(src.email)
    if member is None and src.member_no is not None:
        member = lab.by_no.get(src.member_no)
    if member is not None and member.deleted_at is not None:
        err("", f"Member no. {member.member_no} deleted their account; it cannot be imported into.")
    if src.member_no is not None:
        holder = lab.by_no.get(src.member_no)
        if holder is not None and (member is None or holder.id != member.id):
            err("member_no", f"Member no. {src.member_no} belongs to {holder.email}.")
    if src.badge_uid:
        digest = badge_digest(secret, src.badge_uid)
        holder = lab.by_badge.get(digest)
        if holder is not None and (member is None or holder.id != member.id):
            err("badge_uid", f"This badge already belongs to member no. {holder.member_no}.")
    if member is None and not src.name:
        err("name", "A new member needs a name.")
    if member is not None and member.id == actor.id and src.role not in (None, Role.ADMIN.value):
        err("role", "You cannot remove your own admin role.")
    if plan.errors:
        plan.kind = ERROR
        return plan
    plan.member = member
    old = _fields_of(member, lab.quals.get(member.id, []), tz) if member is not None else {}
    new = dict(old)
    new["email"] = src.email
    if src.name:
        new["name"] = src.name
    if src.member_no is not None:
        new["member no."] = str(src.member_no)
    if src.role:
        new["role"] = src.role
    elif member is None:
        new["role"] = Role.MEMBER.value
    if src.badge_uid and (member is None or member.badge_hash != badge_digest(secret, src.badge_uid)):
        new[BADGE] = "replaced" if old.get(BADGE) == "set" else "set"
    for spec in src.qualifications:
        new[f"qualification {spec.type_slug}"] = _day_text(spec.expires)
    if member is None:
        plan.kind = CREATE
        plan.changes = [FieldChange(k, "", v) for k, v in new.items()]
    else:
        plan.changes = [FieldChange(k, old.get(k, "–"), v) for k, v in new.items() if old.get(k) != v]
        plan.kind = CHANGE if plan.changes else UNCHANGED
    return plan


def _fields_of(member: Member, quals: list[Qualification], tz: tzinfo) -> dict[str, str]:
    out = {"email": member.email, "name": member.name, "member no.": str(member.member_no), "role": member.role,
           BADGE: "set" if member.badge_hash else "none"}
    for q in quals:
        assert q.machine_type is not None
        out[f"qualification {q.machine_type.slug}"] = _day_text(_lab_day(q.expires_at, tz))
    return out


def apply(data: bytes, actor: Member, *, only_valid: bool = False, now: datetime | None = None) -> Applied:
    """Writes the planned rows in one transaction (the caller commits). With errors, nothing is written unless
    `only_valid`; then the rows with errors are left out."""
    plan = preview(data, actor)
    if plan.refusal:
        raise ImportRefused(plan, plan.refusal)
    if plan.errors and not only_valid:
        raise ImportRefused(plan, f"{len(plan.errors)} problem(s) in the file: nothing was imported. Fix the rows "
                            "below and upload it again, or import only the valid rows.")
    types = {t.slug: t for t in db.session.scalars(select(MachineType))}
    tz = current_app.config["TZ"]
    todo = [r for r in plan.rows if r.kind in (CREATE, CHANGE)]
    try:
        # The plan already checked every email, number and badge against the database and the file: no query
        # needs to see this import's pending rows, so nothing is flushed before a chunk is complete.
        with db.session.no_autoflush:
            for i in range(0, len(todo), CHUNK):
                _write_chunk(todo[i:i + CHUNK], actor, types, tz, now or utcnow())
    except (IntegrityError, member_service.MemberError) as exc:
        # Someone changed the members between this plan and the write: the caller rolls everything back.
        raise ImportRefused(plan, "The member list changed while importing; nothing was imported. Upload the "
                            "file again to see the current preview.") from exc
    skipped = len({e.row for e in plan.errors})
    return Applied(len(plan.of(CREATE)), len(plan.of(CHANGE)), len(plan.of(UNCHANGED)), skipped)


CHUNK = 250  # rows written per flush: one flush per row made a 5000-row import take minutes


def _write_chunk(rows: list[PlannedRow], actor: Member, types: dict[str, MachineType], tz: tzinfo,
                 now: datetime) -> None:
    """The members first (one flush gives new ones their ids), then badges, qualifications, audit entries."""
    members: list[tuple[PlannedRow, Member, str | None]] = []
    for row in rows:
        src = row.source
        assert src is not None
        member = row.member
        old_role = member.role if member is not None else None
        if member is None:
            assert row.member_no is not None and src.name
            # As members.create_member() makes a staff-created member, without its per-member query and flush.
            member = Member(email=src.email, name=src.name, role=src.role or Role.MEMBER.value,
                            member_no=row.member_no, share=1.0, active=True, email_verified_at=now)
            db.session.add(member)
        else:
            member.email = src.email
            if src.name:
                member.name = src.name
            if src.member_no is not None:
                member.member_no = src.member_no
            if src.role:
                member.role = src.role
        members.append((row, member, old_role))
    db.session.flush()
    for row, member, old_role in members:
        src = row.source
        assert src is not None
        changed = {c.field for c in row.changes}
        if src.badge_uid and BADGE in changed:
            member_service.set_badge(member, src.badge_uid)
        for spec in src.qualifications:
            if f"qualification {spec.type_slug}" in changed:
                expires = expiry_instant(spec.expires, tz) if spec.expires else None
                machines.grant(member, by=actor, machine_type=types[spec.type_slug], expires_at=expires,
                               note="Imported from CSV")
        detail: dict[str, object] = {
            "row": row.row, "created": row.kind == CREATE,
            "changes": {c.field: {"from": c.old, "to": c.new} for c in row.changes},
        }
        audit.record(actor, actions.MEMBER_IMPORTED, target=member, detail=detail, now=now)
        if old_role is not None and old_role != member.role:
            audit.record(actor, actions.ROLE_CHANGED, target=member, detail={"from": old_role, "to": member.role,
                                                                             "via": "import"}, now=now)
    db.session.flush()


# --- the uploaded file between preview and confirm: kept server-side, under a random id, per admin ----------

_TOKEN = re.compile(r"^[A-Za-z0-9_-]{22}$")
KEEP = timedelta(hours=2)


def _stash_dir(actor: Member) -> Path:
    return Path(current_app.instance_path) / "member_imports" / str(actor.id)


def stash(data: bytes, actor: Member, now: datetime) -> str:
    """Keeps the file for the confirm step; returns its id. Files older than KEEP are removed."""
    folder = _stash_dir(actor)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    for old in folder.glob("*.csv"):
        if datetime.fromtimestamp(old.stat().st_mtime, UTC) < now - KEEP:
            old.unlink(missing_ok=True)
    token = secrets.token_urlsafe(16)
    path = folder / f"{token}.csv"
    path.write_bytes(data)
    path.chmod(0o600)
    return token


def stashed(token: str, actor: Member) -> bytes | None:
    """The file kept under `token` for this admin, or None (unknown, malformed id, another admin's)."""
    if not _TOKEN.match(token):
        return None
    path = _stash_dir(actor) / f"{token}.csv"
    return path.read_bytes() if path.is_file() else None


def discard(token: str, actor: Member) -> None:
    if _TOKEN.match(token):
        (_stash_dir(actor) / f"{token}.csv").unlink(missing_ok=True)
