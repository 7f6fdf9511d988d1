"""Unmet demand and what more capacity would meet: the replay estimate and the hour-of-week heat map.

All datetimes are the lab's local wall-clock time (naive, or aware in one fixed zone); weekdays are
0 = Monday. Opening hours are given per weekday as (open_hour, close_hour) pairs in hours from
midnight (close ≤ 24, no interval crosses midnight).

Replay estimate. Unmet requests (rejected, waitlisted and never served) are replayed, earliest first,
against a copy of the period's bookings:
- baseline: the same machines and hours (time freed later in the period can meet some of it);
- scenario: extra machine(s) of the type, or opening hours longer by N hours on given weekdays.
A request is met if it lies inside opening hours and is free on some machine (existing ones first).
With longer hours and `shift_within_day`, a request that still does not fit may move to the added
hours of the same day (first free start, `step` apart) — people who wanted the evening would come later.
Requests sharing a `group` are alternatives for one need: the need counts once (its first alternative's
hours) and is met by the first alternative that fits; a group with any met request is not unmet.
share = (scenario met − baseline met) / unmet hours, overall and per time-of-day bucket (hours of a
request are split across buckets by the clock).
"""

from __future__ import annotations

import bisect
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo

Interval = tuple[datetime, datetime]

DEFAULT_BUCKETS: tuple[tuple[str, float, float], ...] = (
    ("morning", 6, 12),
    ("afternoon", 12, 17),
    ("evening", 17, 22),
    ("night", 22, 6),  # wraps past midnight
)


@dataclass(frozen=True)
class OpeningHours:
    weekly: Mapping[int, tuple[tuple[float, float], ...]]

    def intervals_on(self, day: date, tz: tzinfo | None = None) -> list[Interval]:
        base = datetime.combine(day, time(0), tzinfo=tz)
        return [(base + timedelta(hours=a), base + timedelta(hours=b))
                for a, b in sorted(self.weekly.get(day.weekday(), ())) if b > a]

    def contains(self, start: datetime, end: datetime) -> bool:
        return any(a <= start and end <= b for a, b in self.intervals_on(start.date(), start.tzinfo))

    def extended(self, weekdays: Iterable[int], hours: float, at_end: bool = True) -> OpeningHours:
        """Longer opening on `weekdays`: the last interval closes later (or the first opens earlier)."""
        weekly = {d: tuple(sorted(v)) for d, v in self.weekly.items()}
        for d in set(weekdays):
            ivs = list(weekly.get(d, ()))
            if not ivs:
                continue
            if at_end:
                a, b = ivs[-1]
                ivs[-1] = (a, min(24.0, b + hours))
            else:
                a, b = ivs[0]
                ivs[0] = (max(0.0, a - hours), b)
            weekly[d] = tuple(ivs)
        return OpeningHours(weekly)

    def added_on(self, other: OpeningHours, day: date, tz: tzinfo | None = None) -> list[Interval]:
        """Intervals open under `other` (the longer hours) but not under self, on `day`."""
        out = []
        base = self.intervals_on(day, tz)
        for a, b in other.intervals_on(day, tz):
            pieces = [(a, b)]
            for c, d in base:
                nxt = []
                for x, y in pieces:
                    if d <= x or y <= c:
                        nxt.append((x, y))
                        continue
                    if x < c:
                        nxt.append((x, c))
                    if d < y:
                        nxt.append((d, y))
                pieces = nxt
            out.extend(pieces)
        return out


@dataclass(frozen=True)
class DemandRecord:
    id: Hashable
    member_id: Hashable
    machine_id: Hashable
    start: datetime
    end: datetime
    met: bool  # False for rejected / waitlisted / never served
    group: Hashable | None = None  # alternatives of one need share a group

    @property
    def hours(self) -> float:
        return (self.end - self.start).total_seconds() / 3600


@dataclass(frozen=True)
class BookedInterval:
    machine_id: Hashable
    start: datetime
    end: datetime


