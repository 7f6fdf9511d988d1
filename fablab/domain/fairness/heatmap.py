"""Demand, capacity and unmet demand by hour of the week (7 × 24, Monday first, on the lab's clock).

- Demand: booked time (held bookings to their reserved end; maintenance blocks are not demand) plus the
  unmet wishes, in hours per weekday and hour.
- Capacity: open machine-hours: each machine's weekly opening hours, times how often each weekday occurs in
  the period (the local days from the period's first to its last).
- Unmet: the unmet wishes alone.
The spans are spread over the hours they cover on the lab's wall clock, so a DST change moves them with the
clock (the capacity model's `hour_of_week_matrix`, vectorised: a year is 100,000 spans, same result).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from .. import capacity as cap
from .clock import LabClock
from .opening import opening_of
from .period import Period
from .tally import Tally

Grid = list[list[float]]


@dataclass(frozen=True)
class HeatView:
    """Hour of week (7 × 24, Monday first, lab time): requested hours, open machine-hours, unmet hours."""

    demand: tuple[tuple[float, ...], ...]
    capacity: tuple[tuple[float, ...], ...]
    unmet: tuple[tuple[float, ...], ...]

    def ratio(self, weekday: int, hour: int) -> float | None:
        c = self.capacity[weekday][hour]
        return None if c <= 0 else self.demand[weekday][hour] / c

    def cells(self) -> Iterable[tuple[int, int, float, float, float, float | None]]:
        """(weekday, hour, demand, capacity, unmet, ratio) for every hour with demand or capacity."""
        for d in range(7):
            for h in range(24):
                if self.demand[d][h] or self.capacity[d][h] or self.unmet[d][h]:
                    yield d, h, self.demand[d][h], self.capacity[d][h], self.unmet[d][h], self.ratio(d, h)


def empty_grid() -> Grid:
    return [[0.0] * 24 for _ in range(7)]


def add_by_hour_of_week(grid: Grid, spans: Iterable[tuple[float, float]], clock: LabClock) -> None:
    """Hours of each (start, end) span into grid[weekday][hour] on the lab's clock: the capacity model's
    `hour_of_week_matrix` on epoch seconds, vectorised (a year is 100,000 spans), same result."""
    pairs = np.fromiter((x for span in spans for x in span), dtype=float).reshape(-1, 2)
    add_grid(grid, hour_of_week(pairs[:, 0], pairs[:, 1], clock))


def hour_of_week(start: np.ndarray, end: np.ndarray, clock: LabClock) -> np.ndarray:
    """Hours of the spans per hour of the week (168, Monday 00-01 first), on the lab's clock."""
    acc = np.zeros(7 * 24)
    if not start.size:
        return acc
    starts, ends = clock.local_array(start), clock.local_array(end)
    hour0 = np.floor(starts / 3600)
    for k in range(int(np.max(np.ceil(ends / 3600) - hour0))):
        h = hour0 + k
        piece = np.minimum(ends, (h + 1) * 3600) - np.maximum(starts, h * 3600)
        live = piece > 0
        if not live.any():
            continue
        hh = h[live].astype(np.int64)
        acc += np.bincount(((hh // 24 + 3) % 7) * 24 + hh % 24, weights=piece[live] / 3600, minlength=7 * 24)
    return acc


def add_grid(grid: Grid, acc: np.ndarray) -> None:
    for d in range(7):
        row = grid[d]
        for h24 in range(24):
            row[h24] += float(acc[d * 24 + h24])


def heat_view(period: Period, tally: Tally) -> HeatView:
    tz = period.tz
    first = period.start_at.astimezone(tz).date()
    last = datetime.fromtimestamp(max(period.start, period.end - 1e-3), tz).date()
    dem, capa, unmet = empty_grid(), empty_grid(), empty_grid()
    booked = tally.held.member != 0
    add_grid(dem, hour_of_week(tally.held.start[booked], tally.held.end[booked], period.clock))
    add_by_hour_of_week(unmet, ((r.start, r.end) for r in tally.unmet), period.clock)
    add_by_hour_of_week(dem, ((r.start, r.end) for r in tally.unmet), period.clock)
    # Capacity: the capacity model's grid of one week per distinct opening, times how often each
    # weekday occurs in the period (the same sum as day by day, without walking a year hour by hour).
    counts = [0] * 7
    day = first
    while day <= last:
        counts[day.weekday()] += 1
        day += timedelta(days=1)
    monday = first - timedelta(days=first.weekday())
    weekly: dict[Hashable, tuple[tuple[float, ...], ...]] = {}
    for m in period.machines:
        opening = opening_of(m.policy)
        key = tuple(sorted(opening.weekly.items()))
        if key not in weekly:
            weekly[key] = cap.hour_of_week_matrix((), 1, opening, monday, monday + timedelta(days=6)).capacity
        grid = weekly[key]
        for d in range(7):
            if counts[d]:
                for h in range(24):
                    capa[d][h] += grid[d][h] * counts[d]
    return HeatView(tuple(map(tuple, dem)), tuple(map(tuple, capa)), tuple(map(tuple, unmet)))
