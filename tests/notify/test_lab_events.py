"""The lab publishes its events (fablab/services/lab_events.py) where things change, with the data the webhooks
document: bookings, no-shows, offers, window results, usage, machine status, tasks and designs."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from devices import events as ev
from fablab.extensions import db
from fablab.models import Booking, Role
from fablab.models.scheduling import WaitlistOffer
from fablab.models.usage import MaintenanceRule, UsageSession
from fablab.services import bookings as svc
from fablab.services import designs as design_service
from fablab.services import effort as effort_service
from fablab.services import lab_events, window_draw
from fablab.services import machines as machine_service
from fablab.services import usage as usage_service
from fablab.services import waitlist as waitlist_service
from fablab.services import windows as window_service
from fablab.worker.ingest import Incoming, Ingestor
from tests.designs.conftest import data as design_data

ALL_DAY = {d: [["00:00", "24:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
RULES = {"slot_minutes": 30, "min_minutes": 30, "max_minutes": 240, "opening_hours": ALL_DAY, "horizon_days": 14,
         "buffer_minutes": 0, "checkin_grace_minutes": 15, "max_hours_per_day": None, "max_hours_per_week": None,
         "max_future_bookings": None, "qualification_required": True}
BOOKING_KEYS = {"booking_id", "member_id", "machine_id", "machine", "start", "end", "actor_id", "reason", "by_staff",
                "sequence", "series_id"}


@pytest.fixture
def events():
    """Every event published during the test, in order (rolled back ones too: this list is not the database)."""
    seen: list[lab_events.LabEvent] = []
    lab_events.subscribe(seen.append)
    yield seen
    lab_events._listeners.remove(seen.append)


@pytest.fixture
def lab(make_machine, make_member):
    machine = make_machine("laser-1", name="Laser One", policy=RULES)
    ada = make_member("ada@example.org", name="Ada")
    bo = make_member("bo@example.org", name="Bo")
    sam = make_member("sam@example.org", name="Sam", role=Role.STEWARD)
    for m in (ada, bo, sam):
        machine_service.grant(m, by=None, machine=machine)
    db.session.commit()
    return machine, ada, bo, sam


def _hour(now: datetime, hours: float) -> datetime:
    return now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=hours)


def _of(events, type_: str) -> list[dict]:
    return [dict(e.data) for e in events if e.type == type_]


def test_a_bookings_life_is_published_with_its_sequence(lab, events) -> None:
    machine, ada, bo, sam = lab
    now = datetime.now(UTC)
    start = _hour(now, 3)
    b = svc.create_booking(ada, machine, start, start + timedelta(hours=1), now=now)
    svc.extend_booking(b, ada, start + timedelta(hours=2), now=now)
    svc.shorten_booking(b, ada, start + timedelta(minutes=90), now=now)
    svc.check_in(b, ada, now=start)
    assert [e.type for e in events] == ["booking.created", "booking.changed", "booking.changed",
                                        "booking.checked_in"]
    created = events[0].data
    assert set(created) == BOOKING_KEYS and events[0].at == now
    assert created == {"booking_id": b.id, "member_id": ada.id, "machine_id": machine.id, "machine": "Laser One",
                       "start": start.isoformat(), "end": (start + timedelta(hours=1)).isoformat(),
                       "actor_id": ada.id, "reason": None, "by_staff": False, "sequence": 0, "series_id": None}
    assert [e.data["end"] for e in events[1:3]] == [(start + timedelta(hours=2)).isoformat(),
                                                    (start + timedelta(minutes=90)).isoformat()]
    assert [e.data["sequence"] for e in events] == [0, 1, 2, 3]
    db.session.refresh(b)
    assert b.sequence == 3  # the event's sequence is the booking's (and the feed's) SEQUENCE after the change


def test_a_staff_cancel_says_who_and_why(lab, events) -> None:
    machine, ada, bo, sam = lab
    now = datetime.now(UTC)
    b = svc.create_booking(ada, machine, _hour(now, 3), _hour(now, 4), now=now)
    svc.cancel_booking(b, sam, "  Laser tube cracked ", now=now)
    [cancel] = _of(events, "booking.cancelled")
    assert cancel["actor_id"] == sam.id and cancel["by_staff"] is True
    assert cancel["reason"] == "Laser tube cracked" and cancel["sequence"] == 1
    own = svc.create_booking(bo, machine, _hour(now, 5), _hour(now, 6), now=now)
    svc.cancel_booking(own, bo, now=now)
    assert _of(events, "booking.cancelled")[1]["by_staff"] is False


def test_a_block_cancels_with_the_maintenance_reason(lab, events) -> None:
    machine, ada, bo, sam = lab
    now = datetime.now(UTC)
    b = svc.create_booking(ada, machine, _hour(now, 3), _hour(now, 4), now=now)
    svc.create_block(machine, sam, _hour(now, 2), _hour(now, 5), "new lens", now)
    [cancel] = _of(events, "booking.cancelled")
    assert cancel["booking_id"] == b.id and cancel["by_staff"] is True and cancel["reason"] == "Maintenance: new lens"


def test_refused_or_rolled_back_changes_publish_nothing_that_stays(lab, events) -> None:
    machine, ada, bo, sam = lab
    now = datetime.now(UTC)
    svc.create_booking(ada, machine, _hour(now, 3), _hour(now, 4), now=now)
    events.clear()
    with pytest.raises(svc.BookingRejected):
        svc.create_booking(bo, machine, _hour(now, 3), _hour(now, 4), now=now)
    assert events == []


def test_booking_the_running_slot_is_created_and_checked_in(lab, events) -> None:
    machine, ada, bo, sam = lab
    now = _hour(datetime.now(UTC), 3) + timedelta(minutes=10)
    svc.create_booking(ada, machine, now - timedelta(minutes=10), now + timedelta(minutes=50), now=now)
    assert [e.type for e in events] == ["booking.created", "booking.checked_in"]


def test_no_shows_are_published_by_the_job_and_by_a_booking_that_takes_the_time(lab, events) -> None:
    machine, ada, bo, sam = lab
    now = datetime.now(UTC)
    start = _hour(now, 3)
    first = svc.create_booking(ada, machine, start, start + timedelta(hours=1), now=now)
    usage_service.record_no_shows(start + timedelta(minutes=20))
    [ns] = _of(events, "booking.no_show")
    assert ns["booking_id"] == first.id and ns["sequence"] == 1 and set(ns) == BOOKING_KEYS
    # Nobody ran the job: the next booking of the time records the release itself (a bulk update).
    later = start + timedelta(hours=2)
    second = svc.create_booking(ada, machine, later, later + timedelta(hours=1), now=now)
    at = later + timedelta(minutes=20)
    svc.create_booking(bo, machine, later + timedelta(minutes=30), later + timedelta(hours=1), now=at)
    released = _of(events, "booking.no_show")[1]
    assert released["booking_id"] == second.id and released["sequence"] == 1 and set(released) == BOOKING_KEYS
    db.session.refresh(second)
    assert second.status == "no_show" and second.sequence == released["sequence"]


def test_offers_and_window_results(make_machine, make_member, events) -> None:
    machine = make_machine("laser-w", name="Laser W", policy={**RULES, "mode": "window"})
    window_service.update_policy(machine, "window", quota_slots=1)
    a, b = make_member(), make_member()
    for m in (a, b):
        machine_service.grant(m, by=None, machine=machine)
    db.session.commit()
    now = datetime.now(UTC)
    p0 = _hour(now, 48)
    w = window_service.open_window(machine, None, now, period_start=p0, period_end=p0 + timedelta(days=1),
                                   closes_at=now + timedelta(days=1))
    slot = (p0 + timedelta(hours=18), p0 + timedelta(hours=20))
    for m in (a, b):
        window_service.add_request(m, w, *slot, rank=1, now=now)
    closing = w.closes_at + timedelta(minutes=1)
    window_draw.close_window(w, closing)
    booking = db.session.scalars(select(Booking).where(Booking.source == "window")).one()
    assert _of(events, "booking.created")[0]["booking_id"] == booking.id
    results = {r["member_id"]: r for r in _of(events, "window.result")}
    winner, loser = booking.member_id, ({a.id, b.id} - {booking.member_id}).pop()
    assert results[winner] == {"window_id": w.id, "member_id": winner, "machine": "Laser W", "granted": True,
                               "position": None, "booking_id": booking.id}
    assert results[loser] == {"window_id": w.id, "member_id": loser, "machine": "Laser W", "granted": False,
                              "position": 1, "booking_id": None}
    # The winner gives the time back: it is offered to the one waiting, held 15 minutes.
    svc.cancel_booking(booking, db.session.get(type(a), winner), now=closing)
    offer = db.session.scalars(select(WaitlistOffer)).one()
    [made] = _of(events, "offer.made")
    assert made == {"offer_id": offer.id, "member_id": loser, "machine_id": machine.id, "machine": "Laser W",
                    "start": slot[0].isoformat(), "end": slot[1].isoformat(),
                    "hold_until": (closing + timedelta(minutes=15)).isoformat()}
    waitlist_service.expire_offers(closing + timedelta(minutes=16))
    assert len(_of(events, "offer.made")) == 1  # an expiry is no new offer


def test_tasks_assigned_and_due(lab, events) -> None:
    machine, ada, bo, sam = lab
    now = datetime.now(UTC)
    db.session.add(MaintenanceRule(machine_id=machine.id, task="Clean the lens", every_days=7,
                                   last_done_at=now - timedelta(days=8)))
    db.session.commit()
    usage_service.raise_due_maintenance(now)
    usage_service.raise_due_maintenance(now)  # raised once, until it is done
    [due] = _of(events, "task.due")
    assert due["title"] == "Clean the lens (Laser One)" and due["machine_id"] == machine.id
    assert due["assignee_id"] is None and set(due) == {"task_id", "title", "machine_id", "assignee_id"}
    task = effort_service.get_task(due["task_id"])
    effort_service.claim_task(bo, task, now)
    effort_service.claim_task(bo, task, now)  # already hers: nothing new
    assert _of(events, "task.assigned") == [{"task_id": task.id, "title": task.title, "machine_id": machine.id,
                                             "assignee_id": bo.id}]


def test_a_new_design_and_a_fork_are_published(make_member, events) -> None:
    author = make_member()
    files = [design_service.Upload("part.stl", io.BytesIO(design_data("part_binary.stl")))]
    d = design_service.create_design(author, title="Bracket", licence="CC-BY-4.0", files=files)
    fork = design_service.fork_design(d, author, licence="CC-BY-4.0", title="Bracket, longer")
    assert _of(events, "design.published") == [{"design_id": d.id, "title": "Bracket", "author_id": author.id},
                                               {"design_id": fork.id, "title": "Bracket, longer",
                                                "author_id": author.id}]


# --- the worker: machine status and usage ---------------------------------------------------------------


def _status(state: str, at: datetime) -> Incoming:
    msg = ev.MachineStatus(machine="laser-1", src="bridge-a", ts=ev.utc_now_iso(at), state=state)
    return Incoming(msg.topic(), ev.encode(msg))


def _event(etype: str, at: datetime, seq: int) -> Incoming:
    msg = ev.MachineEvent(machine="laser-1", src="bridge-a", ts=ev.utc_now_iso(at), type=etype, session_id="s1",
                          seq=seq)
    return Incoming(msg.topic(), ev.encode(msg))


def test_machine_status_is_published_on_a_change_only(app, lab, events) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    ing = Ingestor(app)
    ing.process([_status("idle", now), _status("idle", now + timedelta(seconds=5)),
                 _status("error", now + timedelta(seconds=9))], now=now + timedelta(seconds=10))
    ing.process([_status("error", now + timedelta(seconds=20))], now=now + timedelta(seconds=21))
    changes = _of(events, "machine.status")
    assert [(c["previous"], c["state"]) for c in changes] == [(None, "idle"), ("idle", "error")]
    assert set(changes[0]) == {"machine_id", "machine", "state", "previous", "detail"}
    assert changes[1]["machine"] == "Laser One"


def test_usage_start_and_end_are_published_once_and_check_the_booking_in(app, lab, events) -> None:
    machine, ada, bo, sam = lab
    now = datetime.now(UTC)
    start = _hour(now, 1)
    b = svc.create_booking(ada, machine, start, start + timedelta(hours=1), now=now)
    events.clear()
    ing = Ingestor(app)
    ing.process([_event("session_started", start + timedelta(minutes=2), 1)], now=start + timedelta(minutes=3))
    ing.process([_status("printing", start + timedelta(minutes=4))], now=start + timedelta(minutes=5))
    ing.process([_event("session_ended", start + timedelta(minutes=40), 2)], now=start + timedelta(minutes=41))
    session = db.session.scalars(select(UsageSession)).one()
    assert [e.type for e in events if e.type != "machine.status"] == ["booking.checked_in", "usage.started",
                                                                     "usage.ended"]
    started, ended = _of(events, "usage.started")[0], _of(events, "usage.ended")[0]
    assert started["session_id"] == ended["session_id"] == session.id
    assert started["booking_id"] == b.id and started["member_id"] == ada.id and started["end"] is None
    assert ended["end"] == (start + timedelta(minutes=40)).isoformat()
    assert set(ended) == {"session_id", "machine_id", "machine", "member_id", "booking_id", "start", "end"}
    assert db.session.scalar(select(func.count()).select_from(UsageSession)) == 1
