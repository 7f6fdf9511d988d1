"""Who used and requested what: the review's usage rules applied to the period's bookings, usage sessions
and unmet wishes, per member, per machine and per lab week.

- Used hours: on a machine that reports usage, the sessions that count as usage, from the machine's first
  reported session on; before that, and on machines without usage data, completed and checked-in bookings
  (to their actual end, at most `now`). A no-show's reserved time counts as used (the fair-share rule: the
  time was held from others). A confirmed booking not checked in within the machine's grace is a no-show.
- Requested hours: normal bookings as booked (no-shows included, cancellations excluded), plus unmet wishes;
  a wish overlapping time the member held, or already wished for, on the same machine counts once.
- Late cancellation: a normal booking cancelled less than `late_cancel_hours` before its start.
- Maintenance bookings (and sessions that do not count as usage) are machine time, never a member's use;
  inductions are teaching, not use.

The bookings are handled set-wise (numpy), with every sum added up in row order, as a loop over the rows
would add it, so the figures do not depend on how they were computed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from .period import CANCELLED, CHECKED_IN, COMPLETED, CONFIRMED, HELD, MAINTENANCE, NO_SHOWS, NORMAL, Period, Wish


@dataclass(frozen=True)
class MemberTally:
    used: float = 0.0
    requested: float = 0.0
    bookings: int = 0
    no_shows: int = 0
    no_show_hours: float = 0.0
    late_cancels: int = 0
    overrun: float = 0.0  # hours
    unbooked: float = 0.0  # hours


@dataclass(frozen=True)
class Spans:
    """Time spans as numpy columns, in the bookings' order."""

    machine: np.ndarray
    start: np.ndarray
    end: np.ndarray
    member: np.ndarray  # 0: a block (maintenance)


@dataclass(frozen=True)
class Tally:
    members: dict[int, MemberTally]  # every member with a booking, use or wish, in order of first appearance
    machine_used: dict[int, float]
    machine_booked: dict[int, float]
    machine_maintenance: dict[int, float]
    held: Spans  # booked time: held bookings (to their reserved end) and blocks (member 0)
    unmet: tuple[Wish, ...]  # counted once each, earliest first
    weekly_used: dict[int, dict[int, float]]  # week (day number of its Monday) -> member -> used
    weekly_other: dict[int, tuple[float, float, int, int]]  # week -> (requested, unmet, bookings, no-shows)
    unattributed: float = 0.0  # used hours no member could be tied to


@dataclass
class _Acc:
    used: float = 0.0
    requested: float = 0.0
    bookings: int = 0
    no_shows: int = 0
    no_show_hours: float = 0.0
    late_cancels: int = 0
    overrun: float = 0.0
    unbooked: float = 0.0


def sums_by(keys: np.ndarray, weights: np.ndarray | None = None) -> Iterable[tuple[int, float]]:
    """(key, sum of weights, or count) per distinct key, keys in order of first appearance; each sum is added
    up in row order (bincount's), as a loop over the rows would."""
    if not keys.size:
        return []
    uniq, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    sums = np.bincount(inverse, weights=weights, minlength=uniq.size)
    order = np.argsort(first, kind="stable")
    return zip(uniq[order].tolist(), sums[order].tolist(), strict=True)


def overlaps(a: tuple[float, float], spans: Sequence[tuple[float, float]]) -> bool:
    return any(s < a[1] and a[0] < e for s, e in spans)


