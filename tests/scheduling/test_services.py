"""Fair scheduling services against the real database: windows, the close, waitlist offers, tasks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from fablab.domain import lottery
from fablab.extensions import db
from fablab.models import Booking
from fablab.models.scheduling import (
    EntryStatus,
    OfferStatus,
    RequestStatus,
    WaitlistEntry,
    WaitlistOffer,
    WindowStatus,
)
from fablab.services import bookings as booking_service
from fablab.services import catch_up, window_draw
from fablab.services import effort as effort_service
from fablab.services import fairshare_data as fsd
from fablab.services import waitlist as waitlist_service
from fablab.services import windows as window_service
from fablab.services.scheduling_common import SchedulingError
from tests.scheduling.conftest import hour, past_use

pytestmark = pytest.mark.dates  # runs once per frozen clock (tests/support/clock.py)


@pytest.fixture
def lab(window_machine, qualified_members):
    """The worked example: four members, two of them heavy recent users, two contested evening slots."""
    machine = window_machine()
    window_service.update_policy(machine, "window", quota_slots=1)
    a, b, c, d = qualified_members(machine, 4)
    past_use(a, machine, days_ago=2, hours=6)
    past_use(b, machine, days_ago=3, hours=3)
    now = datetime.now(UTC)
    p0 = hour(now) + timedelta(days=2)
    w = window_service.open_window(machine, None, now, period_start=p0, period_end=p0 + timedelta(days=1),
                                   closes_at=now + timedelta(days=1))
    s1 = (p0 + timedelta(hours=18), p0 + timedelta(hours=20))
    s2 = (p0 + timedelta(hours=20), p0 + timedelta(hours=22))
    for m in (a, b, c, d):
        window_service.add_request(m, w, *s1, rank=1, now=now)
        window_service.add_request(m, w, *s2, rank=2, now=now)
    return machine, (a, b, c, d), w, (s1, s2), now


def test_usage_records_count_used_time_and_no_shows_but_not_maintenance(window_machine, qualified_members) -> None:
    machine = window_machine()
    m, _idle = qualified_members(machine, 2)
    past_use(m, machine, 1, 2)
    past_use(m, machine, 1.5, 1, status="no_show")
    past_use(m, machine, 2, 3, status="cancelled")
    maint = past_use(m, machine, 3, 4)
    maint.kind = "maintenance"
    db.session.commit()
    now = datetime.now(UTC)
    hours = sorted(round(u.hours, 3) for u in fsd.usage_records(machine, now - timedelta(days=30), now))
    assert hours == [1.0, 2.0]
    view = fsd.factor_view(m, machine, now)
    assert view.factor == pytest.approx(0.25)  # used all the recent time with half the shares: 2^-(1/0.5)
    assert "more than your share" in view.explanation


def test_open_window_commits_to_a_secret_seed(lab) -> None:
    _, _, w, _, _ = lab
    assert w.status == WindowStatus.OPEN and w.revealed_seed is None
    assert lottery.verify(w.secret_seed, w.commitment)
    assert len(w.commitment) == 64


def test_requests_outside_the_period_or_unqualified_are_refused(lab, make_member) -> None:
    machine, (a, *_), w, _, now = lab
    with pytest.raises(SchedulingError, match="inside the window"):
        window_service.add_request(a, w, w.period_end, w.period_end + timedelta(hours=1), now=now)
    stranger = make_member()
    with pytest.raises(SchedulingError):
        window_service.add_request(stranger, w, w.period_start, w.period_start + timedelta(hours=1), now=now)
    with pytest.raises(SchedulingError, match="not open|closed"):
        window_service.add_request(a, w, w.period_start, w.period_start + timedelta(hours=1), now=w.closes_at)


def test_close_grants_the_under_served_waitlists_the_rest_and_reveals_the_seed(lab) -> None:
    machine, (a, b, c, d), w, (s1, s2), now = lab
    with pytest.raises(SchedulingError):
        window_draw.close_window(w, now)  # still collecting
    later = w.closes_at + timedelta(minutes=1)
    report = catch_up.scheduling_state(later)
    assert report.windows_closed == 1
    db.session.refresh(w)
    assert w.status == WindowStatus.CLOSED and w.revealed_seed == w.secret_seed
    by_member = {m.id: [r for r in w.requests if r.member_id == m.id] for m in (a, b, c, d)}
    granted = {m: [r for r in rs if r.status == RequestStatus.GRANTED] for m, rs in by_member.items()}
    # quota 1 slot each: the two members who never used the machine get the two slots
    assert len(granted[c.id]) == 1 and len(granted[d.id]) == 1
    assert not granted[a.id] and not granted[b.id]
    bookings = list(db.session.scalars(select(Booking).where(Booking.source == "window")))
    assert sorted((bk.start_at, bk.end_at) for bk in bookings) == sorted([s1, s2])
    assert {bk.member_id for bk in bookings} == {c.id, d.id}
    for r in by_member[a.id] + by_member[b.id]:
        assert r.status in (RequestStatus.WAITLISTED, RequestStatus.REJECTED)
        assert r.message  # every member sees why
    entries = list(db.session.scalars(select(WaitlistEntry).order_by(WaitlistEntry.sequence)))
    waitlisted = {r.id for r in w.requests if r.status == RequestStatus.WAITLISTED}
    assert {e.request_id for e in entries} == waitlisted and {a.id, b.id} <= {e.member_id for e in entries}
    assert [e.sequence for e in entries] == sorted(e.sequence for e in entries)
    # anyone can check: the seed matches the commitment and the trace re-runs to the same outcome
    res = window_draw.window_results(w, a)
    assert res.seed_matches is True and res.draw_matches is True
    assert res.my_label == window_service.label_of(w, a)
    assert res.my_label in {r["participant"] for r in w.trace["requests"]}
    assert all(row.message == "" for row in res.rows if not row.is_mine)
    assert window_draw.close_window(w, later).status == WindowStatus.CLOSED  # idempotent


def test_tampered_trace_does_not_verify(lab) -> None:
    _, _, w, _, _ = lab
    window_draw.close_window(w, w.closes_at)
    trace = dict(w.trace)
    trace["usage"] = {k: 0.0 for k in trace["usage"]}  # pretend nobody used the machine
    trace["outcomes"] = [dict(o, status="granted") for o in trace["outcomes"]]
    w.trace = trace
    assert window_draw.draw_matches(w) is False


def test_window_quota_and_policy_quota_limit_grants(window_machine, qualified_members) -> None:
    machine = window_machine(max_hours_per_week=3)
    (m,) = qualified_members(machine, 1)
    now = datetime.now(UTC)
    p0 = hour(now) + timedelta(days=2)
    w = window_service.open_window(machine, None, now, period_start=p0, period_end=p0 + timedelta(days=1),
                                   closes_at=now + timedelta(hours=1))
    for i in range(3):
        window_service.add_request(m, w, p0 + timedelta(hours=2 * i), p0 + timedelta(hours=2 * i + 2), rank=i + 1,
                                   now=now)
    window_draw.close_window(w, w.closes_at)
    statuses = [r.status for r in sorted(w.requests, key=lambda r: r.rank)]
    assert statuses == ["granted", "rejected", "rejected"]  # 3 h a week: one 2 h slot
    assert all(r.reason == "quota" for r in w.requests if r.status == "rejected")


def test_hybrid_only_contested_requests_are_drawn(window_machine, qualified_members) -> None:
    machine = window_machine(mode="hybrid")
    a, b = qualified_members(machine, 2)
    now = datetime.now(UTC)
    p0 = hour(now) + timedelta(days=2)
    w = window_service.open_window(machine, None, now, period_start=p0, period_end=p0 + timedelta(days=1),
                                   closes_at=now + timedelta(hours=1))
    assert w.mode == "hybrid"
    window_service.add_request(a, w, p0, p0 + timedelta(hours=1), now=now)  # uncontested
    window_service.add_request(a, w, p0 + timedelta(hours=5), p0 + timedelta(hours=6), now=now)
    window_service.add_request(b, w, p0 + timedelta(hours=5), p0 + timedelta(hours=6), now=now)
    assert window_service.direct_booking_block(machine, p0 + timedelta(hours=5), p0 + timedelta(hours=6), now)
    assert window_service.direct_booking_block(machine, p0 + timedelta(hours=8), p0 + timedelta(hours=9), now) is None
    window_draw.close_window(w, w.closes_at)
    assert w.trace["allocated"] == [r.id for r in w.requests if r.start_at == p0 + timedelta(hours=5)]
    first = next(r for r in w.requests if r.start_at == p0)
    assert first.status == "granted" and first.reason == "uncontested"
    contested = [r for r in w.requests if r.start_at != p0]
    assert sorted(r.status for r in contested) == ["granted", "waitlisted"]
    assert window_draw.draw_matches(w) is True


def test_window_mode_blocks_direct_booking_of_the_period(lab) -> None:
    machine, _, w, _, now = lab
    assert "request window" in window_service.direct_booking_block(machine, w.period_start,
                                                                   w.period_start + timedelta(hours=1), now)


def test_cancel_offers_the_slot_to_the_waitlist_in_f_order_and_claim_books_it(lab) -> None:
    machine, (a, b, c, d), w, (s1, s2), now = lab
    later = w.closes_at + timedelta(minutes=1)
    window_draw.close_window(w, later)
    winner_booking = db.session.scalar(select(Booking).where(Booking.source == "window", Booking.start_at == s1[0]))
    winner = c if winner_booking.member_id == c.id else d
    booking_service.cancel_booking(winner_booking, winner, now=later)
    offers = list(db.session.scalars(select(WaitlistOffer)))
    assert len(offers) == 1
    # those waiting for s1 are asked one at a time, highest F first (a used most, so a comes last)
    waiting = [e.member_id for e in db.session.scalars(select(WaitlistEntry).where(WaitlistEntry.start_at == s1[0]))]
    factors = fsd.fair_share_for(machine, later).factors()
    expected = sorted(waiting, key=lambda m: -factors[m])
    assert expected[-1] == a.id and len(expected) == 3
    assert offers[0].member_id == expected[0] and not offers[0].first_come
    assert offers[0].expires_at == later + timedelta(minutes=15)
    first = offers[0].member
    assert [o.id for o in waitlist_service.member_offers(first, later)] == [offers[0].id]
    waitlist_service.decline_offer(first, offers[0].id, later)
    nxt = db.session.scalar(select(WaitlistOffer).where(WaitlistOffer.status == OfferStatus.OPEN.value))
    assert nxt.member_id == expected[1]
    booking = waitlist_service.claim_offer(nxt.member, nxt.id, later)
    assert (booking.start_at, booking.end_at, booking.member_id) == (s1[0], s1[1], expected[1])
    db.session.refresh(nxt)
    assert nxt.status == OfferStatus.CLAIMED and nxt.entry.status == EntryStatus.FULFILLED


def test_offers_expire_and_pass_on(lab) -> None:
    machine, (a, b, c, d), w, (s1, s2), now = lab
    later = w.closes_at + timedelta(minutes=1)
    window_draw.close_window(w, later)
    bk = db.session.scalar(select(Booking).where(Booking.source == "window", Booking.start_at == s1[0]))
    booking_service.cancel_booking(bk, db.session.get(type(a), bk.member_id), now=later)
    first = db.session.scalar(select(WaitlistOffer))
    report = catch_up.scheduling_state(later + timedelta(minutes=16))
    assert report.offers_expired == 1 and report.offers_made == 1
    db.session.refresh(first)
    assert first.status == OfferStatus.EXPIRED
    with pytest.raises(SchedulingError):
        waitlist_service.claim_offer(first.member, first.id, later + timedelta(minutes=16))


def test_near_the_start_offers_go_to_everyone_first_claim_wins(window_machine, qualified_members) -> None:
    machine = window_machine(mode="open")
    owner, x, y = qualified_members(machine, 3)
    now = datetime.now(UTC)
    start = hour(now) + timedelta(hours=1)
    bk = booking_service.create_booking(owner, machine, start, start + timedelta(hours=1), now=now)
    waitlist_service.join_waitlist(x, machine, kind="slot", start=start, end=start + timedelta(hours=1), now=now)
    # An explicit end for "any": its default, the rest of the lab's week, may end before `start` (a Sunday evening).
    waitlist_service.join_waitlist(y, machine, kind="any", end=start + timedelta(hours=2), now=now)
    booking_service.cancel_booking(bk, owner, now=now)
    offers = list(db.session.scalars(select(WaitlistOffer)))
    assert {o.member_id for o in offers} == {x.id, y.id} and all(o.first_come for o in offers)
    got = waitlist_service.claim_offer(y, next(o.id for o in offers if o.member_id == y.id), now)
    assert got.member_id == y.id
    with pytest.raises(SchedulingError, match="no longer open|first"):
        waitlist_service.claim_offer(x, next(o.id for o in offers if o.member_id == x.id), now)


def test_no_show_release_is_offered(window_machine, qualified_members) -> None:
    machine = window_machine(mode="open")
    owner, waiting = qualified_members(machine, 2)
    now = datetime.now(UTC)
    start = hour(now) + timedelta(hours=1)
    booking_service.create_booking(owner, machine, start, start + timedelta(hours=2), now=now)
    waitlist_service.join_waitlist(waiting, machine, kind="any", end=start + timedelta(hours=3), now=now, min_hours=0.5)
    assert not list(db.session.scalars(select(WaitlistOffer)))
    report = catch_up.scheduling_state(start + timedelta(minutes=20))  # grace (15 min) passed, nobody came
    assert report.no_shows_offered == 1
    offer = db.session.scalar(select(WaitlistOffer))
    assert offer.member_id == waiting.id
    assert catch_up.scheduling_state(start + timedelta(minutes=21)).no_shows_offered == 0  # offered once
    got = waitlist_service.claim_offer(waiting, offer.id, start + timedelta(minutes=21))
    assert got.start_at == start + timedelta(minutes=30) and got.end_at == start + timedelta(hours=2)


def test_auto_open_makes_next_weeks_window(window_machine) -> None:
    machine = window_machine()
    window_service.update_policy(machine, "window", auto_open=True, open_weekday=0, open_time="00:00", close_weekday=6,
                                 close_time="23:00")
    now = datetime.now(UTC)
    t = window_service.upcoming_window_times(machine, now)
    assert t.opens_at <= t.closes_at <= t.period_start and t.period_end - t.period_start >= timedelta(days=6)
    assert catch_up.scheduling_state(max(now, t.opens_at)).windows_opened == 1
    assert catch_up.scheduling_state(max(now, t.opens_at)).windows_opened == 0


def test_update_policy_validates(window_machine) -> None:
    machine = window_machine()
    with pytest.raises(SchedulingError):
        window_service.update_policy(machine, "lottery")
    with pytest.raises(SchedulingError, match="open before"):
        window_service.update_policy(machine, "window", open_weekday=4, close_weekday=2)
    window_service.update_policy(machine, "hybrid", band_width=0.2)
    assert window_service.mode_of(machine) == "hybrid"
    assert fsd.settings_for(machine).band_width == 0.2


def test_task_weight_rises_until_claimed_and_credit_is_shared(make_member) -> None:
    a, b = make_member(), make_member()
    t0 = datetime.now(UTC) - timedelta(days=5)
    task = effort_service.create_task("Clean the laser lens", kind="cleaning", base_hours=1.0, now=t0)
    fresh = effort_service.create_task("Restock plywood", kind="restocking", base_hours=1.0)
    board = effort_service.task_board(a, datetime.now(UTC))
    assert [v.task.id for v in board] == [task.id, fresh.id]  # the neglected one is heavier
    assert board[0].weight == pytest.approx(1.5, abs=0.01)
    effort_service.claim_task(a, task, t0 + timedelta(days=5))
    effort_service.claim_task(b, task, t0 + timedelta(days=5))
    later = datetime.now(UTC) + timedelta(days=5)
    assert effort_service.task_board(a, later)[0].weight == pytest.approx(1.5, abs=0.01)  # frozen once claimed
    with pytest.raises(SchedulingError):
        effort_service.complete_task(make_member(), task)
    done = effort_service.complete_task(a, task, later)
    assert {c.member_id for c in done} == {a.id, b.id}
    assert all(c.credited_hours == pytest.approx(0.75, abs=0.01) for c in done)  # 1 person needed, 2 came
    assert [c.task_id for c in effort_service.member_contributions(b)] == [task.id]
    assert effort_service.lab_contributions() == []  # nobody confirmed the work yet: it counts nowhere
    with pytest.raises(SchedulingError, match="own work"):
        effort_service.confirm_task(b, task, later)
    effort_service.confirm_task(make_member(), task, later)  # cleaning without a machine: any other member
    assert dict((m.id, h) for m, h in effort_service.lab_contributions())[a.id] == pytest.approx(0.75, abs=0.01)


def test_bonus_off_by_default_and_capped_when_on(window_machine, qualified_members, make_member) -> None:
    machine = window_machine()
    a, b = qualified_members(machine, 2)
    past_use(a, machine, 1, 2)
    past_use(b, machine, 1, 2, status="no_show")  # the same 2 h of usage, without a second held booking at that time
    task = effort_service.create_task("Induct new members", kind="induction", base_hours=40)
    effort_service.claim_task(a, task)
    effort_service.complete_task(a, task)
    now = datetime.now(UTC)
    window_service.update_policy(machine, "window", bonus_enabled=True)
    assert fsd.factor_view(a, machine, now).bonus == 0.0  # unconfirmed work raises nothing
    window_service.update_policy(machine, "window", bonus_enabled=False)
    effort_service.confirm_task(make_member(role="steward"), task)
    assert fsd.factor_view(a, machine, now).factor == pytest.approx(fsd.factor_view(b, machine, now).factor)
    window_service.update_policy(machine, "window", bonus_enabled=True)
    fa, fb = fsd.factor_view(a, machine, now), fsd.factor_view(b, machine, now)
    assert fa.bonus == pytest.approx(0.25) and fa.factor > fb.factor


def test_jobs_with_nothing_due_do_not_write(lab) -> None:
    from sqlalchemy import event

    machine, _, w, (s1, _s2), _ = lab
    later = w.closes_at + timedelta(minutes=1)
    window_draw.close_window(w, later)
    bk = db.session.scalar(select(Booking).where(Booking.source == "window", Booking.start_at == s1[0]))
    booking_service.cancel_booking(bk, db.session.get(type(bk.member), bk.member_id), now=later)
    assert db.session.scalar(select(WaitlistOffer)) is not None  # an offer is open and held
    seen: list[str] = []

    def record(conn, cursor, statement, *args):  # noqa: ANN001
        seen.append(" ".join(statement.split()[:2]).upper())

    engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        report = catch_up.scheduling_state(later + timedelta(minutes=1))
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert not report.anything
    verbs = {x.split()[0] for x in seen}
    assert seen and not {"INSERT", "UPDATE", "DELETE"} & verbs
    assert "BEGIN IMMEDIATE" not in seen  # not even the write lock (SQLite): readers never queue behind it


def test_window_mode_refuses_direct_bookings_of_its_period(lab) -> None:
    from fablab.services import bookings as booking_service

    machine, (a, *_), w, (s1, _), now = lab
    with pytest.raises(booking_service.BookingRejected) as err:
        booking_service.create_booking(a, machine, *s1, now=now)
    assert err.value.code == "request_window" and err.value.status == 422
    assert "request window" in err.value.message
