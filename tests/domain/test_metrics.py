import pytest

from fablab.domain.allocation import LotteryEvent
from fablab.domain.metrics import (
    BookingFacts,
    MemberFairness,
    behaviour_rates,
    fairness_summary,
    gini,
    jain_index,
    lab_behaviour,
    lorenz_curve,
    lottery_deviation,
    lottery_vs_expectation,
    satisfaction,
    utilisation,
    worst_off,
)


def test_gini_hand_computed():
    # Σ|xi - xj| over ordered pairs = 40, n = 4, mean = 3: 40 / (2 · 16 · 3) = 0.4167
    assert gini([6, 4, 2, 0]) == pytest.approx(40 / 96)
    assert round(gini([0, 2, 6, 4]), 3) == 0.417
    assert gini([3, 3, 3]) == 0
    assert gini([0, 0, 10]) == pytest.approx(2 / 3)  # one of three has everything: (n-1)/n
    assert gini([]) == 0 and gini([0, 0]) == 0


def test_gini_matches_pairwise_definition():
    xs = [5.5, 0.5, 3, 8, 1, 1]
    n, mean = len(xs), sum(xs) / len(xs)
    pairwise = sum(abs(a - b) for a in xs for b in xs) / (2 * n * n * mean)
    assert gini(xs) == pytest.approx(pairwise)


def test_lorenz_curve_points():
    points = lorenz_curve([6, 4, 2, 0])
    flat = [v for p in points for v in p]
    assert flat == pytest.approx([0, 0, 0.25, 0, 0.5, 1 / 6, 0.75, 0.5, 1, 1])
    assert lorenz_curve([0, 0]) == [(0, 0), (0.5, 0.5), (1, 1)]


def test_jain_index_hand_computed():
    assert jain_index([0, 1, 1, 1]) == pytest.approx(0.75)  # 3² / (4 · 3)
    assert jain_index([1, 0, 0, 0]) == pytest.approx(0.25)
    assert jain_index([0.5, 0.5]) == 1
    assert jain_index([0, 0]) == 1 and jain_index([]) == 1


def test_satisfaction_and_utilisation():
    assert satisfaction(3, 4) == 0.75
    assert satisfaction(5, 4) == 1.0  # overruns do not make anyone more than satisfied
    assert satisfaction(2, 0) is None
    assert utilisation(30, 40) == 0.75 and utilisation(1, 0) is None


def test_summary_and_worst_off():
    summary = fairness_summary({"a": 6, "b": 4, "c": 2}, {"a": 6, "b": 8, "c": 8, "e": 2}, population=["d"])
    assert [m.member_id for m in summary.members] == ["a", "b", "c", "d", "e"]
    assert summary.gini_usage == pytest.approx(gini([6, 4, 2, 0, 0]))
    # s: a 1, b 0.5, c 0.25, e 0 ; d requested nothing -> left out
    assert summary.jain_satisfaction == pytest.approx(1.75**2 / (4 * (1 + 0.25 + 0.0625)))
    assert [m.member_id for m in summary.worst_off] == ["e", "c", "b", "a"]
    assert worst_off([MemberFairness("x", 0, 0, None)]) == []


def test_no_show_and_late_cancel_rates():
    rates = behaviour_rates([BookingFacts("a", no_show=True), BookingFacts("a"), BookingFacts("a", late_cancel=True),
                             BookingFacts("a", overrun_hours=0.5), BookingFacts("b")])
    assert rates["a"].no_show_rate == 0.25 and rates["a"].late_cancel_rate == 0.25
    assert rates["a"].overrun_hours == 0.5 and rates["b"].no_show_rate == 0
    lab = lab_behaviour(rates.values())
    assert (lab.bookings, lab.no_shows, lab.no_show_rate) == (5, 1, 0.2)


def test_lottery_outcome_vs_expectation():
    events = [
        LotteryEvent(1, 10, "r1", "a", ("a", "b")),
        LotteryEvent(1, 10, "r2", "a", ("a", "b", "c")),
        LotteryEvent(2, 9, "r3", "c", ("c",)),  # no real draw
    ]
    tallies = {x.member_id: x for x in lottery_vs_expectation(events)}
    assert tallies["a"].expected_wins == pytest.approx(0.5 + 1 / 3) and tallies["a"].actual_wins == 2
    assert tallies["b"].draws == 2 and tallies["b"].actual_wins == 0
    assert tallies["c"].expected_wins == pytest.approx(1 / 3) and tallies["c"].draws == 1
    dev = lottery_deviation(tallies.values())
    expected_dev = ((2 - 5 / 6) ** 2 / (5 / 6) + (5 / 6) ** 2 / (5 / 6) + (1 / 3) ** 2 / (1 / 3))
    assert dev == pytest.approx(expected_dev)
