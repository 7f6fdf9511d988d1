"""The waitlist: members wait for a slot or for any free time of a machine; time that becomes free
(a cancel, an early end, a no-show, a granted request the rules refused) is offered to them in
fair-share order with a hold time, first-come close to the start; claiming an offer books it. The
reaction to freed time is `on_time_freed` (wired in fablab/wiring.py); the timed work is
`offer_no_shows(now)`, `expire_offers(now)` and `offer_freed_time(now)`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select

from ..database import write_transaction
from ..domain import policy as pol
from ..domain import waitlist as wl
from ..domain.intervals import Interval
from ..extensions import db
from ..models import Booking, BookingKind, BookingStatus, Machine, Member
from ..models.scheduling import (
    EntryStatus,
    FreedTime,
    OfferStatus,
    SchedulingSettings,
    WaitlistEntry,
    WaitlistOffer,
)
from ..models.types import utcnow
from . import bookings as booking_service
from . import event_data, lab_events
from .fairshare_data import fair_share_for, settings_for
from .scheduling_common import SchedulingError
from .scheduling_common import is_postgres as _pg
from .scheduling_common import lab_tz as _tz

# --- entries, freed time and offers ----------------------------------------------------------------------


def join_waitlist(member: Member, machine: Machine, *, kind: str = "slot", start: datetime | None = None,
                  end: datetime | None = None, min_hours: float = 0.0, now: datetime | None = None) -> WaitlistEntry:
    """Wait for one slot (`kind="slot"`, start..end), or for any free time this week (`kind="any"`;
    start..end default to now..the end of the lab's week)."""
    now = now or utcnow()
    if kind not in ("slot", "any"):
        raise SchedulingError("bad_kind", "kind must be 'slot' or 'any'")
    if kind == "any":
        _, week_end = pol.local_week_bounds(now, _tz())
        start, end = max(start or now, now), end or week_end
    if start is None or end is None:
        raise SchedulingError("missing_time", "A slot needs a start and an end.", 400)
    if end <= start or end <= now:
        raise SchedulingError("bad_time", "The time must end after it starts, in the future.")
    if end - start > timedelta(days=14):
        raise SchedulingError("bad_time", "Wait for at most two weeks at once.")
    if min_hours < 0:
        raise SchedulingError("bad_time", "min_hours must not be negative")
    qual = booking_service.member_context(member, machine, now).qualification
    if booking_service.policy_for(machine).qualification_required and qual.state != "valid":
        raise SchedulingError("not_qualified", f"You need a qualification for {machine.name} first.", 403)
    with write_transaction():
        dup = db.session.scalar(select(WaitlistEntry).where(
            WaitlistEntry.member_id == member.id, WaitlistEntry.machine_id == machine.id,
            WaitlistEntry.status == EntryStatus.ACTIVE.value, WaitlistEntry.kind == kind,
            WaitlistEntry.start_at == start, WaitlistEntry.end_at == end))
        if dup is not None:
            raise SchedulingError("duplicate", "You are already waiting for this.", 409)
        entry = WaitlistEntry(member_id=member.id, machine_id=machine.id, kind=kind, start_at=start, end_at=end,
                              min_hours=min_hours, status=EntryStatus.ACTIVE.value, joined_at=now)
        db.session.add(entry)
        db.session.flush()
    return entry


def leave_waitlist(member: Member, entry_id: int) -> None:
    entry = db.session.get(WaitlistEntry, entry_id)
    if entry is None or entry.member_id != member.id:
        raise SchedulingError("not_found", "No such waitlist entry of yours.", 404)
    with write_transaction():
        entry.status = EntryStatus.LEFT.value
        for o in db.session.scalars(select(WaitlistOffer).where(WaitlistOffer.entry_id == entry.id,
                                                                WaitlistOffer.status == OfferStatus.OPEN.value)):
            o.status = OfferStatus.DECLINED.value


def member_waitlist(member: Member, now: datetime) -> list[WaitlistEntry]:
    return list(db.session.scalars(select(WaitlistEntry).where(
        WaitlistEntry.member_id == member.id, WaitlistEntry.status == EntryStatus.ACTIVE.value,
        WaitlistEntry.end_at > now).order_by(WaitlistEntry.start_at)))


def member_offers(member: Member, now: datetime) -> list[WaitlistOffer]:
    return list(db.session.scalars(select(WaitlistOffer).where(
        WaitlistOffer.member_id == member.id, WaitlistOffer.status == OfferStatus.OPEN.value,
        WaitlistOffer.expires_at > now).order_by(WaitlistOffer.start_at)))


def waitlist_position(entry: WaitlistEntry, now: datetime) -> int:
    """1-based place among the machine's active entries for overlapping time, in offer order (F first)."""
    others = db.session.scalars(select(WaitlistEntry).where(
        WaitlistEntry.machine_id == entry.machine_id, WaitlistEntry.status == EntryStatus.ACTIVE.value,
        WaitlistEntry.end_at > max(now, entry.start_at), WaitlistEntry.start_at < entry.end_at))
    entries = [_entry(e) for e in others]
    factors = fair_share_for(entry.machine, now).with_members([e.member_id for e in entries]).factors()
    ordered = wl.order_entries(entries, factors)
    return next((i for i, e in enumerate(ordered, 1) if e.id == entry.id), len(ordered))


def _entry(e: WaitlistEntry) -> wl.WaitlistEntry:
    return wl.WaitlistEntry(e.id, e.member_id, e.machine_id, e.start_at, e.end_at, e.joined_at,
                            wl.EntryKind(e.kind), e.min_hours, e.sequence)


def _offer(o: WaitlistOffer) -> wl.Offer:
    closed = o.status != OfferStatus.OPEN
    return wl.Offer(o.entry_id, o.member_id, o.machine_id, o.start_at, o.end_at, o.offered_at, o.expires_at,
                    o.first_come, declined=closed)


def record_freed(machine: Machine, start: datetime, end: datetime, now: datetime,
                 source_booking: Booking | None = None) -> FreedTime | None:
    """Store freed time if anybody waits for part of it, and make the first offers."""
    if end <= max(start, now):
        return None
    waiting = db.session.scalar(select(WaitlistEntry.id).where(
        WaitlistEntry.machine_id == machine.id, WaitlistEntry.status == EntryStatus.ACTIVE.value,
        WaitlistEntry.start_at < end, WaitlistEntry.end_at > max(start, now)).limit(1))
    if waiting is None:
        return None
    with write_transaction():
        ft = FreedTime(machine_id=machine.id, start_at=start, end_at=end, created_at=now,
                       source_booking_id=source_booking.id if source_booking else None)
        db.session.add(ft)
        db.session.flush()
    make_offers(ft, now)
    return ft


def on_time_freed(machine: Machine, interval: Interval, now: datetime) -> None:
    """Time given back by a booking change is offered to whoever waits for it (wired in fablab/wiring.py).
    Runs after the booking change committed: a failure here must not turn a done cancel into an error."""
    try:
        record_freed(machine, interval.start, interval.end, now)
    except Exception:  # noqa: BLE001
        db.session.rollback()
        current_app.logger.exception("waitlist offers for freed time on %s failed", machine.slug)


def _pending_offers(ft: FreedTime, now: datetime, settings: SchedulingSettings) -> list[wl.Offer] | None:
    """The offers to make for `ft` now; None when nobody waits for it any more (the time is simply free)."""
    entries = [_entry(e) for e in db.session.scalars(select(WaitlistEntry).where(
        WaitlistEntry.machine_id == ft.machine_id, WaitlistEntry.status == EntryStatus.ACTIVE.value,
        WaitlistEntry.start_at < ft.end_at, WaitlistEntry.end_at > now))]
    if not entries:
        return None
    factors = fair_share_for(ft.machine, now, settings).with_members([e.member_id for e in entries]).factors()
    domain_freed = wl.FreedInterval(ft.machine_id, max(ft.start_at, now), ft.end_at)
    return wl.next_offers(domain_freed, entries, factors, now, timedelta(minutes=settings.hold_minutes),
                          timedelta(minutes=settings.first_come_minutes), [_offer(o) for o in ft.offers])


def make_offers(freed: FreedTime, now: datetime) -> list[WaitlistOffer]:
    """Offer `freed` to the next member(s) of the waitlist (F order, held; first-come near the start).
    Reads first and writes only when something changes, so pages may call it on every read."""
    settings = settings_for(freed.machine)
    if freed.done:
        return []
    stale = freed.end_at <= now or any(o.status == OfferStatus.OPEN and o.expires_at <= now for o in freed.offers)
    if not stale and _pending_offers(freed, now, settings) == []:
        return []
    made: list[WaitlistOffer] = []
    with write_transaction():
        stmt = select(FreedTime).where(FreedTime.id == freed.id)
        if _pg():
            stmt = stmt.with_for_update(of=FreedTime)
        ft = db.session.scalar(stmt.execution_options(populate_existing=True))
        if ft is None or ft.done:
            return []
        if ft.end_at <= now:
            ft.done = True
            return []
        for o in ft.offers:
            if o.status == OfferStatus.OPEN and o.expires_at <= now:
                o.status, o.decided_at = OfferStatus.EXPIRED.value, now
        new = _pending_offers(ft, now, settings)
        if new is None:
            ft.done = True  # nobody waits: the time is just free for anyone to book
            return []
        for n in new:
            row = WaitlistOffer(freed_id=ft.id, entry_id=n.entry_id, member_id=n.member_id, machine_id=n.machine_id,
                                start_at=n.start, end_at=n.end, offered_at=n.offered_at, expires_at=n.expires_at,
                                first_come=n.first_come, status=OfferStatus.OPEN.value)
            db.session.add(row)
            made.append(row)
        db.session.flush()
        for row in made:
            lab_events.publish(event_data.offer(row, now))
    return made


def _my_offer(member: Member, offer_id: int) -> WaitlistOffer:
    offer = db.session.get(WaitlistOffer, offer_id)
    if offer is None or offer.member_id != member.id:
        raise SchedulingError("not_found", "No such offer of yours.", 404)
    return offer


def claim_offer(member: Member, offer_id: int, now: datetime | None = None) -> Booking:
    """Take an offered time: books it through the booking rules (first claim wins in first-come mode)."""
    now = now or utcnow()
    offer = _my_offer(member, offer_id)
    if offer.status != OfferStatus.OPEN or not _offer(offer).is_open(now):
        raise SchedulingError("offer_closed", "This offer is no longer open.", 409)
    machine = offer.machine
    policy = booking_service.policy_for(machine)
    start = max(offer.start_at, pol.ceil_to_slot(policy, now, _tz()))
    end = min(offer.end_at, start + policy.max_length)
    end = pol.floor_to_slot(policy, end, _tz()) if end < offer.end_at else end
    if end - start < policy.min_length:
        raise SchedulingError("offer_closed", "Too little of the offered time is left to book.", 409)
    try:
        booking = booking_service.create_booking(member, machine, start, end, source="waitlist", now=now)
    except booking_service.BookingRejected as exc:
        if exc.code in ("overlap", "buffer"):
            with write_transaction():
                o = db.session.get(WaitlistOffer, offer.id)
                if o is not None and o.status == OfferStatus.OPEN:
                    o.status, o.decided_at = OfferStatus.TAKEN.value, now
            raise SchedulingError("taken", "Somebody claimed this time first.", 409) from None
        raise SchedulingError(exc.code, exc.message, exc.status) from None
    leftovers: list[tuple[datetime, datetime]] = []
    with write_transaction():
        o = db.session.get(WaitlistOffer, offer.id)
        assert o is not None
        o.status, o.decided_at, o.booking_id = OfferStatus.CLAIMED.value, now, booking.id
        o.entry.status = EntryStatus.FULFILLED.value
        ft = o.freed
        for other in ft.offers:
            if other.id != o.id and other.status == OfferStatus.OPEN and other.start_at < end and start < other.end_at:
                other.status, other.decided_at = OfferStatus.TAKEN.value, now
        ft.done = True
        leftovers = [(a, b) for a, b in ((max(ft.start_at, now), start), (end, ft.end_at)) if b > a]
    for a, b in leftovers:
        record_freed(machine, a, b, now)
    return booking


def decline_offer(member: Member, offer_id: int, now: datetime | None = None) -> None:
    now = now or utcnow()
    offer = _my_offer(member, offer_id)
    with write_transaction():
        if offer.status == OfferStatus.OPEN:
            offer.status, offer.decided_at = OfferStatus.DECLINED.value, now
    make_offers(offer.freed, now)


# --- timed work (fablab/worker/jobs.py; pages catch up through fablab/services/catch_up.py) ---------------


def offer_no_shows(now: datetime) -> int:
    """A confirmed booking whose check-in grace passed unused is released: offer its rest to the waitlist.
    Returns how many bookings were offered; each is offered once (its freed time remembers it)."""
    machine_ids = list(db.session.scalars(select(WaitlistEntry.machine_id).where(
        WaitlistEntry.status == EntryStatus.ACTIVE.value, WaitlistEntry.end_at > now).distinct()))
    count = 0
    for mid in machine_ids:
        machine = db.session.get(Machine, mid)
        if machine is None:
            continue
        policy = booking_service.policy_for(machine)
        already = select(FreedTime.source_booking_id).where(FreedTime.source_booking_id.is_not(None))
        rows = db.session.scalars(select(Booking).where(
            Booking.machine_id == mid, Booking.kind == BookingKind.NORMAL.value,
            Booking.status.in_([BookingStatus.CONFIRMED.value, BookingStatus.NO_SHOW.value]),
            Booking.checked_in_at.is_(None), Booking.start_at < now - policy.checkin_grace, Booking.end_at > now,
            Booking.id.not_in(already))).all()
        for b in rows:
            if record_freed(machine, now, b.end_at, now, source_booking=b) is not None:
                count += 1
    return count


def expire_offers(now: datetime) -> int:
    """Open offers whose hold time ran out are expired; returns how many. Writes only when some are due."""
    expired = db.session.scalars(select(WaitlistOffer).where(WaitlistOffer.status == OfferStatus.OPEN.value,
                                                             WaitlistOffer.expires_at <= now)).all()
    if not expired:
        return 0
    with write_transaction():
        for o in expired:
            if o.status == OfferStatus.OPEN:
                o.status, o.decided_at = OfferStatus.EXPIRED.value, now
    return len(expired)


def offer_freed_time(now: datetime) -> int:
    """Make the next offers for every freed time still open (after expiries and declines); returns how
    many offers were made. Reads first and writes only when something changes."""
    made = 0
    for ft in db.session.scalars(select(FreedTime).where(FreedTime.done.is_(False))).all():
        made += len(make_offers(ft, now))
    return made
