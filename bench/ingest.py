"""Ingest speed against a real private Mosquitto (loopback), per backend (SQLite; PostgreSQL when
FABLAB_BENCH_PG_URL or FABLAB_TEST_DATABASE_URL is set, in a private schema dropped afterwards).
Streams come from a publisher process of their own (QoS 1), as from the bridges.

1. clean stream: N telemetry messages; messages/s handled by the real MqttWorker next to messages/s
   received by a bare paho subscriber (QoS 1, no work per message) on the same kind of stream, measured
   just before it in the same run. Twice: "live" (published while the consumer runs, so the publisher
   paces it too) and "backlog" (published while the consumer's persistent session is offline, then
   drained: the consumer's own limit);
2. the same with 1 % malformed messages (every 100th, cycling through the hostile classes the worker
   guards against: not JSON, nested deeper than 16, NaN outside telemetry, a string longer than its
   column, an event time far from the time received, an oversized payload, NaN in telemetry), the
   outcomes checked (stored, stored with a note, dead letter), PASS/FAIL against >= 0.5x the bare
   subscriber;
3. a paced stream at 1,000 msg/s for S seconds, once without (the baseline) and once with a poison
   every 1,000 messages. A poison passes validation but makes the database transaction fail (the bench
   wraps `fablab.services.usage.set_live_state` to raise RuntimeError for a status whose job file is
   "poison.gcode"), so the worker bisects the batch and dead-letters the poison alone. Printed:
   publish→commit latency p50/p99/max of the good messages (commit = the end of the transaction that
   stored the message), dead letters vs poisons sent, PASS/FAIL against p99 < 1 s, the ratio to the
   baseline, and how the batches went (sizes, failed transactions).

No asserts: every check prints a PASS/FAIL line and the run goes on. The machine's load moves these
figures a lot on 2 cores: read the ratios, which compare neighbours in time.

    .venv/bin/python bench/ingest.py [N [S]]        # defaults: N = 20000, S = 15
"""

from __future__ import annotations

import getpass
import json
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import paho.mqtt.client as mqtt  # noqa: E402
from benchdb import bench_app  # noqa: E402
from paho.mqtt.packettypes import PacketTypes  # noqa: E402
from paho.mqtt.properties import Properties  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from devices import events as ev  # noqa: E402
from fablab.demo.broker import find_mosquitto, free_port, wait_for_port  # noqa: E402
from fablab.extensions import db  # noqa: E402
from fablab.models import Machine, MachineType  # noqa: E402
from fablab.models.usage import DeadLetter, MqttMessage  # noqa: E402
from fablab.services import usage as usage_service  # noqa: E402
from fablab.worker.ingest import Incoming, Ingestor  # noqa: E402
from fablab.worker.mqtt import MqttSettings, MqttWorker  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
PACED_SECONDS = float(sys.argv[2]) if len(sys.argv) > 2 else 15.0
PACED_RATE = 1000  # msg/s for the latency phases: a busy lab, below the worker's capacity
POISON_EVERY = 1000
MALFORMED_EVERY = 100  # 1 %
MACHINES = [f"m{i}" for i in range(10)]
POISON_FILE = "poison.gcode"
WAIT_LIMIT = 60.0  # seconds a phase may take to drain before it is reported as incomplete


# --- the broker ----------------------------------------------------------------------------------------


def start_mosquitto(tmp: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    conf = tmp / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\n"
                    f"max_inflight_messages 0\nuser {getpass.getuser()}\n")
    proc = subprocess.Popen([find_mosquitto() or "mosquitto", "-c", str(conf)], stderr=subprocess.DEVNULL)
    wait_for_port(port)
    return proc, port


def close(client: mqtt.Client) -> None:
    client.disconnect()
    client.loop_stop()


def drop_session(port: int, client_id: str) -> None:
    """End a persistent session (a worker's, a bare subscriber's): the broker stops queueing for it."""
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    c.connect("127.0.0.1", port, clean_start=True)  # session expiry 0: deleted on disconnect
    c.loop_start()
    time.sleep(0.2)
    close(c)


