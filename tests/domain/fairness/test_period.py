"""The rules applied while the period is loaded: booking columns, clipped sessions, the waitlist."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from fablab.domain.fairness.clock import LabClock
from fablab.domain.fairness.period import SessionPiece, Wish, booking_columns, clip_sessions, waitlist_facts

from .lab import BERLIN, END, START, at


def test_booking_columns_reserve_to_the_booked_end_and_find_the_lab_week() -> None:
    clock = LabClock(BERLIN, START, END)
    start = np.array([at(1, 9), at(6, 23.5)])  # Tuesday; Sunday 23:30 UTC is Monday 00:30 lab time
    end = start + 3600
    cols = booking_columns([1, 1], [5, 6], start, end, np.array([end[0] + 1800, end[1] - 1800]),
                           ["completed", "completed"], ["normal", "normal"], [True, False],
                           np.array([np.nan, np.nan]), clock)
    assert len(cols) == 2 and cols.reserved_end.tolist() == [end[0] + 1800, end[1]]  # an early check-out
    monday = datetime(2026, 3, 2, tzinfo=UTC).timestamp() // 86400
    assert cols.week.tolist() == [monday, monday + 7]
    assert cols.checked_in.tolist() == [True, False] and cols.status.tolist() == ["completed", "completed"]


def test_sessions_are_clipped_to_the_period() -> None:
    now = at(6, 12)
    rows = [
        (1, 5, START - 3600, START + 3600, 7200.0, True, False, None),  # across the start: the hour inside
        (1, 5, at(2, 9), at(2, 11), 5400.0, True, False, 10.0),  # inside: the sessionizer's 1.5 h (a pause)
        (1, 6, at(6, 11), None, None, True, True, 0.0),  # still open: until now
        (1, 7, START - 7200, START, 7200.0, True, False, 0.0),  # ended as the period began
        (2, None, END - 1800, END + 1800, 3600.0, False, False, 0.0),  # across the end
    ]
    assert clip_sessions(rows, START, END, now) == [
        SessionPiece(1, 5, START - 3600, 1.0, True, False, 0.0),
        SessionPiece(1, 5, at(2, 9), 1.5, True, False, 10.0),
        SessionPiece(1, 6, at(6, 11), 1.0, True, True, 0.0),
        SessionPiece(2, None, END - 1800, 0.5, False, False, 0.0),
    ]
    assert clip_sessions([], START, END, now) == []


def test_the_waitlist_now_joined_and_its_unmet_slots() -> None:
    now = at(5)
    rows = [
        (1, 10, 1, "slot", at(6, 17), at(6, 19), "active", None, at(4)),  # waiting, joined in the period
        (2, 11, 1, "slot", at(2, 17), at(2, 19), "left", None, START - 86400),  # wished, never met
        (3, 12, 1, "slot", at(3, 17), at(3, 19), "fulfilled", None, at(1)),  # met: no wish
        (4, 13, 2, "slot", at(3, 17), at(3, 19), "active", 77, at(1)),  # a window's request: counted there
        (5, 14, 2, "any", at(3, 17), at(3, 19), "active", None, at(1)),  # no exact slot; over by now
        (6, 15, 2, "slot", END + 3600, END + 7200, "active", None, at(4)),  # wished for after the period
    ]
    w = waitlist_facts(rows, START, END, now)
    assert w.now == {1: 1, 2: 1}
    assert w.joined == 5
    assert w.wishes == (Wish(-1, None, 10, 1, at(6, 17), at(6, 19), "waitlisted"),
                        Wish(-2, None, 11, 1, at(2, 17), at(2, 19), "waitlisted"))
    assert w.wishes[0].hours == 2
