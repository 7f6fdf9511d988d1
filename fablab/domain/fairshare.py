"""Fair-share priority: F = 2^(-U/S).

U is a member's decayed usage divided by everybody's decayed usage, S is the member's normalised share.
F = 1 means no recent usage, F = 0.5 exactly at share, F < 0.5 more than the share. Usage decays with a
half-life so that last month's heavy use is forgiven over time rather than all at once.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

MemberId = Hashable

DEFAULT_HALF_LIFE = timedelta(days=14)
MAX_CONTRIBUTION_BONUS = 0.25


@dataclass(frozen=True)
class UsageRecord:
    """Machine time a member used, ended at `at`.

    No-shows are passed by the caller with the reserved length (they count). Maintenance and induction
    time is passed with `counts=False` (or left out): it never counts as usage.
    """

    member_id: MemberId
    at: datetime
    hours: float
    counts: bool = True

    @classmethod
    def from_interval(
        cls, member_id: MemberId, start: datetime, end: datetime, counts: bool = True
    ) -> UsageRecord:
        return cls(member_id, end, max(0.0, (end - start).total_seconds() / 3600), counts)


def decay_weight(age: timedelta, half_life: timedelta) -> float:
    """0.5 ** (age / half_life); usage dated in the future (e.g. just granted) counts fully."""
    if half_life <= timedelta(0):
        raise ValueError("half_life must be positive")
    return math.pow(0.5, max(0.0, age / half_life))


def decayed_usage(
    usages: Iterable[UsageRecord], now: datetime, half_life: timedelta = DEFAULT_HALF_LIFE
) -> dict[MemberId, float]:
    totals: dict[MemberId, float] = {}
    for u in usages:
        if not u.counts or u.hours <= 0:
            continue
        totals[u.member_id] = totals.get(u.member_id, 0.0) + u.hours * decay_weight(now - u.at, half_life)
    return totals


def contribution_bonus(contributed_hours: float, full_bonus_hours: float = 20.0,
                       cap: float = MAX_CONTRIBUTION_BONUS) -> float:
    """Optional, off by default: share bonus growing linearly with contributed effort, capped at +25 %."""
    cap = min(cap, MAX_CONTRIBUTION_BONUS)
    if contributed_hours <= 0 or full_bonus_hours <= 0:
        return 0.0
    return min(cap, cap * contributed_hours / full_bonus_hours)


def shares_from_groups(member_groups: Mapping[MemberId, Hashable],
                       group_weights: Mapping[Hashable, float]) -> dict[MemberId, float]:
    """Raw share per member from the lab's per-group weights (groups without a weight get 1)."""
    return {m: float(group_weights.get(g, 1.0)) for m, g in member_groups.items()}


def normalise_shares(
    raw: Mapping[MemberId, float], bonus: Mapping[MemberId, float] | None = None
) -> dict[MemberId, float]:
    """Shares summing to 1; `bonus` (fraction, capped at 0.25) multiplies a member's raw share."""
    bonus = bonus or {}
    weighted = {}
    for m, w in raw.items():
        if w < 0:
            raise ValueError(f"negative share for {m!r}")
        b = min(MAX_CONTRIBUTION_BONUS, max(0.0, bonus.get(m, 0.0)))
        weighted[m] = w * (1.0 + b)
    total = sum(weighted.values())
    if total <= 0:
        return {m: 0.0 for m in weighted}
    return {m: w / total for m, w in weighted.items()}


def equal_shares(members: Iterable[MemberId]) -> dict[MemberId, float]:
    return {m: 1.0 for m in members}


def factor(usage_fraction: float, share: float) -> float:
    """F = 2^(-U/S); a member with no share but no usage is still at 1, with usage at 0."""
    if usage_fraction <= 0:
        return 1.0
    if share <= 0:
        return 0.0
    return math.pow(2.0, -usage_fraction / share)


@dataclass
class FairShareState:
    """Decayed usage (hours, at `now`) and normalised shares: enough to recompute F after new grants."""

    usage: dict[MemberId, float]
    shares: dict[MemberId, float]
    total: float = field(init=False)

    def __post_init__(self) -> None:
        self.total = sum(self.usage.values())

    def factor(self, member_id: MemberId) -> float:
        u = self.usage.get(member_id, 0.0)
        return factor(u / self.total if self.total > 0 else 0.0, self.shares.get(member_id, 0.0))

    def usage_fraction(self, member_id: MemberId) -> float:
        """U: the member's part of all recent (decayed) usage, for `explain_factor`."""
        return self.usage.get(member_id, 0.0) / self.total if self.total > 0 else 0.0

    def factors(self) -> dict[MemberId, float]:
        return {m: self.factor(m) for m in self.members()}

    def members(self) -> list[MemberId]:
        return list(dict.fromkeys([*self.shares, *self.usage]))

    def add_usage(self, member_id: MemberId, hours: float) -> None:
        """Count `hours` as usage happening now (used by the allocator between draft rounds)."""
        self.usage[member_id] = self.usage.get(member_id, 0.0) + hours
        self.total += hours

    def copy(self) -> FairShareState:
        return FairShareState(dict(self.usage), dict(self.shares))

    def with_members(self, members: Iterable[MemberId]) -> FairShareState:
        """A copy in which members missing from the population get the average share (renormalised)."""
        missing = [m for m in members if m not in self.shares]
        if not missing:
            return self.copy()
        avg = sum(self.shares.values()) / len(self.shares) if self.shares else 1.0
        raw = dict(self.shares)
        for m in missing:
            raw[m] = avg if avg > 0 else 1.0
        return FairShareState(dict(self.usage), normalise_shares(raw))


def fair_share_state(
    usages: Iterable[UsageRecord],
    shares: Mapping[MemberId, float],
    now: datetime,
    half_life: timedelta = DEFAULT_HALF_LIFE,
    bonus: Mapping[MemberId, float] | None = None,
) -> FairShareState:
    """`shares` are raw weights for every member in the population (use `equal_shares`); members with
    usage but absent from `shares` get weight 1."""
    usage = decayed_usage(usages, now, half_life)
    raw = dict(shares)
    for m in usage:
        raw.setdefault(m, 1.0)
    return FairShareState(usage, normalise_shares(raw, bonus))


def fair_share_factors(
    usages: Iterable[UsageRecord],
    shares: Mapping[MemberId, float],
    now: datetime,
    half_life: timedelta = DEFAULT_HALF_LIFE,
    bonus: Mapping[MemberId, float] | None = None,
) -> dict[MemberId, float]:
    return fair_share_state(usages, shares, now, half_life, bonus).factors()


def explain_factor(f: float, usage_fraction: float | None = None, share: float | None = None,
                   half_life: timedelta = DEFAULT_HALF_LIFE) -> str:
    """Plain words for a member's own F."""
    head = f"Your priority is {f:.2f}: "
    if f >= 0.999:
        body = "you have not used this machine recently, so you are first in line."
    elif math.isclose(f, 0.5, abs_tol=0.02):
        body = "you have used about exactly your share recently."
    elif f > 0.5:
        body = "you have used less than your share recently, so you come before members who used more."
    else:
        body = "you have used more than your share recently, so members who used less come first."
    detail = ""
    if usage_fraction is not None and share is not None:
        detail = f" You used {usage_fraction:.0%} of the recent machine time; your share is {share:.0%}."
    days = half_life / timedelta(days=1)
    return (head + body + detail + " F=0.5 means exactly at share; it rises again as your past use fades"
            f" (half of it is forgotten every {days:g} days).")
