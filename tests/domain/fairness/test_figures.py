"""The lab's figures from the tally (population, Gini, Lorenz, Jain, worst off, ranks, utilisation, rates,
weeks), hand-computed on small labs: no app, no database."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from fablab.domain.fairness.figures import lab_figures
from fablab.domain.fairness.tally import tally

from .lab import at, booking, machine, period, wish


def figures(p):
    return lab_figures(p, tally(p))


def flat(points):
    return [v for p in points for v in p]


def test_no_members() -> None:
    f = figures(period())
    assert f.members == () and f.worst_off == ()
    assert (f.gini, f.jain) == (0.0, 1.0) and f.lorenz == ((0.0, 0.0), (1.0, 1.0))
    t = f.totals
    assert (t.members, t.users, t.used_hours, t.requested_hours, t.unmet_hours, t.bookings) == (0, 0, 0, 0, 0.0, 0)
    assert t.no_show_rate is None and t.late_cancel_rate is None
    (m,) = f.machines
    assert m.open_hours == 84 and m.used_hours == 0 and m.utilisation == 0 and not m.metered
    # Monday to Monday in UTC: the lab's week (UTC+1) starts an hour later, so the next one is touched.
    assert [(w.week_start, w.days, w.gini) for w in f.weeks] == [(date(2026, 3, 2), 6.96, 0),
                                                                 (date(2026, 3, 9), 0.04, 0)]


def test_no_machines_and_an_empty_period() -> None:
    f = figures(period(machines=(), end=at(0)))
    assert f.machines == () and f.weeks == () and f.totals.unmet_hours == 0


def test_qualified_members_without_use_count_as_zero() -> None:
    f = figures(period(qualified=frozenset({1, 2, 3})))
    assert [m.member_id for m in f.members] == [1, 2, 3] and all(m.used_hours == 0 for m in f.members)
    assert f.totals.members == 3 and f.totals.users == 0
    assert f.gini == 0 and f.jain == 1.0 and f.worst_off == ()  # nobody asked: nobody is unsatisfied
    assert flat(f.lorenz) == pytest.approx([0, 0, 1 / 3, 1 / 3, 2 / 3, 2 / 3, 1, 1])


def test_one_member() -> None:
    f = figures(period([booking(1, at(2, 9), 4)]))
    (m,) = f.members
    assert (m.member_id, m.rank, m.used_hours, m.requested_hours, m.satisfaction) == (1, 1, 4, 4, 1.0)
    assert f.gini == 0 and f.jain == 1 and f.worst_off == (1,)
    assert f.machines[0].utilisation == pytest.approx(4 / 84)


def test_all_equal() -> None:
    f = figures(period([booking(m, at(m, 9), 2) for m in (1, 2, 3)], qualified=frozenset({1, 2, 3})))
    assert f.gini == pytest.approx(0) and f.jain == pytest.approx(1)
    assert flat(f.lorenz) == pytest.approx([0, 0, 1 / 3, 1 / 3, 2 / 3, 2 / 3, 1, 1])
    assert [m.rank for m in f.members] == [1, 2, 3]


def test_skewed_use_hand_computed() -> None:
    """Used (6, 4, 2, 0) → Gini 0.417; satisfaction (1, 1, 1, 0) → Jain 0.75."""
    f = figures(period([booking(1, at(0, 9), 6), booking(2, at(1, 9), 4), booking(3, at(2, 9), 2)],
                       qualified=frozenset({1, 2, 3, 4}), wishes=[wish(1, 4, at(2, 9), 2)]))
    assert f.gini == pytest.approx(40 / 96) and f.jain == pytest.approx(0.75)
    assert [(m.member_id, m.used_hours, m.satisfaction) for m in f.members] == [
        (1, 6, 1.0), (2, 4, 1.0), (3, 2, 1.0), (4, 0, 0.0)]
    assert f.worst_off[0] == 4
    assert f.lorenz[2] == pytest.approx((0.5, 2 / 12))
    t = f.totals
    assert (t.members, t.users, t.used_hours, t.requested_hours, t.unmet_hours) == (4, 3, 12, 14, 2)
    assert (t.waitlisted_requests, t.rejected_requests) == (1, 0)


def test_requests_with_zero_demand_have_no_satisfaction() -> None:
    f = figures(period([booking(1, at(0, 9), 2)], qualified=frozenset({1, 2}),
                       wishes=[wish(1, 3, at(2, 9), 0)]))  # member 3 asked for nothing
    by_id = {m.member_id: m for m in f.members}
    assert by_id[2].satisfaction is None and by_id[3].satisfaction is None and by_id[3].requested_hours == 0
    assert f.worst_off == (1,) and f.jain == 1
    assert f.totals.members == 3


def test_ranks_break_ties_by_requests() -> None:
    f = figures(period([booking(1, at(0, 9), 2), booking(2, at(1, 9), 2)], wishes=[wish(1, 2, at(3, 9), 1)]))
    assert [(m.member_id, m.rank) for m in f.members] == [(2, 1), (1, 2)]  # same use, 2 asked more


def test_machines_totals_and_rates() -> None:
    laser, mill = machine(1, slug="laser"), machine(2, 2, "CNC mill", slug="mill")
    f = figures(period(
        [booking(1, at(0, 9), 2), booking(2, at(1, 9), 2, "no_show", machine_id=2),
         booking(1, at(2, 9), 1, "cancelled", cancelled_at=at(2, 8)),
         booking(3, at(3, 9), 2, "cancelled", cancelled_at=at(1, 8))],
        (laser, mill), first_session={2: at(-30)}, waitlist_now={1: 2}, waitlist_joined=5,
        wishes=[wish(1, 3, at(4, 17), 2, "rejected"), wish(2, 3, at(5, 17), 3)],
        session_sums=[(1, 0, 1.5, None, None)], machine_sums=[(2, True, 1.5)]))
    laser_row, mill_row = f.machines
    assert (laser_row.slug, laser_row.metered, mill_row.metered) == ("laser", False, True)
    assert laser_row.used_hours == 2 and laser_row.booked_hours == 2
    assert (laser_row.unmet_hours, laser_row.rejected_requests, laser_row.waitlisted_requests) == (5, 1, 1)
    assert laser_row.waitlist_now == 2 and mill_row.waitlist_now == 0
    assert mill_row.used_hours == 1.5 and mill_row.utilisation == pytest.approx(1.5 / 84)
    t = f.totals
    assert (t.bookings, t.no_shows, t.late_cancels) == (4, 1, 1)
    assert (t.no_show_rate, t.late_cancel_rate) == (0.25, 0.25)
    assert t.used_hours == 2 + 2 + 1.5 and t.waitlist_now == 2 and t.waitlist_joined == 5


def test_weeks_follow_the_lab_clock() -> None:
    # Wednesday 00:00 UTC is 01:00 lab time; the period's end, Monday 00:00 UTC, is already in the next week.
    f = figures(period([booking(1, at(2, 9), 2), booking(1, at(6, 23.5), 0.5)], start=at(2)))
    first, second = f.weeks
    assert (first.week_start, first.days, second.week_start, second.days) == (
        date(2026, 3, 2), 4.96, date(2026, 3, 9), 0.04)
    assert first.used_hours == 2 and second.used_hours == 0.5  # Sunday 23:30 UTC is Monday 00:30 lab time


def test_a_dst_week_is_seven_days_on_the_lab_clock() -> None:
    # Monday 23 March to Monday 30 March 2026, lab time: 167 hours (clocks go forward on the 29th).
    start = datetime(2026, 3, 22, 23, tzinfo=UTC).timestamp()
    end = datetime(2026, 3, 29, 22, tzinfo=UTC).timestamp()
    sunday_evening = datetime(2026, 3, 29, 16, tzinfo=UTC).timestamp()  # 18:00 lab time (CEST)
    f = figures(period([booking(1, sunday_evening, 2)], start=start, end=end))
    (w,) = f.weeks
    assert (w.week_start, w.days, w.used_hours) == (date(2026, 3, 23), 7.0, 2)
    assert f.machines[0].open_hours == 84  # opening hours are wall-clock hours
