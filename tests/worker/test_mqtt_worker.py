"""The worker against a real Mosquitto: auth answers, dead letters under a flood, shared subscriptions,
a worker killed mid-stream, and per-bridge credentials enforced by the broker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from sqlalchemy import func, select

from devices import events as ev
from fablab.extensions import db
from fablab.models import Booking
from fablab.models.usage import DeadLetter, MqttMessage
from fablab.worker.mqtt import MqttSettings, MqttWorker
from tests.support.broker import Broker, find_mosquitto, free_port, wait_for_port

needs_mosquitto = pytest.mark.skipif(find_mosquitto() is None, reason="no mosquitto binary")


def wait_until(predicate, timeout: float = 20.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def count(model, *where) -> int:
    db.session.commit()  # a fresh snapshot each time
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


class Client:
    def __init__(self, broker: Broker, username: str | None = None, password: str | None = None,
                 subscribe: str | None = None) -> None:
        self.received: list[tuple[float, str, bytes]] = []
        self.ready = threading.Event()
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"t-{uuid.uuid4().hex[:8]}")
        if username:
            self.c.username_pw_set(username, password)

        def on_connect(c, u, f, rc, p=None):
            if rc.is_failure:
                return  # refused (bad credentials): never ready
            if subscribe:
                c.subscribe(subscribe, qos=1)
            else:
                self.ready.set()

        self.c.on_connect = on_connect
        self.c.on_subscribe = lambda *a: self.ready.set()
        self.c.on_message = lambda c, u, m: self.received.append((time.perf_counter(), m.topic, m.payload))
        self.c.connect(broker.host, broker.port)
        self.c.loop_start()
        if not self.ready.wait(5):
            self.close()
            raise AssertionError("could not connect/subscribe")

    def send(self, msg: ev.Message, qos: int = 1) -> mqtt.MQTTMessageInfo:
        return self.c.publish(msg.topic(), ev.encode(msg), qos=qos)

    def raw(self, topic: str, payload: bytes, qos: int = 1) -> mqtt.MQTTMessageInfo:
        return self.c.publish(topic, payload, qos=qos)

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


@pytest.fixture
def worker(app, broker) -> Iterator[MqttWorker]:
    w = MqttWorker(app, MqttSettings(broker.host, broker.port), client_id=f"w-{uuid.uuid4().hex[:8]}",
                   tick_seconds=3600)
    thread = threading.Thread(target=w.run, daemon=True)
    thread.start()
    assert w.connected.wait(10)
    time.sleep(0.2)  # the subscription is in place
    yield w
    w.stop()
    thread.join(10)


@needs_mosquitto
def test_badge_auth_answers_within_200ms(app, lab, broker, worker) -> None:
    responses = Client(broker, subscribe="fablab/v1/machine/+/auth/response")
    pub = Client(broker)
    latencies = []
    decisions = {}
    for uid in ("04FFEE11", "DEADBEEF", "04A1B2C3"):
        req = ev.AuthRequest(machine="printer-1", src="bridge-a", badge=ev.Badge(tech="em4100", uid=uid))
        n = len(responses.received)
        t0 = time.perf_counter()
        pub.send(req)
        wait_until(lambda n=n: len(responses.received) > n, 5, "auth response")
        t1, topic, payload = responses.received[-1]
        latencies.append(t1 - t0)
        resp = ev.decode(topic, payload)
        assert resp.request_id == req.msg_id
        decisions[uid] = resp
    assert decisions["04A1B2C3"].decision == "allow" and decisions["04A1B2C3"].booking_id
    assert decisions["04FFEE11"].decision == "deny" and "qualif" in decisions["04FFEE11"].reason.lower()
    assert decisions["DEADBEEF"].decision == "deny" and "Unknown badge" in decisions["DEADBEEF"].reason
    assert max(latencies) < 0.2, latencies
    booking = db.session.get(Booking, int(decisions["04A1B2C3"].booking_id))
    assert booking.status == "checked_in" and booking.source == "badge"
    responses.close()
    pub.close()


@needs_mosquitto
def test_a_thousand_malformed_payloads_become_dead_letters(app, lab, broker, worker) -> None:
    pub = Client(broker)
    for i in range(1000):
        pub.raw("fablab/v1/machine/printer-1/event", f"garbage {i} {{".encode())
    wait_until(lambda: count(DeadLetter) >= 1000, 30, "1000 dead letters")
    assert count(DeadLetter) == 1000
    good = ev.MachineEvent(machine="printer-1", src="bridge-a", type="session_started", session_id="s", seq=1)
    pub.send(good)
    wait_until(lambda: count(MqttMessage, MqttMessage.msg_id == good.msg_id) == 1, 10, "the worker still works")
    pub.close()


@needs_mosquitto
def test_two_workers_share_the_load_and_store_each_message_once(app, lab, broker) -> None:
    workers = [MqttWorker(app, MqttSettings(broker.host, broker.port), client_id=f"share-{i}-{uuid.uuid4().hex[:6]}",
                          shared=True, tick_seconds=3600) for i in range(2)]
    threads = [threading.Thread(target=w.run, kwargs={"warm_up": False}, daemon=True) for w in workers]
    for th in threads:
        th.start()
    for w in workers:
        assert w.connected.wait(10)
    time.sleep(0.3)
    pub = Client(broker)
    n = 400
    for i in range(n):
        pub.send(ev.MachineEvent(machine="printer-1", src="bridge-a", type="error", session_id=None, seq=i + 1,
                                 reason=f"test {i}"))
    # (only events: retained status messages of earlier tests on this broker may arrive too)
    wait_until(lambda: count(MqttMessage, MqttMessage.kind == "event") >= n, 30, "all messages stored")
    time.sleep(0.5)
    assert count(MqttMessage, MqttMessage.kind == "event") == n
    stored = [w.ingestor.totals.stored for w in workers]
    assert sum(stored) >= n and all(s > 0 for s in stored), stored  # both worked
    for w in workers:
        w.stop()
    for th in threads:
        th.join(10)
    pub.close()


def _worker_env(app, broker: Broker, client_id: str) -> dict[str, str]:
    env = dict(os.environ)
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    opts = app.config.get("SQLALCHEMY_ENGINE_OPTIONS", {}).get("connect_args", {}).get("options")
    if opts:  # a private PostgreSQL schema: pass the search path in the URL
        from urllib.parse import quote

        url += ("&" if "?" in url else "?") + "options=" + quote(opts)
    env.update({"FABLAB_DATABASE_URL": url, "FABLAB_SECRET_KEY": app.config["SECRET_KEY"],
                "FABLAB_MQTT_URL": broker.url, "PYTHONUNBUFFERED": "1"})
    return env


@needs_mosquitto
def test_worker_killed_mid_stream_loses_and_doubles_nothing(app, lab, broker, tmp_path: Path) -> None:
    client_id = f"kill-{uuid.uuid4().hex[:6]}"
    cmd = [sys.executable, "-m", "fablab.cli", "worker", "--client-id", client_id]
    env = _worker_env(app, broker, client_id)
    log = open(tmp_path / "worker.log", "wb")
    first = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    pub = Client(broker)
    try:
        wait_until(lambda: b"subscribed" in (tmp_path / "worker.log").read_bytes(), 30, "worker up")
        n = 900
        msgs = [ev.MachineEvent(machine="printer-1", src="bridge-a", type="error", session_id=None, seq=i + 1,
                                reason=f"r{i}") for i in range(n)]

        def publish() -> None:
            for m in msgs:
                pub.send(m).wait_for_publish(5)
                time.sleep(0.002)

        sender = threading.Thread(target=publish)
        sender.start()
        wait_until(lambda: count(MqttMessage, MqttMessage.kind == "event") >= 150, 30, "some messages stored")
        first.send_signal(signal.SIGKILL)  # no goodbye, no flush
        first.wait(10)
        second = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            sender.join(60)
            wait_until(lambda: count(MqttMessage, MqttMessage.kind == "event") >= n, 60, "every message stored")
            time.sleep(1.0)
            assert count(MqttMessage, MqttMessage.kind == "event") == n
            ids = set(db.session.scalars(select(MqttMessage.msg_id).where(MqttMessage.kind == "event")))
            assert ids == {m.msg_id for m in msgs}
        finally:
            second.terminate()
            second.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
        pub.close()
        log.close()


@needs_mosquitto
def test_bridge_credentials_and_acl_from_the_database(app, lab, tmp_path: Path) -> None:
    """`fablab mosquitto-config` files in a real Mosquitto: a bridge writes for its machine only."""
    from fablab.services import usage as usage_service

    bridge, password = usage_service.add_bridge("bridge-z", ["printer-1"])
    db.session.commit()
    passwd, acl = usage_service.write_mosquitto_files(tmp_path / "conf", "fablab", "server-secret")
    port = free_port()
    conf = tmp_path / "mosquitto.conf"
    import getpass

    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {passwd}\nacl_file {acl}\n"
                    f"user {getpass.getuser()}\nlog_dest stderr\n")
    proc = subprocess.Popen([find_mosquitto(), "-c", str(conf)], stderr=subprocess.DEVNULL)
    try:
        wait_for_port("127.0.0.1", port)
        b = Broker.__new__(Broker)
        b.host, b.port = "127.0.0.1", port
        server = Client(b, "fablab", "server-secret", subscribe="fablab/v1/#")
        bridge_client = Client(b, "bridge-z", password)
        bridge_client.send(ev.MachineStatus(machine="printer-1", src="bridge-z", state="idle"))
        bridge_client.send(ev.MachineStatus(machine="laser-1", src="bridge-z", state="idle"))  # not its machine
        wait_until(lambda: server.received, 5, "the allowed message")
        time.sleep(0.5)
        topics = [t for _, t, _ in server.received]
        assert "fablab/v1/machine/printer-1/status" in topics
        assert "fablab/v1/machine/laser-1/status" not in topics  # the broker dropped it
        with pytest.raises(AssertionError):
            Client(b, "bridge-z", "wrong-password")
        server.close()
        bridge_client.close()
    finally:
        proc.terminate()
        proc.wait(5)

