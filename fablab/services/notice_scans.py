"""Notices that come from time passing, and the stewards' and admins' alerts.

For members: the reminder before a booking, "check in by 14:15", a qualification about to expire or expired.
For stewards: a bridge offline for more than ten minutes, new dead letters, a machine in alarm or error, a
task fallen due with nobody assigned; for admins: the weekly fairness digest.

The scans are timed jobs (rows in fablab/worker/jobs.py): each takes `now` and is idempotent (every notice
has a dedupe key, so running twice or late tells nobody twice); when each is due is
fablab/domain/notice_timing.py. `on_machine_status` and `on_task_due` listen to lab events (connected in
fablab/wiring.py) and run in the publisher's transaction. All of them only write notices through
fablab/services/notify.py.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from ..domain import booking_rules as rules
from ..domain import notice_timing as timing
from ..domain.notice_kinds import Audience
from ..extensions import db
from ..models import Booking, BookingKind, BookingStatus, Machine, Member, Qualification
from ..models.notifications import Notice, NoticeSettings
from ..models.usage import Bridge, DeadLetter, MqttMessage
from . import bookings as booking_service
from . import fairness, notify
from .lab_events import LabEvent

# notify.settings_for's default lead time, for members who never saved settings (read in bulk here).
DEFAULT_REMINDER_MINUTES = 60
# Longest grace a policy allows (policy.py: 1440 minutes): older starts cannot still be in their window.
MAX_GRACE = timedelta(days=1)
ALARM_STATES = frozenset({"alarm", "error"})
# Dead letters often come in a stream (a misconfigured bridge): at most one alert in this time.
DEAD_LETTER_QUIET = timedelta(minutes=30)
DETAIL_CHARS = 300  # a bridge's detail text is the machine's words: kept short in a notice
UNMET_MACHINES = 3  # the digest names the machines with the most unmet demand


# --- members: reminders, check-in, qualifications ---------------------------------------------------------


def booking_params(b: Booking) -> dict[str, Any]:
    return {"booking_id": b.id, "machine_id": b.machine_id, "machine": b.machine.name,
            "start": timing.stamp(b.start_at), "end": timing.stamp(b.end_at)}


def _lead_minutes(member_ids: set[int]) -> dict[int, int]:
    """Each member's reminder lead time in minutes (0: none), in one query."""
    leads = dict.fromkeys(member_ids, DEFAULT_REMINDER_MINUTES)
    if member_ids:
        for mid, minutes in db.session.execute(select(NoticeSettings.member_id, NoticeSettings.reminder_minutes)
                                               .where(NoticeSettings.member_id.in_(member_ids))):
            leads[mid] = minutes if minutes is not None else DEFAULT_REMINDER_MINUTES
    return leads


def _told(kind: str, keys: list[str]) -> set[str]:
    """Which of these dedupe keys were already used (one query, instead of one per booking on every run)."""
    if not keys:
        return set()
    return set(db.session.scalars(select(Notice.dedupe_key).where(Notice.kind == kind,
                                                                 Notice.dedupe_key.in_(keys))))


def send_reminders(now: datetime) -> list[int]:
    """A reminder before each confirmed booking, at its member's lead time; the ids of the bookings told.

    Never for a booking that has started, was cancelled or released, or was made inside its lead time. The
    dedupe key holds the start, so a booking moved to another time is reminded again for the new one."""
    longest = db.session.scalar(select(func.max(NoticeSettings.reminder_minutes))) or 0
    ahead = min(timedelta(minutes=max(longest, DEFAULT_REMINDER_MINUTES)), timing.MAX_REMINDER_LEAD)
    rows = list(db.session.scalars(select(Booking).where(
        Booking.status == BookingStatus.CONFIRMED.value,
        Booking.kind.in_([BookingKind.NORMAL.value, BookingKind.INDUCTION.value]),
        Booking.start_at > now, Booking.start_at <= now + ahead).order_by(Booking.start_at, Booking.id)))
    leads = _lead_minutes({b.member_id for b in rows})
    due = {f"booking:{b.id}:reminder:{timing.stamp(b.start_at)}": b for b in rows
           if timing.reminder_due(b.start_at, b.created_at, leads[b.member_id], now)}
    done = _told("booking_reminder", list(due))
    told: list[int] = []
    for key, b in due.items():
        if key in done:
            continue
        params = {**booking_params(b), "lead_minutes": leads[b.member_id]}
        notice = notify.notify(b.member, "booking_reminder", params, now=now, link=f"/bookings/{b.id}",
                               dedupe_key=key)
        if notice is not None:
            told.append(b.id)
    return told


