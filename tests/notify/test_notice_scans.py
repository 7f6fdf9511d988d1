"""Notices that come from time passing and the stewards' and admins' alerts (fablab/services/notice_scans.py):
each scan at a frozen `now`, run twice, late, and across DST; the event listeners called with a LabEvent."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from devices import events as ev
from fablab import wiring
from fablab.extensions import db
from fablab.models import Booking, BookingKind, BookingStatus, Machine, Member, Qualification, Role
from fablab.models.notifications import Notice, NoticePreference, NoticeSettings, OutboxMail
from fablab.models.scheduling import WaitlistEntry
from fablab.models.types import utcnow
from fablab.models.usage import Bridge, DeadLetter
from fablab.services import lab_events, notice_scans, notify
from fablab.services import usage as usage_service
from fablab.services.lab_events import LabEvent
from fablab.services.notice_render import render
from fablab.worker import jobs
from fablab.worker.ingest import Incoming, Ingestor

BERLIN = ZoneInfo("Europe/Berlin")
T0 = datetime(2026, 6, 10, 10, 0, tzinfo=UTC)  # a Wednesday, summer time
MIN = timedelta(minutes=1)
GRACE = 15
OUR_JOBS = ["send_reminders", "announce_checkin_windows", "warn_expiring_qualifications", "alert_bridges_offline",
            "alert_dead_letters", "weekly_fairness_digest"]


@pytest.fixture
def machine(make_machine) -> Machine:
    return make_machine("laser", name="Laser", policy={"checkin_grace_minutes": GRACE})


@pytest.fixture
def member(make_member) -> Member:
    return make_member(name="Ada")


@pytest.fixture
def staff(make_member) -> dict[str, Member]:
    return {"steward": make_member(role=Role.STEWARD, name="Steward"),
            "admin": make_member(role=Role.ADMIN, name="Admin")}


def book(member: Member, machine: Machine, start: datetime, hours: float = 2, *, created: datetime | None = None,
         status: BookingStatus = BookingStatus.CONFIRMED, kind: BookingKind = BookingKind.NORMAL) -> Booking:
    """A booking row as the booking service leaves it (the scans only read rows)."""
    b = Booking(member_id=member.id, machine_id=machine.id, start_at=start, end_at=start + timedelta(hours=hours),
                booked_end_at=start + timedelta(hours=hours), status=status.value, kind=kind.value,
                created_at=created or start - timedelta(days=3))
    db.session.add(b)
    db.session.commit()
    return b


def notices(kind: str, member: Member | None = None) -> list[Notice]:
    stmt = select(Notice).where(Notice.kind == kind).order_by(Notice.id)
    if member is not None:
        stmt = stmt.where(Notice.member_id == member.id)
    return list(db.session.scalars(stmt))


def run(scan: Callable[[datetime], Any], now: datetime) -> Any:
    """A scan as the worker runs it: its own transaction, committed."""
    out = scan(now)
    db.session.commit()
    return out


# --- reminders ------------------------------------------------------------------------------------------


def test_reminder_at_the_default_lead_time_once_with_its_mail(member, machine) -> None:
    b = book(member, machine, T0)
    assert run(notice_scans.send_reminders, T0 - timedelta(minutes=61)) == []
    assert run(notice_scans.send_reminders, T0 - timedelta(minutes=60)) == [b.id]
    assert run(notice_scans.send_reminders, T0 - timedelta(minutes=59)) == []  # run again: nobody told twice
    [n] = notices("booking_reminder")
    assert n.member_id == member.id and n.link == f"/bookings/{b.id}" and n.email_state == "queued"
    assert n.dedupe_key == f"booking:{b.id}:reminder:2026-06-10T10:00:00+00:00"
    assert db.session.scalars(select(OutboxMail).where(OutboxMail.notice_id == n.id)).one().status == "pending"
    r = render(n.kind, n.params, member, n.link)
    assert r.subject == "Reminder: Laser, Wed 10 Jun, 12:00"  # the lab's wall clock (CEST)
    assert "60 minutes" in r.text and "http://localhost:5000/bookings/" in r.text


def test_default_lead_time_is_the_cores(member) -> None:
    assert notify.settings_for(member.id).reminder_minutes == notice_scans.DEFAULT_REMINDER_MINUTES


def test_the_members_lead_time_and_no_reminder_at_all(make_member, member, machine) -> None:
    quiet = make_member(name="Quiet")
    db.session.add_all([NoticeSettings(member_id=member.id, reminder_minutes=24 * 60, digest=False, digest_hour=7),
                        NoticeSettings(member_id=quiet.id, reminder_minutes=0, digest=False, digest_hour=7)])
    db.session.commit()
    mine, theirs = book(member, machine, T0), book(quiet, machine, T0 + timedelta(hours=3))
    assert run(notice_scans.send_reminders, T0 - timedelta(hours=24, minutes=1)) == []
    assert run(notice_scans.send_reminders, T0 - timedelta(hours=24)) == [mine.id]
    for minutes in (180, 60, 1):
        assert run(notice_scans.send_reminders, theirs.start_at - timedelta(minutes=minutes)) == []
    assert [n.member_id for n in notices("booking_reminder")] == [member.id]


def test_no_reminder_when_cancelled_started_released_or_booked_inside_the_lead(member, machine) -> None:
    book(member, machine, T0, status=BookingStatus.CANCELLED)
    book(member, machine, T0 + timedelta(hours=2), status=BookingStatus.NO_SHOW)
    book(member, machine, T0 + timedelta(hours=4), created=T0 + timedelta(hours=3, minutes=30))  # booked late
    book(member, machine, T0 + timedelta(hours=6), kind=BookingKind.MAINTENANCE)
    for at in (T0 - timedelta(minutes=30), T0 + timedelta(hours=3, minutes=40), T0 + timedelta(hours=5, minutes=30)):
        assert run(notice_scans.send_reminders, at) == []
    assert notices("booking_reminder") == []


def test_a_worker_down_for_a_day_sends_no_reminder_for_past_bookings(member, machine) -> None:
    book(member, machine, T0)
    later = book(member, machine, T0 + timedelta(days=1, minutes=30))
    # Down from before the first reminder until a day later: the first booking is over, the second is due.
    assert run(notice_scans.send_reminders, T0 + timedelta(days=1)) == [later.id]
    assert [n.params["booking_id"] for n in notices("booking_reminder")] == [later.id]


def test_a_moved_booking_is_reminded_again_for_its_new_start(member, machine) -> None:
    b = book(member, machine, T0)
    assert run(notice_scans.send_reminders, T0 - timedelta(minutes=30)) == [b.id]
    b.start_at, b.end_at = T0 + timedelta(days=1), T0 + timedelta(days=1, hours=2)
    db.session.commit()
    assert run(notice_scans.send_reminders, T0 + timedelta(days=1) - timedelta(minutes=45)) == [b.id]
    assert [n.params["start"] for n in notices("booking_reminder")] == [
        "2026-06-10T10:00:00+00:00", "2026-06-11T10:00:00+00:00"]


def test_a_member_who_turned_reminders_off_gets_none(member, machine) -> None:
    db.session.add(NoticePreference(member_id=member.id, kind="booking_reminder", channel="off"))
    db.session.commit()
    book(member, machine, T0)
    assert run(notice_scans.send_reminders, T0 - timedelta(minutes=30)) == []


@pytest.mark.dates
def test_reminder_and_checkin_notice_at_each_clock_of_the_matrix(member, machine) -> None:
    now = utcnow().replace(second=0, microsecond=0)
    start = now + timedelta(minutes=10)  # across the DST switch, the year end, a Sunday midnight
    b = book(member, machine, start)
    assert run(notice_scans.send_reminders, now) == [b.id]
    assert run(notice_scans.announce_checkin_windows, now) == [b.id]
    assert run(notice_scans.send_reminders, now + MIN) == [] and run(notice_scans.announce_checkin_windows, now) == []
    [n] = notices("checkin_open")
    release = (start + timedelta(minutes=GRACE)).astimezone(BERLIN)
    assert n.params["release_local"] == f"{release.hour:02d}:{release.minute:02d}"
    assert f"released at {n.params['release_local']} unless you check in" in render(n.kind, n.params, member).summary


# --- check-in window ------------------------------------------------------------------------------------


def test_checkin_notice_when_the_window_opens_with_the_local_release_time(member, machine) -> None:
    b = book(member, machine, T0)
    assert run(notice_scans.announce_checkin_windows, T0 - timedelta(minutes=16)) == []
    assert run(notice_scans.announce_checkin_windows, T0 - timedelta(minutes=15)) == [b.id]
    assert run(notice_scans.announce_checkin_windows, T0) == []
    [n] = notices("checkin_open")
    assert n.params["release_local"] == "12:15" and n.params["release_at"] == "2026-06-10T10:15:00+00:00"
    assert n.dedupe_key == f"booking:{b.id}:checkin:2026-06-10T10:00:00+00:00"
    assert n.email_state == "none"  # the kind's default is in-app (an urgent, short-lived notice)
    r = render(n.kind, n.params, member, n.link)
    assert r.summary == "Check-in for Laser is open: released at 12:15 unless you check in."


def test_no_checkin_notice_after_the_release_or_when_checked_in(member, machine) -> None:
    book(member, machine, T0)  # a worker down through the window: released, no late "check in by"
    checked = book(member, machine, T0 + timedelta(hours=3))
    checked.status, checked.checked_in_at = BookingStatus.CHECKED_IN.value, checked.start_at - MIN
    db.session.commit()
    assert run(notice_scans.announce_checkin_windows, T0 + timedelta(minutes=GRACE)) == []
    assert run(notice_scans.announce_checkin_windows, T0 + timedelta(hours=3)) == []
    assert notices("checkin_open") == []


@pytest.mark.parametrize(("start", "release"), [
    (datetime(2026, 3, 29, 0, 45, tzinfo=UTC), "03:00"),  # 01:45 CET + 15 min: the clocks jump to 03:00
    (datetime(2026, 10, 25, 1, 0, tzinfo=UTC), "02:15"),  # the second 02:00 (CET)
])
def test_release_time_across_dst(member, machine, start: datetime, release: str) -> None:
    book(member, machine, start)
    run(notice_scans.announce_checkin_windows, start - timedelta(minutes=5))
    assert [n.params["release_local"] for n in notices("checkin_open")] == [release]


# --- qualifications -------------------------------------------------------------------------------------


def qualify(member: Member, machine: Machine, expires: datetime | None, *, whole_type: bool = False) -> Qualification:
    q = Qualification(member_id=member.id, machine_id=None if whole_type else machine.id,
                      machine_type_id=machine.type_id if whole_type else None, expires_at=expires)
    db.session.add(q)
    db.session.commit()
    return q


def test_expiring_in_30_days_then_expired_each_once(member, machine) -> None:
    q = qualify(member, machine, T0 + timedelta(days=30, hours=1))
    assert run(notice_scans.warn_expiring_qualifications, T0) == []  # 30 days and an hour: not yet
    assert run(notice_scans.warn_expiring_qualifications, T0 + timedelta(hours=1)) == [(q.id, "qualification_expiring")]
    assert run(notice_scans.warn_expiring_qualifications, T0 + timedelta(days=10)) == []
    expired_at = T0 + timedelta(days=30, hours=1)
    assert run(notice_scans.warn_expiring_qualifications, expired_at) == [(q.id, "qualification_expired")]
    assert run(notice_scans.warn_expiring_qualifications, expired_at + timedelta(days=2)) == []
    [warn], [gone] = notices("qualification_expiring"), notices("qualification_expired")
    assert warn.link == gone.link == "/machines/laser"
    assert warn.dedupe_key == f"qualification:{q.id}:expiring:2026-07-10"
    assert render(warn.kind, warn.params, member, warn.link).subject == \
        "Your qualification for Laser expires Fri 10 Jul"
    assert "expired" in render(gone.kind, gone.params, member).summary


def test_a_renewal_is_warned_about_again_and_old_expiries_are_history(member, machine, make_member) -> None:
    q = qualify(member, machine, T0 + timedelta(days=5), whole_type=True)
    qualify(make_member(), machine, T0 - timedelta(days=45))  # lapsed long ago: no news
    qualify(make_member(), machine, None)  # never expires
    run(notice_scans.warn_expiring_qualifications, T0)
    q.expires_at = T0 + timedelta(days=25)  # renewed for a short while
    db.session.commit()
    run(notice_scans.warn_expiring_qualifications, T0 + timedelta(days=1))
    told = notices("qualification_expiring")
    assert [n.params["expires_day"] for n in told] == ["2026-06-15", "2026-07-05"]
    assert {n.member_id for n in told} == {member.id} and told[0].link == "/"  # a type: the machines overview
    assert notices("qualification_expired") == []


@pytest.mark.dates
def test_expiry_warning_keys_on_the_lab_date_at_each_clock(member, machine) -> None:
    now = utcnow()
    q = qualify(member, machine, now + timedelta(days=29, minutes=45))
    assert run(notice_scans.warn_expiring_qualifications, now) == [(q.id, "qualification_expiring")]
    day = (now + timedelta(days=29, minutes=45)).astimezone(BERLIN).date().isoformat()
    assert notices("qualification_expiring")[0].dedupe_key == f"qualification:{q.id}:expiring:{day}"
    assert run(notice_scans.warn_expiring_qualifications, now + timedelta(hours=1)) == []


# --- bridges offline ------------------------------------------------------------------------------------


def offline_bridge(machine: Machine, since: datetime) -> Bridge:
    b = Bridge(bridge_id="bridge-1", password_hash="$7$x", online=False, last_seen_at=since, machines=[machine])
    db.session.add(b)
    db.session.commit()
    return b


def test_bridge_offline_alert_after_ten_minutes_not_at_nine(staff, member, machine) -> None:
    bridge = offline_bridge(machine, T0)
    assert run(notice_scans.alert_bridges_offline, T0 + timedelta(minutes=9)) == []
    assert run(notice_scans.alert_bridges_offline, T0 + timedelta(minutes=10)) == []
    assert run(notice_scans.alert_bridges_offline, T0 + timedelta(minutes=11)) == ["bridge-1"]
    assert run(notice_scans.alert_bridges_offline, T0 + timedelta(minutes=40)) == []  # one per spell
    told = notices("bridge_offline")
    assert {n.member_id for n in told} == {staff["steward"].id, staff["admin"].id}  # never a plain member
    assert told[0].params["machines"] == ["Laser"] and told[0].link == "/admin/bridges"
    assert render(told[0].kind, told[0].params, staff["steward"]).summary == \
        "Bridge bridge-1 offline since Wed 10 Jun, 12:00 (Laser)."
    # Back, then gone again: a new spell, a new alert. Back within ten minutes: nothing.
    bridge.online, bridge.last_seen_at = True, T0 + timedelta(hours=1)
    db.session.commit()
    assert run(notice_scans.alert_bridges_offline, T0 + timedelta(hours=2)) == []
    bridge.online, bridge.last_seen_at = False, T0 + timedelta(hours=2)
    db.session.commit()
    assert run(notice_scans.alert_bridges_offline, T0 + timedelta(hours=2, minutes=9)) == []
    assert run(notice_scans.alert_bridges_offline, T0 + timedelta(hours=2, minutes=12)) == ["bridge-1"]
    assert len(notices("bridge_offline", staff["steward"])) == 2


def test_a_real_last_will_written_days_before_counts_from_when_it_arrived(app, staff, machine) -> None:
    # The bridge ran for ten days; its Last Will was written (msg_id, ts) when it started.
    usage_service.add_bridge("bridge-x", [machine.slug])
    db.session.commit()
    will = ev.BridgeStatus(src="bridge-x", bridge_id="bridge-x", online=False,
                           ts=ev.utc_now_iso(T0 - timedelta(days=10)))
    Ingestor(app).process([Incoming(will.topic(), ev.encode(will), received_at=T0)], now=T0)
    db.session.commit()
    bridge = db.session.scalar(select(Bridge).where(Bridge.bridge_id == "bridge-x"))
    assert bridge is not None and bridge.online is False
    assert run(notice_scans.alert_bridges_offline, T0 + timedelta(minutes=9)) == []
    assert run(notice_scans.alert_bridges_offline, T0 + timedelta(minutes=11)) == ["bridge-x"]
    assert notices("bridge_offline")[0].params["since"] == "2026-06-10T10:00:00+00:00"


def test_a_bridge_gone_for_weeks_is_not_news(staff, machine) -> None:
    offline_bridge(machine, T0 - timedelta(days=30))
    assert run(notice_scans.alert_bridges_offline, T0) == []


# --- dead letters ---------------------------------------------------------------------------------------


def dead(n: int, reason: str, at: datetime) -> None:
    db.session.add_all([DeadLetter(topic="fablab/v1/machine/x/event", payload="{}", reason=reason, received_at=at)
                        for _ in range(n)])
    db.session.commit()


def test_dead_letters_one_notice_per_batch_with_the_count(staff) -> None:
    assert run(notice_scans.alert_dead_letters, T0) == 0
    dead(2, "unknown machine 'x'", T0)
    dead(1, "payload not decodable", T0)
    assert run(notice_scans.alert_dead_letters, T0 + MIN) == 3
    assert run(notice_scans.alert_dead_letters, T0 + 2 * MIN) == 0  # nothing new
    [n] = notices("dead_letters", staff["steward"])
    assert n.params["count"] == 3 and n.params["reasons"][0] == {"reason": "unknown machine 'x'", "count": 2}
    assert n.dedupe_key == f"dead_letters:{n.params['newest_id']}" and n.link == "/admin/dead-letters"
    assert render(n.kind, n.params, staff["steward"]).subject == "3 new dead letters"
    # A stream goes on: gathered while the last alert is fresh, then told as one batch.
    dead(4, "unknown machine 'x'", T0 + 5 * MIN)
    assert run(notice_scans.alert_dead_letters, T0 + 10 * MIN) == 0
    dead(1, "unknown machine 'x'", T0 + 20 * MIN)
    assert run(notice_scans.alert_dead_letters, T0 + 31 * MIN) == 5
    assert [n.params["count"] for n in notices("dead_letters", staff["admin"])] == [3, 5]


def test_reviewed_dead_letters_are_not_news(staff) -> None:
    dead(2, "late", T0)
    for row in db.session.scalars(select(DeadLetter)):
        row.reviewed = True
    db.session.commit()
    assert run(notice_scans.alert_dead_letters, T0) == 0


# --- the weekly fairness digest -------------------------------------------------------------------------


def test_weekly_digest_exactly_once_a_week_at_monday_0800_across_spring_forward(staff, member, machine) -> None:
    # A week of use before the switch (Mon 23 - Sun 29 March 2026, DST begins on the Sunday).
    b = book(member, machine, datetime(2026, 3, 25, 9, 0, tzinfo=UTC))
    b.status, b.checked_in_at = BookingStatus.COMPLETED.value, b.start_at
    # Unmet demand: a member waited for the taken slot and never got it.
    db.session.add(WaitlistEntry(member_id=staff["steward"].id, machine_id=machine.id, kind="slot",
                                 start_at=b.start_at, end_at=b.end_at, status="active",
                                 joined_at=b.start_at - timedelta(days=1)))
    db.session.commit()
    sent: list[tuple[datetime, str]] = []
    t = datetime(2026, 3, 22, 0, 0, tzinfo=UTC)
    while t < datetime(2026, 4, 7, 0, 0, tzinfo=UTC):  # the worker's ten-minute rhythm for two weeks
        week = run(notice_scans.weekly_fairness_digest, t)
        if week:
            sent.append((t, week))
        t += timedelta(minutes=10)
    assert sent == [(datetime(2026, 3, 23, 7, 0, tzinfo=UTC), "2026-W13"),  # 08:00 CET
                    (datetime(2026, 3, 30, 6, 0, tzinfo=UTC), "2026-W14"),  # 08:00 CEST
                    (datetime(2026, 4, 6, 6, 0, tzinfo=UTC), "2026-W15")]
    told = notices("fairness_weekly")
    assert {n.member_id for n in told} == {staff["admin"].id}  # admins only
    second = told[1]
    assert second.params["first_day"] == "2026-03-23" and second.params["last_day"] == "2026-03-29"
    assert second.params["bookings"] == 1 and second.params["used_hours"] == 2.0
    assert second.params["unmet_hours"] == 2.0
    assert [m["machine"] for m in second.params["unmet_machines"]] == ["Laser"]
    assert second.link == "/fairness?start=2026-03-23&end=2026-03-29"
    r = render(second.kind, second.params, staff["admin"], second.link)
    assert r.subject.startswith("Fairness, week 2026-W14: 2.0 h used")
    assert "from 2026-03-23 to 2026-03-29" in r.text and "- Laser: 2.0 h" in r.text
    assert told[2].params["bookings"] == 0  # the week after: its own figures


def test_weekly_digest_after_fall_back_and_a_late_worker(staff) -> None:
    # Monday 26 Oct 2026 08:00 CET = 07:00 UTC; a worker that only starts at noon still sends it that day.
    assert run(notice_scans.weekly_fairness_digest, datetime(2026, 10, 26, 6, 59, tzinfo=UTC)) is None
    assert run(notice_scans.weekly_fairness_digest, datetime(2026, 10, 26, 11, 0, tzinfo=UTC)) == "2026-W44"
    assert run(notice_scans.weekly_fairness_digest, datetime(2026, 10, 26, 11, 10, tzinfo=UTC)) is None
    assert run(notice_scans.weekly_fairness_digest, datetime(2026, 11, 4, 7, 0, tzinfo=UTC)) is None  # Wednesday
    assert len(notices("fairness_weekly")) == 1


@pytest.mark.dates
def test_weekly_digest_key_at_each_clock(staff) -> None:
    now = utcnow()
    local = now.astimezone(BERLIN)
    monday_0800 = datetime.combine(local.date() - timedelta(days=local.weekday()), datetime.min.time().replace(hour=8),
                                   tzinfo=BERLIN)
    expected = None
    if monday_0800 <= now < monday_0800 + timedelta(days=1):
        year, week, _ = monday_0800.isocalendar()
        expected = f"{year}-W{week:02d}"
    assert run(notice_scans.weekly_fairness_digest, now) == expected
    assert run(notice_scans.weekly_fairness_digest, now) is None


# --- listeners ------------------------------------------------------------------------------------------


def status_event(machine: Machine, state: str, previous: str, at: datetime = T0, detail: str = "") -> LabEvent:
    return LabEvent("machine.status", at, {"machine_id": machine.id, "machine": machine.name, "state": state,
                                           "previous": previous, "detail": detail})


def test_machine_alarm_tells_the_stewards_once(staff, member, machine) -> None:
    notice_scans.on_machine_status(status_event(machine, "idle", "printing"))
    notice_scans.on_machine_status(status_event(machine, "alarm", "alarm"))  # no change: no news
    notice_scans.on_machine_status(LabEvent("usage.started", T0, {"machine_id": machine.id, "state": "alarm"}))
    assert notices("machine_alarm") == []
    event = status_event(machine, "error", "busy", detail="Thermal runaway, heater 0")
    notice_scans.on_machine_status(event)
    notice_scans.on_machine_status(event)  # delivered twice
    db.session.commit()
    told = notices("machine_alarm")
    assert {n.member_id for n in told} == {staff["steward"].id, staff["admin"].id}
    assert told[0].link == "/machines/laser" and told[0].email_state == "queued"
    assert render(told[0].kind, told[0].params, staff["admin"]).summary == \
        "Laser reports error since Wed 10 Jun, 12:00: Thermal runaway, heater 0."
    notice_scans.on_machine_status(status_event(machine, "alarm", "idle", at=T0 + timedelta(hours=1)))
    assert len(notices("machine_alarm", staff["steward"])) == 2  # a new alarm later: told again


def test_task_due_goes_to_the_assignee_else_the_stewards(staff, member, machine) -> None:
    def due(task_id: int, assignee: int | None) -> LabEvent:
        return LabEvent("task.due", T0, {"task_id": task_id, "title": "Clean the lens", "machine_id": machine.id,
                                         "assignee_id": assignee})

    notice_scans.on_task_due(due(1, member.id))
    notice_scans.on_task_due(due(1, member.id))
    notice_scans.on_task_due(due(2, None))
    db.session.commit()
    [mine] = notices("task_due", member)
    assert mine.params["task_id"] == 1 and mine.params["machine"] == "Laser" and mine.link == "/tasks"
    assert {n.params["task_id"] for n in notices("task_due", staff["steward"])} == {2}
    assert render(mine.kind, mine.params, member).subject == "Task due: Clean the lens (Laser)"


def test_the_listeners_are_wired_and_a_published_event_reaches_them(staff, machine) -> None:
    wiring.wire()
    assert lab_events._listeners.count(notice_scans.on_machine_status) == 1
    assert lab_events._listeners.count(notice_scans.on_task_due) == 1
    lab_events.publish(status_event(machine, "alarm", "idle"))
    assert len(notices("machine_alarm")) == 2


# --- the jobs table and the templates -------------------------------------------------------------------


def test_every_scan_is_a_job_that_runs(staff, member, machine) -> None:
    book(member, machine, T0 + timedelta(minutes=10))
    results = jobs.run_jobs(T0, OUR_JOBS)
    assert list(results) == OUR_JOBS
    assert not [r for r in results.values() if isinstance(r, Exception)]
    assert len(notices("booking_reminder")) == 1 and len(notices("checkin_open")) == 1


def test_account_changed_renders_each_change(member) -> None:
    assert render("account_changed", {"change": "role", "old": "member", "new": "steward", "by": "Admin"},
                  member).summary == "Your account changed: role (by Admin)."
    text = render("account_changed", {"change": "email", "old": "a@x.org", "new": "b@x.org"}, member).text
    assert "changed from a@x.org to b@x.org" in text and "cannot turn this notice off" in text
    assert "password of your account was changed" in render("account_changed", {"change": "password"}, member).text
