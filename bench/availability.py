"""Pure availability speed: one machine, one week, 500 existing bookings. Target: free_intervals < 5 ms.

Run: .venv/bin/python bench/availability.py   (prints median/p95 ms per call; no database involved)
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fablab.domain.availability import free_intervals, longest_bookable_from, next_free_slot  # noqa: E402
from fablab.domain.booking_rules import (  # noqa: E402
    BookingRequest,
    ExistingBooking,
    MemberContext,
    Qualification,
    check_booking,
)
from fablab.domain.policy import BookingPolicy, week_hours  # noqa: E402

TZ = ZoneInfo("Europe/Berlin")
TARGET_MS = 5.0


def week_of_bookings(policy: BookingPolicy, start: datetime, n: int, seed: int = 1) -> list[ExistingBooking]:
    """n non-overlapping bookings packed into the week (15 min each, random gaps), shuffled."""
    rng = random.Random(seed)
    week = timedelta(days=7)
    length = timedelta(minutes=15)
    spare = int((week - n * length - n * policy.buffer).total_seconds() // 60)
    gaps = sorted(rng.randrange(spare) for _ in range(n))
    out = []
    for i, g in enumerate(gaps):
        s = start + timedelta(minutes=g) + i * (length + policy.buffer)
        out.append(ExistingBooking(i, 1, rng.randrange(40), s, s + length, "confirmed"))
    rng.shuffle(out)  # callers need not sort
    return out


def timed(fn, runs: int) -> tuple[float, float]:
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1]


def main() -> int:
    policy = BookingPolicy(
        slot_minutes=5, min_minutes=5, max_minutes=240, opening_hours=week_hours([("00:00", "24:00")]),
        horizon_days=14, buffer_minutes=0, max_hours_per_day=None, max_hours_per_week=None,
        max_future_bookings=None,
    )
    week_start = datetime(2026, 3, 23, tzinfo=TZ).astimezone(UTC)  # a Monday; the week after the DST change
    now = week_start - timedelta(days=3)
    bookings = week_of_bookings(policy, week_start, 500)
    week_end = week_start + timedelta(days=7)
    member = MemberContext(7, qualification=Qualification("valid"))
    runs = 300

    free = free_intervals(policy, bookings, [], week_start, week_end, now, TZ)
    results = {
        "free_intervals (week, 500 bookings)": timed(
            lambda: free_intervals(policy, bookings, [], week_start, week_end, now, TZ), runs),
        "next_free_slot (60 min, 500 bookings)": timed(
            lambda: next_free_slot(policy, bookings, [], week_start, timedelta(minutes=60), now, TZ), runs),
        "longest_bookable_from (with member quotas)": timed(
            lambda: longest_bookable_from(policy, bookings, [], free[len(free) // 2].start, now, TZ,
                                          member=member), runs),
        "check_booking (500 existing)": timed(
            lambda: check_booking(policy, BookingRequest(1, 7, free[0].start, free[0].end), bookings, member,
                                  now, TZ), runs),
    }
    laser = BookingPolicy(
        slot_minutes=15, min_minutes=15, max_minutes=180, opening_hours=week_hours([("08:00", "23:00")]),
        buffer_minutes=0, max_hours_per_day=None, max_hours_per_week=None, max_future_bookings=None,
    )
    laser_bookings = [b for b in week_of_bookings(laser, week_start, 500, seed=2)]
    results["free_intervals (opening hours 08-23)"] = timed(
        lambda: free_intervals(laser, laser_bookings, [], week_start, week_end, now, TZ), runs)

    print(f"availability bench: 1 machine, 1 week, 500 bookings, {runs} runs each, {len(free)} free intervals")
    for name, (median, p95) in results.items():
        print(f"  {name:45s} median {median:7.3f} ms   p95 {p95:7.3f} ms")
    median = results["free_intervals (week, 500 bookings)"][0]
    verdict = "OK" if median < TARGET_MS else "SLOW"
    print(f"free_intervals median {median:.3f} ms; target < {TARGET_MS} ms: {verdict} "
          f"(ratio {median / TARGET_MS:.2f} of target)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
