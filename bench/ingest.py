"""Ingest speed: N machine messages published to a real Mosquitto; messages/s stored by the worker
next to messages/s received by a bare paho subscriber in the same run (the limit), and end-to-end
latency (publish → committed in the database) p50/p99. SQLite, and PostgreSQL when FABLAB_BENCH_PG_URL
(or FABLAB_TEST_DATABASE_URL) is set.

    .venv/bin/python bench/ingest.py [N]
"""

from __future__ import annotations

import getpass
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import paho.mqtt.client as mqtt  # noqa: E402
from benchdb import bench_app  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from devices import events as ev  # noqa: E402
from fablab.demo_broker import find_mosquitto, free_port, wait_for_port  # noqa: E402
from fablab.extensions import db  # noqa: E402
from fablab.models import Machine, MachineType  # noqa: E402
from fablab.models.usage import MqttMessage  # noqa: E402
from fablab.worker.ingest import MqttSettings, MqttWorker  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
MACHINES = [f"m{i}" for i in range(10)]


def start_mosquitto(tmp: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    conf = tmp / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\n"
                    f"max_inflight_messages 0\nuser {getpass.getuser()}\n")
    proc = subprocess.Popen([find_mosquitto() or "mosquitto", "-c", str(conf)], stderr=subprocess.DEVNULL)
    wait_for_port(port)
    return proc, port


def messages(n: int) -> list[tuple[str, bytes]]:
    out = []
    for i in range(n):
        m = MACHINES[i % len(MACHINES)]
        msg = ev.Telemetry(machine=m, src="bench", readings={"hotend_c": 200.0 + i % 10, "bed_c": 60.0})
        out.append((msg.topic(), ev.encode(msg)))
    return out


def publisher(port: int) -> mqtt.Client:
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex[:6]}", protocol=mqtt.MQTTv5)
    c.max_inflight_messages_set(1000)
    c.max_queued_messages_set(0)
    c.connect("127.0.0.1", port)
    c.loop_start()
    return c


def publish_all(pub: mqtt.Client, msgs: list[tuple[str, bytes]]) -> None:
    infos = [pub.publish(t, p, qos=1) for t, p in msgs]
    for info in infos[-100:]:
        info.wait_for_publish(60)


def bare_subscriber_rate(port: int, msgs: list[tuple[str, bytes]]) -> float:
    got = 0
    first = last = 0.0
    done = threading.Event()
    ready = threading.Event()

    def on_message(c, u, m):  # noqa: ANN001
        nonlocal got, first, last
        got += 1
        if got == 1:
            first = time.perf_counter()
        if got == len(msgs):
            last = time.perf_counter()
            done.set()

    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bare", protocol=mqtt.MQTTv5)
    sub.on_connect = lambda c, u, f, rc, p=None: c.subscribe("fablab/v1/#", qos=1)
    sub.on_subscribe = lambda *a: ready.set()
    sub.on_message = on_message
    sub.connect("127.0.0.1", port)
    sub.loop_start()
    ready.wait(10)
    pub = publisher(port)
    t0 = time.perf_counter()
    publish_all(pub, msgs)
    done.wait(300)
    elapsed = (last or time.perf_counter()) - t0
    sub.disconnect()
    sub.loop_stop()
    pub.disconnect()
    pub.loop_stop()
    return got / elapsed


PACED_RATE = 1000  # msg/s for the latency phase: a busy lab, below the worker's capacity
PACED_N = 3000


def wait_stored(app, n: int) -> None:  # noqa: ANN001
    with app.app_context():
        while True:
            count = db.session.scalar(select(func.count()).select_from(MqttMessage))
            db.session.commit()
            if count >= n:
                return
            time.sleep(0.02)


def worker_run(label: str, url: str | None, port: int, msgs: list[tuple[str, bytes]],
               tmp: Path) -> tuple[float, list[float]]:
    """Throughput from a burst of `msgs`; latency from a paced stream afterwards (a burst measures the
    queue, not the pipeline)."""
    with bench_app(tmp, url, name=label) as (app, _):
        return _worker_run(app, label, port, msgs)


def _worker_run(app, label: str, port: int, msgs: list[tuple[str, bytes]]) -> tuple[float, list[float]]:  # noqa: ANN001
    with app.app_context():
        t = MachineType(slug="3d_printer", name="Printer")
        db.session.add_all([Machine(slug=m, name=m, machine_type=t) for m in MACHINES])
        db.session.commit()
    latencies: list[float] = []
    worker = MqttWorker(app, MqttSettings("127.0.0.1", port), client_id=f"bench-{label}", tick_seconds=3600)
    original = worker.ingestor.process

    def timed(batch, now=None):  # noqa: ANN001, ANN202 - measure publish → commit per message
        result = original(batch, now)
        done = time.time()
        for item in batch:
            sent = json.loads(item.payload)["ts"]
            latencies.append(done - ev.parse_ts(sent).timestamp())
        return result

    worker.ingestor.process = timed  # type: ignore[method-assign]
    thread = threading.Thread(target=worker.run, kwargs={"warm_up": False}, daemon=True)
    thread.start()
    worker.connected.wait(10)
    time.sleep(0.3)
    pub = publisher(port)
    t0 = time.perf_counter()
    publish_all(pub, msgs)
    wait_stored(app, len(msgs))
    elapsed = time.perf_counter() - t0
    latencies.clear()
    paced = messages(PACED_N)
    start = time.perf_counter()
    for i, (topic, payload) in enumerate(paced):
        # fresh timestamps: latency counts from the moment of publishing
        data = json.loads(payload)
        data["ts"] = ev.utc_now_iso()
        pub.publish(topic, json.dumps(data).encode(), qos=1)
        delay = start + (i + 1) / PACED_RATE - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
    wait_stored(app, len(msgs) + PACED_N)
    worker.stop()
    thread.join(10)
    pub.disconnect()
    pub.loop_stop()
    return len(msgs) / elapsed, latencies


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(p * len(values)))]


def main() -> None:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        proc, port = start_mosquitto(tmp)
        try:
            msgs = messages(N)
            bare = bare_subscriber_rate(port, msgs)
            print(f"bare paho subscriber: {bare:,.0f} msg/s received ({N} messages, QoS 1)")
            runs = [("SQLite", None)]
            pg = os.environ.get("FABLAB_BENCH_PG_URL", os.environ.get("FABLAB_TEST_DATABASE_URL"))
            if pg:
                runs.append(("PostgreSQL", pg))
            for label, url in runs:
                rate, lat = worker_run(label, url, port, messages(N), tmp)
                print(f"worker on {label:10}: {rate:,.0f} msg/s stored ({rate / bare:.0%} of the bare subscriber); "
                      f"latency publish→commit at {PACED_RATE} msg/s: p50 {statistics.median(lat) * 1000:.0f} ms, "
                      f"p99 {pct(lat, 0.99) * 1000:.0f} ms")
        finally:
            proc.terminate()
            proc.wait(5)


if __name__ == "__main__":
    main()
