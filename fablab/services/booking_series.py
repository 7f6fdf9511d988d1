"""Recurring bookings for staff: courses, open-lab evenings, weekly maintenance, a member's weekly slot.

Every occurrence is checked by the booking core, as a single booking or block would be: the preview runs
the same rules (booking_rules.check_booking with the machine's bookings, plus the occurrences before it
that would be created, so a quota fills up along the series), and saving calls bookings.create_booking /
create_block for each occurrence. Saving creates the occurrences that pass and records the others on the
series with their reason; nothing is saved before the steward has seen the preview. A course is the lab's
own time: it may be planned past the booking horizon (every other rule applies); a member's booking may not.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, time
from typing import Any

from sqlalchemy import select

from ..database import write_transaction
from ..domain import booking_rules as rules
from ..domain import policy as pol
from ..domain.series import Occurrence, SeriesSpec, occurrences, rest_of_series
from ..extensions import db
from ..models import ACTIVE_STATUSES, Booking, BookingKind, BookingStatus, Machine, Member
from ..models.series import BookingSeries, SeriesKind, SeriesStatus
from . import bookings as svc

KIND_LABELS = {
    SeriesKind.BOOKING.value: "Booking for a member",
    SeriesKind.COURSE.value: "Course or open-lab evening",
    SeriesKind.MAINTENANCE.value: "Maintenance block",
}


class SeriesChanged(Exception):
    """Between the preview and the save, an occurrence changed from OK to a conflict (or back)."""

    def __init__(self, items: list[PreviewItem]) -> None:
        super().__init__("The occurrences changed since the preview.")
        self.items = items


@dataclass(frozen=True)
class SeriesPlan:
    machine: Machine
    kind: SeriesKind
    member: Member  # whose bookings: the member (kind booking), else the steward planning it
    actor: Member
    spec: SeriesSpec
    title: str = ""
    displace: bool = False  # maintenance: cancel member bookings in the way (they are told why)


@dataclass
class PreviewItem:
    occurrence: Occurrence
    violations: list[rules.RuleViolation] = field(default_factory=list)
    displaces: list[tuple[datetime, datetime, str]] = field(default_factory=list)  # bookings a block cancels

    @property
    def ok(self) -> bool:
        return not self.violations


def fingerprint(items: list[PreviewItem]) -> str:
    """Which occurrences would be created: the preview's promise, checked again when saving."""
    return ",".join(str(i.occurrence.index) for i in items if i.ok)


def _policy(plan: SeriesPlan) -> pol.BookingPolicy:
    policy = svc.policy_for(plan.machine)
    if plan.kind == SeriesKind.COURSE:
        policy = replace(policy, horizon_days=svc.PLAN_AHEAD_DAYS)
    return policy


def _preview_bookings(plan: SeriesPlan, occs: list[Occurrence], now: datetime) -> list[PreviewItem]:
    tz = svc.lab_tz()
    machine, member = plan.machine, plan.member
    policy = _policy(plan)
    lo = min(pol.local_week_bounds(occs[0].start, tz)[0], now) - policy.buffer
    hi = pol.local_week_bounds(occs[-1].end, tz)[1] + policy.buffer
    mb = svc.load_machine_bookings(machine, lo, hi, now, member_id=member.id, near=(lo, hi))
    ctx = svc.member_context(member, machine, now)
    existing = list(mb.existing)
    items = []
    for occ in occs:
        item = PreviewItem(occ)
        if plan.kind == SeriesKind.BOOKING:  # create_booking guards normal bookings only
            why = svc.guard_reason(machine, occ.start, occ.end, now)
            if why:
                item.violations.append(rules.RuleViolation("request_window", why, {}))
        item.violations += rules.check_booking(
            policy, rules.BookingRequest(machine.id, member.id, occ.start, occ.end), existing, ctx, now, tz,
            blocks=mb.blocks, machine_out_of_order=machine.status != "available")
        if item.ok:  # the later occurrences see this one, as they will when it is created
            existing.append(rules.ExistingBooking(f"new-{occ.index}", machine.id, member.id, occ.start, occ.end))
        items.append(item)
    return items


