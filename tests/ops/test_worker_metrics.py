"""The ingest's metrics through a real Mosquitto: messages stored, duplicates and dead letters counted,
batch size, commit time and lag observed; the worker's health port (readiness follows the broker), and
`fablab worker --health-port` as a process with JSON logs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from sqlalchemy import func, select

from devices import events as ev
from fablab.extensions import db
from fablab.models.usage import DeadLetter, MqttMessage
from fablab.services import usage as usage_service
from fablab.worker.health_server import serve
from fablab.worker.mqtt import MqttSettings, MqttWorker
from tests.ops.conftest import parse, total, value
from tests.support.broker import find_mosquitto, free_port, start_broker

pytestmark = pytest.mark.skipif(find_mosquitto() is None, reason="no mosquitto binary")


def wait_until(predicate, timeout: float = 20.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (v := predicate()):
            return v
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def count(model) -> int:
    db.session.commit()
    return db.session.scalar(select(func.count()).select_from(model))


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except urllib.error.URLError:
        return 0, b""  # not listening (yet)


@pytest.fixture
def broker(tmp_path: Path):
    b = start_broker(tmp_path / "broker", persistence=False)
    yield b
    b.close()


@pytest.fixture
def printer(make_machine):
    m = make_machine("printer-ops", type_slug="3d_printer")
    usage_service.add_bridge("bridge-ops", ["printer-ops"])
    db.session.commit()
    return m


@pytest.fixture
def worker(app, broker, printer) -> Iterator[MqttWorker]:
    w = MqttWorker(app, MqttSettings(broker.host, broker.port), client_id=f"ops-{uuid.uuid4().hex[:8]}",
                   tick_seconds=3600)
    thread = threading.Thread(target=w.run, kwargs={"warm_up": False}, daemon=True)
    thread.start()
    assert w.connected.wait(10)
    time.sleep(0.2)  # subscribed
    yield w
    w.stop()
    thread.join(10)


def publisher(broker) -> mqtt.Client:
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex[:8]}")
    c.connect(broker.host, broker.port)
    c.loop_start()
    return c


def test_ingest_counters_move_with_real_messages(app_ctx, broker, worker) -> None:
    server = serve(worker, "127.0.0.1", 0)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        status, body = get(base + "/metrics")
        assert status == 200
        before = parse(body.decode())
        pub = publisher(broker)
        msgs = [ev.MachineEvent(machine="printer-ops", src="bridge-ops", type="error", session_id=None, seq=i + 1,
                                reason=f"r{i}") for i in range(20)]
        for m in msgs:
            pub.publish(m.topic(), ev.encode(m), qos=1).wait_for_publish(5)
        pub.publish(msgs[0].topic(), ev.encode(msgs[0]), qos=1).wait_for_publish(5)  # the same message again
        pub.publish("fablab/v1/machine/printer-ops/event", b"{not json", qos=1).wait_for_publish(5)
        wait_until(lambda: count(MqttMessage) >= 20 and count(DeadLetter) >= 1, 20, "messages stored")
        pub.disconnect()
        pub.loop_stop()

        def deltas(after):
            return {o: value(after, "fablab_ingest_messages_total", {"outcome": o})
                    - value(before, "fablab_ingest_messages_total", {"outcome": o})
                    for o in ("stored", "duplicate", "dead_letter")}

        def moved():
            after = parse(get(base + "/metrics")[1].decode())
            d = deltas(after)
            return after if d["stored"] >= 20 and d["duplicate"] >= 1 and d["dead_letter"] >= 1 else None

        after = wait_until(moved, 10, "every message counted")
        time.sleep(0.3)  # nothing more arrives: the counts are exact, not at least
        after = parse(get(base + "/metrics")[1].decode())
        assert deltas(after) == {"stored": 20, "duplicate": 1, "dead_letter": 1}
        assert value(after, "fablab_ingest_batch_size_sum") - value(before, "fablab_ingest_batch_size_sum") == 22
        assert value(after, "fablab_ingest_commit_seconds_count") > value(before, "fablab_ingest_commit_seconds_count")
        assert 0 <= value(after, "fablab_ingest_lag_seconds") < 60
        assert value(after, "fablab_ingest_event_lag_seconds_count") > \
            value(before, "fablab_ingest_event_lag_seconds_count")
        assert value(after, "fablab_ingest_last_commit_timestamp_seconds") > time.time() - 60
        assert total(after, "fablab_database_up") == 0  # the lab's gauges are the web's, not the worker's
    finally:
        server.shutdown()
        server.server_close()


def test_worker_readiness_follows_the_broker(app_ctx, broker, worker) -> None:
    server = serve(worker, "127.0.0.1", 0)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        assert get(base + "/healthz") == (200, b"ok\n")
        status, body = get(base + "/readyz")
        assert status == 200 and json.loads(body) == {"status": "ok"}
        broker.stop()
        wait_until(lambda: get(base + "/readyz")[0] == 503, 10, "not ready without the broker")
        assert json.loads(get(base + "/readyz")[1])["reason"] == "not connected to the MQTT broker"
        assert get(base + "/healthz")[0] == 200
        broker.start()
        wait_until(lambda: get(base + "/readyz")[0] == 200, 40, "ready again")
        assert get(base + "/nothing")[0] == 404
    finally:
        server.shutdown()
        server.server_close()


def test_worker_readiness_refuses_a_backlog(app_ctx, worker) -> None:
    from datetime import UTC, datetime, timedelta

    from fablab.worker.health_server import readiness_problem

    now = datetime.now(UTC)
    assert readiness_problem(worker, now) is None
    worker.handling_since = now - timedelta(seconds=120)  # a batch stuck for two minutes
    problem = readiness_problem(worker, now)
    assert problem and "waited 120 s" in problem
    worker.handling_since = None


def test_the_worker_port_guards_its_metrics(app, app_ctx, worker, monkeypatch) -> None:
    monkeypatch.setitem(app.config, "FABLAB_METRICS_TOKEN", "worker-token")
    monkeypatch.setitem(app.config, "FABLAB_METRICS_NETWORKS", ())
    server = serve(worker, "127.0.0.1", 0)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        assert get(base + "/metrics")[0] == 401
        assert get(base + "/metrics", {"Authorization": "Bearer nope"})[0] == 401
        assert get(base + "/metrics", {"Authorization": "Bearer worker-token"})[0] == 200
    finally:
        server.shutdown()
        server.server_close()


def test_fablab_worker_process_health_port_and_json_logs(app, app_ctx, broker, printer, tmp_path: Path) -> None:
    port = free_port()
    env = dict(os.environ)
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    opts = app.config.get("SQLALCHEMY_ENGINE_OPTIONS", {}).get("connect_args", {}).get("options")
    if opts:  # a private PostgreSQL schema: pass the search path in the URL
        from urllib.parse import quote

        url += ("&" if "?" in url else "?") + "options=" + quote(opts)
    env.update({"FABLAB_DATABASE_URL": url, "FABLAB_SECRET_KEY": app.config["SECRET_KEY"],
                "FABLAB_MQTT_URL": broker.url, "FABLAB_LOG_FORMAT": "json", "PYTHONUNBUFFERED": "1"})
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log_path = tmp_path / "worker.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "fablab.cli", "worker", "--client-id",
                                 f"proc-{uuid.uuid4().hex[:6]}", "--health-port", str(port)],
                                env=env, stdout=subprocess.DEVNULL, stderr=log)
    try:
        wait_until(lambda: get(f"http://127.0.0.1:{port}/readyz")[0] == 200 if proc.poll() is None else
                   pytest.fail(log_path.read_text()), 30, "worker ready")
        pub = publisher(broker)
        m = ev.MachineEvent(machine="printer-ops", src="bridge-ops", type="error", session_id=None, seq=1,
                            reason="x")
        pub.publish(m.topic(), ev.encode(m), qos=1).wait_for_publish(5)
        pub.disconnect()
        pub.loop_stop()
        scraped = wait_until(lambda: (s := parse(get(f"http://127.0.0.1:{port}/metrics")[1].decode())) and
                             value(s, "fablab_ingest_messages_total", {"outcome": "stored"}) >= 1 and s, 20,
                             "the message counted by the worker process")
        assert value(scraped, "fablab_ingest_batch_size_count") >= 1
    finally:
        proc.terminate()
        proc.wait(10)
    lines = [ln for ln in log_path.read_text().splitlines() if ln.strip()]
    records = [json.loads(ln) for ln in lines]  # every line is one JSON object
    assert any("subscribed" in r["message"] for r in records)
    assert all({"time", "level", "logger", "message", "request_id"} <= r.keys() for r in records)
