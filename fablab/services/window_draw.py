"""The close of a request window and its published results: the fair draw (participants' random labels, the
quotas each member still has, the allocation with the committed lottery seed), the bookings for the
granted, the waitlist for the rest, the trace and revealed seed, and the re-check any member can do
(`rerun_allocation`, `draw_matches`, `window_results`). The timed work is `close_due_windows(now)`.
Windows, their settings and requests live in fablab.services.windows, which does not import this module.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select

from ..database import write_transaction
from ..domain import allocation as alloc
from ..domain import booking_rules as rules
from ..domain import fairshare as fs
from ..domain import lottery
from ..domain import waitlist as wl
from ..extensions import db
from ..models import ACTIVE_STATUSES, Booking, BookingKind, BookingStatus, Machine, Member
from ..models.scheduling import (
    EntryStatus,
    FreedTime,
    RequestStatus,
    RequestWindow,
    SlotRequest,
    WaitlistEntry,
    WindowStatus,
)
from ..models.types import utcnow
from . import bookings as booking_service
from . import event_data, lab_events, waitlist
from .fairshare_data import fair_share_for, settings_for
from .scheduling_common import SchedulingError
from .scheduling_common import lab_tz as _tz
from .windows import (
    _lock_window,  # the same row lock the requests take
    participant_labels,
)

# 2: participants are random stored labels (WindowParticipant); members with no request in the window
# are summed into one OTHERS entry (their use and shares only matter as part of the totals).
TRACE_VERSION = 2
OTHERS = "others"  # not a label: labels are LABEL_LENGTH characters long
LEGACY_SCHEME = "member-hmac"  # windows drawn before labels were random (migrations/versions/0008)


# --- the close: allocate, book, waitlist, reveal -------------------------------------------------------------


@dataclass(frozen=True)
class WindowRequest(alloc.SlotRequest):
    """A request as the allocator sees it: the end padded by the machine's buffer (so two granted
    requests keep the buffer apart), `real_hours` without the padding (quotas and usage)."""

    real_hours: float = 0.0

    @property
    def hours(self) -> float:
        return self.real_hours


def _labelled_state(state: fs.FairShareState, labels: dict[int, str]) -> fs.FairShareState:
    """The fair-share state keyed by label, everybody without a label summed into OTHERS: the totals,
    hence every participant's F, are unchanged (shares are already normalised)."""
    usage: dict[Hashable, float] = {}
    shares: dict[Hashable, float] = {}
    for source, target in ((state.usage, usage), (state.shares, shares)):
        for m, v in source.items():
            key = labels.get(m, OTHERS) if isinstance(m, int) else OTHERS
            target[key] = target.get(key, 0.0) + v
    return fs.FairShareState(usage, shares)


def _member_quotas(machine: Machine, members: Iterable[Member], window: RequestWindow, base: alloc.Quota,
                   now: datetime) -> dict[int, alloc.Quota]:
    """The window quota, reduced by the policy's weekly hours and future-bookings limits minus what the
    member already holds (stewards and admins are exempt from policy quotas, not from the window's)."""
    policy = booking_service.policy_for(machine)
    out = {}
    for m in members:
        if m.is_staff:
            out[m.id] = base
            continue
        held = [b for b in booking_service.member_bookings(m, since=window.period_start, until=window.period_end,
                                                           machine=machine)
                if b.status in rules.QUOTA_STATUSES and b.kind == BookingKind.NORMAL]
        hours = base.max_hours
        if policy.max_hours_per_week is not None:
            left = policy.max_hours_per_week - sum((b.end_at - b.start_at).total_seconds() / 3600 for b in held)
            hours = left if hours is None else min(hours, left)
        slots = base.max_slots
        if policy.max_future_bookings is not None:
            open_now = [b for b in booking_service.member_bookings(m, since=now, machine=machine)
                        if b.status in ACTIVE_STATUSES]
            left_n = max(0, policy.max_future_bookings - len(open_now))
            slots = left_n if slots is None else min(slots, left_n)
        out[m.id] = alloc.Quota(None if hours is None else max(0.0, hours), slots)
    return out


def _quota_json(q: alloc.Quota) -> dict[str, Any]:
    return {"max_hours": q.max_hours, "max_slots": q.max_slots}


