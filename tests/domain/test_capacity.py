from datetime import date, datetime, timedelta

import pytest

from fablab.domain.capacity import (
    BookedInterval,
    DemandRecord,
    OpeningHours,
    Scenario,
    describe_estimate,
    hour_of_week_matrix,
    replay_estimate,
    split_by_bucket,
)

MON = datetime(2026, 11, 30)  # a Monday
TUE, WED, THU, SAT = (MON + timedelta(days=d) for d in (1, 2, 3, 5))
H = timedelta(hours=1)
OPEN = OpeningHours({d: ((10, 22),) for d in range(7)})


def d(rid, start, hours, met=False, group=None, machine="laser1"):
    return DemandRecord(rid, f"m-{rid}", machine, start, start + hours * H, met, group)


BOOKINGS = [BookedInterval("laser1", TUE + 18 * H, TUE + 20 * H),
            BookedInterval("laser1", TUE + 20 * H, TUE + 22 * H),
            BookedInterval("laser1", WED + 18 * H, WED + 20 * H),
            BookedInterval("laser1", SAT + 11 * H, SAT + 13 * H)]
DEMAND = [
    d("granted", TUE + 18 * H, 2, met=True),
    d("d", TUE + 18 * H, 2),  # waitlisted
    d("e", TUE + 19 * H, 2),  # rejected
    d("f1", WED + 18 * H, 2, group="f"),  # alternatives of one need: the second was free after all
    d("f2", THU + 10 * H, 2, group="f"),
    d("h", SAT + 11 * H, 2),
    d("met-alt1", THU + 18 * H, 2, group="g"),  # group already served by its other alternative
    d("met-alt2", THU + 20 * H, 2, met=True, group="g"),
]


def test_second_machine_hand_checked():
    # unmet needs: d 2 h, e 2 h, f 2 h (counted once), h 2 h = 8 h. Baseline meets f (Thu 10-12 free).
    # With a second laser: d and h fit on it, f too (already met in baseline), e overlaps d: +4 h = 50 %.
    est = replay_estimate(DEMAND, BOOKINGS, ["laser1"], OPEN, Scenario(extra_machines=1))
    assert (est.unmet_hours, est.baseline_met_hours, est.scenario_met_hours) == (8, 2, 6)
    assert est.share == pytest.approx(0.5)
    evening = est.bucket("evening")
    assert (evening.unmet_hours, evening.met_hours) == (6, 2)
    assert evening.share == pytest.approx(1 / 3)
    assert (est.bucket("morning").met_hours, est.bucket("afternoon").met_hours) == (1, 1)
    assert describe_estimate(est, Scenario(extra_machines=1), "laser", bucket="evening") == (
        "a second laser would have met 33% of last month's unmet evening demand")


def test_longer_opening_hours_hand_checked():
    # Tuesday open until 24: d moves to 22-24; e (2 h) no longer fits; Saturday is not extended.
    scenario = Scenario(longer_hours=2, weekdays=frozenset({1}))
    est = replay_estimate(DEMAND, BOOKINGS, ["laser1"], OPEN, scenario)
    assert (est.unmet_hours, est.baseline_met_hours, est.scenario_met_hours) == (8, 2, 4)
    assert est.share == pytest.approx(0.25)
    assert est.bucket("evening").met_hours == 2
    assert describe_estimate(est, scenario, "laser") == (
        "opening 2 h later would have met 25% of last month's unmet demand")
    # without shifting, nobody asked for 22-24, so nothing more is met
    assert replay_estimate(DEMAND, BOOKINGS, ["laser1"], OPEN, scenario, shift_within_day=False).share == 0


def test_requests_outside_opening_hours_met_by_longer_hours():
    late = [d("late", TUE + 22 * H, 1)]
    assert replay_estimate(late, [], ["laser1"], OPEN, Scenario(extra_machines=1)).share == 0
    est = replay_estimate(late, [], ["laser1"], OPEN, Scenario(longer_hours=1, weekdays=frozenset({1})),
                          shift_within_day=False)
    assert est.share == 1 and est.bucket("night").met_hours == 1


def test_no_unmet_demand():
    est = replay_estimate([d("x", TUE, 1, met=True)], [], ["laser1"], OPEN, Scenario(extra_machines=1))
    assert est.share is None
    assert describe_estimate(est, Scenario(extra_machines=1)) == "there was no unmet demand in the period"


def test_opening_hours_extension_and_added_intervals():
    ext = OPEN.extended([1], 3)
    assert ext.weekly[1] == ((10, 24.0),)  # capped at midnight
    assert ext.weekly[2] == ((10, 22),)
    assert OPEN.added_on(ext, TUE.date()) == [(TUE + 22 * H, TUE + 24 * H)]
    earlier = OPEN.extended([0], 2, at_end=False)
    assert OPEN.added_on(earlier, MON.date()) == [(MON + 8 * H, MON + 10 * H)]
    assert OPEN.contains(TUE + 10 * H, TUE + 22 * H) and not OPEN.contains(TUE + 9 * H, TUE + 11 * H)


def test_split_by_bucket_across_boundaries_and_midnight():
    got = split_by_bucket(TUE + 16 * H + 30 * timedelta(minutes=1), TUE + 23 * H)
    assert got == {"morning": 0, "afternoon": 0.5, "evening": 5, "night": 1}
    assert split_by_bucket(TUE + 23 * H, WED + 7 * H)["night"] == 7


def test_hour_of_week_heat_map():
    opening = OpeningHours({0: ((10, 12),)})
    demand = [d("a", MON + 10.5 * H, 1), d("b", MON + 7 * 24 * H + 10 * H, 2, met=True)]
    heat = hour_of_week_matrix(demand, 2, opening, date(2026, 11, 30), date(2026, 12, 13))
    assert len(heat.demand) == 7 and all(len(row) == 24 for row in heat.demand)
    assert (heat.demand[0][10], heat.demand[0][11]) == (1.5, 1.5)
    assert (heat.capacity[0][10], heat.capacity[0][11], heat.capacity[0][12]) == (4, 4, 0)  # 2 machines × 2 Mondays
    assert heat.ratio(0, 10) == pytest.approx(0.375)
    assert heat.ratio(3, 10) is None
