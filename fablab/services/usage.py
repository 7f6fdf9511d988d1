"""Usage: what machines reported, turned into usage sessions linked to bookings; bridges and their
Mosquitto credentials; live machine state; no-shows and maintenance counters; usage queries."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import logging
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import and_, delete, or_, select

from ..domain import csv_safe
from ..domain import maintenance_due as mdue
from ..domain import sessionize as sz
from ..domain import usage_linking as link
from ..domain.audit_actions import BRIDGE_REGISTERED, BRIDGE_REKEYED
from ..extensions import db
from ..models import Booking, BookingKind, BookingStatus, Machine, Member
from ..models.usage import Bridge, DeadLetter, MaintenanceRule, MqttMessage, UsageSession
from . import audit, effort, event_data, lab_events
from . import bookings as booking_service

log = logging.getLogger("fablab.usage")

# --- bridges and Mosquitto credentials ------------------------------------------------------------------

MOSQUITTO_ITERATIONS = 101  # what mosquitto_passwd writes for $7$ (PBKDF2-SHA512)


def mosquitto_hash(password: str, salt: bytes | None = None) -> str:
    """A password line value Mosquitto 2 understands: $7$<iterations>$<salt b64>$<hash b64>."""
    salt = salt or secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, MOSQUITTO_ITERATIONS)
    return f"$7${MOSQUITTO_ITERATIONS}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


class BridgeError(ValueError):
    pass


def add_bridge(bridge_id: str, machine_slugs: Sequence[str], actor: Member | None = None) -> tuple[Bridge, str]:
    """Register (or re-key) a bridge for these machines; returns it and its new password (shown once).
    The audit log names `actor` (None: the command line)."""
    from devices.events import ContractError, bridge_topic

    try:
        bridge_topic(bridge_id)
    except ContractError as exc:
        raise BridgeError(str(exc)) from None
    machines = []
    for slug in machine_slugs:
        m = db.session.scalar(select(Machine).where(Machine.slug == slug))
        if m is None:
            raise BridgeError(f"No machine called {slug!r}.")
        machines.append(m)
    password = secrets.token_urlsafe(24)
    bridge = db.session.scalar(select(Bridge).where(Bridge.bridge_id == bridge_id))
    audit.record(actor, BRIDGE_REKEYED if bridge else BRIDGE_REGISTERED, target_type="bridge", target_label=bridge_id,
                 detail={"machines": [m.slug for m in machines]})
    if bridge is None:
        bridge = Bridge(bridge_id=bridge_id, password_hash="")
        db.session.add(bridge)
    bridge.password_hash = mosquitto_hash(password)
    bridge.machines = machines
    db.session.flush()
    return bridge, password


def write_mosquitto_files(directory: Path, server_user: str, server_password: str) -> tuple[Path, Path]:
    """Password and ACL files for Mosquitto: each bridge may write only below its own machines; the
    server (worker) user reads everything and answers auth requests / sends commands."""
    directory.mkdir(parents=True, exist_ok=True)
    bridges = list(db.session.scalars(select(Bridge).order_by(Bridge.bridge_id)))
    passwd = directory / "passwd"
    acl = directory / "acl"
    lines = [f"{server_user}:{mosquitto_hash(server_password)}"]
    lines += [f"{b.bridge_id}:{b.password_hash}" for b in bridges]
    passwd.write_text("\n".join(lines) + "\n")
    passwd.chmod(0o600)
    rules = [f"user {server_user}", "topic readwrite fablab/v1/#", ""]
    for b in bridges:
        rules.append(f"user {b.bridge_id}")
        rules.append(f"topic readwrite fablab/v1/bridge/{b.bridge_id}/status")
        for m in b.machines:
            for sub in ("status", "event", "telemetry", "auth/request", "job/progress", "job/result"):
                rules.append(f"topic write fablab/v1/machine/{m.slug}/{sub}")
            for sub in ("auth/response", "cmd", "job/offer", "job/start", "job/withdraw"):
                rules.append(f"topic read fablab/v1/machine/{m.slug}/{sub}")
        rules.append("")
    acl.write_text("\n".join(rules))
    return passwd, acl


def bridges_by_id() -> dict[str, set[str]]:
    """bridge id → the machine slugs it may write for."""
    out: dict[str, set[str]] = {}
    for b in db.session.scalars(select(Bridge)):
        out[b.bridge_id] = {m.slug for m in b.machines}
    return out


# --- live state ----------------------------------------------------------------------------------------


def set_live_state(machine: Machine, state: str, at: datetime, progress: float | None = None,
                   job: str | None = None) -> None:
    if machine.live_state != state:
        machine.live_since = at
    machine.live_state = state
    machine.live_progress = None if progress is None else round(progress * 100, 1)
    machine.live_job = job
    machine.live_updated_at = at


# --- usage sessions -------------------------------------------------------------------------------------


def _link_bookings(machine: Machine, start: datetime, end: datetime | None, now: datetime) -> list[link.Booking]:
    lo = start - timedelta(hours=12)
    hi = (end or now) + timedelta(hours=1)
    rows = db.session.execute(select(Booking.id, Booking.member_id, Booking.start_at, Booking.end_at, Booking.status,
                                     Booking.kind).where(
        Booking.machine_id == machine.id, Booking.end_at > lo, Booking.start_at < hi,
        Booking.status.in_([BookingStatus.CONFIRMED.value, BookingStatus.CHECKED_IN.value,
                            BookingStatus.COMPLETED.value])))
    # A completed booking still owns the use that happened during it (it was checked in then).
    return [link.Booking(i, m, s, e, "checked_in" if st == "completed" else st, k) for i, m, s, e, st, k in rows]


def _badge_member(digest: str | None) -> int | None:
    """The member whose badge has this keyed hash (the worker never keeps a UID in clear)."""
    if not digest:
        return None
    return db.session.scalar(select(Member.id).where(Member.badge_hash == digest))


def apply_span(span: sz.UsageSpan, machine: Machine, now: datetime) -> UsageSession:
    """Upsert the usage session for a sessionizer span and link it to its booking (checking it in)."""
    row = db.session.scalar(select(UsageSession).where(UsageSession.key == span.key))
    was_open = row.open if row is not None else None  # None: a new session (usage.started)
    if row is None:
        row = UsageSession(key=span.key, machine_id=machine.id, source=span.source)
        db.session.add(row)
    row.session_id = span.session_id
    row.start_at = span.start
    row.end_at = span.end
    row.duration_s = span.duration.total_seconds()
    row.energy_wh = span.energy_wh
    row.badge = span.badge
    row.badge_last4 = span.badge_hint
    row.job_file = span.job_file
    row.source = span.source
    row.closed_by = span.closed_by
    row.open = span.open
    row.start_estimated = span.start_estimated
    policy = booking_service.policy_for(machine)
    badge_member = _badge_member(span.badge)
    result = link.link_usage(span, _link_bookings(machine, span.start, span.end, now), now, policy.checkin_grace,
                             members_by_badge={span.badge: badge_member} if span.badge and badge_member else None)
    row.booking_id = result.booking_id  # type: ignore[assignment]
    row.member_id = result.member  # type: ignore[assignment]
    row.unbooked = result.unbooked
    row.overrun_minutes = result.overrun_minutes
    row.counts_as_usage = result.counts_as_usage
    row.kind = result.booking_kind or BookingKind.NORMAL.value
    if result.check_in is not None:
        booking = db.session.get(Booking, result.check_in)
        if booking is not None and booking.status == BookingStatus.CONFIRMED:
            # Machine use during a booking checks it in: nobody has to remember to.
            booking.status = BookingStatus.CHECKED_IN.value
            booking.checked_in_at = result.check_in_at
            booking.sequence += 1
            booking.updated_at = now
            lab_events.publish(event_data.booking("booking.checked_in", booking, now))
    if was_open is None:
        db.session.flush()  # the session's id, for the event
        lab_events.publish(event_data.usage("usage.started", row, machine, now))
    if not row.open and was_open is not False:
        lab_events.publish(event_data.usage("usage.ended", row, machine, now))
    return row


def remove_span(key: str) -> None:
    row = db.session.scalar(select(UsageSession).where(UsageSession.key == key))
    if row is not None:
        db.session.delete(row)


# --- timed jobs ----------------------------------------------------------------------------------------


def record_no_shows(now: datetime) -> list[int]:
    """Confirmed bookings never checked in and with no use by the end of their grace → no_show, and the
    rest of their time is released to the waitlist. (Availability already treats them as released.)"""
    grace_max = timedelta(hours=4)
    candidates = list(db.session.scalars(select(Booking).where(
        Booking.status == BookingStatus.CONFIRMED.value, Booking.kind == BookingKind.NORMAL.value,
        Booking.checked_in_at.is_(None), Booking.start_at < now, Booking.start_at > now - timedelta(days=7))))
    done: list[int] = []
    freed: list[tuple[Machine, datetime, datetime]] = []
    for b in candidates:
        policy = booking_service.policy_for(b.machine)
        if now <= b.start_at + policy.checkin_grace:
            continue
        spans = list(db.session.scalars(select(UsageSession).where(
            UsageSession.machine_id == b.machine_id, UsageSession.start_at < b.start_at + policy.checkin_grace,
            or_(UsageSession.end_at.is_(None), UsageSession.end_at > b.start_at - grace_max))))
        shows = link.find_no_shows([link.Booking(b.id, b.member_id, b.start_at, b.end_at, "confirmed", b.kind)],
                                   [_SpanView(s.start_at, s.end_at, s.badge) for s in spans], now,
                                   policy.checkin_grace)
        if not shows:
            # Use was seen: link_usage will check it in; mark it here too in case it ran unlinked.
            b.status = BookingStatus.CHECKED_IN.value
            b.checked_in_at = b.start_at
            lab_events.publish(event_data.booking("booking.checked_in", b, now))
            continue
        b.status = BookingStatus.NO_SHOW.value
        b.sequence += 1
        b.updated_at = now
        lab_events.publish(event_data.booking("booking.no_show", b, now))
        done.append(b.id)
        ns = shows[0]
        if ns.released_end > ns.released_start:
            freed.append((b.machine, ns.released_start, ns.released_end))
    db.session.commit()
    for machine, start, end in freed:
        booking_service._time_freed(machine, start, end, now)
    return done


@dataclass(frozen=True)
class _SpanView:
    start: datetime
    end: datetime | None
    badge: str | None

    @property
    def machine(self) -> str:
        return ""


def maintenance_status(machine: Machine | None, now: datetime) -> list[tuple[MaintenanceRule, mdue.TaskStatus]]:
    stmt = select(MaintenanceRule)
    if machine is not None:
        stmt = stmt.where(MaintenanceRule.machine_id == machine.id)
    return [(rule, rule_status(rule, now)) for rule in db.session.scalars(stmt)]


def rule_status(rule: MaintenanceRule, now: datetime) -> mdue.TaskStatus:
    spans = db.session.execute(select(UsageSession.start_at, UsageSession.end_at).where(
        UsageSession.machine_id == rule.machine_id,
        or_(UsageSession.end_at.is_(None), UsageSession.end_at > rule.last_done_at)))
    views = [_SpanView(s, e, None) for s, e in spans]
    return mdue.task_status(mdue.MaintenanceRule(rule.id, rule.machine.slug, rule.task, rule.last_done_at,
                                                 rule.every_hours, rule.every_days), views, now)


def _due_sentence(rule: MaintenanceRule, status: mdue.TaskStatus) -> str:
    """What the task board says about why the task is due (the domain gives the code, this the sentence)."""
    if status.reason == "hours" and rule.every_hours:
        return (f"Due every {rule.every_hours:g} h of use: {status.hours_used:.1f} h since it was last done "
                f"on {rule.last_done_at:%Y-%m-%d}.")
    if status.reason == "days" and rule.every_days:
        return f"Due every {rule.every_days} days: last done on {rule.last_done_at:%Y-%m-%d}."
    return "Due now."


def hours_since_service(machine: Machine, now: datetime) -> float:
    """Hours of use since the machine's oldest pending service (or ever, without rules)."""
    rules = [r for r, _ in maintenance_status(machine, now)]
    since = min((r.last_done_at for r in rules), default=datetime(1970, 1, 1, tzinfo=now.tzinfo))
    spans = db.session.execute(select(UsageSession.start_at, UsageSession.end_at).where(
        UsageSession.machine_id == machine.id, or_(UsageSession.end_at.is_(None), UsageSession.end_at > since)))
    return mdue.hours_since_service([_SpanView(s, e, None) for s, e in spans], since, now)