# The publisher is a process of its own, as the bridges are: in the bench process it would share the
# GIL with the worker (or the bare subscriber) it feeds. It imports only paho.
_PUBLISHER = r"""
import pickle, sys, time, uuid
import paho.mqtt.client as mqtt
port, msgs, rate = pickle.load(sys.stdin.buffer)
c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="pub-" + uuid.uuid4().hex[:6], protocol=mqtt.MQTTv5)
c.max_inflight_messages_set(1000)
c.max_queued_messages_set(0)
c.connect("127.0.0.1", port)
c.loop_start()
sys.stdout.write("ready\n")
sys.stdout.flush()
sys.stdin.buffer.readline()
times = []
info = None
start = time.perf_counter()
if rate:
    for i, (topic, payload) in enumerate(msgs):
        times.append(time.time())
        info = c.publish(topic, payload, qos=1)
        delay = start + (i + 1) / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
else:
    infos = [c.publish(t, p, qos=1) for t, p in msgs]
    for info in infos[-100:]:
        info.wait_for_publish(60)
elapsed = time.perf_counter() - start
if info is not None:
    info.wait_for_publish(60)
c.disconnect()
c.loop_stop()
sys.stdout.buffer.write(pickle.dumps((len(msgs) / elapsed, times)))
sys.stdout.flush()
"""


class Publisher:
    """Publishes a stream (QoS 1) from a child process: as fast as it goes, or paced at `rate` msg/s
    (then it returns the time.time() of each publish)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None

    def prepare(self, msgs: list[tuple[str, bytes]], rate: float | None = None) -> None:
        """Start the child and connect it; publishing starts with go()."""
        self.proc = subprocess.Popen([sys.executable, "-c", _PUBLISHER], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE)
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(pickle.dumps((self.port, msgs, rate)))
        self.proc.stdin.flush()
        if self.proc.stdout.readline() != b"ready\n":
            raise RuntimeError("publisher process did not start")

    def go(self) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(b"go\n")
        self.proc.stdin.flush()

    def finish(self) -> tuple[float, list[float]]:
        """Wait until everything is published and acknowledged by the broker: (msg/s sent, times)."""
        assert self.proc is not None and self.proc.stdout is not None
        out = self.proc.stdout.read()
        self.proc.wait(30)
        self.proc = None
        return pickle.loads(out)

    def publish(self, msgs: list[tuple[str, bytes]]) -> None:
        self.prepare(msgs)
        self.go()
        self.finish()


# --- the streams ---------------------------------------------------------------------------------------


def _envelope() -> dict[str, Any]:
    return {"v": 1, "msg_id": ev.new_msg_id(), "ts": ev.utc_now_iso(), "src": "bench"}


def telemetry(i: int) -> tuple[str, bytes]:
    m = MACHINES[i % len(MACHINES)]
    msg = ev.Telemetry(machine=m, src="bench", readings={"hotend_c": 200.0 + i % 10, "bed_c": 60.0})
    return msg.topic(), ev.encode(msg)


def _raw(env: dict[str, Any], tail: str) -> bytes:
    """JSON text the standard encoder would refuse to write (NaN, deep nesting): envelope + raw tail."""
    return (json.dumps(env)[:-1] + ", " + tail + "}").encode()


# (label, what the worker must do with it); a stored one carries a note
HOSTILE: list[tuple[str, str]] = [
    ("not JSON", "dead"), ("nested 20 deep", "dead"), ("NaN in a status", "dead"),
    ("job.file of 300 chars", "dead"), ("ts in 2001", "noted"), ("70 KB payload", "dead"),
    ("NaN in telemetry", "noted"),
]


def hostile(kind: int, i: int) -> tuple[str, bytes]:
    m = MACHINES[i % len(MACHINES)]
    tel, status = ev.machine_topic(m, "telemetry"), ev.machine_topic(m, "status")
    env = _envelope()
    if kind == 0:
        return tel, b"\xff\xfe{not json " + str(i).encode()
    if kind == 1:
        return tel, _raw(env, '"x": ' + "[" * 20 + "]" * 20)
    if kind == 2:
        return status, _raw(env, '"state": "printing", "job": {"file": "a.gcode", "progress": NaN}')
    if kind == 3:
        return status, json.dumps({**env, "state": "printing", "job": {"file": "x" * 300}}).encode()
    if kind == 4:
        return tel, json.dumps({**env, "ts": "2001-01-01T00:00:00.000Z", "hotend_c": 210.0}).encode()
    if kind == 5:
        return tel, json.dumps({**env, "blob": "x" * 70_000}).encode()
    return tel, _raw(env, '"hotend_c": NaN, "bed_c": 60.0')


def clean_stream(n: int) -> list[tuple[str, bytes]]:
    return [telemetry(i) for i in range(n)]


def malformed_stream(n: int) -> tuple[list[tuple[str, bytes]], dict[str, int]]:
    """Every 100th message hostile (offset 50), the classes in turn; returns the expected outcomes."""
    out, expect = [], {"dead": 0, "noted": 0, "clean": 0}
    for i in range(n):
        if i % MALFORMED_EVERY == MALFORMED_EVERY // 2:
            kind = (i // MALFORMED_EVERY) % len(HOSTILE)
            out.append(hostile(kind, i))
            expect[HOSTILE[kind][1]] += 1
        else:
            out.append(telemetry(i))
            expect["clean"] += 1
    return out, expect


@dataclass
class Paced:
    msgs: list[tuple[str, bytes, str]]  # topic, payload, msg_id
    poisons: set[str]


def paced_stream(n: int, poison: bool) -> Paced:
    """Telemetry, and every 1,000th (offset 500) a printing status: its job is "poison.gcode" in the
    poison run, "ok.gcode" in the baseline (same shape of stream, only the poison differs)."""
    msgs, poisons = [], set()
    for i in range(n):
        if i % POISON_EVERY == POISON_EVERY // 2:
            st = ev.MachineStatus(machine=MACHINES[i % len(MACHINES)], src="bench", state="printing",
                                  job=ev.JobInfo(file=POISON_FILE if poison else "ok.gcode", progress=0.5))
            msgs.append((st.topic(), ev.encode(st), st.msg_id))
            if poison:
                poisons.add(st.msg_id)
        else:
            tm = ev.Telemetry(machine=MACHINES[i % len(MACHINES)], src="bench",
                              readings={"hotend_c": 200.0 + i % 10, "bed_c": 60.0})
            msgs.append((tm.topic(), ev.encode(tm), tm.msg_id))
    return Paced(msgs, poisons)


# --- the poison, and an Ingestor that records when each message was committed ---------------------------

_set_live_state = usage_service.set_live_state


def _poisonable_set_live_state(machine: Any, state: str, at: Any, progress: float | None = None,
                               job: str | None = None) -> None:
    if job == POISON_FILE:
        raise RuntimeError("bench poison: set_live_state refuses poison.gcode")
    _set_live_state(machine, state, at, progress, job)


@dataclass
class Call:
    seconds: float
    size: int
    failed_tx: int


class BenchIngestor(Ingestor):
    """The worker's Ingestor, plus: (commit time, messages) per committed transaction and a record of
    each batch (duration, size, failed transactions) while `record` is on. Costs a list append."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.record = False
        self.committed: list[tuple[float, list[Incoming]]] = []
        self.calls: list[Call] = []
        self.tx_failed = 0
        self.tx_failed_seconds = 0.0

    def process(self, batch: list[Incoming], now: Any = None, isolate: bool = False) -> Any:
        t0, f0 = time.perf_counter(), self.tx_failed
        try:
            return super().process(batch, now, isolate)
        finally:
            if self.record:
                self.calls.append(Call(time.perf_counter() - t0, len(batch), self.tx_failed - f0))

    def _transaction(self, batch: list[Incoming], now: Any, result: Any) -> None:
        t0 = time.perf_counter()
        try:
            super()._transaction(batch, now, result)
        except BaseException:
            self.tx_failed += 1
            self.tx_failed_seconds += time.perf_counter() - t0
            raise
        if self.record:
            self.committed.append((time.time(), batch))

    def outcomes(self) -> int:
        t = self.totals
        return t.stored + t.dead  # a redelivery (duplicate) is not a new outcome


