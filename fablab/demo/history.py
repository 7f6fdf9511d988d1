"""Eight weeks of past history for the demo lab, so the fairness review has something to show.

What it makes, deterministic for a given `rng`:
- bookings on every machine, skewed (a few heavy users, a long tail), mostly completed, some no-shows,
  late and early cancellations; printers run long jobs around the clock, the lasers are wanted in the
  evening;
- usage sessions for most completed bookings on the machines that report use (printers, lasers, CNC),
  with some overruns, some unbooked use and maintenance use; the vinyl cutter and the soldering station
  report nothing, so their bookings stand in for use;
- weekly request windows for the Epilog's evening slots, allocated by the real draft-and-lottery
  (`fablab.domain.allocation`) with a published trace, so lottery outcomes can be checked; losers are
  stored as waitlisted or rejected requests, and first-come machines get waitlist entries nobody met.

Call it after the machines, members, qualifications and the scheduling demo exist: it skips weeks that
already have a request window and never overlaps a booking already there. Bulk inserts: well under 3 s.
"""

from __future__ import annotations

import hashlib
import random
from collections import defaultdict
from collections.abc import Hashable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy import insert, select

from ..domain import allocation as alloc
from ..domain import fairshare as fs
from ..domain import policy as pol
from ..extensions import db
from ..models import Booking, BookingKind, BookingStatus, Machine, Member, Qualification
from ..models.scheduling import RequestStatus, RequestWindow, SlotRequest, WaitlistEntry, WindowStatus
from ..models.types import utcnow
from ..models.usage import UsageSession
from ..services import bookings as booking_service

DAYS = 56
WINDOW_MACHINE = "laser-epilog"
EVENING_SLOTS = ((16, 0), (18, 0), (20, 0))  # 1 h 45 min each, 15 min apart (the laser's buffer)
METERED = {"prusa-mk4-1", "prusa-mk4-2", "ender-3", "laser-epilog", "laser-k40", "cnc-shapeoko"}


@dataclass(frozen=True)
class _Profile:
    per_day: tuple[int, int]  # wished bookings per day (min, max)
    hours: tuple[float, ...]  # lengths to choose from
    starts: tuple[int, ...]  # local start hours, repeated for weight
    weekend_factor: float = 1.0


PROFILES = {
    "prusa-mk4-1": _Profile((2, 5), (2, 3, 4, 6, 8), (9, 10, 12, 14, 16, 17, 18, 18, 19, 20, 21)),
    "prusa-mk4-2": _Profile((1, 4), (2, 3, 4, 6), (10, 12, 14, 17, 18, 19, 20)),
    "ender-3": _Profile((0, 2), (1, 2, 3), (11, 15, 18, 19)),
    "laser-epilog": _Profile((2, 4), (1, 1.5, 2), (10, 11, 12, 13, 14, 15), 1.5),
    "laser-k40": _Profile((1, 4), (1, 1.5, 2), (14, 16, 17, 17, 18, 18, 19, 19, 20), 1.2),
    "cnc-shapeoko": _Profile((0, 2), (2, 3), (10, 13, 16, 17)),
    "vinyl-cameo": _Profile((0, 2), (0.5, 1), (12, 16, 18, 19)),
    "solder-1": _Profile((0, 3), (1, 2), (15, 17, 18, 19, 20)),
}


class _Calendar:
    """Busy intervals of one machine (UTC), to keep the demo free of double bookings."""

    def __init__(self) -> None:
        self.spans: list[tuple[datetime, datetime]] = []

    def free(self, start: datetime, end: datetime, gap: timedelta = timedelta(0)) -> bool:
        return all(e + gap <= start or end + gap <= s for s, e in self.spans)

    def add(self, start: datetime, end: datetime) -> None:
        self.spans.append((start, end))


def _weights(members: list[Member], rng: random.Random) -> dict[int, float]:
    """Heavy-tailed activity: a few members book a lot, most a little, staff rarely."""
    regular = members[2:]
    order = list(range(len(regular)))
    rng.shuffle(order)
    out = {m.id: 1.0 / (rank + 1) ** 1.1 for m, rank in zip(regular, order, strict=True)}
    for staff in members[:2]:
        out[staff.id] = 0.05
    return out


