from datetime import datetime, timedelta

import pytest

from fablab.domain.effort import (
    DEFAULT_CONFIRM,
    Task,
    WeightPolicy,
    board,
    claimant_credit,
    confirm_refusal,
    contribution_totals,
    maintenance_due,
    parse_confirm_modes,
    task_weight,
)

T0 = datetime(2026, 11, 1, 9)
DAY = timedelta(days=1)
POLICY = WeightPolicy(rise_per_day=0.1, max_factor=2.0)


def test_weight_rises_while_nobody_takes_it_and_is_capped():
    t = Task("clean", "cleaning", 2.0, T0)
    assert task_weight(t, T0, POLICY) == pytest.approx(2.0)
    assert task_weight(t, T0 + 5 * DAY, POLICY) == pytest.approx(3.0)  # 2 × (1 + 0.1 × 5)
    assert task_weight(t, T0 + 30 * DAY, POLICY) == pytest.approx(4.0)  # capped at 2 × base
    weights = [task_weight(t, T0 + d * DAY, POLICY) for d in range(12)]
    assert weights == sorted(weights) and weights[-1] > weights[0]


def test_weight_stops_rising_once_claimed():
    t = Task("oil", "maintenance", 1.0, T0, claimants=("a",), claimed_at=T0 + 3 * DAY)
    assert task_weight(t, T0 + 20 * DAY, POLICY) == pytest.approx(1.3)


def test_credit_falls_when_more_volunteer_than_needed():
    base = Task("induct", "induction", 3.0, T0, people_needed=1, claimed_at=T0)
    assert claimant_credit(base, T0, POLICY) == pytest.approx(3.0)
    one = Task("induct", "induction", 3.0, T0, claimants=("a",), claimed_at=T0)
    three = Task("induct", "induction", 3.0, T0, claimants=("a", "b", "c"), claimed_at=T0)
    pair = Task("move", "restocking", 3.0, T0, people_needed=2, claimants=("a", "b"), claimed_at=T0)
    assert claimant_credit(one, T0, POLICY) == pytest.approx(3.0)
    assert claimant_credit(three, T0, POLICY) == pytest.approx(1.0)
    assert claimant_credit(pair, T0, POLICY) == pytest.approx(3.0)


def test_contribution_totals_for_completed_tasks_in_period():
    tasks = [
        Task(1, "cleaning", 1.0, T0, claimants=("a",), claimed_at=T0 + 10 * DAY, completed_at=T0 + 11 * DAY,
             confirmed_at=T0 + 12 * DAY),
        Task(2, "maintenance", 2.0, T0, claimants=("a", "b"), claimed_at=T0, completed_at=T0 + DAY,
             confirmed_at=T0 + DAY),
        Task(3, "cleaning", 5.0, T0, claimants=("b",), claimed_at=T0),  # not completed
        Task(4, "cleaning", 1.0, T0, claimants=("c",), claimed_at=T0, completed_at=T0 + 40 * DAY,
             confirmed_at=T0 + 40 * DAY),
        Task(5, "cleaning", 4.0, T0, claimants=("c",), claimed_at=T0, completed_at=T0 + DAY),  # not confirmed
    ]
    totals = contribution_totals(tasks, POLICY, since=T0, until=T0 + 30 * DAY)
    assert totals == pytest.approx({"a": 2.0 + 1.0, "b": 1.0})


def test_board_puts_neglected_tasks_first():
    old = Task("old", "cleaning", 1.0, T0 - 9 * DAY)
    new = Task("new", "cleaning", 1.5, T0)
    done = Task("done", "cleaning", 9.0, T0, completed_at=T0)
    assert [(t.id, round(w, 2)) for t, w in board([new, old, done], T0, POLICY)] == [("old", 1.9), ("new", 1.5)]


def test_maintenance_due_after_hours_of_use():
    assert not maintenance_due(49.5, 50)
    assert maintenance_due(50, 50)
    assert not maintenance_due(100, 0)


def test_nobody_confirms_their_own_work_and_peers_only_where_the_lab_lets_them():
    assert confirm_refusal("peer", is_claimant=True, is_staff=True, qualified=True) == "own_work"
    assert confirm_refusal("steward", is_claimant=False, is_staff=True, qualified=False) is None
    assert confirm_refusal("steward", is_claimant=False, is_staff=False, qualified=True) == "steward_only"
    assert confirm_refusal("peer", is_claimant=False, is_staff=False, qualified=True) is None
    assert confirm_refusal("peer", is_claimant=False, is_staff=False, qualified=False) == "not_qualified"


def test_confirm_modes_per_kind_from_the_lab_setting():
    assert parse_confirm_modes("") == DEFAULT_CONFIRM
    modes = parse_confirm_modes(" cleaning = steward, maintenance=peer ")
    assert modes["cleaning"] == "steward" and modes["maintenance"] == "peer" and modes["induction"] == "steward"
    for bad in ("cleaning", "cleaning=anyone", "gardening=peer"):
        with pytest.raises(ValueError, match="kind=mode"):
            parse_confirm_modes(bad)