def raise_due_maintenance(now: datetime) -> list[MaintenanceRule]:
    """A due rule raises one maintenance task on the effort board (once, until it is done)."""
    raised = []
    for rule in db.session.scalars(select(MaintenanceRule).where(MaintenanceRule.raised_at.is_(None))).all():
        try:
            status = rule_status(rule, now)
        except (OverflowError, ValueError):
            # A stored rule the counters cannot compute (an interval past the calendar's end) is skipped, so
            # it never holds back the other rules; the machine's usage page shows it as unknown.
            log.warning("maintenance rule %s cannot be computed; skipped", rule.id)
            continue
        if not status.due:
            continue
        task = effort.create_task(f"{rule.task} ({rule.machine.name})", kind="maintenance", base_hours=1.0,
                                  machine=rule.machine, description=_due_sentence(rule, status), now=now)
        rule.raised_at = now
        lab_events.publish(event_data.task("task.due", task, now))
        db.session.commit()
        raised.append(rule)
    return raised


def mark_service_done(rule: MaintenanceRule, now: datetime) -> None:
    rule.last_done_at = now
    rule.raised_at = None


def prune_telemetry(now: datetime, keep_days: int) -> int:
    """Telemetry (temperatures, power readings) is kept for `keep_days`; events and statuses, which the
    usage record is built from, are kept for good. Deletes in chunks so the write lock is held briefly."""
    cutoff = now - timedelta(days=keep_days)
    total = 0
    while True:
        ids = list(db.session.scalars(select(MqttMessage.id).where(
            MqttMessage.kind == "telemetry", MqttMessage.ts < cutoff).limit(5000)))
        if not ids:
            return total
        db.session.execute(delete(MqttMessage).where(MqttMessage.id.in_(ids)))
        db.session.commit()
        total += len(ids)