def _preview_blocks(plan: SeriesPlan, occs: list[Occurrence], now: datetime) -> list[PreviewItem]:
    tz = svc.lab_tz()
    rows = list(db.session.execute(
        select(Booking.start_at, Booking.end_at, Booking.status, Booking.kind, Member.name)
        .join(Member, Member.id == Booking.member_id)
        .where(Booking.machine_id == plan.machine.id,
               Booking.status.in_([s.value for s in (*ACTIVE_STATUSES, BookingStatus.COMPLETED)]),
               Booking.end_at > occs[0].start, Booking.start_at < occs[-1].end)
        .order_by(Booking.start_at)))
    items = []
    for occ in occs:
        item = PreviewItem(occ)
        hits = [r for r in rows if r.start_at < occ.end and occ.start < r.end_at]
        done = [r for r in hits if r.status == BookingStatus.COMPLETED]
        blocks = [r for r in hits if r.kind == BookingKind.MAINTENANCE and r.status != BookingStatus.COMPLETED]
        booked = [r for r in hits if r.kind != BookingKind.MAINTENANCE and r.status != BookingStatus.COMPLETED]
        if done:
            item.violations.append(rules.RuleViolation(
                "overlaps_finished_use", "The block would cover time that has already been used "
                f"({done[0].start_at.astimezone(tz):%H:%M}–{done[0].end_at.astimezone(tz):%H:%M}).", {}))
        if blocks:
            item.violations.append(rules.RuleViolation(
                "maintenance", f"Already blocked for maintenance {blocks[0].start_at.astimezone(tz):%H:%M}–"
                f"{blocks[0].end_at.astimezone(tz):%H:%M}.", {}))
        if booked and not plan.displace:
            first = booked[0]
            item.violations.append(rules.RuleViolation(
                "booked", f"Booked by {first.name} {first.start_at.astimezone(tz):%H:%M}–"
                f"{first.end_at.astimezone(tz):%H:%M}" + (f" and {len(booked) - 1} more" if len(booked) > 1 else "")
                + "; tick “cancel bookings in the way” to take the time anyway.", {}))
        elif booked:
            item.displaces = [(r.start_at, r.end_at, r.name) for r in booked]
        items.append(item)
    return items


def preview(plan: SeriesPlan, now: datetime) -> list[PreviewItem]:
    """Each occurrence with its refusals (empty = it would be created). Raises SeriesError for a series
    that cannot be built (no occurrence, too many, end before start)."""
    occs = occurrences(plan.spec, svc.lab_tz(), now.astimezone(svc.lab_tz()).date())
    if plan.kind == SeriesKind.MAINTENANCE:
        return _preview_blocks(plan, occs, now)
    return _preview_bookings(plan, occs, now)


def _create(plan: SeriesPlan, series_id: int, occ: Occurrence, now: datetime) -> None:
    if plan.kind == SeriesKind.MAINTENANCE:
        svc.create_block(plan.machine, plan.actor, occ.start, occ.end, plan.title or "Weekly maintenance", now,
                         series_id=series_id, refuse_if_booked=not plan.displace)
    else:
        kind = BookingKind.NORMAL if plan.kind == SeriesKind.BOOKING else BookingKind.INDUCTION
        svc.create_booking(plan.member, plan.machine, occ.start, occ.end, source="series", kind=kind,
                           note=plan.title, now=now, series_id=series_id, plan_ahead=plan.kind == SeriesKind.COURSE)


def _skip(occ: Occurrence, code: str, message: str) -> dict[str, Any]:
    return {"start": occ.start.isoformat(), "end": occ.end.isoformat(), "code": code, "message": message}


