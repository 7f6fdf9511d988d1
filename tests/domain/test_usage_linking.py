from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from fablab.domain.sessionize import Observation, sessionize
from fablab.domain.usage_linking import Booking, booking_for, find_no_shows, link_usage

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
GRACE = timedelta(minutes=15)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


@dataclass(frozen=True)
class Span:
    start: datetime
    end: datetime | None
    badge: str | None = None


def booking(id_, start, end, status="confirmed", kind="normal", member="ana"):
    return Booking(id=id_, member=member, start=at(start), end=at(end), status=status, kind=kind)


def test_use_during_a_confirmed_booking_checks_it_in_and_attributes_the_member():
    r = link_usage(Span(at(5), at(50)), [booking(1, 0, 60)], at(70), GRACE)
    assert (r.booking_id, r.check_in, r.check_in_at, r.member, r.member_source) == (1, 1, at(5), "ana", "booking")
    assert not r.unbooked and r.counts_as_usage and r.overrun == timedelta(0)


@pytest.mark.parametrize("start", [-15, -1, 0, 15])
def test_use_starting_within_the_grace_around_the_start_links(start):
    r = link_usage(Span(at(start), at(40)), [booking(1, 0, 60)], at(70), GRACE)
    assert r.booking_id == 1 and r.check_in == 1


@pytest.mark.parametrize("start", [-16, 16, 45])
def test_use_outside_the_grace_of_a_confirmed_booking_is_unbooked(start):
    r = link_usage(Span(at(start), at(start + 5)), [booking(1, 0, 60)], at(70), GRACE)
    assert r.unbooked and r.booking_id is None and r.check_in is None and r.member is None


def test_a_checked_in_booking_links_use_started_any_time_during_it_without_checking_in_again():
    r = link_usage(Span(at(45), at(55)), [booking(1, 0, 60, status="checked_in")], at(70), GRACE)
    assert r.booking_id == 1 and r.check_in is None and not r.unbooked


def test_cancelled_bookings_are_ignored():
    r = link_usage(Span(at(0), at(10)), [booking(1, 0, 60, status="cancelled")], at(70), GRACE)
    assert r.unbooked


def test_unbooked_use_is_attributed_to_the_badge_owner():
    r = link_usage(Span(at(0), at(10), badge="04AB"), [], at(20), GRACE, members_by_badge={"04AB": "ben"})
    assert (r.unbooked, r.member, r.member_source, r.counts_as_usage) == (True, "ben", "badge", True)


def test_badge_of_someone_else_during_a_booking_is_flagged():
    r = link_usage(Span(at(0), at(10), badge="04AB"), [booking(1, 0, 60)], at(20), GRACE, {"04AB": "ben"})
    assert (r.booking_id, r.member, r.badge_mismatch) == (1, "ben", True)
    same = link_usage(Span(at(0), at(10), badge="X"), [booking(1, 0, 60)], at(20), GRACE, {"X": "ana"})
    assert (same.member, same.member_source, same.badge_mismatch) == ("ana", "booking", False)


def test_overrun_past_the_booking_end_in_minutes():
    r = link_usage(Span(at(10), at(85)), [booking(1, 0, 60)], at(90), GRACE)
    assert r.overrun == timedelta(minutes=25) and r.overrun_minutes == 25.0
    # an open span overruns up to now
    live = link_usage(Span(at(10), None), [booking(1, 0, 60)], at(72), GRACE)
    assert live.overrun_minutes == 12.0


def test_overrun_into_the_next_booking_stays_with_the_booking_it_started_in():
    bookings = [booking(1, 0, 60, status="checked_in"), booking(2, 60, 120, member="ben")]
    r = link_usage(Span(at(50), at(80)), bookings, at(90), GRACE)
    assert (r.booking_id, r.overrun_minutes, r.check_in) == (1, 20.0, None)
    # a confirmed booking not used within its grace is a no-show: late use belongs to the next one
    late = link_usage(Span(at(50), at(80)), [booking(1, 0, 60), bookings[1]], at(90), GRACE)
    assert (late.booking_id, late.member, late.check_in) == (2, "ben", 2)


def test_the_booking_the_use_started_in_wins_over_one_starting_soon():
    bookings = [booking(1, 0, 60, status="checked_in"), booking(2, 60, 120, member="ben")]
    assert booking_for(Span(at(50), at(55)), bookings, GRACE).id == 1
    assert booking_for(Span(at(58), at(65)), [booking(2, 60, 120)], GRACE).id == 2


@pytest.mark.parametrize("kind", ["maintenance", "induction"])
def test_maintenance_and_induction_never_count_as_usage(kind):
    r = link_usage(Span(at(0), at(30)), [booking(1, 0, 60, kind=kind, member="steward")], at(40), GRACE)
    assert (r.booking_id, r.counts_as_usage, r.booking_kind, r.check_in) == (1, False, kind, 1)


def test_links_spans_from_the_sessionizer():
    obs = [
        Observation("session_started", at(3), "laser", session_id="s", seq=1, badge="04AB", msg_id="1"),
        Observation("session_ended", at(70), "laser", session_id="s", seq=2, msg_id="2"),
    ]
    [span] = sessionize(obs, at(80))
    r = link_usage(span, [booking(7, 0, 60)], at(80), GRACE, {"04AB": "ana"})
    assert (r.check_in, r.overrun_minutes, r.member) == (7, 10.0, "ana")


# -- no-shows -------------------------------------------------------------------------------------------


def test_no_show_after_grace_releases_the_rest_of_the_booking():
    [ns] = find_no_shows([booking(1, 0, 120)], [], at(20), GRACE)
    assert (ns.booking_id, ns.member, ns.deadline) == (1, "ana", at(15))
    assert ns.released == (at(20), at(120))  # from now: the past cannot be offered any more


def test_no_show_found_late_releases_from_now_and_nothing_once_over():
    [ns] = find_no_shows([booking(1, 0, 120)], [], at(10 + 15 - 5), GRACE)
    assert ns.released_start == at(20)
    [past] = find_no_shows([booking(2, 0, 60)], [], at(200), GRACE)
    assert past.released_start == past.released_end == at(60)


def test_not_a_no_show_before_the_grace_has_passed():
    assert find_no_shows([booking(1, 0, 120)], [], at(15), GRACE) == []


def test_use_within_the_grace_window_prevents_a_no_show():
    assert find_no_shows([booking(1, 0, 120)], [Span(at(14), at(30))], at(60), GRACE) == []
    assert find_no_shows([booking(1, 0, 120)], [Span(at(-10), at(-2))], at(60), GRACE) == []
    # an overrun of the previous user that kept the machine busy also protects the booking
    assert find_no_shows([booking(1, 0, 120)], [Span(at(-60), at(5))], at(60), GRACE) == []
    assert find_no_shows([booking(1, 0, 120)], [Span(at(-20), None)], at(60), GRACE) == []


def test_use_after_the_grace_does_not_save_the_booking():
    [ns] = find_no_shows([booking(1, 0, 120)], [Span(at(16), at(30)), Span(at(-60), at(-20))], at(40), GRACE)
    assert ns.booking_id == 1


def test_only_confirmed_bookings_can_be_no_shows():
    bookings = [booking(1, 0, 60, status="checked_in"), booking(2, 0, 60, status="cancelled"), booking(3, 0, 60)]
    assert [n.booking_id for n in find_no_shows(bookings, [], at(30), GRACE)] == [3]
