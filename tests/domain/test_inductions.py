"""Induction rules: sign-up refusals, capacity, waitlist order, moving up, expiry by time and by disuse."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fablab.domain import inductions as ind
from fablab.domain.fairshare import UsageRecord

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LASER, SAFETY, CNC = 1, 2, 3


def session(**kw: object) -> ind.Session:
    base: dict[str, object] = dict(id=10, machine_type_id=LASER, start=NOW + timedelta(days=2),
                                   end=NOW + timedelta(days=2, hours=2), capacity=2)
    base.update(kw)
    return ind.Session(**base)  # type: ignore[arg-type]


def su(member: int, status: str = ind.CONFIRMED, minutes: int = 0) -> ind.Signup:
    return ind.Signup(member, status, NOW - timedelta(days=1) + timedelta(minutes=minutes), id=member)


def test_free_place_confirms_and_full_session_waitlists() -> None:
    s = session(capacity=2)
    d = ind.check_signup(s, 7, [], [su(1)], NOW)
    assert d.allowed and d.status == ind.CONFIRMED and d.places_left == 1
    d = ind.check_signup(s, 7, [], [su(1), su(2)], NOW)
    assert d.allowed and d.status == ind.WAITLISTED and d.places_left == 0


def test_cancelled_and_waitlisted_signups_hold_no_place() -> None:
    s = session(capacity=1)
    d = ind.check_signup(s, 7, [], [su(1, ind.CANCELLED), su(2, ind.WAITLISTED)], NOW)
    assert d.status == ind.CONFIRMED


def test_already_qualified_refused_unless_refresher() -> None:
    d = ind.check_signup(session(), 7, [LASER], [], NOW)
    assert d.refusal == ind.Refusal("already_qualified", {"machine_type_id": LASER})
    assert ind.check_signup(session(is_refresher=True), 7, [LASER], [], NOW).status == ind.CONFIRMED


def test_missing_prerequisites_are_named() -> None:
    s = session(prerequisite_type_ids=(SAFETY, CNC))
    d = ind.check_signup(s, 7, [CNC], [], NOW)
    assert d.refusal == ind.Refusal("missing_prerequisites", {"type_ids": [SAFETY]})
    assert ind.check_signup(s, 7, [CNC, SAFETY], [], NOW).allowed


def test_after_start_refused() -> None:
    s = session(start=NOW, end=NOW + timedelta(hours=1))
    d = ind.check_signup(s, 7, [], [], NOW)
    assert d.refusal is not None and d.refusal.code == "session_started"
    assert ind.check_signup(s, 7, [], [], NOW - timedelta(seconds=1)).allowed


def test_signed_up_twice_refused_but_again_after_cancelling() -> None:
    d = ind.check_signup(session(), 7, [], [su(7, ind.WAITLISTED)], NOW)
    assert d.refusal == ind.Refusal("already_signed_up", {"status": ind.WAITLISTED})
    assert ind.check_signup(session(), 7, [], [su(7, ind.CANCELLED)], NOW).allowed


def test_cancelled_session_refused_first() -> None:
    d = ind.check_signup(session(status=ind.SESSION_CANCELLED, start=NOW), 7, [LASER], [], NOW)
    assert d.refusal == ind.Refusal("session_cancelled")
    assert ind.check_signup(session(status=ind.DONE), 7, [], [], NOW).refusal == ind.Refusal("session_done")


def test_naive_now_is_a_bug() -> None:
    with pytest.raises(ValueError):
        ind.check_signup(session(), 7, [], [], NOW.replace(tzinfo=None))


def test_waitlist_order_fewer_inductions_first_then_join_time() -> None:
    waiting = [su(1, ind.WAITLISTED, 0), su(2, ind.WAITLISTED, 5), su(3, ind.WAITLISTED, 10)]
    # Member 1 joined first but just had two inductions; member 2 one long ago; member 3 none.
    history = [UsageRecord(1, NOW - timedelta(days=3), 2.0), UsageRecord(1, NOW - timedelta(days=10), 2.0),
               UsageRecord(2, NOW - timedelta(days=300), 2.0)]
    order = [s.member_id for s in ind.waitlist_order(waiting, history, NOW)]
    assert order == [3, 2, 1]
    # Without history, join time decides.
    assert [s.member_id for s in ind.waitlist_order(waiting, [], NOW)] == [1, 2, 3]
    assert ind.positions(ind.waitlist_order(waiting, [], NOW)) == {1: 1, 2: 2, 3: 3}


def test_waitlist_order_ignores_non_waitlisted() -> None:
    assert [s.member_id for s in ind.waitlist_order([su(1), su(2, ind.WAITLISTED)], [], NOW)] == [2]


def test_cancel_moves_up_as_many_as_places_are_free() -> None:
    s = session(capacity=2)
    signups = [su(1, ind.CANCELLED), su(2), su(3, ind.WAITLISTED, 1), su(4, ind.WAITLISTED, 2)]
    assert [x.member_id for x in ind.to_move_up(s, signups, [], NOW)] == [3]
    signups[1] = su(2, ind.CANCELLED)
    assert [x.member_id for x in ind.to_move_up(s, signups, [], NOW)] == [3, 4]


def test_nobody_moves_up_after_start_or_when_full() -> None:
    s = session(capacity=1)
    assert ind.to_move_up(s, [su(2), su(3, ind.WAITLISTED)], [], NOW) == []
    assert ind.to_move_up(s, [su(3, ind.WAITLISTED)], [], s.start) == []
    assert ind.to_move_up(session(status=ind.SESSION_CANCELLED), [su(3, ind.WAITLISTED)], [], NOW) == []


def test_attendance_keeps_the_place() -> None:
    s = session(capacity=3)
    assert ind.places_left(s, [su(1, ind.PASSED), su(2, ind.MISSED), su(3, ind.ATTENDED)]) == 0


def test_add_months_clamps_to_month_end() -> None:
    assert ind.add_months(datetime(2026, 1, 31, tzinfo=UTC), 1) == datetime(2026, 2, 28, tzinfo=UTC)
    assert ind.add_months(datetime(2026, 11, 15, tzinfo=UTC), 14) == datetime(2028, 1, 15, tzinfo=UTC)
    with pytest.raises(ValueError):
        ind.add_months(NOW, -1)


def test_expiry_after_pass() -> None:
    assert ind.expiry_after_pass(NOW, 12) == datetime(2027, 3, 2, 9, 0, tzinfo=UTC)
    assert ind.expiry_after_pass(NOW, None) is None


def test_standing_expires_by_time() -> None:
    granted = NOW - timedelta(days=400)
    st = ind.standing(granted, NOW - timedelta(days=1), NOW - timedelta(days=2), None, NOW)
    assert (st.state, st.reason) == ("expired", "time")
    st = ind.standing(granted, NOW + timedelta(days=10), None, None, NOW)
    assert st.valid and ind.lapsing_within(st, NOW) and not ind.lapsing_within(st, NOW, timedelta(days=5))


def test_standing_lapses_by_disuse_and_use_renews() -> None:
    granted = datetime(2025, 1, 10, tzinfo=UTC)
    # 6 months without use since the grant: lapsed on 10 Jul 2025.
    st = ind.standing(granted, None, None, 6, NOW)
    assert (st.state, st.reason, st.lapses_at) == ("disused", "disuse", datetime(2025, 7, 10, tzinfo=UTC))
    # Used in December: valid until June.
    st = ind.standing(granted, None, datetime(2025, 12, 20, tzinfo=UTC), 6, NOW)
    assert st.valid and st.lapses_at == datetime(2026, 6, 20, tzinfo=UTC)


def test_standing_earlier_limit_decides() -> None:
    granted = NOW - timedelta(days=30)
    st = ind.standing(granted, NOW + timedelta(days=20), NOW, 6, NOW)
    assert st.reason == "time" and st.valid
    assert ind.standing(granted, None, None, None, NOW) == ind.Standing("valid", None)
