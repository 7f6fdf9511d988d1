from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from fablab.domain.maintenance_due import MaintenanceRule, due_tasks, hours_since_service, task_status

T0 = datetime(2026, 4, 1, 8, 0, tzinfo=UTC)


def h(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


@dataclass(frozen=True)
class Span:
    start: datetime
    end: datetime | None
    machine: str = "laser"


def test_hours_since_service_counts_only_use_after_the_service():
    spans = [Span(h(-5), h(-1)), Span(h(-1), h(2)), Span(h(10), h(13))]
    assert hours_since_service(spans, h(0), now=h(20)) == pytest.approx(5.0)


def test_overlapping_spans_count_once_and_open_spans_up_to_now():
    spans = [Span(h(1), h(4)), Span(h(2), h(5)), Span(h(8), None)]
    assert hours_since_service(spans, h(0), now=h(10)) == pytest.approx(4.0 + 2.0)


def lens(**kw) -> MaintenanceRule:
    kw.setdefault("last_done_at", h(0))
    return MaintenanceRule(id="lens", machine="laser", task="clean the laser lens", **kw)


def test_hours_rule_due_with_how_overdue():
    spans = [Span(h(0), h(12)), Span(h(24), h(36))]  # 24 h of use; 20 h reached at h(32)
    s = task_status(lens(every_hours=20), spans, now=h(40))
    assert (s.due, s.reason, s.due_at) == (True, "hours", h(32))
    assert s.overdue == timedelta(hours=8)
    assert (s.hours_used, s.hours_overdue, s.hours_left) == (pytest.approx(24), pytest.approx(4), 0.0)


def test_hours_rule_not_due_yet():
    s = task_status(lens(every_hours=20), [Span(h(0), h(5))], now=h(6))
    assert (s.due, s.due_at, s.reason, s.overdue, s.hours_left) == (False, None, None, timedelta(0), 15.0)


def test_days_rule_due_after_thirty_days_even_without_use():
    s = task_status(lens(every_days=30), [], now=h(24 * 31))
    assert (s.due, s.reason, s.due_at, s.overdue) == (True, "days", h(24 * 30), timedelta(days=1))
    assert not task_status(lens(every_days=30), [], now=h(24 * 29)).due


def test_both_limits_whichever_first():
    heavy = [Span(h(0), h(25))]
    s = task_status(lens(every_hours=20, every_days=30), heavy, now=h(26))
    assert (s.reason, s.due_at) == ("hours", h(20))
    light = task_status(lens(every_hours=20, every_days=30), [Span(h(0), h(1))], now=h(24 * 40))
    assert (light.reason, light.due_at) == ("days", h(24 * 30))


def test_service_resets_the_counter():
    spans = [Span(h(0), h(30))]
    assert task_status(lens(every_hours=20, last_done_at=h(25)), spans, now=h(30)).due is False


def test_due_tasks_per_machine_most_overdue_first():
    rules = [
        lens(every_hours=20),
        MaintenanceRule("belts", "laser", "check the belts", last_done_at=h(0), every_days=1),
        MaintenanceRule("nozzle", "printer", "swap nozzle", last_done_at=h(0), every_hours=1),
    ]
    spans = [Span(h(0), h(21)), Span(h(0), h(0.5), machine="printer")]
    due = due_tasks(rules, spans, now=h(30))
    # lens due at h(20) (its 20th hour of use), belts at h(24); the printer has 0.5 of its 1 h
    assert [(t.rule_id, t.overdue) for t in due] == [("lens", timedelta(hours=10)), ("belts", timedelta(hours=6))]


def test_rule_needs_a_positive_interval():
    with pytest.raises(ValueError):
        MaintenanceRule("x", "laser", "nothing", last_done_at=h(0))
    with pytest.raises(ValueError):
        MaintenanceRule("x", "laser", "never", last_done_at=h(0), every_hours=0)
