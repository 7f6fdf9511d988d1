"""The usage rules (who used and requested what), on plain rows: no app, no database."""

from __future__ import annotations

import random

import numpy as np
import pytest

from fablab.domain.fairness.period import CANCELLED, COMPLETED, CONFIRMED, HELD, NO_SHOWS
from fablab.domain.fairness.tally import MemberTally, tally

from .lab import END, START, at, booking, machine, period, session, wish


def test_nothing_to_count() -> None:
    t = tally(period())
    assert t.members == {} and t.unmet == () and t.unattributed == 0
    assert t.machine_used == {} and t.weekly_used == {} and t.weekly_other == {}
    assert len(t.held.start) == 0


def test_no_show_time_counts_as_used_and_cancellations_as_nothing() -> None:
    t = tally(period([
        booking(1, at(0, 9), 3),
        booking(2, at(1, 9), 2, "no_show"),
        booking(3, at(2, 9), 2, "cancelled", cancelled_at=at(0, 9)),  # two days before: in time
        booking(4, at(3, 9), 2, "cancelled", cancelled_at=at(3, 7)),  # two hours before: late
        booking(5, at(4, 9), 1, "released"),  # released unused: a no-show too
    ]))
    assert t.members[1] == MemberTally(used=3, requested=3, bookings=1)
    assert t.members[2] == MemberTally(used=2, requested=2, bookings=1, no_shows=1, no_show_hours=2)
    assert t.members[3] == MemberTally(bookings=1)
    assert t.members[4] == MemberTally(bookings=1, late_cancels=1)
    assert t.members[5].no_shows == 1 and t.members[5].used == 1
    assert t.machine_booked == {1: 3 + 2 + 1} and t.machine_used == {1: 3}  # a no-show is no machine use


def test_late_cancellation_threshold_is_a_parameter() -> None:
    rows = [booking(1, at(3, 9), 2, "cancelled", cancelled_at=at(2, 13))]  # 20 h before the start
    assert tally(period(rows)).members[1].late_cancels == 1
    assert tally(period(rows, late_cancel_hours=12)).members[1].late_cancels == 0


def test_a_confirmed_booking_becomes_a_no_show_after_the_grace() -> None:
    rows = [booking(1, at(1, 9), 2, "confirmed", checked_in=False)]  # grace: 15 min
    before = tally(period(rows, end=at(1, 9.2)))  # 12 min after the start
    assert before.members[1] == MemberTally(requested=2, bookings=1)
    after = tally(period(rows, end=at(1, 9.3)))  # 18 min after
    assert after.members[1] == MemberTally(used=2, requested=2, bookings=1, no_shows=1, no_show_hours=2)


def test_a_running_booking_counts_until_now_and_an_early_checkout_as_booked() -> None:
    t = tally(period([booking(1, at(1, 9), 3, "checked_in"),
                      booking(2, at(0, 9), 1, booked_hours=2)], end=at(1, 10)))
    assert t.members[1].used == pytest.approx(1) and t.members[1].requested == 3
    assert t.members[2].used == 1 and t.members[2].requested == 2  # held until the booked end


def test_usage_data_replaces_bookings_from_the_first_session_on() -> None:
    t = tally(period(
        [booking(1, at(1, 9), 2), booking(1, at(4, 9), 2)],
        first_session={1: at(3)},
        session_sums=[(1, 20510, 1.5, 0.5, 30.0), (None, 20510, 0.25, None, None)],
        machine_sums=[(1, True, 1.75), (1, False, 0.5)]))
    a = t.members[1]
    assert a.used == 2 + 1.5  # the booking before the first session, then the sessions
    assert a.requested == 4 and a.overrun == 0.5 and a.unbooked == 0.5
    assert t.unattributed == 0.25
    assert t.machine_used == {1: 2 + 1.75} and t.machine_maintenance == {1: 0.5}


def test_maintenance_and_inductions_are_no_members_use() -> None:
    t = tally(period([booking(7, at(6, 20), 5, "confirmed", kind="maintenance"),  # runs past the period's end
                      booking(8, at(2, 9), 2, kind="induction"),
                      booking(9, at(2, 12), 2, "cancelled", kind="maintenance")]))
    assert t.members == {}
    assert t.machine_maintenance == {1: pytest.approx(4)}  # clipped to the period
    assert t.held.member.tolist() == [0] and t.held.end.tolist() == [at(6, 25)]  # a block (member 0)


