"""What more capacity would have met, and the sentence that says so: no app, no database."""

from __future__ import annotations

import pytest

from fablab.domain import policy as pol
from fablab.domain.fairness.replay import period_label, replay_rows
from fablab.domain.fairness.tally import tally

from .lab import END, START, at, booking, machine, period, wish

DAY = 86400


def replay(p):
    return replay_rows(p, tally(p))


def test_no_unmet_demand_no_case() -> None:
    assert replay(period([booking(1, at(2, 17), 2)])) == ()
    assert replay(period(machines=())) == ()


def test_a_second_machine_and_longer_hours_for_an_evening_wish() -> None:
    # The laser is held Wednesday 18-20 lab time; member 2 wanted the same two hours.
    p = period([booking(1, at(2, 17), 2)], wishes=[wish(1, 2, at(2, 17), 2)], now=END)
    extra, longer = replay(p)
    assert (extra.machine_type, extra.machines, extra.scenario) == ("Laser cutter", 1, "one more machine")
    assert (extra.unmet_hours, extra.met_hours, extra.share) == (2, 2, 1.0)
    assert (extra.evening_unmet_hours, extra.evening_share) == (2, 1.0)
    assert extra.statement == "a second laser cutter would have met 100 % of last week's unmet evening demand"
    # Open until midnight on weekdays: the wish moves to 22-24 on the same day.
    assert longer.scenario == "2 h longer on weekdays" and longer.met_hours == 2
    assert longer.statement == ("opening the laser cutter 2 h longer on weekdays would have met 100 % of last "
                                "week's unmet evening demand")


def test_freed_time_is_no_case_for_more_capacity() -> None:
    # The wish is for time nobody held (freed later): the baseline meets it already.
    extra, _ = replay(period(wishes=[wish(1, 2, at(2, 17), 2)]))
    assert extra.unmet_hours == 2 and extra.met_hours == 0 and extra.share == 0
    assert extra.statement.endswith("would have met 0 % of last week's unmet evening demand")


def test_morning_demand_is_stated_overall() -> None:
    p = period([booking(1, at(2, 9), 2)], wishes=[wish(1, 2, at(2, 9), 2)], now=END + 30 * DAY)
    extra, longer = replay(p)
    assert extra.evening_unmet_hours == 0 and extra.evening_share is None
    assert extra.statement == "a second laser cutter would have met 100 % of the period's unmet demand"
    assert longer.met_hours == 2  # people who wanted the morning could come in the added evening hours


def test_a_wish_without_length_is_no_demand() -> None:
    (extra, _) = replay(period(wishes=[wish(1, 2, at(2, 17), 0)], now=END + DAY))
    assert extra.unmet_hours == 0 and extra.share is None
    assert extra.statement == "there was no unmet demand for the laser cutter in the period's requests"


def test_machines_open_all_day_get_no_longer_hours() -> None:
    always = pol.BookingPolicy(opening_hours=pol.ALWAYS_OPEN)
    rows = replay(period([booking(1, at(2, 17), 2)], machines=(machine(1, policy=always),),
                         wishes=[wish(1, 2, at(2, 17), 2)]))
    assert [r.scenario for r in rows] == ["one more machine"]


def test_per_type_most_unmet_first_and_ordinals() -> None:
    lasers = (machine(1), machine(2), machine(3, 2, "CNC mill"))
    rows = replay(period([booking(1, at(2, 17), 2), booking(3, at(2, 17), 2, machine_id=2)], lasers,
                         wishes=[wish(1, 2, at(2, 17), 2), wish(2, 4, at(3, 17), 3, machine_id=3)]))
    assert [(r.machine_type, r.scenario) for r in rows] == [
        ("CNC mill", "one more machine"), ("CNC mill", "2 h longer on weekdays"),
        ("Laser cutter", "one more machine"), ("Laser cutter", "2 h longer on weekdays")]
    assert rows[0].share == 0  # the mill was free: nothing a second one would add
    assert rows[2].machines == 2 and rows[2].statement.startswith("a third laser cutter would have met 100 %")
    five = tuple(machine(i) for i in range(1, 6))
    (row, _) = replay(period([booking(i, at(2, 17), 2, machine_id=i) for i in range(1, 6)], five,
                             wishes=[wish(1, 9, at(2, 17), 2)]))
    assert row.statement.startswith("a further laser cutter")


@pytest.mark.parametrize(("start", "end", "now", "label"), [
    (START, START + 28 * DAY, START + 28 * DAY, "last month's"),
    (START, START + 31 * DAY, START + 31 * DAY + 1800, "last month's"),
    (START, START + 7 * DAY, START + 7 * DAY, "last week's"),
    (START, START + 7 * DAY, START + 9 * DAY, "the period's"),  # ended two days ago
    (START, START + 14 * DAY, START + 14 * DAY, "the period's"),
])
def test_period_label(start, end, now, label) -> None:
    assert period_label(start, end, now) == label
