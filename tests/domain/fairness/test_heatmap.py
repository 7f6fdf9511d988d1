"""Demand, capacity and unmet demand by hour of the week, on the lab's clock: no app, no database."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fablab.domain.fairness.heatmap import HeatView, heat_view
from fablab.domain.fairness.tally import tally

from .lab import at, booking, machine, period, wish

ZERO = tuple((0.0,) * 24 for _ in range(7))


def heat(p) -> HeatView:
    return heat_view(p, tally(p))


def test_nothing_booked_or_open() -> None:
    h = heat(period(machines=()))
    assert h.demand == ZERO and h.capacity == ZERO and h.unmet == ZERO
    assert list(h.cells()) == [] and h.ratio(2, 18) is None


def test_demand_and_unmet_on_the_lab_clock() -> None:
    # Wednesday 17:00-19:00 UTC is 18:00-20:00 lab time; a wish for Thursday the same, unmet.
    h = heat(period([booking(1, at(2, 17), 2), booking(9, at(2, 9), 2, "confirmed", kind="maintenance")],
                    wishes=[wish(1, 2, at(3, 17), 1.5)]))
    assert h.demand[2][18] == 1 and h.demand[2][19] == 1 and h.demand[2][10] == 0  # maintenance is no demand
    assert h.demand[3][18] == 1 and h.demand[3][19] == 0.5
    assert h.unmet[3][18] == 1 and h.unmet[3][19] == 0.5 and h.unmet[2][18] == 0
    assert sum(map(sum, h.demand)) == pytest.approx(3.5)


def test_capacity_counts_each_weekday_of_the_period() -> None:
    # Monday 2 March to Thursday 12 March 00:00 UTC (01:00 lab time): each local day the period touches counts
    # whole, so Monday to Thursday occur twice, Friday to Sunday once.
    h = heat(period(machines=(machine(1), machine(2)), end=at(10)))
    assert h.capacity[0][10] == 4 and h.capacity[3][10] == 4 and h.capacity[4][10] == 2 and h.capacity[0][9] == 0
    assert h.capacity[0][21] == 4 and h.capacity[0][22] == 0
    assert h.ratio(0, 9) is None and h.ratio(0, 10) == 0
    cells = list(h.cells())
    assert len(cells) == 7 * 12 and cells[0] == (0, 10, 0.0, 4.0, 0.0, 0.0)


def test_ratio_of_demand_to_capacity() -> None:
    h = heat(period([booking(1, at(2, 17), 1)]))
    assert h.ratio(2, 18) == 1.0 and h.ratio(2, 17) == 0.0


def test_a_dst_change_keeps_evening_demand_in_the_evening() -> None:
    # 18:00 lab time on Saturday 28 March (CET, 17:00 UTC) and on Sunday 29 March (CEST, 16:00 UTC).
    start = datetime(2026, 3, 22, 23, tzinfo=UTC).timestamp()
    end = datetime(2026, 3, 29, 22, tzinfo=UTC).timestamp()
    sat = datetime(2026, 3, 28, 17, tzinfo=UTC).timestamp()
    sun = datetime(2026, 3, 29, 16, tzinfo=UTC).timestamp()
    h = heat(period([booking(1, sat, 1), booking(2, sun, 1)], start=start, end=end))
    assert h.demand[5][18] == 1 and h.demand[6][18] == 1 and h.demand[6][17] == 0
    assert h.capacity[6][10] == 1 and h.capacity[6][21] == 1  # Sunday is open 10-22 on the wall clock


def test_a_span_across_midnight_is_split_between_days() -> None:
    h = heat(period([booking(1, at(6, 22), 1.5)]))  # Sunday 23:00 to Monday 00:30 lab time
    assert h.demand[6][23] == 1 and h.demand[0][0] == 0.5
