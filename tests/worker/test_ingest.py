"""The ingest pipeline against the real database (no broker needed for these)."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import func, select

from devices import events as ev
from fablab.extensions import db
from fablab.models import Booking, Machine
from fablab.models.usage import DeadLetter, MqttMessage, UsageSession
from fablab.services import bookings as booking_service
from fablab.worker.ingest import Incoming, Ingestor
from tests.worker.conftest import status, t


def _count(model) -> int:
    db.session.commit()
    return db.session.scalar(select(func.count()).select_from(model))


def test_use_during_a_booking_checks_it_in(app, lab, event) -> None:
    start = t(30)
    booking = booking_service.create_booking(lab["ada"], lab["printer"], start, start + timedelta(hours=1),
                                             now=t(0))
    ing = Ingestor(app)
    ing.process([event("printer-1", "session_started", start + timedelta(minutes=2)),
                 status("printer-1", "printing", start + timedelta(minutes=2), progress=0.1)], now=start)
    db.session.commit()
    assert _count(UsageSession) == 1
    s = db.session.scalar(select(UsageSession))
    assert s is not None and s.open and s.booking_id == booking.id and s.member_id == lab["ada"].id
    b = db.session.get(Booking, booking.id)
    db.session.refresh(b)
    assert b.status == "checked_in" and b.checked_in_at == start + timedelta(minutes=2)
    m = db.session.get(Machine, lab["printer"].id)
    db.session.refresh(m)
    assert m.live_state == "printing" and m.live_progress == 10.0
    # the print runs 20 minutes past the booking's end: an overrun
    ing.process([event("printer-1", "session_ended", start + timedelta(minutes=80), energy_wh=42.0)],
                now=start + timedelta(minutes=81))
    db.session.commit()
    s = db.session.scalar(select(UsageSession))
    db.session.refresh(s)
    assert not s.open and s.closed_by == "end_event" and s.energy_wh == 42.0
    assert round(s.duration_s) == 78 * 60 and round(s.overrun_minutes) == 20


def test_unbooked_use_is_recorded_with_badge_member(app, lab, event) -> None:
    ing = Ingestor(app)
    ing.process([event("printer-1", "session_started", t(1), badge=ev.Badge(tech="em4100", uid="04A1B2C3")),
                 event("printer-1", "session_ended", t(31))], now=t(32))
    s = db.session.scalar(select(UsageSession))
    assert s.unbooked and s.member_id == lab["ada"].id and s.booking_id is None and s.counts_as_usage


def test_maintenance_use_never_counts(app, lab, event) -> None:
    steward = lab["bo"]
    steward.role = "steward"
    db.session.commit()
    block, _ = booking_service.create_block(lab["printer"], steward, t(10), t(70), "nozzle swap", now=t(0))
    Ingestor(app).process([event("printer-1", "session_started", t(12)), event("printer-1", "session_ended", t(40))],
                          now=t(41))
    s = db.session.scalar(select(UsageSession))
    assert s.booking_id == block.id and not s.counts_as_usage and s.kind == "maintenance"


def test_duplicates_are_ignored(app, lab, event) -> None:
    msg = event("printer-1", "session_started", t(1))
    ing = Ingestor(app)
    first = ing.process([msg, msg], now=t(2))
    again = ing.process([msg], now=t(3))
    assert first.stored == 1 and first.duplicates == 1 and again.duplicates == 1
    assert _count(MqttMessage) == 1 and _count(UsageSession) == 1


def test_malformed_unknown_and_foreign_become_dead_letters(app, lab, event) -> None:
    good = event("printer-1", "session_started", t(1))
    bad_json = Incoming("fablab/v1/machine/printer-1/event", b"{not json")
    bad_schema = Incoming("fablab/v1/machine/printer-1/event", json.dumps(
        {"v": 1, "msg_id": "X1", "ts": "2026-01-01T00:00:00Z", "src": "bridge-a", "type": "teleport"}).encode())
    unknown = event("teleporter", "session_started", t(1))
    foreign = event("laser-1", "session_started", t(1), src="bridge-a")  # bridge-a does not own the laser
    bad_topic = Incoming("fablab/v1/nonsense", b"{}")
    result = Ingestor(app).process([good, bad_json, bad_schema, unknown, foreign, bad_topic], now=t(2))
    assert result.stored == 1 and result.dead == 5
    reasons = sorted(d.reason for d in db.session.scalars(select(DeadLetter)))
    assert any("invalid JSON" in r for r in reasons)
    assert any("unknown 'teleport'" in r for r in reasons)
    assert any("unknown machine 'teleporter'" in r for r in reasons)
    assert any("does not own machine 'laser-1'" in r for r in reasons)
    assert all(d.payload for d in db.session.scalars(select(DeadLetter)))  # the raw payload is kept


def test_session_without_end_closed_by_timeout(app, lab, event) -> None:
    ing = Ingestor(app)
    ing.process([event("printer-1", "session_started", t(0))], now=t(1))
    ing.tick(now=t(45))  # 30 min without a sign of activity
    s = db.session.scalar(select(UsageSession))
    db.session.refresh(s)
    assert not s.open and s.closed_by == "timeout"


def test_restart_rebuilds_state_from_stored_messages(app, lab, event) -> None:
    Ingestor(app).process([event("printer-1", "session_started", t(0), session_id="job-9")], now=t(1))
    fresh = Ingestor(app)  # a restarted worker: empty memory
    assert fresh.warm_up(now=t(2)) >= 1
    fresh.process([event("printer-1", "session_ended", t(20), session_id="job-9")], now=t(21))
    rows = list(db.session.scalars(select(UsageSession)))
    assert len(rows) == 1 and not rows[0].open and rows[0].closed_by == "end_event"
    assert not rows[0].start_estimated


def test_no_show_recorded_and_released(app, lab, event) -> None:
    from fablab.services import usage as usage_service

    start = t(30)
    b = booking_service.create_booking(lab["ada"], lab["printer"], start, start + timedelta(hours=1), now=t(0))
    assert usage_service.record_no_shows(start + timedelta(minutes=10)) == []  # still within grace
    assert usage_service.record_no_shows(start + timedelta(minutes=20)) == [b.id]
    db.session.refresh(b)
    assert b.status == "no_show"


def test_old_telemetry_is_pruned_but_events_kept(app, lab, event) -> None:
    from fablab.services import usage as usage_service

    old = t(-60 * 24 * 40)
    tele = ev.Telemetry(machine="printer-1", src="bridge-a", ts=ev.utc_now_iso(old), readings={"hotend_c": 210.0})
    fresh = ev.Telemetry(machine="printer-1", src="bridge-a", readings={"hotend_c": 200.0})
    Ingestor(app).process([Incoming(tele.topic(), ev.encode(tele)), Incoming(fresh.topic(), ev.encode(fresh)),
                           event("printer-1", "session_started", old)], now=t(0))
    assert usage_service.prune_telemetry(t(0), keep_days=30) == 1
    db.session.commit()
    kinds = sorted(db.session.scalars(select(MqttMessage.kind)))
    assert kinds == ["event", "telemetry"]
