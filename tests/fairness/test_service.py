"""The review's figures against hand-computed small cases, on the real database (SQLite or PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fablab.extensions import db
from fablab.models.scheduling import SlotRequest
from fablab.services import fairness as svc
from fablab.services import window_draw
from fablab.services import windows as window_service
from tests.fairness.conftest import NOW, T0, WEEK, at, book, closed_window, review, unmet_request, use, waitlist_slot


def test_gini_jain_worst_off_from_bookings(machine, members) -> None:
    """Used (6, 4, 2, 0) → Gini 0.417; satisfaction (1, 1, 1, 0) → Jain 0.75."""
    laser = machine("laser")
    a, b, c, d = members(laser, 4)
    book(a, laser, at(0, 9), 6)
    book(b, laser, at(1, 9), 4)
    book(c, laser, at(2, 9), 2)
    w = closed_window(laser)
    unmet_request(w, d, at(2, 9), 2)  # D wanted C's slot and did not get it
    r = review(a)
    assert r.gini == pytest.approx(0.41667, abs=1e-4)
    assert r.jain == pytest.approx(0.75)
    assert [(m.label, m.used_hours, m.requested_hours, m.satisfaction) for m in r.members] == [
        (a.name, 6, 6, 1.0), (b.name, 4, 4, 1.0), (c.name, 2, 2, 1.0), (d.name, 0, 2, 0.0)]
    assert r.worst_off[0].label == d.name and r.worst_off[0].satisfaction == 0
    assert r.lorenz[0] == (0, 0) and r.lorenz[-1] == (1, 1)
    assert r.lorenz[2] == pytest.approx((0.5, 2 / 12))  # the less-using half used 2 of 12 hours
    t = r.totals
    assert (t.members, t.users, t.used_hours, t.requested_hours, t.unmet_hours) == (4, 3, 12, 14, 2)
    assert (t.waitlisted_requests, t.rejected_requests) == (1, 0)
    assert r.you is not None and r.you.is_you and r.you.rank == 1
    (m,) = r.machines
    assert not m.metered and m.open_hours == 84 and m.used_hours == 12
    assert m.utilisation == pytest.approx(12 / 84)


def test_a_qualified_member_who_never_booked_counts_as_zero_use(machine, members) -> None:
    laser = machine()
    a, _idle = members(laser, 2)
    book(a, laser, at(0, 9), 3)
    r = review()
    assert r.totals.members == 2 and r.gini == pytest.approx(0.5)  # (3, 0)
    assert r.jain == 1.0  # only A requested anything, and got it
    assert [m.satisfaction for m in r.members] == [1.0, None]


def test_usage_sessions_replace_bookings_on_a_metered_machine(machine, members) -> None:
    laser = machine()
    a, b, steward = members(laser, 3)
    bk = book(a, laser, at(0, 9), 2)
    use(laser, a, at(0, 9.25), 1.5, bk)
    use(laser, b, at(1, 12), 1, unbooked=True)
    use(laser, steward, at(2, 9), 1, kind="maintenance", counts_as_usage=False)
    bk2 = book(b, laser, at(3, 9), 1)
    use(laser, None, at(3, 9), 1.5, bk2, overrun_minutes=30)  # no badge: the booking's member is the user
    use(laser, None, at(4, 9), 0.5)  # nobody known
    r = review()
    rows = {m.label: m for m in r.members}
    assert rows[a.name].used_hours == pytest.approx(1.5) and rows[a.name].requested_hours == 2
    assert rows[a.name].satisfaction == pytest.approx(0.75)
    assert rows[b.name].used_hours == pytest.approx(2.5) and rows[b.name].unbooked_hours == 1
    assert rows[b.name].overrun_hours == pytest.approx(0.5)
    assert rows[steward.name].used_hours == 0
    (m,) = r.machines
    assert m.metered and m.used_hours == pytest.approx(4.5) and m.maintenance_hours == 1
    assert r.totals.unattributed_hours == pytest.approx(0.5) and r.totals.overrun_hours == pytest.approx(0.5)


def test_no_shows_late_cancellations_and_rates(machine, members) -> None:
    laser = machine()
    (a,) = members(laser, 1)
    book(a, laser, at(0, 9), 2)
    book(a, laser, at(1, 9), 2, status="no_show")
    book(a, laser, at(2, 9), 1, status="confirmed")  # never checked in, grace passed: a no-show too
    book(a, laser, at(3, 10), 2, status="cancelled", cancelled_at=at(3, 8))  # 2 h before: late
    book(a, laser, at(4, 10), 2, status="cancelled", cancelled_at=at(1, 8))  # 3 days before: fine
    book(a, laser, at(5, 10), 1, kind="maintenance")  # never usage, never a booking of the member
    r = review()
    (row,) = r.members
    assert (row.bookings, row.no_shows, row.late_cancels) == (5, 2, 1)
    assert row.no_show_hours == 3 and row.used_hours == 5  # 2 used + 3 reserved and not used
    assert row.requested_hours == 5  # cancellations are not requests
    assert r.totals.no_show_rate == pytest.approx(2 / 5) and r.totals.late_cancel_rate == pytest.approx(1 / 5)
    assert r.machines[0].maintenance_hours == 1
    late12 = svc.build_review(svc.ReviewQuery(WEEK.start, WEEK.end, late_cancel_hours=1), svc.Viewer(None, True), NOW)
    assert late12.totals.late_cancels == 0


def test_an_unmet_wish_overlapping_what_the_member_holds_counts_once(machine, members) -> None:
    laser = machine()
    a, b = members(laser, 2)
    book(a, laser, at(1, 17), 2)
    w = closed_window(laser)
    unmet_request(w, a, at(1, 17.5), 1)  # A got the time another way: not unmet
    unmet_request(w, b, at(1, 17), 2)
    unmet_request(w, b, at(1, 18), 2, status="rejected")  # overlaps B's other wish: one need
    waitlist_slot(b, laser, at(2, 17), 1)  # a first-come waitlist entry nobody met
    waitlist_slot(b, laser, at(3, 17), 1, status="fulfilled")  # met: the booking counts instead
    r = review()
    rows = {m.label: m for m in r.members}
    assert rows[a.name].requested_hours == 2 and rows[a.name].satisfaction == 1
    assert rows[b.name].requested_hours == 3 and rows[b.name].used_hours == 0
    assert r.totals.unmet_hours == 3 and r.totals.waitlisted_requests == 2 and r.totals.rejected_requests == 0


def test_replay_statements_for_a_second_machine_and_longer_hours(machine, members) -> None:
    """Evenings (lab time 18-20 = 17-19 UTC): Wednesday and Saturday booked by A, wished for by B and C.
    A second laser meets both (100 %); 2 h longer on weekdays moves Wednesday's wish to 22-24 but not
    Saturday's (50 %)."""
    laser = machine("laser")
    a, b, c = members(laser, 3)
    book(a, laser, at(2, 17), 2)
    book(a, laser, at(5, 17), 2)
    w = closed_window(laser)
    unmet_request(w, b, at(2, 17), 2)
    unmet_request(w, c, at(5, 17), 2)
    r = review()
    assert r.statements == [
        "a second laser cutter would have met 100 % of last week's unmet evening demand",
        "opening the laser cutter 2 h longer on weekdays would have met 50 % of last week's unmet evening demand",
    ]
    extra, longer = r.replay
    assert (extra.unmet_hours, extra.met_hours, extra.share, extra.evening_unmet_hours) == (4, 4, 1.0, 4)
    assert (longer.met_hours, longer.evening_share) == (2, 0.5)
    heat = r.heat
    assert heat.unmet[2][18] == 1 and heat.unmet[2][19] == 1 and heat.unmet[5][18] == 1
    assert heat.demand[2][18] == 2  # A's booking and B's wish
    assert heat.capacity[2][18] == 1 and heat.capacity[2][9] == 0  # one Wednesday, closed before 10:00
    assert heat.ratio(2, 18) == 2