# --- measurements --------------------------------------------------------------------------------------


def bare_subscriber_rate(port: int, msgs: list[tuple[str, bytes]], backlog: bool = False) -> float:
    """Messages/s a bare paho subscriber (QoS 1, no work per message) receives. Live: the stream is
    published while it listens (so the publisher bounds it too). Backlog: its persistent session is
    offline while the stream is published (the broker queues it), then it reconnects and drains."""
    got = 0
    last = 0.0
    done = threading.Event()
    ready = threading.Event()
    client_id = f"bare-{uuid.uuid4().hex[:6]}"

    def on_message(c, u, m):  # noqa: ANN001
        nonlocal got, last
        got += 1
        if got == len(msgs):
            last = time.perf_counter()
            done.set()

    def connect(clean_start: bool) -> mqtt.Client:
        sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        sub.on_connect = lambda c, u, f, rc, p=None: c.subscribe("fablab/v1/#", qos=1)
        sub.on_subscribe = lambda *a: ready.set()
        sub.on_message = on_message
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600 if backlog else 0
        sub.connect("127.0.0.1", port, clean_start=clean_start, properties=props)
        sub.loop_start()
        return sub

    sub = connect(True)
    ready.wait(10)
    pub = Publisher(port)
    if backlog:
        close(sub)
        pub.publish(msgs)  # acknowledged by the broker: queued for the offline session
        t0 = time.perf_counter()
        sub = connect(False)
    else:
        pub.prepare(msgs)
        t0 = time.perf_counter()
        pub.go()
        pub.finish()
    done.wait(120)
    elapsed = (last or time.perf_counter()) - t0
    close(sub)
    if backlog:
        drop_session(port, client_id)
    return got / elapsed