@dataclass(frozen=True)
class Scenario:
    extra_machines: int = 0
    longer_hours: float = 0.0
    weekdays: frozenset[int] = frozenset(range(7))
    at_end: bool = True

    def describe(self, machine_label: str = "machine") -> str:
        parts = []
        if self.extra_machines:
            parts.append("a second " + machine_label if self.extra_machines == 1
                         else f"{self.extra_machines} more {machine_label}s")
        if self.longer_hours:
            parts.append(f"opening {self.longer_hours:g} h {'later' if self.at_end else 'earlier'}")
        return " and ".join(parts) or "no change"


@dataclass(frozen=True)
class BucketEstimate:
    label: str
    unmet_hours: float
    met_hours: float

    @property
    def share(self) -> float | None:
        return None if self.unmet_hours <= 0 else self.met_hours / self.unmet_hours


@dataclass(frozen=True)
class ReplayEstimate:
    unmet_hours: float
    baseline_met_hours: float
    scenario_met_hours: float
    buckets: tuple[BucketEstimate, ...]

    @property
    def extra_met_hours(self) -> float:
        return max(0.0, self.scenario_met_hours - self.baseline_met_hours)

    @property
    def share(self) -> float | None:
        return None if self.unmet_hours <= 0 else self.extra_met_hours / self.unmet_hours

    def bucket(self, label: str) -> BucketEstimate | None:
        return next((b for b in self.buckets if b.label == label), None)


def describe_estimate(est: ReplayEstimate, scenario: Scenario, machine_label: str = "machine",
                      period: str = "last month's", bucket: str | None = None) -> str:
    """E.g. "a second laser would have met 82 % of last month's unmet evening demand"."""
    b = est.bucket(bucket) if bucket else None
    share = b.share if b else est.share
    what = f"unmet {bucket} demand" if b else "unmet demand"
    if share is None:
        return f"there was no {what} in the period"
    return f"{scenario.describe(machine_label)} would have met {share:.0%} of {period} {what}"


@dataclass
class _Calendar:
    starts: list[datetime] = field(default_factory=list)
    ends: list[datetime] = field(default_factory=list)

    @classmethod
    def of(cls, intervals: Iterable[Interval]) -> _Calendar:
        merged: list[list[datetime]] = []
        for a, b in sorted(intervals):
            if merged and a <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], b)
            elif b > a:
                merged.append([a, b])
        return cls([a for a, _ in merged], [b for _, b in merged])

    def free(self, start: datetime, end: datetime) -> bool:
        i = bisect.bisect_left(self.starts, end) - 1
        return i < 0 or self.ends[i] <= start

    def add(self, start: datetime, end: datetime) -> None:
        i = bisect.bisect_left(self.starts, start)
        self.starts.insert(i, start)
        self.ends.insert(i, end)


def _unmet_needs(demand: Iterable[DemandRecord]) -> list[list[DemandRecord]]:
    groups: dict[Hashable, list[DemandRecord]] = {}
    for i, d in enumerate(demand):
        if d.end > d.start:
            groups.setdefault(("g", d.group) if d.group is not None else ("r", i), []).append(d)
    needs = [g for g in groups.values() if not any(d.met for d in g)]
    needs.sort(key=lambda g: (g[0].start, str(g[0].id)))
    return needs


def _replay(needs: list[list[DemandRecord]], bookings: Sequence[BookedInterval], machines: Sequence[Hashable],
            extra: int, opening: OpeningHours, base_opening: OpeningHours, shift: bool,
            step: timedelta) -> list[bool]:
    by_machine: dict[Hashable, list[Interval]] = {m: [] for m in machines}
    for b in bookings:
        if b.machine_id in by_machine:
            by_machine[b.machine_id].append((b.start, b.end))
    cals = [_Calendar.of(by_machine[m]) for m in machines]
    cals += [_Calendar() for _ in range(extra)]
    met = []
    for need in needs:
        placed = False
        for d in need:
            if opening.contains(d.start, d.end):
                cal = next((c for c in cals if c.free(d.start, d.end)), None)
                if cal is not None:
                    cal.add(d.start, d.end)
                    placed = True
                    break
        if not placed and shift and opening is not base_opening:
            placed = _place_in_added_hours(need[0], cals, opening, base_opening, step)
        met.append(placed)
    return met


