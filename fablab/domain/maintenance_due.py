"""Maintenance counters: hours of use since a task was last done, and which tasks are due.

A rule is steward-defined: "clean the laser lens every 20 h of use", "check the belts every 30 days", or
both (due at whichever comes first). Pure: spans of use and ``now`` come in, due tasks come out.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol


class SpanLike(Protocol):
    @property
    def start(self) -> datetime: ...
    @property
    def end(self) -> datetime | None: ...  # None while open: counted up to ``now``


@dataclass(frozen=True)
class MaintenanceRule:
    id: Hashable
    machine: str
    task: str  # "clean the laser lens"
    last_done_at: datetime  # last service (or when the rule was made, if never done)
    every_hours: float | None = None  # of machine use
    every_days: float | None = None  # of calendar time

    def __post_init__(self) -> None:
        if self.every_hours is None and self.every_days is None:
            raise ValueError("a maintenance rule needs every_hours or every_days")
        for value in (self.every_hours, self.every_days):
            if value is not None and value <= 0:
                raise ValueError("maintenance intervals must be positive")


@dataclass(frozen=True)
class TaskStatus:
    rule_id: Hashable
    machine: str
    task: str
    hours_used: float  # hours of use since last_done_at
    due: bool
    due_at: datetime | None  # when it became (or, if known, becomes) due; None if hours-only, not yet due
    reason: str | None  # "hours" | "days": the limit reached first
    overdue: timedelta  # now - due_at when due, else zero
    hours_overdue: float  # hours of use past every_hours (0 if not over)
    hours_left: float | None  # hours of use until every_hours (None without an hours limit)


def _merged(spans: Iterable[SpanLike], since: datetime, now: datetime) -> list[tuple[datetime, datetime]]:
    """Spans clipped to [since, now] with overlaps merged, so no hour is counted twice."""
    parts = sorted(
        (max(s.start, since), min(s.end if s.end is not None else now, now))
        for s in spans
    )
    out: list[tuple[datetime, datetime]] = []
    for a, b in parts:
        if b <= a:
            continue
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def hours_since_service(spans: Iterable[SpanLike], last_service_at: datetime, now: datetime) -> float:
    """Hours of machine use between the last service and ``now`` (overlapping spans counted once)."""
    return sum((b - a).total_seconds() for a, b in _merged(spans, last_service_at, now)) / 3600


def _hours_reached_at(parts: list[tuple[datetime, datetime]], hours: float) -> datetime | None:
    left = hours * 3600
    for a, b in parts:
        length = (b - a).total_seconds()
        if length >= left:
            return a + timedelta(seconds=left)
        left -= length
    return None


def task_status(rule: MaintenanceRule, spans: Iterable[SpanLike], now: datetime) -> TaskStatus:
    """Where one rule stands at ``now``. Pass the spans of ``rule.machine`` (any source, any member)."""
    parts = _merged(spans, rule.last_done_at, now)
    used = sum((b - a).total_seconds() for a, b in parts) / 3600
    candidates: list[tuple[datetime, str]] = []
    if rule.every_hours is not None:
        reached = _hours_reached_at(parts, rule.every_hours)
        if reached is not None:
            candidates.append((reached, "hours"))
    if rule.every_days is not None:
        candidates.append((rule.last_done_at + timedelta(days=rule.every_days), "days"))
    due_at, reason = min(candidates) if candidates else (None, None)
    due = due_at is not None and due_at <= now
    return TaskStatus(
        rule_id=rule.id,
        machine=rule.machine,
        task=rule.task,
        hours_used=used,
        due=due,
        due_at=due_at,
        reason=reason if due else None,
        overdue=now - due_at if due and due_at is not None else timedelta(0),
        hours_overdue=max(0.0, used - rule.every_hours) if rule.every_hours is not None else 0.0,
        hours_left=max(0.0, rule.every_hours - used) if rule.every_hours is not None else None,
    )


def due_tasks(
    rules: Iterable[MaintenanceRule], spans: Iterable[SpanLike], now: datetime
) -> list[TaskStatus]:
    """The rules due at ``now``, most overdue first. ``spans`` may cover several machines."""
    # spans without a ``machine`` attribute are taken to belong to every rule's machine
    by_machine: dict[str | None, list[SpanLike]] = {}
    for s in spans:
        by_machine.setdefault(getattr(s, "machine", None), []).append(s)
    out = []
    for rule in rules:
        mine = by_machine.get(rule.machine, []) + by_machine.get(None, [])
        status = task_status(rule, mine, now)
        if status.due:
            out.append(status)
    return sorted(out, key=lambda t: (-t.overdue, str(t.rule_id)))