class WorkerRunner:
    """The real MqttWorker (persistent session, manual acks) feeding one BenchIngestor; can be stopped
    and started again under the same client id (the broker keeps the session and queues meanwhile)."""

    def __init__(self, app: Any, port: int, ing: BenchIngestor, client_id: str) -> None:
        self.app, self.port, self.ing, self.client_id = app, port, ing, client_id
        self.worker: MqttWorker | None = None
        self.thread: threading.Thread | None = None

    def start(self, settle: bool = True) -> None:
        self.worker = MqttWorker(self.app, MqttSettings("127.0.0.1", self.port), client_id=self.client_id,
                                 tick_seconds=3600)
        self.ing.publish = self.worker._publish
        self.worker.ingestor = self.ing  # before run(): the worker feeds this one
        self.thread = threading.Thread(target=self.worker.run, kwargs={"warm_up": False}, daemon=True)
        self.thread.start()
        if settle:
            self.worker.connected.wait(10)
            time.sleep(0.3)

    def stop(self) -> None:
        if self.worker is not None and self.thread is not None:
            self.worker.stop()
            self.thread.join(15)
        self.worker = self.thread = None


def wait_outcomes(ing: BenchIngestor, target: int, limit: float = WAIT_LIMIT) -> bool:
    """Until every message has an outcome (stored or dead letter), counted from the
    Ingestor's totals (no polling queries competing with the worker)."""
    deadline = time.perf_counter() + limit
    while ing.outcomes() < target:
        if time.perf_counter() > deadline:
            return False
        time.sleep(0.005)
    return True


def db_counts(app: Any) -> tuple[int, int, int]:
    """(stored messages, of which with a note, dead letters)."""
    with app.app_context():
        stored = db.session.scalar(select(func.count()).select_from(MqttMessage))
        noted = db.session.scalar(select(func.count()).select_from(MqttMessage).where(MqttMessage.note.is_not(None)))
        dead = db.session.scalar(select(func.count()).select_from(DeadLetter))
        db.session.remove()
    return stored, noted, dead


def poison_dead_letters(app: Any) -> int:
    with app.app_context():
        n = db.session.scalar(select(func.count()).select_from(DeadLetter).where(
            DeadLetter.reason.like("%bench poison%")))
        db.session.remove()
    return n


def burst(ing: BenchIngestor, pub: Publisher, msgs: list[tuple[str, bytes]]) -> tuple[float, bool]:
    """Live: the stream is published while the worker runs."""
    base = ing.outcomes()
    pub.prepare(msgs)
    t0 = time.perf_counter()
    pub.go()
    pub.finish()
    complete = wait_outcomes(ing, base + len(msgs))
    return (ing.outcomes() - base) / (time.perf_counter() - t0), complete


def backlog(runner: WorkerRunner, pub: Publisher, msgs: list[tuple[str, bytes]]) -> tuple[float, bool]:
    """Backlog: the worker is stopped while the stream is published (its session queues it), then it
    starts and drains; timed from start() to the last outcome."""
    runner.stop()
    pub.publish(msgs)
    base = runner.ing.outcomes()
    t0 = time.perf_counter()
    runner.start(settle=False)
    complete = wait_outcomes(runner.ing, base + len(msgs))
    rate = (runner.ing.outcomes() - base) / (time.perf_counter() - t0)
    runner.worker.connected.wait(10)  # type: ignore[union-attr]
    return rate, complete


@dataclass
class PacedResult:
    latencies: list[float]
    sent_rate: float
    poisons: int
    dead: int
    lost: int
    complete: bool
    calls: list[Call]
    tx_failed: int
    tx_failed_seconds: float