def _qualified(machines: dict[str, Machine], members: list[Member], now: datetime) -> dict[str, list[int]]:
    ids = {m.id for m in members}
    by_type: dict[int, set[int]] = defaultdict(set)
    by_machine: dict[int, set[int]] = defaultdict(set)
    for member_id, type_id, machine_id, _expires in db.session.execute(
            select(Qualification.member_id, Qualification.machine_type_id, Qualification.machine_id,
                   Qualification.expires_at)):
        if member_id not in ids:
            continue
        if type_id is not None:
            by_type[type_id].add(member_id)
        if machine_id is not None:
            by_machine[machine_id].add(member_id)
    return {slug: sorted(by_type[m.type_id] | by_machine[m.id]) for slug, m in machines.items()}


class _Writer:
    """Collects rows for bulk inserts."""

    def __init__(self, now: datetime, rng: random.Random) -> None:
        self.now, self.rng = now, rng
        self.bookings: list[dict[str, Any]] = []
        self.sessions: list[dict[str, Any]] = []  # with "_booking" = index into bookings, or None
        self.entries: list[dict[str, Any]] = []
        self.used: dict[tuple[int, int], float] = defaultdict(float)  # (machine, member) -> hours

    def booking(self, machine: Machine, member_id: int, start: datetime, end: datetime, source: str = "web",
                outcome: str | None = None) -> str:
        """A past booking with a realistic ending; returns the status it got."""
        rng = self.rng
        created = start - timedelta(hours=rng.randint(6, 24 * 6))
        row: dict[str, Any] = {"machine_id": machine.id, "member_id": member_id, "start_at": start, "end_at": end,
                               "booked_end_at": end, "kind": BookingKind.NORMAL.value, "source": source,
                               "created_at": created, "updated_at": end, "note": "", "cancel_reason": "",
                               "sequence": 0, "checked_in_at": None, "cancelled_at": None}
        roll = rng.random() if outcome is None else {"completed": 0.5, "no_show": 0.9}[outcome]
        if roll < 0.84:
            status = BookingStatus.COMPLETED.value
            row["checked_in_at"] = start + timedelta(minutes=rng.randint(0, 8))
        elif roll < 0.91:
            status = BookingStatus.NO_SHOW.value
        elif roll < 0.955:
            status = BookingStatus.CANCELLED.value
            row["cancelled_at"] = start - timedelta(hours=rng.uniform(0.5, 20))  # late
            row["cancel_reason"] = "something came up"
        else:
            status = BookingStatus.CANCELLED.value
            row["cancelled_at"] = max(created + timedelta(minutes=5), start - timedelta(days=rng.uniform(1.5, 4)))
        row["status"] = status
        if row["cancelled_at"] is not None:
            row["updated_at"] = row["cancelled_at"]
        self.bookings.append(row)
        if status == BookingStatus.COMPLETED.value:
            self._use(machine, member_id, start, end, len(self.bookings) - 1)
        elif status == BookingStatus.NO_SHOW.value:
            self.used[(machine.id, member_id)] += (end - start).total_seconds() / 3600
        return status

    def _use(self, machine: Machine, member_id: int, start: datetime, end: datetime, index: int) -> None:
        rng = self.rng
        hours = (end - start).total_seconds() / 3600
        if machine.slug not in METERED or rng.random() < 0.08:
            self.used[(machine.id, member_id)] += hours
            return  # no machine data (or the bridge was down): the booking stands in
        s = start + timedelta(minutes=rng.randint(0, 10))
        e = s + (end - start) * rng.uniform(0.6, 0.98)
        overrun = 0.0
        if rng.random() < 0.12:
            overrun = float(rng.randint(10, 40))
            e = end + timedelta(minutes=overrun)
        self.session(machine, member_id, s, e, index, overrun=overrun)
        self.used[(machine.id, member_id)] += (e - s).total_seconds() / 3600

    def session(self, machine: Machine, member_id: int | None, start: datetime, end: datetime, booking: int | None,
                *, overrun: float = 0.0, unbooked: bool = False, kind: str = "normal") -> None:
        self.sessions.append({
            "key": f"demo-history:{machine.slug}:{start.isoformat()}", "machine_id": machine.id,
            "member_id": member_id, "_booking": booking, "session_id": None, "start_at": start, "end_at": end,
            "duration_s": (end - start).total_seconds(), "energy_wh": None, "badge": None,
            "job_file": None, "source": "status" if "prusa" in machine.slug or "ender" in machine.slug else "event",
            "closed_by": "end_event", "open": False, "start_estimated": False, "unbooked": unbooked,
            "overrun_minutes": overrun, "counts_as_usage": kind == "normal", "kind": kind, "updated_at": end})