def test_sessions_crossing_the_edges() -> None:
    t = tally(period(sessions=[session(1, START - 1800, 1.5), session(None, at(2), 1),
                               session(2, at(3), 2, counts=False), session(3, at(6, 23), 1, unbooked=True,
                                                                           overrun_minutes=30)]))
    assert t.members[1].used == 1.5 and t.unattributed == 1
    assert 2 not in t.members and t.machine_maintenance == {1: 2}
    assert t.members[3] == MemberTally(used=1, overrun=0.5, unbooked=1)
    assert t.machine_used == {1: 3.5}
    # A session started before the period counts in the period's first week.
    assert sum(t.weekly_used[w].get(1, 0) for w in t.weekly_used) == 1.5


def test_unmet_wishes_count_once_and_not_over_held_time() -> None:
    t = tally(period(
        [booking(1, at(2, 17), 2)],
        wishes=[wish(10, 1, at(2, 18), 2),  # overlaps what member 1 held: not unmet
                wish(11, 2, at(2, 17), 2, "rejected"),
                wish(-5, 2, at(2, 18), 2, window_id=None),  # the same need on the waitlist: once
                wish(12, 3, at(3, 17), 1),
                wish(13, 4, at(3, 17), 1, machine_id=2)]))  # on another machine: its own wish
    assert [w.id for w in t.unmet] == [11, 12, 13]
    assert t.members[2].requested == 2 and t.members[3].requested == 1 and t.members[1].requested == 2
    ((_, other),) = t.weekly_other.items()
    assert other == (2 + 2 + 1 + 1, 2 + 1 + 1, 1, 0)  # requested, unmet, bookings, no-shows


def test_a_wish_without_length_is_unmet_but_asks_for_nothing() -> None:
    t = tally(period(wishes=[wish(1, 1, at(2, 17), 0)]))
    assert [w.id for w in t.unmet] == [1] and t.members[1] == MemberTally()


def test_the_set_wise_tally_equals_a_loop_over_the_rows() -> None:
    rng = random.Random(11)
    statuses = ["completed", "checked_in", "confirmed", "cancelled", "no_show", "released", "requested"]
    rows = []
    for _ in range(400):
        s = at(rng.uniform(0, 6.9))
        status = rng.choice(statuses)
        rows.append(booking(rng.randrange(1, 12), s, rng.choice((0.5, 1, 2, 3)), status, rng.choice((1, 2, 3)),
                            rng.choice(("normal", "normal", "normal", "maintenance", "induction")),
                            checked_in=rng.random() < 0.5, booked_hours=rng.choice((None, 3.5)),
                            cancelled_at=s - rng.uniform(0, 48) * 3600 if status == CANCELLED else None))
    machines = (machine(1), machine(2), machine(3))
    p = period(rows, machines, now=END + 3600, first_session={2: at(3)})
    t = tally(p)
    # The rules, one row at a time.
    ref: dict[int, list[float]] = {}
    used_m: dict[int, float] = {}
    for r in rows:
        if r["kind"] != "normal":
            continue
        a = ref.setdefault(r["member"], [0.0, 0.0, 0, 0, 0])  # used, requested, bookings, no-shows, late
        a[2] += 1
        if r["status"] == CANCELLED:
            a[4] += r["cancelled_at"] > r["start"] - 24 * 3600
            continue
        if r["status"] not in HELD:
            continue
        req = (max(r["booked_end"], r["end"]) - r["start"]) / 3600
        a[1] += req
        if r["status"] in NO_SHOWS or (r["status"] == CONFIRMED and not r["checked_in"]
                                       and p.now > r["start"] + 15 * 60):
            a[0] += req
            a[3] += 1
        elif r["end"] <= p.first_session.get(r["machine"], np.inf) and (
                r["status"] in (COMPLETED, "checked_in") or r["checked_in"]):
            h = (min(r["end"], p.now) - r["start"]) / 3600
            a[0] += h
            used_m[r["machine"]] = used_m.get(r["machine"], 0.0) + h
    assert set(t.members) == set(ref)
    for m, (used, requested, n, no_shows, late) in ref.items():
        got = t.members[m]
        assert (got.used, got.requested) == (pytest.approx(used), pytest.approx(requested))
        assert (got.bookings, got.no_shows, got.late_cancels) == (n, no_shows, late)
    assert t.machine_used == pytest.approx(used_m)