def rerun_allocation(trace: dict[str, Any], seed_hex: str) -> alloc.Allocation:
    """Re-run the draw from a published trace and the revealed seed (what any member can do)."""
    reqs = [WindowRequest(r["id"], r["participant"], trace["machine"], datetime.fromisoformat(r["start"]),
                          datetime.fromisoformat(r["end"]), r["rank"], real_hours=r["hours"])
            for r in trace["requests"] if r["id"] in set(trace["allocated"])]
    state = fs.FairShareState(dict(trace["usage"]), dict(trace["shares"]))
    quotas = {k: alloc.Quota(v["max_hours"], v["max_slots"]) for k, v in trace["member_quotas"].items()}
    return alloc.allocate_window(reqs, state, bytes.fromhex(seed_hex), alloc.Quota(**trace["quota"]), quotas,
                                 trace["band_width"])


def close_window(window: RequestWindow, now: datetime | None = None, *, force: bool = False) -> RequestWindow:
    """Allocate a window whose close time passed (or now, with `force`), in one write transaction:
    granted requests become confirmed bookings, losers join the waitlist in draft order, the seed is
    revealed. Idempotent: a window already closed is returned unchanged."""
    now = now or utcnow()
    freed: list[FreedTime] = []
    with write_transaction():
        w = _lock_window(window.id)
        if w.status != WindowStatus.OPEN:
            return w
        if now < w.closes_at and not force:
            raise SchedulingError("window_open", "This window is still collecting requests.", 409)
        freed = _allocate(w, now)
    for f in freed:
        waitlist.make_offers(f, now)
    return w