def test_periods_group_by_lab_week_and_filters_narrow_the_scope(machine, members) -> None:
    laser = machine("laser")
    printer = machine("printer", type_slug="3d_printer")
    (a,) = members(laser, 1)
    (b,) = members(printer, 1)
    book(a, laser, at(0, 9), 2)
    book(b, printer, at(8, 9), 5)
    two_weeks = svc.ReviewQuery(T0, T0 + timedelta(days=14, hours=-1))  # T0 is 01:00 on Monday, lab time
    r = review(query=two_weeks, now=T0 + timedelta(days=14))
    assert [(w.week_start.isoformat(), w.used_hours) for w in r.weeks] == [
        ("2026-03-02", 2), ("2026-03-09", 5)]
    assert r.scope == "the whole lab" and r.totals.used_hours == 7
    assert r.heat.capacity[0][10] == 4 and r.heat.capacity[6][21] == 4  # 2 machines × 2 Mondays / Sundays
    assert r.heat.capacity[0][22] == 0 and sum(map(sum, r.heat.capacity)) == 2 * 14 * 12
    assert [w.days for w in r.weeks] == [pytest.approx(7 - 1 / 24, abs=0.01), 7]  # from 01:00 on Monday
    only_laser = review(query=svc.ReviewQuery(T0, T0 + timedelta(days=14), machine="laser"),
                        now=T0 + timedelta(days=14))
    assert only_laser.scope == "Laser" and only_laser.totals.used_hours == 2 and only_laser.totals.members == 1
    printers = review(query=svc.ReviewQuery(T0, T0 + timedelta(days=14), machine_type="3d_printer"),
                      now=T0 + timedelta(days=14))
    assert printers.totals.used_hours == 5 and [m.slug for m in printers.machines] == ["printer"]
    with pytest.raises(svc.UnknownScope):
        review(query=svc.ReviewQuery(T0, NOW, machine="nope"))
    # the future has no use yet: the period is capped at now
    capped = review(query=svc.ReviewQuery(T0, T0 + timedelta(days=14)), now=T0 + timedelta(days=3))
    assert capped.end == T0 + timedelta(days=3) and capped.totals.used_hours == 2


