"""Effort sharing (weighted labour): the work that keeps the lab running, made visible.

Weight of a task, in hours credited per person:
    weight = base_hours × min(max_factor, 1 + rise_per_day × days_unclaimed)
where days_unclaimed runs from `opened_at` until the first claim (or `now`), so a task nobody takes
grows more valuable, and stops growing once someone takes it.
Credit per claimant when n members volunteer for a task needing k people:
    credit = weight × min(1, k / n)
so extra volunteers share the credit instead of multiplying it (the weight per person falls as
more volunteer; total credit never exceeds weight × k).
Contributions are counted and shown; they do not raise booking priority unless a lab switches on the
capped bonus (fairshare.contribution_bonus).
Confirmation: a completed task's credits count only once somebody who is not one of its claimants
confirmed the work: per task kind the lab says who may ("steward": a steward or admin; "peer": also any
member qualified on the task's machine, or any member when the task has no machine).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from fablab.domain.fairshare import MemberId


@dataclass(frozen=True)
class WeightPolicy:
    rise_per_day: float = 0.1
    max_factor: float = 2.0


@dataclass(frozen=True)
class Task:
    id: Hashable
    kind: str  # maintenance, induction, cleaning, restocking, ...
    base_hours: float
    opened_at: datetime
    people_needed: int = 1
    claimants: tuple[MemberId, ...] = ()
    claimed_at: datetime | None = None  # first claim; freezes the rise
    completed_at: datetime | None = None
    confirmed_at: datetime | None = None  # credits count from here on


def days_unclaimed(task: Task, now: datetime) -> float:
    until = task.claimed_at or task.completed_at or now
    return max(0.0, (until - task.opened_at) / timedelta(days=1))


def task_weight(task: Task, now: datetime, policy: WeightPolicy = WeightPolicy()) -> float:
    rise = min(policy.max_factor, 1.0 + policy.rise_per_day * days_unclaimed(task, now))
    return task.base_hours * max(1.0, rise)


def claimant_credit(task: Task, now: datetime, policy: WeightPolicy = WeightPolicy()) -> float:
    """Hours credited to each claimant (the share falls when more volunteer than needed)."""
    n = len(set(task.claimants))
    if n == 0:
        return task_weight(task, now, policy)
    return task_weight(task, now, policy) * min(1.0, task.people_needed / n)


def board(
    tasks: Iterable[Task], now: datetime, policy: WeightPolicy = WeightPolicy()
) -> list[tuple[Task, float]]:
    """Open tasks with their current weight, heaviest (most neglected) first."""
    open_tasks = [(t, task_weight(t, now, policy)) for t in tasks if t.completed_at is None]
    return sorted(open_tasks, key=lambda tw: (-tw[1], tw[0].opened_at, str(tw[0].id)))


def contribution_totals(
    tasks: Iterable[Task],
    policy: WeightPolicy = WeightPolicy(),
    since: datetime | None = None,
    until: datetime | None = None,
) -> dict[MemberId, float]:
    """Credited hours per member for confirmed tasks completed in [since, until)."""
    totals: dict[MemberId, float] = {}
    for t in tasks:
        done = t.completed_at
        if done is None or t.confirmed_at is None or (since and done < since) or (until and done >= until):
            continue
        credit = claimant_credit(t, done, policy)
        for m in dict.fromkeys(t.claimants):
            totals[m] = totals.get(m, 0.0) + credit
    return totals


def maintenance_due(hours_since_service: float, interval_hours: float) -> bool:
    """A maintenance task is due after `interval_hours` of machine use (not calendar time)."""
    return interval_hours > 0 and hours_since_service >= interval_hours


CONFIRM_MODES = ("steward", "peer")
# Safety-relevant work is confirmed by a steward; the rest may be confirmed by a qualified peer.
DEFAULT_CONFIRM: dict[str, str] = {"maintenance": "steward", "induction": "steward", "cleaning": "peer",
                                   "restocking": "peer", "other": "peer"}


def parse_confirm_modes(text: str, kinds: Iterable[str] = DEFAULT_CONFIRM) -> dict[str, str]:
    """The lab's setting "kind=mode,kind=mode" (e.g. "cleaning=steward,maintenance=peer") over the
    defaults; raises ValueError naming the bad part."""
    known = set(kinds)
    modes = dict(DEFAULT_CONFIRM)
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        kind, sep, mode = (x.strip().lower() for x in part.partition("="))
        if not sep or kind not in known or mode not in CONFIRM_MODES:
            raise ValueError(f"{part!r}: expected kind=mode with kind one of {', '.join(sorted(known))} "
                             f"and mode one of {', '.join(CONFIRM_MODES)}")
        modes[kind] = mode
    return modes


def confirm_refusal(mode: str, *, is_claimant: bool, is_staff: bool, qualified: bool) -> str | None:
    """Why this person may not confirm a completed task (a code), or None when they may.
    `qualified`: on the task's machine (True for a task without a machine)."""
    if is_claimant:
        return "own_work"  # nobody confirms their own work, not even a steward
    if is_staff:
        return None
    if mode != "peer":
        return "steward_only"
    return None if qualified else "not_qualified"
