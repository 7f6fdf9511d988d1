"""Find a time, pure: the earliest slots over several machines under each one's rules and the member's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from fablab.domain.booking_rules import BookingRequest, ExistingBooking, MemberContext, Qualification, check_booking
from fablab.domain.free_slots import Candidate, earliest_slots
from fablab.domain.intervals import Interval
from fablab.domain.policy import BookingPolicy, week_hours

TZ = ZoneInfo("Europe/Berlin")


def L(mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(2026, mo, d, h, mi, tzinfo=TZ).astimezone(UTC)


POLICY = BookingPolicy(slot_minutes=30, min_minutes=30, max_minutes=180,
                       opening_hours=week_hours([("10:00", "22:00")]), horizon_days=14, buffer_minutes=0,
                       checkin_grace_minutes=15, max_hours_per_day=4, max_hours_per_week=10, max_future_bookings=3)
NOW = L(3, 16, 9, 10)  # Monday 09:10, before opening
ME = MemberContext(7, "member", Qualification("valid"))


def cand(mid, existing=(), blocks=(), policy=POLICY, member=ME, **kw) -> Candidate:
    return Candidate(mid, policy, list(existing), list(blocks), member, **kw)


def b(mid, start, end, member=2, status="confirmed"):
    return ExistingBooking(f"b{start.isoformat()}{mid}", mid, member, start, end, status)


def local(slots):
    return [(s.machine_id, s.start.astimezone(TZ).strftime("%d %H:%M"), s.end.astimezone(TZ).strftime("%H:%M"))
            for s in slots]


def test_earliest_over_machines_one_per_free_interval() -> None:
    a = cand("a", [b("a", L(3, 16, 10), L(3, 16, 14))])
    c = cand("c", [b("c", L(3, 16, 10), L(3, 16, 11))])
    found = earliest_slots([a, c], timedelta(hours=2), NOW, NOW, TZ, limit=3)
    # a tie goes to the order given
    assert local(found.slots) == [("c", "16 11:00", "13:00"), ("a", "16 14:00", "16:00"), ("a", "17 10:00", "12:00")]
    assert not found.excluded


def test_from_a_later_time_and_rounded_to_the_grid() -> None:
    found = earliest_slots([cand("a")], timedelta(minutes=50), L(3, 16, 17, 10), NOW, TZ, limit=1)
    assert local(found.slots) == [("a", "16 17:30", "18:30")]  # 50 min rounds up to the 30-min grid


def test_machine_wide_refusals_are_reasons_not_silence() -> None:
    out = cand("out", out_of_order=True)
    unqualified = cand("uq", member=MemberContext(7, "member", Qualification("none")))
    expired = cand("ex", member=MemberContext(7, "member", Qualification("expired", NOW - timedelta(days=2))))
    short = cand("short", policy=BookingPolicy(max_minutes=60, opening_hours=POLICY.opening_hours))
    full = cand("full", [b("full", L(3, 17 + i, 10), L(3, 17 + i, 11), member=7) for i in range(3)])
    found = earliest_slots([out, unqualified, expired, short, full], timedelta(hours=2), NOW, NOW, TZ)
    assert found.slots == []
    assert {e.machine_id: e.code for e in found.excluded} == {
        "out": "machine_unavailable", "uq": "not_qualified", "ex": "qualification_expired", "short": "too_long",
        "full": "quota_future_bookings"}
    assert all(e.message for e in found.excluded)


def test_day_quota_skips_to_the_next_day() -> None:
    mine = [b("a", L(3, 16, 10), L(3, 16, 13), member=7)]  # 3 h of the 4 h day quota used today
    found = earliest_slots([cand("a", mine)], timedelta(hours=2), NOW, NOW, TZ, limit=1)
    assert local(found.slots) == [("a", "17 10:00", "12:00")]


def test_maintenance_and_a_refusing_hook_are_respected() -> None:
    blocks = [Interval(L(3, 16, 10), L(3, 16, 20))]

    def refuse_monday_evening(s: datetime, e: datetime) -> str | None:
        return "A request window collects this evening." if s < L(3, 16, 23) else None

    found = earliest_slots([cand("a", blocks=blocks, refuse=refuse_monday_evening)], timedelta(hours=1), NOW, NOW,
                           TZ, limit=1)
    assert local(found.slots) == [("a", "17 10:00", "11:00")]
    everything_refused = earliest_slots([cand("a", refuse=lambda s, e: "Window mode.")], timedelta(hours=1),
                                        NOW, NOW, TZ)
    assert everything_refused.slots == [] and everything_refused.excluded[0].message == "Window mode."


def test_every_found_slot_passes_the_booking_rules() -> None:
    # A busy machine with a buffer, 15-minute slots, someone else's and own bookings, a block.
    policy = BookingPolicy(slot_minutes=15, min_minutes=15, max_minutes=180, buffer_minutes=15,
                           opening_hours=week_hours([("10:00", "22:00")]), horizon_days=5, max_hours_per_day=3,
                           max_hours_per_week=6, max_future_bookings=None)
    existing = [b("a", L(3, 16, h), L(3, 16, h, 45)) for h in range(10, 21, 2)]
    existing += [b("a", L(3, 17, 10), L(3, 17, 12, 30), member=7)]
    blocks = [Interval(L(3, 18, 12), L(3, 18, 18))]
    c = cand("a", existing, blocks, policy=policy)
    for minutes in (15, 45, 60, 100, 180):
        found = earliest_slots([c], timedelta(minutes=minutes), NOW, NOW, TZ, limit=20)
        assert found.slots, minutes
        for s in found.slots:
            v = check_booking(policy, BookingRequest("a", 7, s.start, s.end), existing, ME, NOW, TZ, blocks=blocks)
            assert v == [], (minutes, s, v)
        assert [s.start for s in found.slots] == sorted(s.start for s in found.slots)


def test_a_refused_run_is_skipped_with_few_questions_and_the_first_free_start_found() -> None:
    asked: list[datetime] = []
    open_from = L(3, 19, 14, 30)  # a window collects Monday 09:00 to Thursday 14:30

    def refuse(s: datetime, e: datetime) -> str | None:
        asked.append(s)
        return "Collected by the request window." if s < open_from and e > L(3, 16, 9) else None

    found = earliest_slots([cand("a", policy=BookingPolicy(opening_hours=week_hours([("00:00", "24:00")]),
                                                           max_hours_per_day=None, max_hours_per_week=None),
                                refuse=refuse)], timedelta(hours=1), NOW, NOW, TZ, limit=1)
    assert local(found.slots) == [("a", "19 14:30", "15:30")]
    assert len(asked) < 25  # 3.5 days of half-hour slots would be 170 questions
