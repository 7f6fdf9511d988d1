"""The timed induction scans: qualifications about to lapse by disuse are flagged 30 days ahead, and sessions
that ended without their attendance completed are settled (the trainer's effort recorded) or the trainer is
reminded to record it."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import or_, select

from ..domain import inductions as ind
from ..domain import notice_timing as timing
from ..extensions import db
from ..models import Machine, Qualification
from ..models.inductions import InductionRule, InductionSession
from . import bookings as booking_service
from . import induction_lapse, notify
from . import inductions as svc

# A session's attendance is settled this long after its end: the trainer had a day to mark everyone.
SETTLE_AFTER = timedelta(hours=24)


def _link(q: Qualification) -> str:
    return f"/machines/{q.machine.slug}" if q.machine is not None else "/inductions"


def warn_disuse_lapses(now: datetime) -> list[tuple[int, str]]:
    """Qualifications of types with a disuse limit (InductionRule.disuse_months) that lapse within 30 days
    for want of use (notice qualification_expiring, reason disuse), or lapsed in the last 30 days
    (qualification_expired). Once per qualification and lapse day: using the type moves the day, so the
    member is warned again in time. Time expiry is the other scan's (notice_scans)."""
    rules = {r.machine_type_id: r for r in db.session.scalars(
        select(InductionRule).where(InductionRule.disuse_months.is_not(None)))}
    if not rules:
        return []
    quals = db.session.scalars(select(Qualification).outerjoin(Machine, Machine.id == Qualification.machine_id).where(
        or_(Qualification.machine_type_id.in_(rules), Machine.type_id.in_(rules))).order_by(Qualification.id))
    tz = booking_service.lab_tz()
    told: list[tuple[int, str]] = []
    for q in quals:
        type_id = q.machine_type_id if q.machine_type_id is not None else q.machine.type_id if q.machine else None
        rule = rules.get(type_id) if type_id is not None else None
        if rule is None or type_id is None:
            continue
        used = induction_lapse.last_use(q.member_id, type_id)
        st = ind.standing(q.granted_at, q.expires_at, used, rule.disuse_months, now)
        if st.reason != "disuse" or st.lapses_at is None:
            continue
        kind = timing.qualification_notice(st.lapses_at, now)
        if kind is None:
            continue
        day = timing.expiry_day(st.lapses_at, tz)
        params = {"qualification_id": q.id, "scope": q.scope_label, "reason": "disuse",
                  "machine": q.machine.name if q.machine is not None else None,
                  "machine_type": q.machine_type.name if q.machine_type is not None else None,
                  "expires": timing.stamp(st.lapses_at), "expires_day": day.isoformat(),
                  "disuse_months": rule.disuse_months, "last_used": timing.stamp(used) if used else None}
        what = "disuse-expiring" if kind == "qualification_expiring" else "disused"
        notice = notify.notify(q.member, kind, params, now=now, link=_link(q),
                               dedupe_key=f"qualification:{q.id}:{what}:{day.isoformat()}")
        if notice is not None:
            told.append((q.id, kind))
    return told


def settle_ended_sessions(now: datetime) -> list[int]:
    """Sessions that ended a day ago and are still open: with any attendance recorded the session is done and
    the trainer's effort recorded (participants left unmarked stay "attendance not recorded"); with none, the
    trainer is reminded once (notice induction_attendance_due) and the session waits for the marks. A session
    nobody signed up for is closed without effort. The ids settled."""
    rows = list(db.session.scalars(select(InductionSession).where(
        InductionSession.status == ind.SCHEDULED, InductionSession.end_at <= now - SETTLE_AFTER)
        .order_by(InductionSession.id)))
    settled: list[int] = []
    for s in rows:
        signups = [r for r in svc.signups_of(s.id) if r.status in ind.HOLDS_PLACE]
        marked = [r for r in signups if r.status in ind.TOOK_PART]
        if marked or not signups:
            s.status = ind.DONE
            if marked:
                svc.record_trainer_effort(s, s.trainer, now)
            settled.append(s.id)
        elif s.attendance_reminded_at is None:
            s.attendance_reminded_at = now
            notify.notify(s.trainer, "induction_attendance_due",
                          {"session_id": s.id, "machine_type": s.machine_type.name, "start": timing.stamp(s.start_at),
                           "unmarked": len(signups)},
                          now=now, link=f"/inductions/{s.id}/attendance",
                          dedupe_key=f"induction:{s.id}:attendance")
    return settled
