"""Fairness review figures: inequality of usage, satisfaction, utilisation, behaviour, lottery honesty.

Definitions (as shown in the review's help text):
- Gini = Σ_i Σ_j |x_i - x_j| / (2 n² mean)  (0 = everyone used the same, → 1 = one member used all);
  computed from the sorted values as 2 Σ i·x_(i) / (n Σ x) - (n + 1) / n.  (6,4,2,0) → 0.417.
- Lorenz curve: points (share of members, share of usage), poorest first, from (0,0) to (1,1).
- Satisfaction s = min(1, used / requested); undefined (None) for a member who requested nothing, and
  such members are left out of Jain's index and the worst-off list.
- Jain's index = (Σ s)² / (n Σ s²), 1 = all equally satisfied, 1/n = one member has everything;
  (0,1,1,1) → 0.75; all zeros → 1.0 (equally unsatisfied).
- Utilisation = used hours / open machine-hours.
- Lottery vs expectation: in each lottery event each of k contenders had a 1/k chance; expected wins
  are the sum of those chances, compared with actual wins.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from fablab.domain.allocation import LotteryEvent
from fablab.domain.fairshare import MemberId

# A caller's member id type, for read-only mappings (Mapping is invariant in its key: a Mapping[MemberId, ...]
# parameter would reject the dict[int, float] callers have).
M = TypeVar("M", bound=MemberId)


def gini(values: Sequence[float]) -> float:
    xs = sorted(float(v) for v in values)
    n, total = len(xs), sum(xs)
    if n == 0 or total <= 0:
        return 0.0
    weighted = sum((i + 1) * x for i, x in enumerate(xs))
    return 2 * weighted / (n * total) - (n + 1) / n


def lorenz_curve(values: Sequence[float]) -> list[tuple[float, float]]:
    xs = sorted(float(v) for v in values)
    n, total = len(xs), sum(xs)
    points = [(0.0, 0.0)]
    if n == 0:
        return [(0.0, 0.0), (1.0, 1.0)]
    acc = 0.0
    for i, x in enumerate(xs, start=1):
        acc += x
        points.append((i / n, acc / total if total > 0 else i / n))
    return points


def jain_index(values: Sequence[float]) -> float:
    xs = [float(v) for v in values]
    if not xs:
        return 1.0
    sq = sum(x * x for x in xs)
    if sq == 0:
        return 1.0
    return sum(xs) ** 2 / (len(xs) * sq)


def satisfaction(used: float, requested: float) -> float | None:
    if requested <= 0:
        return None
    return min(1.0, max(0.0, used) / requested)


def utilisation(used_hours: float, open_hours: float) -> float | None:
    return None if open_hours <= 0 else used_hours / open_hours


def rate(count: int, total: int) -> float | None:
    return None if total <= 0 else count / total


@dataclass(frozen=True)
class MemberFairness:
    member_id: MemberId
    used_hours: float
    requested_hours: float
    satisfaction: float | None


@dataclass(frozen=True)
class FairnessSummary:
    members: tuple[MemberFairness, ...]  # sorted by member id (as str)
    gini_usage: float
    lorenz: tuple[tuple[float, float], ...]
    jain_satisfaction: float
    worst_off: tuple[MemberFairness, ...]  # lowest satisfaction first


def worst_off(members: Iterable[MemberFairness], k: int = 5) -> list[MemberFairness]:
    rated = [m for m in members if m.satisfaction is not None]
    rated.sort(key=lambda m: (m.satisfaction, -m.requested_hours, str(m.member_id)))
    return rated[:k]


def fairness_summary(
    used_hours: Mapping[M, float],
    requested_hours: Mapping[M, float],
    population: Iterable[M] = (),
    worst_k: int = 5,
) -> FairnessSummary:
    """Per member used/requested/s plus the lab-wide figures. `population` adds members who neither
    used nor requested (they count in Gini and the Lorenz curve as zero usage)."""
    ids = sorted(set(used_hours) | set(requested_hours) | set(population), key=str)
    members = tuple(
        MemberFairness(m, used_hours.get(m, 0.0), requested_hours.get(m, 0.0),
                       satisfaction(used_hours.get(m, 0.0), requested_hours.get(m, 0.0)))
        for m in ids
    )
    usage = [m.used_hours for m in members]
    sats = [m.satisfaction for m in members if m.satisfaction is not None]
    return FairnessSummary(members, gini(usage), tuple(lorenz_curve(usage)), jain_index(sats),
                           tuple(worst_off(members, worst_k)))


@dataclass(frozen=True)
class BookingFacts:
    """One booking, as the review needs it."""

    member_id: MemberId
    no_show: bool = False
    late_cancel: bool = False
    overrun_hours: float = 0.0


@dataclass(frozen=True)
class BehaviourRates:
    bookings: int
    no_shows: int
    late_cancels: int
    overrun_hours: float

    @property
    def no_show_rate(self) -> float | None:
        return rate(self.no_shows, self.bookings)

    @property
    def late_cancel_rate(self) -> float | None:
        return rate(self.late_cancels, self.bookings)


def behaviour_rates(bookings: Iterable[BookingFacts]) -> dict[MemberId, BehaviourRates]:
    acc: dict[MemberId, list[float]] = {}
    for b in bookings:
        a = acc.setdefault(b.member_id, [0, 0, 0, 0.0])
        a[0] += 1
        a[1] += b.no_show
        a[2] += b.late_cancel
        a[3] += max(0.0, b.overrun_hours)
    return {m: BehaviourRates(int(a[0]), int(a[1]), int(a[2]), a[3]) for m, a in acc.items()}


def lab_behaviour(rates: Iterable[BehaviourRates]) -> BehaviourRates:
    rs = list(rates)
    return BehaviourRates(sum(r.bookings for r in rs), sum(r.no_shows for r in rs),
                          sum(r.late_cancels for r in rs), sum(r.overrun_hours for r in rs))


@dataclass(frozen=True)
class LotteryTally:
    member_id: MemberId
    draws: int
    expected_wins: float
    actual_wins: int


def lottery_vs_expectation(events: Iterable[LotteryEvent]) -> list[LotteryTally]:
    """Per member: lottery events taken part in, expected wins (Σ 1/k) and actual wins."""
    acc: dict[MemberId, list[float]] = {}
    for ev in events:
        k = len(ev.contenders)
        if k < 2:
            continue
        for m in ev.contenders:
            a = acc.setdefault(m, [0, 0.0, 0])
            a[0] += 1
            a[1] += 1.0 / k
            a[2] += m == ev.winner
    ordered = sorted(acc.items(), key=lambda kv: str(kv[0]))
    return [LotteryTally(m, int(a[0]), a[1], int(a[2])) for m, a in ordered]


def lottery_deviation(tallies: Iterable[LotteryTally]) -> float:
    """Chi-square-like statistic Σ (actual - expected)² / expected; near the number of members for a
    fair draw, far above it for a suspicious one."""
    return sum((t.actual_wins - t.expected_wins) ** 2 / t.expected_wins
               for t in tallies if t.expected_wins > 0)
