"""Find a time: the earliest slots of a given length on any of several machines, for one member.

Built on availability.free_intervals (opening hours, bookings and buffers, maintenance, horizon, the
slot grid) and booking_rules.member_violations (qualification, day/week quotas); the future-bookings
quota and the length limits rule a machine out as a whole. `refuse(start, end)` is the service's hook for
rules that live elsewhere (request windows): a reason string, or None. A slot this returns passes every
rule of check_booking, the property the tests check.

Per machine, each free interval yields at most its earliest fitting start: "10:00, 10:30, 11:00 on the
same printer" is one answer, not three.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo

from fablab.domain.availability import free_intervals
from fablab.domain.booking_rules import (
    ExistingBooking,
    MemberContext,
    is_open_booking,
    member_violations,
)
from fablab.domain.intervals import Interval, require_aware
from fablab.domain.policy import BookingPolicy, ceil_to_slot, floor_to_slot, horizon_end

Refuse = Callable[[datetime, datetime], str | None]
MAX_TRIES_PER_INTERVAL = 400  # starts examined in one free interval (a fortnight of 30-min slots is 672)


@dataclass(frozen=True)
class Candidate:
    """One machine as find-a-time sees it."""

    machine_id: Hashable
    policy: BookingPolicy
    existing: Sequence[ExistingBooking]
    blocks: Sequence[Interval]
    member: MemberContext
    out_of_order: bool = False
    refuse: Refuse | None = None


@dataclass(frozen=True, slots=True)
class Slot:
    machine_id: Hashable
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class Excluded:
    """A machine that can offer nothing, and why (shown under the results)."""

    machine_id: Hashable
    code: str
    message: str


@dataclass
class Found:
    slots: list[Slot] = field(default_factory=list)
    excluded: list[Excluded] = field(default_factory=list)
    refused: dict[Hashable, str] = field(default_factory=dict)  # a reason some starts were passed over


def _minutes(m: float) -> str:
    h, mm = divmod(int(round(m)), 60)
    return f"{h} h {mm} min" if h and mm else f"{h} h" if h else f"{mm} min"


def _machine_wide(c: Candidate, length: timedelta, now: datetime) -> Excluded | None:
    p = c.policy
    if c.out_of_order:
        return Excluded(c.machine_id, "machine_unavailable", "Out of order until it is repaired.")
    if length > p.max_length:
        return Excluded(c.machine_id, "too_long",
                        f"Max {_minutes(p.max_minutes)} per booking on this machine.")
    if length < p.min_length:
        return Excluded(c.machine_id, "too_short",
                        f"Min {_minutes(p.min_minutes)} per booking on this machine.")
    if p.qualification_required and c.member.qualification.state != "valid":
        code = "not_qualified" if c.member.qualification.state == "none" else "qualification_expired"
        return Excluded(c.machine_id, code, "You need a qualification (an induction by a steward) for this machine."
                        if code == "not_qualified" else "Your qualification for this machine has expired.")
    if not c.member.quota_exempt and p.max_future_bookings is not None:
        mine = [b for b in c.existing if b.member_id == c.member.member_id]
        open_count = sum(1 for b in mine if is_open_booking(b, p, now))
        if open_count >= p.max_future_bookings:
            return Excluded(c.machine_id, "quota_future_bookings",
                            f"You already have {open_count} upcoming bookings here (max {p.max_future_bookings}).")
    return None


def _accepted_after(c: Candidate, bad: datetime, iv: Interval, length: timedelta, tz: tzinfo) -> datetime | None:
    """The first start after `bad` (refused by the hook) that the hook accepts, within `iv`: gallop ahead
    in doubling steps, then bisect back, so a refused run costs a few calls, not one per slot. Assumes what
    the hook refuses is one run of time (a window's period, a contested request): a free gap between two
    refused runs in one interval may be missed, so a later slot is offered, never a refused one."""
    p = c.policy
    assert c.refuse is not None
    last = floor_to_slot(p, iv.end - length, tz)  # the latest start whose end fits
    if last <= bad or c.refuse(last, ceil_to_slot(p, last + length, tz)) is not None:
        return None  # refused at both ends: the run covers this free interval (a window's whole period)
    step = p.slot
    good: datetime | None = None
    while good is None:
        cand = min(ceil_to_slot(p, bad + step, tz), last)
        if cand <= bad:
            return None
        if cand == last or c.refuse(cand, ceil_to_slot(p, cand + length, tz)) is None:
            good = cand
        else:
            bad, step = cand, step * 2
    while good - bad > p.slot:
        mid = ceil_to_slot(p, bad + (good - bad) / 2, tz)
        if not bad < mid < good:
            break
        if c.refuse(mid, ceil_to_slot(p, mid + length, tz)) is None:
            good = mid
        else:
            bad = mid
    return good


def _first_fit(c: Candidate, iv: Interval, length: timedelta, now: datetime, tz: tzinfo,
               refused: dict[Hashable, str]) -> Slot | None:
    p = c.policy
    start: datetime | None = iv.start
    for _ in range(MAX_TRIES_PER_INTERVAL):
        if start is None:
            return None
        end = ceil_to_slot(p, start + length, tz)
        if end > iv.end or end - start > p.max_length:
            return None
        if not member_violations(p, c.existing, c.member, start, end, now, tz):
            why = c.refuse(start, end) if c.refuse is not None else None
            if why is None:
                return Slot(c.machine_id, start, end)
            refused.setdefault(c.machine_id, why)
            start = _accepted_after(c, start, iv, length, tz)
            continue
        start = ceil_to_slot(p, start + p.slot, tz)
    return None


def _from(policy: BookingPolicy, lo: datetime, now: datetime, tz: tzinfo) -> datetime:
    return lo if lo == now else ceil_to_slot(policy, lo, tz)  # a later start is never rounded back


def earliest_slots(candidates: Sequence[Candidate], length: timedelta, after: datetime, now: datetime,
                   tz: tzinfo, limit: int = 8) -> Found:
    """The `limit` earliest slots of `length` (rounded up to each machine's grid) starting at or after
    `after`, over all candidates, sorted by start then by the candidates' order."""
    require_aware("after", after)
    require_aware("now", now)
    found = Found()
    lo = now if after <= now else after  # now: the running slot may still be booked
    order = {c.machine_id: i for i, c in enumerate(candidates)}
    for c in candidates:
        excluded = _machine_wide(c, length, now)
        if excluded is not None:
            found.excluded.append(excluded)
            continue
        mine: list[Slot] = []
        horizon = horizon_end(c.policy, now, tz)
        for iv in free_intervals(c.policy, c.existing, c.blocks, _from(c.policy, lo, now, tz), horizon, now, tz):
            slot = _first_fit(c, iv, length, now, tz, found.refused)
            if slot is not None:
                mine.append(slot)
                if len(mine) >= limit:
                    break
        if not mine:
            found.excluded.append(Excluded(
                c.machine_id, "no_free_time",
                found.refused.get(c.machine_id)
                or f"No free {_minutes(length.total_seconds() / 60)} within the booking horizon "
                   f"({c.policy.horizon_days} days) that your quotas allow."))
        found.slots.extend(mine)
    found.slots.sort(key=lambda s: (s.start, order[s.machine_id]))
    del found.slots[limit:]
    return found