def test_pseudonyms_and_your_own_position(machine, members) -> None:
    laser = machine()
    a, b = members(laser, 2)
    book(a, laser, at(0, 9), 3)
    book(b, laser, at(1, 9), 1)
    r = review(viewer=b, names=False)
    assert [m.label for m in r.members] == [a.pseudonym, b.pseudonym]
    assert all(m.member_id is None for m in r.members)
    assert [m.is_you for m in r.members] == [False, True]
    assert r.you is not None and r.you.rank == 2 and r.you.label == b.pseudonym
    assert svc.viewer_for(a, public=False, show_names=True) is None
    assert svc.viewer_for(a, public=True, show_names=False) == svc.Viewer(a.id, False)
    a.role = "admin"
    assert svc.viewer_for(a, public=False, show_names=False) == svc.Viewer(a.id, True)


def test_lottery_outcomes_from_a_real_window_trace(machine, members) -> None:
    """Two members with no past use want the same slot: one lottery, expected 0.5 wins each, one win."""
    laser = machine("laser", mode="window")
    a, b = members(laser, 2)
    window_service.update_policy(laser, "window", quota_slots=1)
    opened = NOW - timedelta(days=2)
    p0 = NOW
    w = window_service.open_window(laser, None, opened, period_start=p0, period_end=p0 + timedelta(days=1),
                                   closes_at=opened + timedelta(hours=1))
    slot = (p0 + timedelta(hours=17), p0 + timedelta(hours=19))
    for m in (a, b):
        window_service.add_request(m, w, *slot, now=opened)
    window_draw.close_window(w, opened + timedelta(hours=1))
    later = p0 + timedelta(days=1)
    r = review(query=svc.ReviewQuery(p0, later), now=later)
    lot = r.lottery
    assert (lot.windows, lot.verified, lot.lottery_events, lot.contested_requests) == (1, 1, 1, 2)
    assert sorted((x.draws, x.expected_wins) for x in lot.rows) == [(1, 0.5), (1, 0.5)]
    assert sum(x.actual_wins for x in lot.rows) == 1
    assert lot.deviation == pytest.approx(1.0)  # (1-0.5)²/0.5 + (0-0.5)²/0.5
    loser = db.session.scalar(SlotRequest.__table__.select().where(SlotRequest.status == "waitlisted"))
    assert loser is not None
    assert r.totals.waitlisted_requests == 1


def test_sessions_fall_in_the_lab_week_across_a_dst_change(machine, members) -> None:
    """Summed by the database on the lab's clock: 23:30 UTC on Sunday 22 March is Monday in Berlin (CET),
    and after the change to summer time 22:30 UTC on Sunday 5 April is Monday too, 21:30 still Sunday."""
    laser = machine()
    (a,) = members(laser, 1)
    use(laser, a, datetime(2026, 3, 22, 23, 30, tzinfo=UTC), 1)
    use(laser, a, datetime(2026, 4, 5, 22, 30, tzinfo=UTC), 1)
    use(laser, a, datetime(2026, 4, 5, 21, 30, tzinfo=UTC), 0.5)
    use(laser, a, datetime(2026, 3, 22, 19, 30, tzinfo=UTC), 1)  # crosses the period's start: clipped to 0.5
    q = svc.ReviewQuery(datetime(2026, 3, 22, 20, tzinfo=UTC), datetime(2026, 4, 6, 22, tzinfo=UTC))
    r = review(query=q, now=q.end)
    assert [(w.week_start.isoformat(), w.used_hours) for w in r.weeks] == [
        ("2026-03-16", 0.5), ("2026-03-23", 1), ("2026-03-30", 0.5), ("2026-04-06", 1)]
    assert r.totals.used_hours == 3
