"""The data behind fair-share factors: who may use a machine, what they used, what they contributed.

`usage_records` is the one place that turns stored history into `UsageRecord`s; when usage sessions from
the machines arrive (the ingest feature), extend it there and every F follows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select

from ..domain import fairshare as fs
from ..domain import policy as pol
from ..extensions import db
from ..models import Booking, BookingKind, BookingStatus, Machine, Member, Qualification
from ..models.scheduling import EffortTask, SchedulingSettings, TaskCompletion
from ..models.usage import UsageSession
from . import bookings as booking_service

# Usage older than this many half-lives weighs under 0.4 %: not worth loading.
HORIZON_HALF_LIVES = 8
BONUS_LOOKBACK = timedelta(days=90)  # contributions counted for the optional share bonus
FULL_BONUS_HOURS = 20.0  # contributed hours giving the full (capped) bonus


def usage_records(machine: Machine, since: datetime, now: datetime) -> list[fs.UsageRecord]:
    """What members used of `machine` from `since` on, and the time they hold from now on.

    Completed bookings count at the time used; running (checked-in) and upcoming confirmed bookings at
    the time they hold (dated at their end, so upcoming time counts fully: a member who already holds
    next week's slots is not first in line for more); a no-show (recorded, or a confirmed booking whose
    check-in grace passed unused) at its reserved length. Maintenance and induction bookings never count,
    nor does cancelled time.
    """
    grace = booking_service.policy_for(machine).checkin_grace
    rows = db.session.scalars(select(Booking).where(
        Booking.machine_id == machine.id,
        Booking.kind == BookingKind.NORMAL.value,
        Booking.status.in_([BookingStatus.COMPLETED.value, BookingStatus.CHECKED_IN.value,
                            BookingStatus.NO_SHOW.value, BookingStatus.RELEASED.value,
                            BookingStatus.CONFIRMED.value]),
        Booking.end_at > since))
    out = []
    for b in rows:
        reserved_end = max(b.booked_end_at or b.end_at, b.end_at)
        if b.status in (BookingStatus.NO_SHOW, BookingStatus.RELEASED):
            out.append(fs.UsageRecord.from_interval(b.member_id, b.start_at, reserved_end))
        elif b.status == BookingStatus.CONFIRMED and b.checked_in_at is None and now > b.start_at + grace:
            out.append(fs.UsageRecord.from_interval(b.member_id, b.start_at, reserved_end))  # no-show
        else:
            out.append(fs.UsageRecord.from_interval(b.member_id, b.start_at, b.end_at))
    # What machines reported beyond bookings: unbooked use and overruns (booked time is counted above).
    for member_id, start, end, unbooked, overrun_min in db.session.execute(
            select(UsageSession.member_id, UsageSession.start_at, UsageSession.end_at, UsageSession.unbooked,
                   UsageSession.overrun_minutes).where(
                UsageSession.machine_id == machine.id, UsageSession.counts_as_usage.is_(True),
                UsageSession.member_id.is_not(None), UsageSession.end_at.is_not(None), UsageSession.end_at > since)):
        assert end is not None  # the query keeps ended sessions only
        if unbooked:
            out.append(fs.UsageRecord.from_interval(member_id, start, end))
        elif overrun_min > 0:
            out.append(fs.UsageRecord(member_id, end, overrun_min / 60))
    return out


def population(machine: Machine, now: datetime) -> dict[int, float]:
    """Raw shares (Member.share) of the active members who may use the machine now."""
    policy = booking_service.policy_for(machine)
    stmt = select(Member.id, Member.share).where(Member.active.is_(True))
    if policy.qualification_required:
        quals = select(Qualification.member_id).where(
            or_(Qualification.expires_at.is_(None), Qualification.expires_at > now),
            Qualification.machine_id == machine.id if machine.qualification_scope == "machine" else
            or_(Qualification.machine_id == machine.id, Qualification.machine_type_id == machine.type_id))
        stmt = stmt.where(Member.id.in_(quals))
    return {mid: float(share) for mid, share in db.session.execute(stmt)}


def contributed_hours(since: datetime | None = None, until: datetime | None = None,
                      member_ids: Iterable[int] | None = None) -> dict[int, float]:
    """Credited effort hours per member for confirmed tasks completed in [since, until) (unconfirmed
    credits count nowhere: not in the ledger, not in the share bonus)."""
    stmt = (select(TaskCompletion.member_id, TaskCompletion.credited_hours)
            .join(EffortTask, EffortTask.id == TaskCompletion.task_id).where(EffortTask.confirmed_at.is_not(None)))
    if since is not None:
        stmt = stmt.where(TaskCompletion.completed_at >= since)
    if until is not None:
        stmt = stmt.where(TaskCompletion.completed_at < until)
    if member_ids is not None:
        stmt = stmt.where(TaskCompletion.member_id.in_(list(member_ids)))
    totals: dict[int, float] = {}
    for mid, hours in db.session.execute(stmt):
        totals[mid] = totals.get(mid, 0.0) + float(hours)
    return totals


def settings_for(machine: Machine) -> SchedulingSettings:
    """The machine's scheduling settings (defaults, not yet stored, when the lab never edited them)."""
    found = db.session.get(SchedulingSettings, machine.id)
    if found is not None:
        return found
    return SchedulingSettings(machine_id=machine.id, open_weekday=0, open_time="00:00", close_weekday=3,
                              close_time="20:00", auto_open=False, request_minutes=120, quota_hours=None,
                              quota_slots=None, band_width=0.1, half_life_days=14.0, bonus_enabled=False,
                              hold_minutes=15, first_come_minutes=120)