def paced(ing: BenchIngestor, pub: Publisher, stream: Paced) -> PacedResult:
    ing.committed.clear()
    ing.calls.clear()
    base, dead0 = ing.outcomes(), ing.totals.dead
    f0, fs0 = ing.tx_failed, ing.tx_failed_seconds
    pub.prepare([(t, p) for t, p, _ in stream.msgs], rate=PACED_RATE)
    ing.record = True
    pub.go()
    sent_rate, times = pub.finish()
    sent = {msg_id: at for (_, _, msg_id), at in zip(stream.msgs, times, strict=True)}
    complete = wait_outcomes(ing, base + len(stream.msgs))
    ing.record = False
    latencies = []
    for done, batch in ing.committed:
        for item in batch:
            msg_id = json.loads(item.payload)["msg_id"]
            if msg_id in sent and msg_id not in stream.poisons:
                latencies.append(done - sent.pop(msg_id))
    lost = sum(1 for m in sent if m not in stream.poisons)
    return PacedResult(latencies, sent_rate, len(stream.poisons), ing.totals.dead - dead0, lost, complete,
                       list(ing.calls), ing.tx_failed - f0, ing.tx_failed_seconds - fs0)


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(p * len(values)))]


def med(values: Any) -> float:
    values = list(values)
    return statistics.median(values) if values else float("nan")


def top(values: Any) -> float:
    return max(values, default=float("nan"))


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


# --- one backend ---------------------------------------------------------------------------------------


def run_backend(label: str, url: str | None, port: int, tmp: Path) -> None:
    print(f"\n== {label} ==", flush=True)
    with bench_app(tmp, url, name=label) as (app, _):
        with app.app_context():
            t = MachineType(slug="3d_printer", name="Printer")
            db.session.add_all([Machine(slug=m, name=m, machine_type=t) for m in MACHINES])
            db.session.commit()
            db.session.remove()
        runner = WorkerRunner(app, port, BenchIngestor(app), f"bench-{label}-{uuid.uuid4().hex[:4]}")
        try:
            _measure(app, runner, Publisher(port), label)
        finally:
            runner.stop()
            drop_session(port, runner.client_id)


def bare_rates(runner: WorkerRunner, port: int, msgs: list[tuple[str, bytes]]) -> dict[str, float]:
    """The bare subscriber on `msgs`, live and from a backlog, just before the worker runs the same kind
    of stream (2 shared cores: measured close together, the ratio drifts less with the load). The
    worker is stopped and its session ended meanwhile (it would receive this stream too)."""
    runner.stop()
    drop_session(port, runner.client_id)
    rates = {mode: bare_subscriber_rate(port, msgs, backlog=mode == "backlog") for mode in ("live", "backlog")}
    runner.start()
    return rates


def _incomplete(complete: bool) -> str:
    return "" if complete else f" INCOMPLETE after {WAIT_LIMIT:.0f} s"


