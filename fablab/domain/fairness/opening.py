"""A booking policy's weekly opening hours as the capacity model's (`fablab.domain.capacity.OpeningHours`):
hours from midnight per weekday, night ranges split at midnight, overlapping ranges merged."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

from .. import capacity as cap
from .. import policy as pol


def opening_of(policy: pol.BookingPolicy) -> cap.OpeningHours:
    """The policy's weekly hours as the capacity model's (open, close) hours; night ranges are split."""
    weekly: dict[int, list[tuple[float, float]]] = defaultdict(list)
    for d in range(7):
        for a, b in policy.opening_hours[d]:
            ah, bh = a.hour + a.minute / 60, b.hour + b.minute / 60
            if bh > ah:
                weekly[d].append((ah, bh))
            else:  # past midnight (or the whole day when both are 00:00)
                weekly[d].append((ah, 24.0))
                if bh > 0:
                    weekly[(d + 1) % 7].append((0.0, bh))
    return cap.OpeningHours({d: merge_hours(v) for d, v in weekly.items()})


def merge_hours(ranges: Iterable[tuple[float, float]]) -> tuple[tuple[float, float], ...]:
    out: list[list[float]] = []
    for a, b in sorted(ranges):
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return tuple((a, b) for a, b in out)


def union_opening(openings: Sequence[cap.OpeningHours]) -> cap.OpeningHours:
    """Open when any of them is open (the machines of a type together)."""
    return cap.OpeningHours({d: merge_hours(r for o in openings for r in o.weekly.get(d, ())) for d in range(7)})


def merged(o: cap.OpeningHours) -> dict[int, tuple[tuple[float, float], ...]]:
    """The open days' merged ranges, to compare two openings."""
    return {d: merge_hours(o.weekly.get(d, ())) for d in range(7) if o.weekly.get(d)}