def _allocate(w: RequestWindow, now: datetime) -> list[FreedTime]:
    machine = w.machine
    policy = booking_service.policy_for(machine)
    tz = _tz()
    settings = settings_for(machine)
    seed = bytes.fromhex(w.secret_seed)
    pending = [r for r in w.requests if r.status == RequestStatus.PENDING]
    members = {r.member_id: r.member for r in pending}

    # Requests that can no longer be granted whatever the draw: the time was booked meanwhile, or the
    # member lost the qualification.
    mb = booking_service.load_machine_bookings(machine, w.period_start - policy.buffer, w.period_end + policy.buffer,
                                               now)
    blocking = rules.blocking_bookings(policy, mb.existing, machine.id, now)
    valid: list[SlotRequest] = []
    for r in pending:
        busy = [b for b in blocking if b.start < r.end_at + policy.buffer and r.start_at < b.end + policy.buffer]
        blocked = [iv for iv in mb.blocks if iv.start < r.end_at and r.start_at < iv.end]
        qual = booking_service.member_context(r.member, machine, now).qualification
        if busy or blocked or (policy.qualification_required and qual.state != "valid"):
            r.status = RequestStatus.REJECTED.value
            r.reason = alloc.Reason.INVALID.value
            r.message = ("the time was booked or blocked before the close" if busy or blocked
                         else "you are not qualified for this machine any more")
            r.decided_at = now
        else:
            valid.append(r)

    state = fair_share_for(machine, now, settings)
    # The fair-share state of a machine is keyed by member id (an int), as the requests are. The labels
    # were drawn when each member first requested (a request written around the services gets one now).
    labels = participant_labels(w, sorted(members), now)
    quota = alloc.Quota(settings.quota_hours, settings.quota_slots)
    quotas = _member_quotas(machine, members.values(), w, quota, now)
    lquotas: dict[Hashable, alloc.Quota] = {labels[m]: q for m, q in quotas.items()}
    domain = [WindowRequest(r.id, labels[r.member_id], machine.id, r.start_at, r.end_at + policy.buffer, r.rank,
                            real_hours=(r.end_at - r.start_at).total_seconds() / 3600) for r in valid]
    if w.mode == "hybrid":
        contested = alloc.contested_ids(domain)
        to_draw = [d for d in domain if d.id in contested]
    else:
        to_draw = domain
    # Requesters new to the machine get the average share before the others are summed up (the average
    # over the whole population, as the allocator would give them), so the trace holds their share too.
    drawn = {r.member_id for r in valid if r.id in {d.id for d in to_draw}}
    lstate = _labelled_state(state.with_members(drawn), labels)
    result = alloc.allocate_window(to_draw, lstate, seed, quota, lquotas, settings.band_width)
    outcomes = result.by_request()
    rows: dict[Hashable, SlotRequest] = {r.id: r for r in valid}

    # Book in the order the draw granted, then (hybrid) the uncontested ones by rank; every booking is
    # checked against the full rules too (day quotas, and what was granted just before).
    order = [rid for rnd in result.rounds for rid in rnd.granted]
    order += [d.id for d in sorted(domain, key=lambda d: (d.rank, d.start)) if d.id not in outcomes]
    freed: list[FreedTime] = []
    existing = list(mb.existing)
    for rid in order:
        r = rows[rid]
        o = outcomes.get(rid)
        violations = [v for v in rules.check_booking(
            policy, rules.BookingRequest(machine.id, r.member_id, r.start_at, r.end_at), existing,
            booking_service.member_context(r.member, machine, now), now, tz, blocks=mb.blocks,
            machine_out_of_order=machine.status != "available") if v.code != "beyond_horizon"]
        r.decided_at = now
        r.round_no = o.round_no if o else None
        r.factor = o.factor if o else state.factor(r.member_id)
        if violations:
            r.status = RequestStatus.REJECTED.value
            r.reason = "rule"
            r.message = "granted by the draw, but the booking rules refused it: " + violations[0].message
            if o is not None:
                ft = FreedTime(machine_id=machine.id, start_at=r.start_at, end_at=r.end_at, created_at=now)
                db.session.add(ft)
                freed.append(ft)
            continue
        booking = Booking(machine_id=machine.id, member_id=r.member_id, start_at=r.start_at, end_at=r.end_at,
                          booked_end_at=r.end_at, status=BookingStatus.CONFIRMED.value,
                          kind=BookingKind.NORMAL.value, source="window", note=f"request window {w.id}",
                          created_at=now, updated_at=now)
        db.session.add(booking)
        db.session.flush()
        lab_events.publish(event_data.booking("booking.created", booking, now))
        existing.append(rules.ExistingBooking(booking.id, machine.id, r.member_id, r.start_at, r.end_at))
        r.booking_id = booking.id
        r.status = RequestStatus.GRANTED.value
        if o is not None:
            r.reason, r.message = o.reason.value, o.message
        else:
            r.reason, r.message = alloc.Reason.UNCONTESTED.value, "granted: no other member asked for this time"

    for o in result.outcomes:
        r = rows[o.request.id]
        if o.status is alloc.Status.GRANTED:
            continue
        r.status = o.status.value
        r.reason, r.message = o.reason.value, o.message
        r.round_no, r.factor, r.decided_at = o.round_no, o.factor, now
    for o in result.waitlisted():
        r = rows[o.request.id]
        db.session.add(WaitlistEntry(member_id=r.member_id, machine_id=machine.id, kind=wl.EntryKind.SLOT.value,
                                     start_at=r.start_at, end_at=r.end_at, sequence=o.waitlist_position or 0,
                                     request_id=r.id, status=EntryStatus.ACTIVE.value, joined_at=now))

    w.trace = {
        "version": TRACE_VERSION,
        "machine": machine.id,
        "mode": w.mode,
        "at": now.isoformat(),
        "half_life_days": settings.half_life_days,
        "band_width": settings.band_width,
        "buffer_minutes": policy.buffer_minutes,
        "quota": _quota_json(quota),
        "member_quotas": {labels[m]: _quota_json(q) for m, q in quotas.items()},
        "usage": dict(lstate.usage),
        "shares": dict(lstate.shares),
        "requests": [{"id": d.id, "participant": d.member_id, "start": d.start.isoformat(),
                      "end": d.end.isoformat(), "hours": d.real_hours, "rank": d.rank} for d in domain],
        "allocated": [d.id for d in to_draw],
        "outcomes": [{"id": o.request.id, "status": o.status.value, "reason": o.reason.value,
                      "round": o.round_no, "factor": o.factor, "waitlist_position": o.waitlist_position}
                     for o in result.outcomes],
        "rounds": [{"number": rnd.number, "granted": list(rnd.granted),
                    "order": [{"participant": t.member_id, "factor": t.factor, "band": t.band,
                               "ticket": t.ticket_hex} for t in rnd.order]} for rnd in result.rounds],
        "final": {str(r.id): r.status for r in pending},
    }
    w.revealed_seed = w.secret_seed
    w.label_scheme = "random"
    w.status = WindowStatus.CLOSED.value
    w.closed_at = now
    db.session.flush()
    _publish_results(w, pending, {o.request.id: o.waitlist_position for o in result.waitlisted()}, now)
    return freed