def announce_checkin_windows(now: datetime) -> list[int]:
    """When a booking's check-in window opens: "released at 14:15 unless you check in" (the lab's local
    release time, start + the machine's grace). Once per booking and start; never after the release."""
    rows = list(db.session.scalars(select(Booking).where(
        Booking.status == BookingStatus.CONFIRMED.value, Booking.kind == BookingKind.NORMAL.value,
        Booking.checked_in_at.is_(None), Booking.start_at <= now + rules.CHECKIN_EARLY,
        Booking.start_at > now - MAX_GRACE, Booking.end_at > now).order_by(Booking.start_at, Booking.id)))
    tz = booking_service.lab_tz()
    windows = {f"booking:{b.id}:checkin:{timing.stamp(b.start_at)}": (b, timing.CheckinWindow(
        *booking_service.checkin_window(b))) for b in rows}
    due = {key: bw for key, bw in windows.items() if timing.checkin_announce_due(bw[1], now)}
    done = _told("checkin_open", list(due))
    told: list[int] = []
    for key, (b, window) in due.items():
        if key in done:
            continue
        params = {**booking_params(b), "opens": timing.stamp(window.opens),
                  "release_at": timing.stamp(window.releases), "release_local": timing.local_hhmm(window.releases, tz)}
        notice = notify.notify(b.member, "checkin_open", params, now=now, link=f"/bookings/{b.id}", dedupe_key=key)
        if notice is not None:
            told.append(b.id)
    return told


def _qualification_link(q: Qualification) -> str:
    # The machine's page for a machine qualification; the machines overview for a whole type.
    return f"/machines/{q.machine.slug}" if q.machine is not None else "/"


def warn_expiring_qualifications(now: datetime) -> list[tuple[int, str]]:
    """Qualifications expiring within 30 days (once per qualification and expiry date; a renewal moves the
    date, so the renewed one is warned about again in time) and expired ones (once). (id, kind) told."""
    rows = list(db.session.scalars(select(Qualification).where(
        Qualification.expires_at.is_not(None), Qualification.expires_at > now - timing.EXPIRED_NEWS,
        Qualification.expires_at <= now + timing.QUALIFICATION_WARNING).order_by(Qualification.id)))
    tz = booking_service.lab_tz()
    told: list[tuple[int, str]] = []
    for q in rows:
        assert q.expires_at is not None
        kind = timing.qualification_notice(q.expires_at, now)
        if kind is None:
            continue
        day = timing.expiry_day(q.expires_at, tz)
        params = {"qualification_id": q.id, "scope": q.scope_label,
                  "machine": q.machine.name if q.machine is not None else None,
                  "machine_type": q.machine_type.name if q.machine_type is not None else None,
                  "expires": timing.stamp(q.expires_at), "expires_day": day.isoformat()}
        what = "expiring" if kind == "qualification_expiring" else "expired"
        notice = notify.notify(q.member, kind, params, now=now, link=_qualification_link(q),
                               dedupe_key=f"qualification:{q.id}:{what}:{day.isoformat()}")
        if notice is not None:
            told.append((q.id, kind))
    return told


# --- stewards: bridges offline ----------------------------------------------------------------------------


def _offline_since(bridge: Bridge) -> datetime | None:
    """When the bridge went offline. Its Last Will is written when the bridge starts, so the will's own `ts`
    (bridge.last_seen_at) can be days old: the time the worker received it says when the broker gave up."""
    received = db.session.scalar(select(func.max(MqttMessage.received_at)).where(
        MqttMessage.kind == "status", MqttMessage.src == bridge.bridge_id, MqttMessage.machine_id.is_(None)))
    times = [t for t in (bridge.last_seen_at, received) if t is not None]
    return max(times) if times else None


def alert_bridges_offline(now: datetime) -> list[str]:
    """Bridges offline (their Last Will, or a goodbye) for more than ten minutes: one alert per offline
    spell (the dedupe key holds when it went offline), naming the machines behind it. Bridge ids told."""
    told: list[str] = []
    for bridge in db.session.scalars(select(Bridge).where(Bridge.online.is_(False)).order_by(Bridge.id)):
        went = _offline_since(bridge)
        if went is None or not timing.offline_alert_due(went, now):
            continue
        since = timing.stamp(went)
        params = {"bridge": bridge.bridge_id, "since": since,
                  "machines": sorted(m.name for m in bridge.machines)}
        if notify.notify_staff("bridge_offline", params, now=now, link="/admin/bridges",
                               dedupe_key=f"bridge:{bridge.id}:offline:{since}"):
            told.append(bridge.bridge_id)
    return told


# --- stewards: dead letters -------------------------------------------------------------------------------


def _last_alert() -> tuple[int, datetime | None]:
    """The newest dead letter already told about, and when (from the last dead_letters notice)."""
    row = db.session.execute(select(Notice.params, Notice.created_at).where(Notice.kind == "dead_letters")
                             .order_by(Notice.id.desc()).limit(1)).first()
    if row is None:
        return 0, None
    newest = (row.params or {}).get("newest_id")
    return (newest if isinstance(newest, int) else 0), row.created_at


