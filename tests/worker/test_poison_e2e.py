"""End to end through a real Mosquitto: poison among good messages from two bridges never stalls the
usage record, also when the worker is killed with the poison still queued."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from devices import events as ev
from fablab.extensions import db
from fablab.models.usage import DeadLetter, MqttMessage, UsageSession
from fablab.services import usage as usage_service
from fablab.worker.mqtt import MqttSettings, MqttWorker
from tests.worker.test_mqtt_worker import Client, _worker_env, count, needs_mosquitto, wait_until

POISON = [
    b'{"v":1,"a":' + b"[" * 20_000 + b"]" * 20_000 + b"}",
    b'{"v":1,"msg_id":"p-nan","ts":"2026-01-01T00:00:00Z","src":"bridge-a","state":"idle","x":NaN}',
    b"\xff\xfe not json",
    json.dumps({"v": 1, "msg_id": "p-long", "ts": "2026-01-01T00:00:00Z", "src": "bridge-a", "state": "printing",
                "job": {"file": "x" * 400}}).encode(),
]


def _session(machine: str, sid: str, src: str, seq0: int) -> list[ev.MachineEvent]:
    return [ev.MachineEvent(machine=machine, src=src, type="session_started", session_id=sid, seq=seq0),
            ev.MachineEvent(machine=machine, src=src, type="session_ended", session_id=sid, seq=seq0 + 1)]


def _closed(key_part: str) -> int:
    return count(UsageSession, UsageSession.session_id == key_part, UsageSession.open.is_(False))


@pytest.fixture
def poison_worker(app, broker, monkeypatch) -> Iterator[MqttWorker]:
    real = usage_service.set_live_state

    def breaks_on_poison(machine, state, at, progress=None, job=None):
        if job == "poison.gcode":  # a defect nobody foresaw, triggered by one message
            raise RuntimeError("unforeseen defect")
        return real(machine, state, at, progress, job)

    monkeypatch.setattr(usage_service, "set_live_state", breaks_on_poison)
    w = MqttWorker(app, MqttSettings(broker.host, broker.port), client_id=f"p-{uuid.uuid4().hex[:8]}",
                   tick_seconds=3600)
    thread = threading.Thread(target=w.run, daemon=True)
    thread.start()
    assert w.connected.wait(10)
    time.sleep(0.2)
    yield w
    w.stop()
    thread.join(10)


@needs_mosquitto
def test_poison_among_two_bridges_streams_does_not_hold_back_the_good_ones(app, lab, broker, poison_worker) -> None:
    pub = Client(broker)
    unforeseen = ev.MachineStatus(machine="printer-1", src="bridge-a", state="printing",
                                  job=ev.JobInfo(file="poison.gcode", progress=0.1))
    t0 = time.monotonic()
    for i in range(20):
        for m in _session("printer-1", f"pa{i}", "bridge-a", 2 * i + 1) + _session("laser-1", f"lb{i}", "bridge-b",
                                                                                    2 * i + 1):
            pub.send(m)
        pub.raw("fablab/v1/machine/printer-1/status", POISON[i % len(POISON)])
        if i == 10:
            pub.send(unforeseen)
    wait_until(lambda: _closed("pa19") and _closed("lb19"), 15, "the last good sessions")
    elapsed = time.monotonic() - t0
    assert count(UsageSession, UsageSession.open.is_(False)) == 40
    assert count(DeadLetter) == 21  # 20 hostile payloads and the unforeseen one
    reasons = list(db.session.scalars(select(DeadLetter.reason)))
    assert any("RuntimeError: unforeseen defect" in r for r in reasons)
    assert any("nested deeper" in r for r in reasons) and any("non-finite" in r for r in reasons)
    assert count(MqttMessage, MqttMessage.msg_id == unforeseen.msg_id) == 0
    assert elapsed < 15
    pub.close()


@needs_mosquitto
def test_worker_killed_and_restarted_with_poison_queued_does_not_stall(app, lab, broker, tmp_path: Path) -> None:
    client_id = f"kp-{uuid.uuid4().hex[:6]}"
    cmd = [sys.executable, "-m", "fablab.cli", "worker", "--client-id", client_id]
    env = _worker_env(app, broker, client_id)
    log_path = tmp_path / "worker.log"
    log = open(log_path, "wb")
    first = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    pub = Client(broker)
    second = None
    try:
        wait_until(lambda: b"subscribed" in log_path.read_bytes(), 30, "worker up")
        first.send_signal(signal.SIGKILL)  # down hard; its persistent session keeps queueing
        first.wait(10)
        good = []
        for i in range(10):
            pair = _session("printer-1", f"k{i}", "bridge-a", 2 * i + 1)
            good += pair
            for m in pair:
                pub.send(m).wait_for_publish(5)
            pub.raw("fablab/v1/machine/printer-1/event", POISON[i % len(POISON)]).wait_for_publish(5)
        second = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        wait_until(lambda: _closed("k9"), 30, "the queued good messages sessionized after the restart")
        assert count(MqttMessage, MqttMessage.msg_id.in_([m.msg_id for m in good])) == len(good)
        assert count(DeadLetter) == 10
        # and it keeps going
        after = _session("printer-1", "after", "bridge-a", 100)
        for m in after:
            pub.send(m)
        wait_until(lambda: _closed("after"), 10, "a later session")
    finally:
        for p in (first, second):
            if p is not None and p.poll() is None:
                p.terminate()
                p.wait(10)
        pub.close()
        log.close()
