"""Window allocation speed: 500 members, 50 machines, one week of 2-hour slots (8:00-22:00).

Prints the time for 1,000 / 2,000 / 5,000 / 10,000 requests and time / (n log n) relative to the
smallest run (a ratio that stays near 1 means n log n growth). Target: 10,000 requests < 2 s.
Run: .venv/bin/python bench/allocation.py
"""

from __future__ import annotations

import math
import random
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fablab.domain.allocation import Quota, SlotRequest, allocate_window  # noqa: E402
from fablab.domain.fairshare import UsageRecord, equal_shares, fair_share_state  # noqa: E402

MEMBERS = 500
MACHINES = 50
WEEK = datetime(2026, 12, 7)
SLOT_STARTS = [8, 10, 12, 14, 16, 18, 20]


def make_requests(n: int, rng: random.Random) -> list[SlotRequest]:
    slots = [(WEEK + timedelta(days=d, hours=h)) for d in range(7) for h in SLOT_STARTS]
    # evenings and weekends are wanted more: that is where contention lives
    weights = [(3 if s.hour >= 16 else 1) * (2 if s.weekday() >= 5 else 1) for s in slots]
    favourite = {m: rng.sample(range(MACHINES), 3) for m in range(MEMBERS)}
    reqs = []
    rank = dict.fromkeys(range(MEMBERS), 0)
    for i in range(n):
        m = rng.randrange(MEMBERS)
        machine = rng.choice(favourite[m]) if rng.random() < 0.8 else rng.randrange(MACHINES)
        start = rng.choices(slots, weights)[0]
        rank[m] += 1
        reqs.append(SlotRequest(i, m, machine, start, start + timedelta(hours=2), rank[m]))
    return reqs


def main() -> None:
    rng = random.Random(7)
    now = WEEK - timedelta(days=1)
    usages = [
        UsageRecord(rng.randrange(MEMBERS), now - timedelta(days=rng.uniform(0, 60)), rng.uniform(0.5, 4))
        for _ in range(5000)
    ]
    state = fair_share_state(usages, equal_shares(range(MEMBERS)), now)
    seed = bytes(range(32))
    for label, quota in (("quota 10 h / 5 slots", Quota(max_hours=10, max_slots=5)), ("no quota", Quota())):
        print(label)
        print(f"{'requests':>9} {'time s':>8} {'granted':>8} {'rounds':>7} {'time/(n log n) vs first':>24}")
        base = None
        for n in (1000, 2000, 5000, 10000):
            reqs = make_requests(n, random.Random(n))
            best = math.inf
            for _ in range(3):
                t0 = time.perf_counter()
                result = allocate_window(reqs, state, seed, quota)
                best = min(best, time.perf_counter() - t0)
            per = best / (n * math.log(n))
            base = base or per
            granted = sum(1 for o in result.outcomes if o.status == "granted")
            print(f"{n:>9} {best:>8.3f} {granted:>8} {len(result.rounds):>7} {per / base:>24.2f}")


if __name__ == "__main__":
    main()