def _existing(machines: dict[str, Machine], lo: datetime, hi: datetime) -> dict[int, _Calendar]:
    cals: dict[int, _Calendar] = defaultdict(_Calendar)
    for mid, s, e in db.session.execute(select(Booking.machine_id, Booking.start_at, Booking.end_at).where(
            Booking.machine_id.in_([m.id for m in machines.values()]), Booking.end_at > lo, Booking.start_at < hi,
            Booking.status != BookingStatus.CANCELLED.value)):
        cals[mid].add(s, e)
    return cals


def _pick(pool: list[int], weights: dict[int, float], rng: random.Random) -> int:
    return rng.choices(pool, weights=[weights.get(m, 0.1) for m in pool])[0]


def _window_week(w: _Writer, laser: Machine, monday: datetime, pool: list[int], weights: dict[int, float],
                 cal: _Calendar, rng: random.Random) -> tuple[int, int]:
    """One closed request window for the laser's weekday evenings, allocated by the real draw."""
    from ..services.windows import participant_labels  # the same random labels the live windows use

    tz = booking_service.lab_tz()
    day0 = monday.astimezone(tz).date()
    seed = bytes(rng.getrandbits(8) for _ in range(32))
    closed_at = monday - timedelta(days=4, hours=4)
    window = RequestWindow(machine_id=laser.id, mode="window", period_start=monday,
                           period_end=pol.local_midnight(day0 + timedelta(days=7), tz),
                           opens_at=monday - timedelta(days=7), closes_at=monday - timedelta(days=4, hours=4),
                           status=WindowStatus.CLOSED.value, commitment=hashlib.sha256(seed).hexdigest(),
                           secret_seed=seed.hex(), revealed_seed=seed.hex(), created_at=monday - timedelta(days=7),
                           closed_at=closed_at)
    db.session.add(window)
    starts = [pol.local_to_utc(day0 + timedelta(days=d), time(h, m), tz) for d in range(5) for h, m in EVENING_SLOTS]
    slots = [(s, s + timedelta(minutes=105)) for s in starts if cal.free(s, s + timedelta(minutes=105))]
    people = rng.sample(pool, k=min(len(pool), rng.randint(7, 11)))
    rows: list[SlotRequest] = []
    for member_id in people:
        # The late slots are the ones everybody wants.
        wanted = rng.choices(slots, weights=[1 + 3 * (s.astimezone(tz).hour >= 18) for s, _ in slots],
                             k=rng.randint(1, 3 if weights.get(member_id, 0) > 0.2 else 2))
        for rank, (s, e) in enumerate(dict.fromkeys(wanted), start=1):
            rows.append(SlotRequest(window=window, member_id=member_id, machine_id=laser.id, start_at=s, end_at=e,
                                    rank=rank, status=RequestStatus.PENDING.value,
                                    created_at=monday - timedelta(days=rng.uniform(4.5, 6.5))))
    db.session.add_all(rows)
    db.session.flush()
    labels = participant_labels(window, people, window.created_at)
    # Keyed by the domain's member ids (Mapping is invariant in its key: a dict[str, float] would not do).
    usage: dict[fs.MemberId, float] = {labels[m]: w.used.get((laser.id, m), 0.0) for m in people}
    shares: dict[fs.MemberId, float] = {labels[m]: 1.0 for m in people}
    quota = alloc.Quota(None, 2)
    reqs = [alloc.SlotRequest(r.id, labels[r.member_id], laser.id, r.start_at, r.end_at, r.rank) for r in rows]
    result = alloc.allocate_window(reqs, fs.FairShareState(usage, shares), seed, quota, {}, alloc.DEFAULT_BAND_WIDTH)
    by_id: dict[Hashable, SlotRequest] = {r.id: r for r in rows}  # looked up by the draw's request ids
    granted = waitlisted = 0
    for o in result.outcomes:
        r = by_id[o.request.id]
        r.status, r.reason, r.message = o.status.value, o.reason.value, o.message
        r.round_no, r.factor, r.decided_at = o.round_no, o.factor, window.closed_at
        if o.status is alloc.Status.GRANTED:
            granted += 1
            cal.add(r.start_at, r.end_at)
            w.booking(laser, r.member_id, r.start_at, r.end_at, source="window")
        elif o.status is alloc.Status.WAITLISTED:
            waitlisted += 1
            w.entries.append({"member_id": r.member_id, "machine_id": laser.id, "kind": "slot",
                              "start_at": r.start_at, "end_at": r.end_at, "min_hours": 0.0,
                              "sequence": o.waitlist_position or 0, "request_id": r.id, "status": "left",
                              "joined_at": window.closed_at})
    window.trace = {
        "version": 2, "machine": laser.id, "mode": "window", "at": closed_at.isoformat(),
        "half_life_days": 14.0, "band_width": alloc.DEFAULT_BAND_WIDTH, "buffer_minutes": 0,
        "quota": {"max_hours": None, "max_slots": 2}, "member_quotas": {},
        "usage": usage, "shares": shares,
        "requests": [{"id": q.id, "participant": q.member_id, "start": q.start.isoformat(), "end": q.end.isoformat(),
                      "hours": q.hours, "rank": q.rank} for q in reqs],
        "allocated": [q.id for q in reqs],
        "outcomes": [{"id": o.request.id, "status": o.status.value, "reason": o.reason.value, "round": o.round_no,
                      "factor": o.factor, "waitlist_position": o.waitlist_position} for o in result.outcomes],
        "rounds": [{"number": rnd.number, "granted": list(rnd.granted),
                    "order": [{"participant": t.member_id, "factor": t.factor, "band": t.band, "ticket": t.ticket_hex}
                              for t in rnd.order]} for rnd in result.rounds],
        "final": {str(r.id): r.status for r in rows},
    }
    return granted, waitlisted