def _measure(app: Any, runner: WorkerRunner, pub: Publisher, label: str) -> None:
    ing = runner.ing
    # 1. clean stream (fresh msg_ids for every run: a repeated stream would be all duplicates)
    print(f"clean stream ({N} telemetry, QoS 1):")
    bare = bare_rates(runner, runner.port, clean_stream(N))
    for mode, run in (("live", lambda m: burst(ing, pub, m)), ("backlog", lambda m: backlog(runner, pub, m))):
        rate, complete = run(clean_stream(N))
        b = bare[mode]
        print(f"  {mode:7}: bare paho subscriber {b:,.0f} msg/s; worker {rate:,.0f} msg/s stored "
              f"({rate / b:.2f}x of the bare subscriber){_incomplete(complete)}", flush=True)

    # 2. 1 % malformed stream
    hostile_n = N // MALFORMED_EVERY
    print(f"1 % malformed stream ({N} messages, {hostile_n} hostile, every {MALFORMED_EVERY}th: "
          f"{', '.join(h for h, _ in HOSTILE)}):")
    bare = bare_rates(runner, runner.port, malformed_stream(N)[0])
    s0, n0, d0 = db_counts(app)
    expect = {"dead": 0, "noted": 0, "clean": 0}
    verdicts = []
    for mode, run in (("live", lambda m: burst(ing, pub, m)), ("backlog", lambda m: backlog(runner, pub, m))):
        msgs, exp = malformed_stream(N)
        for k in expect:
            expect[k] += exp[k]
        rate, complete = run(msgs)
        b = bare[mode]
        ratio = rate / b
        print(f"  {mode:7}: bare paho subscriber {b:,.0f} msg/s; worker {rate:,.0f} msg/s handled; "
              f"ratio {ratio:.2f}x{_incomplete(complete)}", flush=True)
        verdicts.append(f"  {verdict(ratio >= 0.5 and complete)}: {label} worker on the 1 % malformed stream "
                        f"({mode}) is {ratio:.2f}x the bare subscriber (target >= 0.5x)")
    s1, n1, d1 = db_counts(app)
    outcomes_ok = (s1 - s0, n1 - n0, d1 - d0) == (expect["clean"] + expect["noted"], expect["noted"], expect["dead"])
    print(f"  outcomes of both runs: {s1 - s0} stored ({n1 - n0} with a note), {d1 - d0} dead letters; expected "
          f"{expect['clean'] + expect['noted']} ({expect['noted']}), {expect['dead']}: {verdict(outcomes_ok)}")
    print("\n".join(verdicts), flush=True)

    # 3. paced at 1,000 msg/s: baseline, then a poison every 1,000
    n = int(PACED_SECONDS * PACED_RATE)
    results = {}
    for name, poison in (("baseline", False), ("poison", True)):
        r = results[name] = paced(ing, pub, paced_stream(n, poison))
        lat = r.latencies
        print(f"paced {name:8} ({n} messages at {r.sent_rate:,.0f} msg/s sent, {r.poisons} poisons): "
              f"publish→commit p50 {med(lat) * 1000:.1f} ms, p99 {pct(lat, 0.99) * 1000:.1f} ms, "
              f"max {top(lat) * 1000:.1f} ms over {len(lat)} good messages; {r.dead} dead letters, "
              f"{r.lost} good messages without a commit" + ("" if r.complete else " INCOMPLETE"), flush=True)
        sizes = [c.size for c in r.calls]
        hit = [c for c in r.calls if c.failed_tx]
        print(f"  batches: {len(sizes)}, size median {med(sizes):.0f} max {top(sizes):.0f}, "
              f"handling p99 {pct([c.seconds for c in r.calls], 0.99) * 1000:.1f} ms; failed transactions "
              f"{r.tx_failed} ({r.tx_failed_seconds * 1000:.0f} ms in all)"
              + (f"; batches with a poison: {len(hit)}, handling max "
                 f"{top(c.seconds for c in hit) * 1000:.1f} ms, median size {med(c.size for c in hit):.0f}"
                 if hit else ""))
    base, pois = results["baseline"], results["poison"]
    poison_dl = poison_dead_letters(app)
    p99, b99 = pct(pois.latencies, 0.99), pct(base.latencies, 0.99)
    print(f"  poison vs baseline: p50 {med(pois.latencies) / med(base.latencies):.2f}x, "
          f"p99 {p99 / b99:.2f}x, max {top(pois.latencies) / top(base.latencies):.2f}x")
    print(f"  {verdict(pois.dead == pois.poisons == poison_dl and pois.lost == 0 and pois.complete)}: "
          f"dead letters {pois.dead} (with the poison's RuntimeError as reason: {poison_dl}) for {pois.poisons} "
          f"poisons sent, {pois.lost} good messages lost")
    print(f"  {verdict(p99 < 1.0 and pois.complete)}: {label} p99 publish→commit at {PACED_RATE} msg/s with a "
          f"poison every {POISON_EVERY} is {p99 * 1000:.1f} ms (target < 1000 ms)", flush=True)


def main() -> None:
    usage_service.set_live_state = _poisonable_set_live_state  # only "poison.gcode" is refused
    runs: list[tuple[str, str | None]] = [("SQLite", None)]
    pg = os.environ.get("FABLAB_BENCH_PG_URL", os.environ.get("FABLAB_TEST_DATABASE_URL"))
    if pg:
        runs.append(("PostgreSQL", pg))
    print(f"ingest bench: N={N}, paced {PACED_SECONDS:g} s at {PACED_RATE} msg/s, {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        proc, port = start_mosquitto(tmp)
        try:
            for label, url in runs:
                t0 = time.perf_counter()
                try:
                    run_backend(label, url, port, tmp)
                except Exception as exc:  # noqa: BLE001 - report it and go on with the next backend
                    print(f"FAIL: {label} bench did not complete: {type(exc).__name__}: {exc}", flush=True)
                print(f"({label}: {time.perf_counter() - t0:.0f} s)", flush=True)
        finally:
            proc.terminate()
            proc.wait(5)


if __name__ == "__main__":
    main()
