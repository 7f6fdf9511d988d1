"""The windows' draws re-run and checked, and lottery wins against expectation: no app, no database."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from fablab.domain import allocation as alloc
from fablab.domain import fairshare as fs
from fablab.domain.fairness.draws import check_draws

TUE = datetime(2026, 3, 3, 18)
SEED = bytes(32)


def contested_window() -> tuple[dict[str, Any], alloc.Allocation]:
    """Two members with equal fair share want the same evening: a lottery decides."""
    reqs = [alloc.SlotRequest(1, "p1", "laser", TUE, TUE + timedelta(hours=2)),
            alloc.SlotRequest(2, "p2", "laser", TUE, TUE + timedelta(hours=2)),
            alloc.SlotRequest(3, "p1", "laser", TUE + timedelta(days=1), TUE + timedelta(days=1, hours=2))]
    result = alloc.allocate_window(reqs, fs.FairShareState({"p1": 0.0, "p2": 0.0}, {"p1": 1.0, "p2": 1.0}), SEED)
    trace = {"requests": [{"id": r.id, "participant": r.member_id} for r in reqs],
             "outcomes": [{"id": o.request.id, "status": o.status.value} for o in result.outcomes]}
    return trace, result


MEMBERS = {1: 101, 2: 102, 3: 101}  # slot request id -> member id


def test_no_windows() -> None:
    check = check_draws([], {}, lambda trace, seed: pytest.fail("nothing to re-run"))
    assert (check.windows, check.verified, check.contested_requests, check.events, check.tallies) == (0, 0, 0, (), ())
    assert check.deviation == 0


def test_a_verified_lottery_against_expectation() -> None:
    trace, result = contested_window()
    calls = []

    def rerun(t: dict[str, Any], seed: str) -> alloc.Allocation:
        calls.append((t, seed))
        return result

    check = check_draws([(7, trace, SEED.hex())], MEMBERS, rerun)
    assert calls == [(trace, SEED.hex())]
    assert (check.windows, check.verified, check.contested_requests) == (1, 1, 2)
    (event,) = check.events
    assert set(event.contenders) == {101, 102} and event.winner in (101, 102)
    assert [(t.member_id, t.draws, t.expected_wins) for t in check.tallies] == [(101, 1, 0.5), (102, 1, 0.5)]
    assert sum(t.actual_wins for t in check.tallies) == 1
    assert check.deviation == pytest.approx(0.25 / 0.5 * 2)  # (1 - ½)²/½ + (0 - ½)²/½


def test_an_outcome_that_differs_from_the_published_one_is_not_verified() -> None:
    trace, result = contested_window()
    trace["outcomes"] = [{**o, "status": "granted"} for o in trace["outcomes"]]  # everyone "won"
    check = check_draws([(7, trace, SEED.hex())], MEMBERS, lambda t, s: result)
    assert check.verified == 0 and len(check.events) == 1  # the lottery is still counted


def test_windows_without_trace_or_seed_and_foreign_traces_are_skipped() -> None:
    trace, result = contested_window()
    no_outcomes = {"requests": trace["requests"]}

    def bad_seed(t: dict[str, Any], seed: str) -> alloc.Allocation:
        raise ValueError("non-hexadecimal number")

    check = check_draws([(1, None, "00"), (2, trace, None), (3, no_outcomes, "00")], MEMBERS, lambda t, s: result)
    assert (check.windows, check.verified, check.events) == (3, 0, ())
    assert check_draws([(4, trace, "zz")], MEMBERS, bad_seed).verified == 0


def test_participants_without_a_member_stay_visible() -> None:
    trace, result = contested_window()
    check = check_draws([(7, trace, SEED.hex())], {1: 101, 3: 101}, lambda t, s: result)  # p2 unknown
    assert {t.member_id for t in check.tallies} == {101, "?p2"}
