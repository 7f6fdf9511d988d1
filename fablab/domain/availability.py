"""Free time of one machine under its policy: for the week calendar, the kiosk and the availability API.

Free = opening hours, minus effectively active bookings widened by the buffer, minus maintenance blocks,
clipped to [start of the current slot, booking horizon], each piece shrunk to the slot grid and kept only
if at least the minimum length. Sort + merge + one linear sweep: O(n log n) in the number of bookings.

Consistency with booking_rules: an aligned [s, e) inside a returned interval with
min_length <= e - s <= max_length passes every rule of check_booking except the member's own
(qualification and quotas) — a property the tests check.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, tzinfo

from fablab.domain.booking_rules import (
    ExistingBooking,
    MemberContext,
    member_violations,
)
from fablab.domain.intervals import Interval, Pair, merge_pairs, require_aware, subtract_pairs
from fablab.domain.policy import (
    BookingPolicy,
    ceil_to_slot,
    floor_to_slot,
    horizon_end,
    is_aligned,
    opening_pairs,
)


def busy_pairs(
    policy: BookingPolicy,
    existing: Sequence[ExistingBooking],
    blocks: Sequence[Interval],
    lo: datetime,
    hi: datetime,
    now: datetime,
) -> list[Pair]:
    """Merged times within reach of [lo, hi) that a new booking may not use: active bookings widened by
    the buffer on both sides, and maintenance blocks. Released no-shows are free."""
    buf = policy.buffer
    # booking_rules.is_effectively_active, inlined for speed (the property tests check they agree)
    released_before = now - policy.checkin_grace  # confirmed, unchecked, started before this: released
    pairs: list[Pair] = []
    for b in existing:
        if b.end + buf <= lo or b.start - buf >= hi:
            continue
        status = b.status
        if status == "checked_in" or status == "completed" or (
            status == "confirmed" and (b.start >= released_before or b.checked_in_at is not None)
        ):
            pairs.append((b.start - buf, b.end + buf))
    for blk in blocks:
        if blk.end > lo and blk.start < hi:
            pairs.append((blk.start, blk.end))
    return merge_pairs(pairs)


def _raw_free(
    policy: BookingPolicy,
    existing: Sequence[ExistingBooking],
    blocks: Sequence[Interval],
    start: datetime,
    end: datetime,
    now: datetime,
    tz: tzinfo,
) -> list[Pair]:
    lo = floor_to_slot(policy, max(start, now), tz)  # the slot containing `start` or now is bookable
    hi = min(end, horizon_end(policy, now, tz))
    if lo >= hi:
        return []
    busy = busy_pairs(policy, existing, blocks, lo, hi, now)
    return subtract_pairs(opening_pairs(policy, lo, hi, tz), busy)


def free_intervals(
    policy: BookingPolicy,
    existing: Sequence[ExistingBooking],
    blocks: Sequence[Interval],
    start: datetime,
    end: datetime,
    now: datetime,
    tz: tzinfo,
) -> list[Interval]:
    """Bookable free intervals of the machine within [start, end), sorted, UTC, on the slot grid, each at
    least the minimum length. `existing` = the machine's bookings (any status), `blocks` = maintenance.
    `start` is rounded down to its slot, so free_intervals(..., start=now, ...) includes the slot now
    running (a booking may start at the current slot's start)."""
    for name, value in (("start", start), ("end", end), ("now", now)):
        require_aware(name, value)
    min_len = policy.min_length
    out: list[Interval] = []
    for s, e in _raw_free(policy, existing, blocks, start, end, now, tz):
        if e - s < min_len:  # rounding only shrinks: skip the timezone work
            continue
        s2, e2 = ceil_to_slot(policy, s, tz), floor_to_slot(policy, e, tz)
        if e2 - s2 >= min_len:
            out.append(Interval(s2, e2))
    return out


def next_free_slot(
    policy: BookingPolicy,
    existing: Sequence[ExistingBooking],
    blocks: Sequence[Interval],
    after: datetime,
    length: timedelta | None,
    now: datetime,
    tz: tzinfo,
) -> Interval | None:
    """The earliest bookable [start, start + length) starting at or after `after` (and not before the
    current slot), within the horizon; None if there is none. length defaults to the minimum length."""
    length = policy.min_length if length is None else length
    if not policy.min_length <= length <= policy.max_length:
        raise ValueError(
            f"length must be between {policy.min_minutes} and {policy.max_minutes} minutes, got {length}"
        )
    for iv in free_intervals(policy, existing, blocks, after, horizon_end(policy, now, tz), now, tz):
        end = ceil_to_slot(policy, iv.start + length, tz)
        if end <= iv.end and end - iv.start <= policy.max_length:
            return Interval(iv.start, end)
    return None


def longest_bookable_from(
    policy: BookingPolicy,
    existing: Sequence[ExistingBooking],
    blocks: Sequence[Interval],
    start: datetime,
    now: datetime,
    tz: tzinfo,
    *,
    member: MemberContext | None = None,
) -> timedelta:
    """How long a booking starting exactly at `start` may be ("book now for up to N minutes" at the kiosk:
    pass current_slot_start(policy, now, tz)). 0 if nothing can start there. With `member`, the member's
    qualification and quotas on this machine are applied too."""
    require_aware("start", start)
    require_aware("now", now)
    if not is_aligned(policy, start, tz):
        return timedelta(0)
    reach = start + policy.max_length + timedelta(minutes=policy.slot_minutes)
    free = _raw_free(policy, existing, blocks, start, reach, now, tz)
    if not free or free[0][0] != start:
        return timedelta(0)
    limit = min(floor_to_slot(policy, free[0][1], tz), start + policy.max_length)
    # candidate ends on the grid, shortest first; any one is allowed by the machine's rules
    ends: list[datetime] = []
    e = ceil_to_slot(policy, start + policy.min_length, tz)
    while e <= limit:
        ends.append(e)
        e = ceil_to_slot(policy, e + policy.slot, tz)
    if not ends:
        return timedelta(0)
    if member is None:
        return ends[-1] - start
    # member rules are monotone in the end (a shorter booking never uses more quota): binary search
    lo, hi = 0, len(ends) - 1
    if member_violations(policy, existing, member, start, ends[lo], now, tz):
        return timedelta(0)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if member_violations(policy, existing, member, start, ends[mid], now, tz):
            hi = mid - 1
        else:
            lo = mid
    return ends[lo] - start
