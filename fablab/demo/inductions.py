"""Demo data for inductions, through the same services the web and the API use:

- laser safety in two days, full, with a waitlist; a laser refresher two days later with places left (on the
  K40, blocking it when it is free);
- printer basics run by a member trainer (Bo);
- three members asking for a CNC mill induction, nobody offering one yet;
- a laser safety session two weeks ago: one passed, one missed (the fairness review's "missed sessions"),
  and the steward's time on the effort ledger;
- Dana, whose laser qualification expired: booking the laser is refused, and the refusal offers the
  refresher (fablab/web/inductions/refusal_actions.py).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from ..domain import inductions as ind
from ..extensions import db
from ..models import Machine, Member
from ..models.inductions import InductionSession
from ..models.types import utcnow
from ..services import bookings as booking_service
from ..services import inductions as svc
from ..services import machines as machine_service


def _at(now: datetime, days: int, hour: int) -> datetime:
    """`days` ahead (or back) at `hour` lab time."""
    local = (now.astimezone(booking_service.lab_tz()) + timedelta(days=days))
    return local.replace(hour=hour, minute=0, second=0, microsecond=0)


def _fill(s: InductionSession, people: list[Member], confirmed: int, waitlisted: int, now: datetime) -> int:
    """Sign up the first of `people` the rules let in, until the session has its places and waitlist."""
    placed = waiting = 0
    for i, m in enumerate(people):
        if placed >= confirmed and waiting >= waitlisted:
            break
        try:
            row = svc.sign_up(m, s.id, now=now + timedelta(minutes=i))
        except svc.InductionRefused:
            continue  # already qualified, or a prerequisite missing
        placed += row.status == ind.CONFIRMED
        waiting += row.status == ind.WAITLISTED
    return placed + waiting


def seed_inductions_demo(machines: dict[str, Machine], members: list[Member]) -> str:
    if db.session.scalar(select(InductionSession.id).limit(1)) is not None:
        return ""
    now = utcnow()
    steward, ada, bo, dana = members[1], members[2], members[3], members[5]
    laser = machines["laser-epilog"].machine_type
    printer = machines["prusa-mk4-1"].machine_type
    cnc = machines["cnc-shapeoko"].machine_type
    svc.set_rule(steward, laser, validity_months=24, disuse_months=12)

    # Dana's laser qualification lapsed three weeks ago.
    machine_service.grant(dana, by=steward, machine_type=laser, expires_at=now - timedelta(days=21))
    db.session.commit()
    others = [m for m in members[2:] if m.id != dana.id]

    # Two weeks ago: laser safety, one passed and one missed; the steward's time goes on the ledger.
    past_start = _at(now, -14, 18)
    past = svc.schedule(steward, laser, past_start, past_start + timedelta(hours=2), capacity=4, place="Laser room",
                        now=past_start - timedelta(days=7))
    took = [m for m in others if laser.id not in svc.valid_type_ids(m, past_start - timedelta(days=6))][:2]
    for i, m in enumerate(took):
        svc.sign_up(m, past.id, now=past_start - timedelta(days=6 - i))
    for m, status in zip(took, (ind.PASSED, ind.MISSED), strict=False):
        svc.mark_attendance(steward, past.id, m.id, status, now=past_start + timedelta(hours=2))

    safety_start = _at(now, 2, 18)
    safety = svc.schedule(steward, laser, safety_start, safety_start + timedelta(hours=2), capacity=3,
                          place="Laser room", material_url="https://example.org/fablab/laser-safety.pdf",
                          note="Bring closed shoes.", now=now - timedelta(days=3))
    signed = _fill(safety, others, confirmed=3, waitlisted=2, now=now - timedelta(days=2))

    refresher_start = _at(now, 4, 17)
    try:  # on the K40 when it is free at that time; otherwise the session does not block a machine
        refresher = svc.schedule(steward, laser, refresher_start, refresher_start + timedelta(hours=1), capacity=4,
                                 place="Laser room", machine=machines["laser-k40"], is_refresher=True, now=now)
    except svc.InductionRefused:
        refresher = svc.schedule(steward, laser, refresher_start, refresher_start + timedelta(hours=1), capacity=4,
                                 place="Laser room", is_refresher=True, now=now)
    signed += _fill(refresher, [ada], confirmed=1, waitlisted=0, now=now)

    svc.grant_trainer(steward, bo, printer, now=now - timedelta(days=30))
    basics_start = _at(now, 3, 19)
    basics = svc.schedule(bo, printer, basics_start, basics_start + timedelta(hours=2), capacity=6,
                          place="Print corner", now=now - timedelta(days=1))
    signed += _fill(basics, [m for m in others if m.id != bo.id], confirmed=3, waitlisted=0, now=now)

    askers = [m for m in members[3:] if cnc.id not in svc.valid_type_ids(m, now)][:3]
    for i, m in enumerate(askers):
        svc.request_induction(m, cnc, now=now - timedelta(days=12 - 3 * i))
    db.session.commit()
    return f"4 induction sessions ({signed} sign-ups), {len(askers)} CNC induction requests"
