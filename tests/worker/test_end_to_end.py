"""A simulated print, end to end: Marlin firmware on a pty → fablab-bridge → Mosquitto → worker →
a usage session linked to the member's booking, which is checked in by the machine itself."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fablab_bridge.app import Bridge
from fablab_bridge.config import parse_config
from sqlalchemy import select

from devices.simulators.marlin_sim import MarlinSimulator
from fablab.domain import policy as pol
from fablab.extensions import db
from fablab.models import Booking, Machine
from fablab.models.usage import UsageSession
from fablab.services import bookings as booking_service
from fablab.worker.mqtt import MqttSettings, MqttWorker
from tests.support.broker import find_mosquitto


def wait_for(predicate, timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        db.session.commit()
        db.session.expire_all()
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.skipif(find_mosquitto() is None, reason="no mosquitto binary")
def test_simulated_print_becomes_usage_linked_to_its_booking(app, lab, broker, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    printer = lab["printer"]
    start = pol.ceil_to_slot(booking_service.policy_for(printer), now, booking_service.lab_tz())
    if start - now > timedelta(minutes=14):
        start -= timedelta(minutes=15)
    booking = booking_service.create_booking(lab["ada"], printer, start, start + timedelta(hours=1),
                                             now=now - timedelta(minutes=1) if start > now else now)
    worker = MqttWorker(app, MqttSettings(broker.host, broker.port), client_id=f"e2e-{uuid.uuid4().hex[:6]}",
                        tick_seconds=3600)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    assert worker.connected.wait(10)
    sim = MarlinSimulator(files={"benchy.gcode": 3000}, print_rate=3000.0, seed=3)
    port = sim.start()
    # bridge-a owns printer-1 (registered by the `lab` fixture); without a broker ACL it connects anonymously
    raw = {"bridge": {"id": "bridge-a", "state_dir": str(tmp_path / "state"), "log_level": "WARNING"},
           "mqtt": {"host": broker.host, "port": broker.port, "reconnect_min": 0.2, "reconnect_max": 0.5},
           "machine": [{"id": "printer-1", "driver": "marlin", "port": port, "poll_interval": 0.2,
                        "telemetry_interval": 0.5, "boot_wait": 0.5, "ack_timeout": 1.0, "session_idle_s": 1.0}]}
    bridge = Bridge(parse_config(raw)).start()
    try:
        wait_for(lambda: db.session.get(Machine, printer.id).live_state == "idle", 20, "the printer online")
        sim.start_print("benchy.gcode")
        session = wait_for(lambda: db.session.scalar(select(UsageSession).where(UsageSession.machine_id == printer.id,
                                                                                 UsageSession.source == "event")),
                           20, "a usage session")
        assert session.booking_id == booking.id and session.member_id == lab["ada"].id
        assert db.session.get(Booking, booking.id).status == "checked_in"  # the machine checked it in
        assert db.session.get(Machine, printer.id).live_state == "printing"
        wait_for(lambda: not db.session.get(UsageSession, session.id).open, 30, "the print to finish")
        done = db.session.get(UsageSession, session.id)
        assert done.closed_by == "end_event" and done.duration_s > 0 and not done.unbooked
    finally:
        bridge.stop()
        sim.stop()
        worker.stop()
        thread.join(10)