def half_life(settings: SchedulingSettings) -> timedelta:
    return timedelta(days=settings.half_life_days or 14.0)


def fair_share_for(machine: Machine, now: datetime, settings: SchedulingSettings | None = None) -> fs.FairShareState:
    """Decayed usage and normalised shares of everyone who may use `machine` (plus anyone with usage)."""
    settings = settings or settings_for(machine)
    hl = half_life(settings)
    usages = usage_records(machine, now - hl * HORIZON_HALF_LIVES, now)
    # Keyed by the domain's member ids (Mapping is invariant in its key: a dict[int, float] would not do).
    shares: dict[fs.MemberId, float] = {m: s for m, s in population(machine, now).items()}
    bonus: dict[fs.MemberId, float] | None = None
    if settings.bonus_enabled:
        hours = contributed_hours(since=now - BONUS_LOOKBACK, until=now)
        bonus = {m: fs.contribution_bonus(h, FULL_BONUS_HOURS) for m, h in hours.items()}
    return fs.fair_share_state(usages, shares, now, hl, bonus)


@dataclass(frozen=True)
class FactorView:
    """One member's F on one machine, with what it is made of and what it means."""

    machine: Machine
    factor: float
    usage_fraction: float  # U: part of all recent (decayed) use
    share: float  # S: normalised share
    recent_hours: float  # the member's decayed usage, in hours
    explanation: str
    bonus: float = 0.0  # share bonus from contributions (0 unless the lab switched it on)


def factor_view(member: Member, machine: Machine, now: datetime) -> FactorView:
    settings = settings_for(machine)
    state = fair_share_for(machine, now, settings).with_members([member.id])
    f = state.factor(member.id)
    u = state.usage_fraction(member.id)
    s = state.shares.get(member.id, 0.0)
    bonus = 0.0
    if settings.bonus_enabled:
        hours = contributed_hours(since=now - BONUS_LOOKBACK, until=now, member_ids=[member.id])
        bonus = fs.contribution_bonus(hours.get(member.id, 0.0), FULL_BONUS_HOURS)
    return FactorView(machine, f, u, s, state.usage.get(member.id, 0.0),
                      fs.explain_factor(f, u, s, half_life(settings)), bonus)


def factor_views(member: Member, machines: Iterable[Machine], now: datetime) -> list[FactorView]:
    return [factor_view(member, m, now) for m in machines]


def local_week(now: datetime) -> tuple[datetime, datetime]:
    return pol.local_week_bounds(now, booking_service.lab_tz())