# --- reading -------------------------------------------------------------------------------------------


def sessions(machine: Machine | None = None, member: Member | None = None, since: datetime | None = None,
             until: datetime | None = None, unbooked_only: bool = False,
             limit: int | None = None) -> list[UsageSession]:
    stmt = select(UsageSession)
    if machine is not None:
        stmt = stmt.where(UsageSession.machine_id == machine.id)
    if member is not None:
        stmt = stmt.where(UsageSession.member_id == member.id)
    if since is not None:
        stmt = stmt.where(or_(UsageSession.end_at.is_(None), UsageSession.end_at > since))
    if until is not None:
        stmt = stmt.where(UsageSession.start_at < until)
    if unbooked_only:
        stmt = stmt.where(and_(UsageSession.unbooked.is_(True), UsageSession.counts_as_usage.is_(True)))
    stmt = stmt.order_by(UsageSession.start_at.desc())
    if limit:
        stmt = stmt.limit(limit)
    return list(db.session.scalars(stmt))


CSV_FIELDS = ("id", "machine", "member_id", "booking_id", "start", "end", "hours", "energy_wh", "source",
              "closed_by", "open", "unbooked", "overrun_minutes", "counts_as_usage", "kind", "job_file")


def sessions_csv(rows: Iterable[UsageSession]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(CSV_FIELDS)
    for s in rows:
        # Text a machine reported (the job's file name) could be a formula: csv_safe keeps it text.
        w.writerow([s.id, csv_safe.cell(s.machine.slug), s.member_id or "", s.booking_id or "",
                    s.start_at.isoformat(), s.end_at.isoformat() if s.end_at else "", f"{s.hours:.3f}",
                    "" if s.energy_wh is None else f"{s.energy_wh:.1f}", csv_safe.cell(s.source),
                    csv_safe.cell(s.closed_by or ""), int(s.open), int(s.unbooked), f"{s.overrun_minutes:.1f}",
                    int(s.counts_as_usage), csv_safe.cell(s.kind), csv_safe.cell(s.job_file or "")])
    return buf.getvalue()


def dead_letters(limit: int = 200, include_reviewed: bool = False) -> list[DeadLetter]:
    stmt = select(DeadLetter).order_by(DeadLetter.received_at.desc()).limit(limit)
    if not include_reviewed:
        stmt = stmt.where(DeadLetter.reviewed.is_(False))
    return list(db.session.scalars(stmt))