def _publish_results(w: RequestWindow, decided: list[SlotRequest], positions: dict[Hashable, int | None],
                     now: datetime) -> None:
    """window.result, one per participant: granted (their first granted booking), else their best place on
    the waitlist (None: neither, every request refused)."""
    by_member: dict[int, list[SlotRequest]] = {}
    for r in sorted(decided, key=lambda r: (r.start_at, r.id)):
        by_member.setdefault(r.member_id, []).append(r)
    for member_id, reqs in sorted(by_member.items()):
        booked = [r.booking_id for r in reqs if r.status == RequestStatus.GRANTED and r.booking_id]
        places = [p for r in reqs if (p := positions.get(r.id)) is not None]
        lab_events.publish(event_data.window_result(w.id, member_id, w.machine, bool(booked),
                                                    min(places) if places else None,
                                                    booked[0] if booked else None, now))


@dataclass(frozen=True)
class ResultRow:
    request_id: int
    start: datetime
    end: datetime
    participant: str  # pseudonym, or "you"
    is_mine: bool
    rank: int
    round_no: int | None
    factor: float | None
    status: str
    reason: str
    message: str  # only filled for the viewer's own rows


@dataclass(frozen=True)
class WindowResults:
    window: RequestWindow
    commitment: str
    seed: str | None  # revealed seed (None while the window is open)
    seed_matches: bool | None  # sha256(seed) == commitment
    draw_matches: bool | None  # re-running the draw from the trace gives the published outcome
    my_label: str | None
    mine: list[SlotRequest]
    rows: list[ResultRow] = field(default_factory=list)
    granted: int = 0
    waitlisted: int = 0
    rejected: int = 0
    trace_public: bool = True  # False for windows drawn under the old, reversible labels


def trace_is_public(window: RequestWindow) -> bool:
    """A drawn window's trace is published unless its labels are the old reversible ones."""
    return window.label_scheme != LEGACY_SCHEME


def published_trace(window: RequestWindow, viewer: Member) -> dict[str, Any] | None:
    """The trace as `viewer` may see it: after the close; a legacy window's only to staff."""
    if window.trace is None or window.revealed_seed is None:
        return None
    if not trace_is_public(window) and not viewer.is_staff:
        return None
    return window.trace


def window_results(window: RequestWindow, viewer: Member) -> WindowResults:
    mine = [r for r in window.requests if r.member_id == viewer.id]
    labels = {p.member_id: p.label for p in window.participants}
    if window.status != WindowStatus.CLOSED or window.revealed_seed is None:
        return WindowResults(window, window.commitment, None, None, None, labels.get(viewer.id), mine)
    seed_ok = lottery.verify(window.revealed_seed, window.commitment)
    draw_ok = draw_matches(window)
    rows = []
    for r in sorted(window.requests, key=lambda r: (r.start_at, r.round_no or 0, r.id)):
        if r.status == RequestStatus.WITHDRAWN:
            continue
        is_mine = r.member_id == viewer.id
        rows.append(ResultRow(r.id, r.start_at, r.end_at, "you" if is_mine else labels.get(r.member_id, "a member"),
                              is_mine, r.rank, r.round_no, r.factor, r.status, r.reason,
                              r.message if is_mine else ""))
    count = {s: sum(1 for x in rows if x.status == s) for s in ("granted", "waitlisted", "rejected")}
    return WindowResults(window, window.commitment, window.revealed_seed, seed_ok, draw_ok, labels.get(viewer.id),
                         mine, rows, count["granted"], count["waitlisted"], count["rejected"], trace_is_public(window))


def draw_matches(window: RequestWindow) -> bool | None:
    """Whether re-running the published trace with the revealed seed gives the published outcomes."""
    if not window.trace or not window.revealed_seed:
        return None
    rerun = rerun_allocation(window.trace, window.revealed_seed)
    published = {o["id"]: (o["status"], o["reason"]) for o in window.trace["outcomes"]}
    return {o.request.id: (o.status.value, o.reason.value) for o in rerun.outcomes} == published


# --- timed work (fablab/worker/jobs.py; pages catch up through fablab/services/catch_up.py) ---------------


def close_due_windows(now: datetime) -> int:
    """Close (allocate) every open window whose close time passed; returns how many. Idempotent."""
    closed = 0
    for w in db.session.scalars(select(RequestWindow).where(RequestWindow.status == WindowStatus.OPEN.value,
                                                            RequestWindow.closes_at <= now)).all():
        close_window(w, now)
        closed += 1
    return closed