def alert_dead_letters(now: datetime) -> int:
    """New unreviewed dead letters since the last alert: one notice per batch with the count and the most
    common reasons (at most one per half hour while a stream goes on). The count told, 0 for none."""
    last_id, last_at = _last_alert()
    if last_at is not None and now - last_at < DEAD_LETTER_QUIET:
        return 0
    fresh = (DeadLetter.id > last_id, DeadLetter.reviewed.is_(False))
    count, newest = db.session.execute(select(func.count(DeadLetter.id), func.max(DeadLetter.id))
                                       .where(*fresh)).one()
    if not count:
        return 0
    reasons = [{"reason": r[:120], "count": n} for r, n in db.session.execute(
        select(DeadLetter.reason, func.count(DeadLetter.id)).where(*fresh).group_by(DeadLetter.reason)
        .order_by(func.count(DeadLetter.id).desc(), DeadLetter.reason).limit(3))]
    params = {"count": count, "newest_id": newest, "after_id": last_id, "reasons": reasons}
    notify.notify_staff("dead_letters", params, now=now, link="/admin/dead-letters",
                        dedupe_key=f"dead_letters:{newest}")
    return int(count)


# --- admins: the weekly fairness digest -------------------------------------------------------------------


def _num(x: float | None, nd: int = 1) -> float | None:
    # Plain floats (the figures may be numpy scalars) and no NaN in a JSON column.
    return round(float(x), nd) if x is not None and math.isfinite(x) else None


def digest_params(review: fairness.Review, week: timing.DigestWeek) -> dict[str, Any]:
    """The figures an admin reads on Monday morning, from the same Review the fairness page shows."""
    t = review.totals
    unmet = sorted((m for m in review.machines if m.unmet_hours > 0), key=lambda m: (-m.unmet_hours, m.name))
    counts = {name: int(getattr(t, name)) for name in (
        "members", "users", "bookings", "no_shows", "late_cancels", "rejected_requests", "waitlisted_requests",
        "waitlist_now")}
    return {
        "week": week.key, "first_day": week.first_day.isoformat(), "last_day": week.last_day.isoformat(), **counts,
        "used_hours": _num(t.used_hours), "requested_hours": _num(t.requested_hours),
        "unmet_hours": _num(t.unmet_hours), "no_show_rate": _num(t.no_show_rate, 3),
        "gini": _num(review.gini, 2), "jain": _num(review.jain, 2),
        "unmet_machines": [{"machine": m.name, "unmet_hours": _num(m.unmet_hours),
                            "utilisation": _num(m.utilisation, 3)} for m in unmet[:UNMET_MACHINES]],
    }


def weekly_fairness_digest(now: datetime) -> str | None:
    """On Monday morning (08:00 lab time, whatever the offset that day) the last week's fairness figures
    and unmet demand, to every admin; once per ISO week. The week's key when it was sent."""
    week = timing.digest_due(now, booking_service.lab_tz())
    if week is None:
        return None
    key = f"fairness:{week.key}"
    admins = notify.staff(Audience.ADMIN)
    if not admins or all(_has_notice(a.id, key) for a in admins):
        return None  # nobody to tell, or already told: the review is not worth loading
    review = fairness.build_review(fairness.ReviewQuery(week.start, week.end), fairness.Viewer(None, False), now)
    link = f"/fairness?start={week.first_day.isoformat()}&end={week.last_day.isoformat()}"
    notify.notify_staff("fairness_weekly", digest_params(review, week), now=now, link=link, dedupe_key=key)
    return week.key


def _has_notice(member_id: int, key: str) -> bool:
    return db.session.scalar(select(Notice.id).where(Notice.member_id == member_id,
                                                     Notice.dedupe_key == key)) is not None


# --- listeners --------------------------------------------------------------------------------------------


def on_machine_status(event: LabEvent) -> None:
    """A machine that goes into alarm or error: the stewards hear of it (once per machine and time)."""
    if event.type != "machine.status":
        return
    data = event.data
    state, machine_id = data.get("state"), data.get("machine_id")
    if state not in ALARM_STATES or state == data.get("previous") or not isinstance(machine_id, int):
        return
    machine = db.session.get(Machine, machine_id)
    name = data.get("machine") or (machine.name if machine else f"machine {machine_id}")
    at = timing.stamp(event.at)
    params = {"machine_id": machine_id, "machine": name, "state": state, "previous": data.get("previous"),
              "detail": str(data.get("detail") or "")[:DETAIL_CHARS], "at": at}
    notify.notify_staff("machine_alarm", params, now=event.at,
                        link=f"/machines/{machine.slug}" if machine else None,
                        dedupe_key=f"machine:{machine_id}:{state}:{at}")


def on_task_due(event: LabEvent) -> None:
    """A task fallen due (maintenance from hours of use): its assignee is told, or the stewards when it has
    none (or the assignee left)."""
    if event.type != "task.due":
        return
    data = event.data
    task_id, machine_id, assignee_id = data.get("task_id"), data.get("machine_id"), data.get("assignee_id")
    machine = db.session.get(Machine, machine_id) if isinstance(machine_id, int) else None
    params = {"task_id": task_id, "title": str(data.get("title") or "")[:200], "machine_id": machine_id,
              "machine": machine.name if machine else None}
    key = f"task:{task_id}:due"
    assignee = db.session.get(Member, assignee_id) if isinstance(assignee_id, int) else None
    if assignee is not None and assignee.active:
        notify.notify(assignee, "task_due", params, now=event.at, link="/tasks", dedupe_key=key)
    else:
        notify.notify_staff("task_due", params, now=event.at, link="/tasks", dedupe_key=key)