def _place_in_added_hours(d: DemandRecord, cals: list[_Calendar], opening: OpeningHours,
                          base: OpeningHours, step: timedelta) -> bool:
    length = d.end - d.start
    for a, b in base.added_on(opening, d.start.date(), d.start.tzinfo):
        s = a
        while s + length <= b:
            for cal in cals:
                if cal.free(s, s + length):
                    cal.add(s, s + length)
                    return True
            s += step
    return False


def split_by_bucket(start: datetime, end: datetime,
                    buckets: Sequence[tuple[str, float, float]] = DEFAULT_BUCKETS) -> dict[str, float]:
    """Hours of [start, end) falling into each time-of-day bucket."""
    out = {label: 0.0 for label, _, _ in buckets}
    t = start
    while t < end:
        nxt = min(end, t.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1))
        h = t.hour + t.minute / 60
        for label, a, b in buckets:
            if (a <= h < b) if a < b else (h >= a or h < b):
                out[label] += (nxt - t).total_seconds() / 3600
                break
        t = nxt
    return out


def replay_estimate(
    demand: Iterable[DemandRecord],
    bookings: Sequence[BookedInterval],
    machines: Sequence[Hashable],
    opening: OpeningHours,
    scenario: Scenario,
    buckets: Sequence[tuple[str, float, float]] = DEFAULT_BUCKETS,
    shift_within_day: bool = True,
    step: timedelta = timedelta(minutes=30),
) -> ReplayEstimate:
    """`machines`: the machines of the type (their bookings in `bookings`); `demand`: the period's
    requests for them, met or not."""
    needs = _unmet_needs(demand)
    longer = opening.extended(scenario.weekdays, scenario.longer_hours, scenario.at_end) \
        if scenario.longer_hours else opening
    base_met = _replay(needs, bookings, machines, 0, opening, opening, False, step)
    scen_met = _replay(needs, bookings, machines, scenario.extra_machines, longer, opening,
                       shift_within_day, step)
    unmet = {label: 0.0 for label, _, _ in buckets}
    extra = {label: 0.0 for label, _, _ in buckets}
    total = base_h = scen_h = 0.0
    for need, b, s in zip(needs, base_met, scen_met, strict=True):
        first = need[0]
        total += first.hours
        base_h += first.hours * b
        scen_h += first.hours * s
        for label, h in split_by_bucket(first.start, first.end, buckets).items():
            unmet[label] += h
            if s and not b:
                extra[label] += h
    return ReplayEstimate(total, base_h, scen_h,
                          tuple(BucketEstimate(label, unmet[label], extra[label]) for label, _, _ in buckets))


@dataclass(frozen=True)
class HeatMap:
    """7 × 24 (weekday × hour) sums over the period: requested hours and open machine-hours."""

    demand: tuple[tuple[float, ...], ...]
    capacity: tuple[tuple[float, ...], ...]

    def ratio(self, weekday: int, hour: int) -> float | None:
        cap = self.capacity[weekday][hour]
        return None if cap <= 0 else self.demand[weekday][hour] / cap


def _add_by_hour(grid: list[list[float]], start: datetime, end: datetime, weight: float = 1.0) -> None:
    t = start
    while t < end:
        nxt = min(end, t.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1))
        grid[t.weekday()][t.hour] += weight * (nxt - t).total_seconds() / 3600
        t = nxt


def hour_of_week_matrix(
    demand: Iterable[DemandRecord | BookedInterval],
    machine_count: int,
    opening: OpeningHours,
    first_day: date,
    last_day: date,
) -> HeatMap:
    """Demand: hours requested per weekday/hour (pass every request, met or not); capacity: machine
    count × open hours in that weekday/hour, over the days first_day..last_day inclusive."""
    dem = [[0.0] * 24 for _ in range(7)]
    cap = [[0.0] * 24 for _ in range(7)]
    for d in demand:
        _add_by_hour(dem, d.start, d.end)
    day = first_day
    while day <= last_day:
        for a, b in opening.intervals_on(day):
            _add_by_hour(cap, a, b, float(machine_count))
        day += timedelta(days=1)
    return HeatMap(tuple(map(tuple, dem)), tuple(map(tuple, cap)))