def save(plan: SeriesPlan, now: datetime, expected: str | None) -> BookingSeries:
    """Create the series and every occurrence that passes; the others are listed on the series with
    their reason. `expected` is the preview's fingerprint: if the answer changed since, nothing is saved
    and SeriesChanged carries the new preview."""
    items = preview(plan, now)
    if expected is not None and expected != fingerprint(items):
        raise SeriesChanged(items)
    spec = plan.spec
    with write_transaction():
        series = BookingSeries(machine_id=plan.machine.id, kind=plan.kind.value, member_id=plan.member.id,
                               created_by_id=plan.actor.id, title=plan.title[:200], weekday=spec.weekday,
                               start_minute=spec.at.hour * 60 + spec.at.minute, minutes=spec.minutes,
                               every_weeks=spec.every_weeks, first_day=spec.first_day, until=spec.until,
                               status=SeriesStatus.ACTIVE.value, skipped=[], created_at=now)
        db.session.add(series)
    skipped = []
    for item in items:
        if not item.ok:
            v = item.violations[0]
            skipped.append(_skip(item.occurrence, v.code, " ".join(x.message for x in item.violations)))
            continue
        try:
            _create(plan, series.id, item.occurrence, now)
        except svc.BookingRejected as exc:  # taken between the check and the write
            skipped.append(_skip(item.occurrence, exc.code, exc.message))
    with write_transaction():
        series.skipped = skipped
    return series


# --- reading and cancelling ----------------------------------------------------------------------------


def list_series() -> list[BookingSeries]:
    return list(db.session.scalars(select(BookingSeries).order_by(BookingSeries.created_at.desc())))


def get_series(series_id: int) -> BookingSeries | None:
    return db.session.get(BookingSeries, series_id)


def occurrences_of(series: BookingSeries) -> list[Booking]:
    return list(db.session.scalars(select(Booking).where(Booking.series_id == series.id).order_by(Booking.start_at)))


def spec_of(series: BookingSeries) -> SeriesSpec:
    return SeriesSpec(series.weekday, time(series.start_minute // 60, series.start_minute % 60), series.minutes,
                      series.every_weeks, series.first_day, series.until)


def occurrence(series: BookingSeries, booking_id: int) -> Booking | None:
    b = db.session.get(Booking, booking_id)
    if b is None or b.series_id != series.id:
        return None
    return b


def cancellable(b: Booking, now: datetime) -> bool:
    return b.status in ACTIVE_STATUSES and b.end_at > now


def cancel_from(series: BookingSeries, first: Booking, actor: Member, reason: str, now: datetime,
                rest: bool) -> list[Booking]:
    """Cancel one occurrence, or it and every later one (`rest`). Each goes through the booking core
    (a running one ends now; someone else's needs a reason); raises BookingRejected/NotAllowed for the
    first that is refused, after the ones before it were cancelled."""
    rows = occurrences_of(series)
    chosen = [first]
    if rest:
        ids = set(rest_of_series([(b.id, b.start_at) for b in rows], first.start_at))
        chosen = [b for b in rows if b.id in ids and cancellable(b, now)]
    elif not cancellable(first, now):
        raise svc.BookingRejected([rules.RuleViolation(
            "booking_not_active", f"This occurrence is already {first.status.replace('_', ' ')} or over.", {})])
    done = []
    for b in chosen:
        svc.cancel_booking(b, actor, reason, now)
        done.append(b)
    if not any(cancellable(b, now) for b in occurrences_of(series)):
        with write_transaction():
            series.status = SeriesStatus.CANCELLED.value
    return done


def skipped_of(series: BookingSeries) -> list[tuple[datetime | str, str]]:
    """The occurrences not created, with their reason; a stored start that does not parse is shown raw."""
    out: list[tuple[datetime | str, str]] = []
    for s in series.skipped or []:
        raw = str(s.get("start", "")) if isinstance(s, dict) else str(s)
        try:
            start: datetime | str = datetime.fromisoformat(raw)
        except ValueError:
            start = raw
        out.append((start, str(s.get("message", "")) if isinstance(s, dict) else ""))
    return out