def seed_history_demo(machines: dict[str, Machine], members: list[Member], rng: random.Random) -> str:
    now = utcnow()
    tz = booking_service.lab_tz()
    today = now.astimezone(tz).date()
    first_day = today - timedelta(days=DAYS)
    lo = pol.local_midnight(first_day, tz)
    if db.session.scalar(select(UsageSession.id).where(UsageSession.key.like("demo-history:%")).limit(1)):
        return ""
    weights = _weights(members, rng)
    pools = _qualified(machines, members, now)
    cals = _existing(machines, lo, now)
    w = _Writer(now, rng)
    staff = members[1] if len(members) > 1 else members[0]

    # Request windows first: the week's evening laser slots are decided before anyone books by hand.
    laser = machines.get(WINDOW_MACHINE)
    windows = granted = waitlisted = 0
    if laser is not None and pools.get(laser.slug):
        taken = [(s, e) for s, e in db.session.execute(select(RequestWindow.period_start, RequestWindow.period_end)
                                                        .where(RequestWindow.machine_id == laser.id))]
        monday = first_day + timedelta(days=(7 - first_day.weekday()) % 7)
        while True:
            start = pol.local_midnight(monday, tz)
            end = pol.local_midnight(monday + timedelta(days=7), tz)
            if end > now:
                break
            if not any(s < end and start < e for s, e in taken):
                g, wl = _window_week(w, laser, start, pools[laser.slug], weights, cals[laser.id], rng)
                windows, granted, waitlisted = windows + 1, granted + g, waitlisted + wl
            monday += timedelta(days=7)

    # Day by day, first come first served; a wish that does not fit is unmet (some join the waitlist).
    unmet = 0
    for offset in range(DAYS):
        day = first_day + timedelta(days=offset)
        weekend = day.weekday() >= 5
        for slug, machine in machines.items():
            prof = PROFILES.get(slug)
            pool = pools.get(slug) or []
            if prof is None or not pool:
                continue
            policy = booking_service.policy_for(machine)
            hours_today = policy.opening_hours[day.weekday()]
            if not hours_today:
                continue
            n = rng.randint(*prof.per_day)
            if weekend:
                n = round(n * prof.weekend_factor)
            for _ in range(n):
                member_id = _pick(pool, weights, rng)
                hour = rng.choice(prof.starts)
                length = timedelta(hours=rng.choice(prof.hours))
                start = pol.local_to_utc(day, time(hour), tz)
                end = start + length
                if end > now:
                    continue
                open_ok = any(pol.local_to_utc(day, a, tz) <= start and
                              end <= pol.local_to_utc(day + timedelta(days=1) if b <= a else day, b, tz)
                              for a, b in hours_today)
                if not open_ok:
                    continue
                if cals[machine.id].free(start, end, policy.buffer):
                    cals[machine.id].add(start, end)
                    w.booking(machine, member_id, start, end)
                else:
                    unmet += 1
                    if rng.random() < 0.6:
                        w.entries.append({"member_id": member_id, "machine_id": machine.id, "kind": "slot",
                                          "start_at": start, "end_at": end, "min_hours": 0.0, "sequence": 0,
                                          "request_id": None, "status": "left",
                                          "joined_at": start - timedelta(hours=rng.randint(2, 48))})
        # Unbooked use (someone just used a free printer or the K40) and maintenance work.
        for slug in ("prusa-mk4-1", "ender-3", "laser-k40"):
            walk_in = machines.get(slug)
            if walk_in is None or not pools.get(slug) or rng.random() > 0.25:
                continue
            start = pol.local_to_utc(day, time(rng.choice((8, 9, 22, 23))), tz)
            end = start + timedelta(minutes=rng.randint(20, 90))
            if end < now and cals[walk_in.id].free(start, end):
                cals[walk_in.id].add(start, end)
                user_id = _pick(pools[slug], weights, rng) if rng.random() < 0.8 else None
                w.session(walk_in, user_id, start, end, None, unbooked=True)
        if day.weekday() == 1:
            for slug in ("laser-epilog", "prusa-mk4-1", "cnc-shapeoko"):
                serviced = machines.get(slug)
                if serviced is None:
                    continue
                start = pol.local_to_utc(day, time(9), tz)
                end = start + timedelta(minutes=45)
                if end < now and cals[serviced.id].free(start, end):
                    cals[serviced.id].add(start, end)
                    w.bookings.append({"machine_id": serviced.id, "member_id": staff.id, "start_at": start,
                                       "end_at": end, "booked_end_at": end, "status": BookingStatus.COMPLETED.value,
                                       "kind": BookingKind.MAINTENANCE.value, "source": "web",
                                       "note": "weekly maintenance", "created_at": start - timedelta(days=3),
                                       "updated_at": end, "cancel_reason": "", "sequence": 0,
                                       "checked_in_at": None, "cancelled_at": None})
                    if slug in METERED:
                        w.session(serviced, staff.id, start, end, len(w.bookings) - 1, kind="maintenance")

    ids: list[int] = []
    if w.bookings:
        ids = list(db.session.scalars(insert(Booking).returning(Booking.id, sort_by_parameter_order=True),
                                      w.bookings))
    if w.sessions:
        rows = []
        for s in w.sessions:
            row = dict(s)
            index = row.pop("_booking")
            row["booking_id"] = ids[index] if index is not None else None
            rows.append(row)
        db.session.execute(insert(UsageSession), rows)
    if w.entries:
        db.session.execute(insert(WaitlistEntry), w.entries)
    db.session.commit()
    return (f", {DAYS // 7} weeks of history ({len(w.bookings)} bookings, {len(w.sessions)} usage sessions, "
            f"{windows} request windows with {granted} granted and {waitlisted} waitlisted requests, {unmet} wishes "
            "that did not fit)")