def tally(period: Period) -> Tally:
    now, clock, b = period.now, period.clock, period.bookings
    late = period.late_cancel_hours * 3600
    acc: dict[int, _Acc] = defaultdict(_Acc)
    used_m: dict[int, float] = defaultdict(float)
    booked_m: dict[int, float] = defaultdict(float)
    maint_m: dict[int, float] = defaultdict(float)
    weekly: dict[int, dict[int, float]] = defaultdict(lambda: defaultdict(float))
    wother: dict[int, list[float]] = defaultdict(lambda: [0.0, 0.0, 0, 0])
    first_session = period.first_session

    # The bookings, set-wise (the rules as a loop over the rows would apply them, sums in row order).
    lookup = np.zeros(max((m.id for m in period.machines), default=0) + 1, dtype=np.int64)
    lookup[[m.id for m in period.machines]] = np.arange(len(period.machines))
    mi = lookup[b.machine]  # each booking's index into period.machines
    grace = np.array([m.policy.checkin_grace.total_seconds() for m in period.machines], dtype=float)
    first = np.array([first_session.get(m.id, np.inf) for m in period.machines], dtype=float)  # inf: no usage data
    maint = (b.kind == MAINTENANCE) & (b.status != CANCELLED)
    normal = b.kind == NORMAL  # inductions are teaching, not use
    cancelled = normal & (b.status == CANCELLED)
    held_rows = normal & np.isin(b.status, HELD)
    requested = (b.reserved_end - b.start) / 3600
    no_show = held_rows & (np.isin(b.status, NO_SHOWS) | (
        (b.status == CONFIRMED) & ~b.checked_in & (now > b.start + grace[mi])))
    # No usage data for this booking's time: the booking stands in (first is inf without any data).
    stand_in = (held_rows & ~no_show & (b.end <= first[mi])
                & (np.isin(b.status, (COMPLETED, CHECKED_IN)) | b.checked_in))
    stand_hours = (np.minimum(b.end, now) - b.start) / 3600
    # The reserved time of a no-show counts as used (fair-share rule).
    used = np.where(no_show, requested, np.where(stand_in, stand_hours, 0.0))
    using = no_show | stand_in
    late_cancel = cancelled & (b.cancelled_at > b.start - late)  # NaN (never cancelled) compares False

    for mid, hours in sums_by(b.machine[maint], (np.minimum(b.end[maint], period.end) - b.start[maint]) / 3600):
        maint_m[mid] += hours
    for member, n in sums_by(b.member[normal]):
        acc[member].bookings += int(n)
    for member, n in sums_by(b.member[late_cancel]):
        acc[member].late_cancels += int(n)
    for member, hours in sums_by(b.member[held_rows], requested[held_rows]):
        acc[member].requested += hours
    for member, n in sums_by(b.member[no_show]):
        acc[member].no_shows += int(n)
    for member, hours in sums_by(b.member[no_show], requested[no_show]):
        acc[member].no_show_hours += hours
    for member, hours in sums_by(b.member[using], used[using]):
        acc[member].used += hours
    for mid, hours in sums_by(b.machine[held_rows], requested[held_rows]):
        booked_m[mid] += hours
    for mid, hours in sums_by(b.machine[stand_in], stand_hours[stand_in]):
        used_m[mid] += hours
    for wk, n in sums_by(b.week[normal]):
        wother[wk][2] += int(n)
    for wk, hours in sums_by(b.week[held_rows], requested[held_rows]):
        wother[wk][0] += hours
    for wk, n in sums_by(b.week[no_show]):
        wother[wk][3] += int(n)
    span = int(b.member.max()) + 1 if len(b) else 1  # (week, member) as one number
    for key, hours in sums_by(b.week[using] * span + b.member[using], used[using]):
        weekly[key // span][key % span] += hours
    # Booked time: blocks (member 0: maintenance) and held bookings, to their reserved end.
    blocks = maint | held_rows
    held = Spans(b.machine[blocks], b.start[blocks], np.where(maint, b.end, b.reserved_end)[blocks],
                 np.where(maint, 0, b.member)[blocks])
    # Each member's held time on a machine, for the wishes below (only pairs that wished for something).
    wished = {(r.member_id, r.machine_id) for r in period.wishes}
    held_by_member: dict[tuple[int, int], list[tuple[float, float]]] = defaultdict(list)
    if wished and len(b):
        mspan = len(lookup)  # (member, machine) as one number
        keep = held_rows & np.isin(b.member * mspan + b.machine, [m * mspan + mid for m, mid in wished])
        for member, mid, s0, e0 in zip(b.member[keep].tolist(), b.machine[keep].tolist(),
                                       b.start[keep].tolist(), b.reserved_end[keep].tolist(), strict=True):
            held_by_member[(member, mid)].append((s0, e0))

    unattributed = 0.0
    # Own names: the loop variables above are typed from the numpy sums, these rows may hold None.
    for mid, counts, machine_hours in period.machine_sums:
        (used_m if counts else maint_m)[mid] += machine_hours or 0.0
    for sum_member, sum_week, sum_hours, unbooked, overrun in period.session_sums:
        hours = sum_hours or 0.0
        if sum_member is None:
            unattributed += hours
            continue
        a = acc[sum_member]
        a.used += hours
        a.overrun += (overrun or 0.0) / 60
        a.unbooked += unbooked or 0.0
        weekly[int(sum_week)][sum_member] += hours
    for s in period.sessions:
        if not s.counts:
            maint_m[s.machine_id] += s.hours
            continue
        used_m[s.machine_id] += s.hours
        if s.member_id is None:
            unattributed += s.hours
            continue
        a = acc[s.member_id]
        a.used += s.hours
        a.overrun += s.overrun_minutes / 60
        if s.unbooked:
            a.unbooked += s.hours
        weekly[clock.week(max(s.start, period.start))][s.member_id] += s.hours

    # Unmet wishes, once each: not when the member held or already asked for overlapping time there.
    asked: dict[tuple[int, int], list[tuple[float, float]]] = defaultdict(list)
    unmet = []
    for r in sorted(period.wishes, key=lambda r: (r.start, r.id)):
        pair = (r.member_id, r.machine_id)
        wish = (r.start, r.end)
        if overlaps(wish, held_by_member.get(pair, [])) or overlaps(wish, asked[pair]):
            continue
        asked[pair].append(wish)
        unmet.append(r)
        hours = (r.end - r.start) / 3600
        acc[r.member_id].requested += hours
        other = wother[clock.week(r.start)]
        other[0] += hours
        other[1] += hours
    members = {m: MemberTally(a.used, a.requested, a.bookings, a.no_shows, a.no_show_hours, a.late_cancels,
                              a.overrun, a.unbooked) for m, a in acc.items()}
    weekly_other = {k: (v[0], v[1], int(v[2]), int(v[3])) for k, v in wother.items()}
    return Tally(members, dict(used_m), dict(booked_m), dict(maint_m), held, tuple(unmet),
                 {k: dict(v) for k, v in weekly.items()}, weekly_other, unattributed)
