"""Scale-out, measured (issue 20): the real stack on PostgreSQL and a private Mosquitto, under load.

Started as real processes: 4 gunicorn workers (deploy/gunicorn.conf.py) serving the app on a free port,
2 `fablab worker --shared` processes sharing the ingest ($share/fablab/...), and a publisher process
that plays 20 bridges (contract-valid devices/events.py messages: telemetry every second, a status change
now and then, and a burst of 100 messages per bridge halfway through; one process rather than 20 real
bridges, which would need 20 serial simulators on 2 cores). 50 HTTP client threads (stdlib http.client,
each with its own cookies) sign in, browse the machine list, a machine week, its htmx partial and their
bookings, book and cancel; a third of them race for the same few slots of one machine.

Printed: request throughput and p50/p99 latency (all requests, and the booking POST), booking conflicts
(409 refusals) and the overlapping held bookings in the database afterwards (must be 0), ingest lag
p50/p99 (event time -> row visible in mqtt_messages, polled every 50 ms), errors (5xx or transport
errors: must be 0), and the booking POST through the full stack against a bare Flask route doing one
INSERT on the same database, served by the same gunicorn settings and worker count, as a ratio (aim:
at least 0.5x). A fresh database is created for the run and dropped afterwards.

    .venv/bin/python bench/load.py [URL] [--seconds 90] [--quick]
    URL default: FABLAB_BENCH_PG_URL, FABLAB_TEST_DATABASE_URL, else postgresql+psycopg://postgres@127.0.0.1:5432/test
    (skipped with a line, exit 0, when none is set and that default server is not there)
"""

from __future__ import annotations

import argparse
import getpass
import http.client
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from fablab import create_app  # noqa: E402
from fablab.database import upgrade_db  # noqa: E402
from fablab.demo.broker import find_mosquitto, free_port, wait_for_port  # noqa: E402
from fablab.extensions import db  # noqa: E402
from fablab.models import Machine, MachineType  # noqa: E402
from fablab.services import machines as machine_service  # noqa: E402
from fablab.services import members as member_service  # noqa: E402

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PASSWORD = "load-bench-password"
WEB_WORKERS, INGEST_WORKERS, BRIDGES, CLIENTS = 4, 2, 20, 50
BOOK_MACHINES = [f"load-{i}" for i in range(4)]  # bookable; BOOK_MACHINES[0] is the contested one
FLOOR_MACHINE = "load-floor"  # the full-stack side of the comparison with the bare INSERT
RACERS = CLIENTS // 3
ALL_DAY = {d: [["00:00", "24:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
RULES = {"slot_minutes": 15, "min_minutes": 15, "max_minutes": 240, "opening_hours": ALL_DAY, "horizon_days": 365,
         "buffer_minutes": 0, "checkin_grace_minutes": 15, "max_hours_per_day": None, "max_hours_per_week": None,
         "max_future_bookings": None, "qualification_required": True}
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"|"X-CSRFToken": "([^"]+)"')


# --- the database ---------------------------------------------------------------------------------------


def _admin(url: str, *sql: str) -> None:
    eng = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with eng.connect() as c:
            for s in sql:
                c.execute(text(s))
    finally:
        eng.dispose()


@contextmanager
def fresh_database(url: str) -> Iterator[str]:
    """A database of its own (the app's processes read only FABLAB_DATABASE_URL, so not a schema)."""
    name = f"fablab_load_{uuid.uuid4().hex[:8]}"
    _admin(url, f"CREATE DATABASE {name}")
    own = make_url(url).set(database=name).render_as_string(hide_password=False)
    try:
        _admin(own, "CREATE EXTENSION IF NOT EXISTS btree_gist")
        yield own
    finally:
        _admin(url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def seed(url: str, tmp: Path) -> None:
    """Migrate, then machines (bookable + one per bridge) and members through the services."""
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "INSTANCE_PATH": str(tmp / "instance"),
                      "SECRET_KEY": "bench"})
    with app.app_context():
        upgrade_db()
        mtype = MachineType(slug="laser_cutter", name="Laser")
        db.session.add(mtype)
        for slug in [*BOOK_MACHINES, FLOOR_MACHINE]:
            db.session.add(Machine(slug=slug, name=slug.title(), machine_type=mtype, policy=RULES))
        for i in range(BRIDGES):
            db.session.add(Machine(slug=f"bridge-{i}", name=f"Bridged {i}", machine_type=mtype, policy=RULES))
        db.session.flush()
        first = None
        for i in range(CLIENTS):
            # one password hash for all (argon2 is slow on purpose; every sign-in still verifies it)
            m = member_service.create_member(f"load{i}@example.org", f"Load {i}",
                                             password=None if first else PASSWORD)
            first = first or m
            m.password_hash = first.password_hash
            db.session.flush()
            machine_service.grant(m, by=None, machine_type=mtype)
        db.session.execute(text("CREATE TABLE bare_bookings (id serial PRIMARY KEY, member_id int, machine_id int, "
                                "start_at timestamptz, end_at timestamptz)"))
        db.session.commit()
        db.session.remove()
        db.engine.dispose()


def _scalar(url: str, sql: str) -> Any:
    eng = create_engine(url)
    try:
        with eng.connect() as c:
            return c.execute(text(sql)).scalar()
    finally:
        eng.dispose()


def overlaps(url: str) -> tuple[int, int]:
    """(held bookings, overlapping pairs of held bookings on one machine)."""
    eng = create_engine(url)
    held = "('confirmed', 'checked_in')"
    try:
        with eng.connect() as c:
            n = c.execute(text(f"SELECT count(*) FROM bookings WHERE status IN {held}")).scalar_one()
            bad = c.execute(text(
                f"SELECT count(*) FROM bookings a JOIN bookings b ON a.machine_id = b.machine_id AND a.id < b.id "
                f"AND a.start_at < b.end_at AND b.start_at < a.end_at "
                f"WHERE a.status IN {held} AND b.status IN {held}")).scalar_one()
    finally:
        eng.dispose()
    return int(n), int(bad)


# --- the processes --------------------------------------------------------------------------------------


def _env(url: str, mqtt_port: int, tmp: Path, metrics: str) -> dict[str, str]:
    return {**os.environ, "FABLAB_DATABASE_URL": url, "FABLAB_SECRET_KEY": "load-bench",
            "FABLAB_MQTT_URL": f"mqtt://127.0.0.1:{mqtt_port}", "FABLAB_METRICS_DIR": str(tmp / metrics),
            "PROMETHEUS_MULTIPROC_DIR": str(tmp / metrics), "FABLAB_TIMEZONE": "UTC",
            "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), str(ROOT / "firmware-bridge"),
                                                      os.environ.get("PYTHONPATH", "")) if p)}


def _stop_all(procs: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM to all at once, then wait (one by one, each graceful stop would add up)."""
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _spawn(stack: ExitStack, args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    out = stack.enter_context(log.open("wb"))
    proc = subprocess.Popen(args, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    procs: list[subprocess.Popen[bytes]] | None = getattr(stack, "procs", None)
    if procs is None:
        procs = []
        stack.procs = procs  # type: ignore[attr-defined]
        stack.callback(_stop_all, procs)
    procs.append(proc)
    return proc


def start_mosquitto(stack: ExitStack, tmp: Path) -> int:
    port = free_port()
    conf = tmp / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\n"
                    f"max_inflight_messages 0\nuser {getpass.getuser()}\n")
    _spawn(stack, [find_mosquitto() or "mosquitto", "-c", str(conf)], dict(os.environ), tmp / "mosquitto.log")
    wait_for_port(port)
    return port


def start_gunicorn(stack: ExitStack, env: dict[str, str], app: str, tmp: Path, name: str) -> int:
    port = free_port()
    args = [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "deploy/gunicorn.conf.py"), "-b", f"127.0.0.1:{port}",
            "-w", str(WEB_WORKERS), "--access-logfile", str(tmp / f"{name}-access.log"), app]
    _spawn(stack, args, env, tmp / f"{name}.log")
    wait_for_port(port, timeout=60)
    return port


BARE_APP = '''
"""The floor: one INSERT per request on the same database, through Flask and gunicorn."""
import os
from datetime import datetime
from flask import Flask, request
from sqlalchemy import create_engine, text

app = Flask(__name__)
engine = create_engine(os.environ["FABLAB_DATABASE_URL"], pool_pre_ping=True)


@app.post("/machines/<slug>/book")
def book(slug):
    start = datetime.fromisoformat(request.form["start"])
    with engine.begin() as c:
        c.execute(text("INSERT INTO bare_bookings (member_id, machine_id, start_at, end_at) "
                       "VALUES (1, 1, :s, :s + interval '30 minutes')"), {"s": start})
    return "booked", 201
'''


# --- the bridges ----------------------------------------------------------------------------------------

# 20 bridges in one process: telemetry every second per bridge, a status change every 15 s, and at
# `burst_at` a burst of 100 messages per bridge as fast as the broker takes them. Imports paho and the
# contract only; prints the number sent when told to stop (a line on stdin).
BRIDGES_PROC = r"""
import sys, threading, time
import paho.mqtt.client as mqtt
from devices import events as ev
port, n, burst_at, burst = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="load-bridges", protocol=mqtt.MQTTv5)
c.max_inflight_messages_set(1000)
c.max_queued_messages_set(0)
c.connect("127.0.0.1", port)
c.loop_start()
stop = threading.Event()
threading.Thread(target=lambda: (sys.stdin.readline(), stop.set()), daemon=True).start()
sent, tick, start, burst_done, kinds = 0, 0, time.monotonic(), False, {}
def send(msg):
    global sent
    c.publish(msg.topic(), ev.encode(msg), qos=max(msg.QOS, 1))
    sent += 1
    kinds[msg.SUBTOPIC] = kinds.get(msg.SUBTOPIC, 0) + 1
while not stop.is_set():
    for b in range(n):
        m = f"bridge-{b}"
        send(ev.Telemetry(machine=m, src=f"bridge{b}", readings={"power_w": 40.0 + tick % 7, "temp_c": 25.0}))
        if (tick + b) % 15 == 0:
            state = "printing" if (tick // 15 + b) % 2 else "idle"
            job = ev.JobInfo(file="part.gcode", progress=0.5) if state == "printing" else None
            send(ev.MachineStatus(machine=m, src=f"bridge{b}", state=state, job=job))
    if not burst_done and time.monotonic() - start >= burst_at:
        burst_done = True
        for i in range(burst):
            for b in range(n):
                send(ev.Telemetry(machine=f"bridge-{b}", src=f"bridge{b}", readings={"power_w": 900.0 + i}))
    tick += 1
    stop.wait(max(0.0, start + tick - time.monotonic()))
c.disconnect()
c.loop_stop()
print(sent, *[f"{k}={v}" for k, v in kinds.items()], flush=True)
"""


class IngestLag:
    """Polls mqtt_messages for new rows; lag = the time a row was first seen - its event time. The two
    workers commit out of id order, so the poll asks from the highest id below which every row was seen
    (an id that stays missing for 2 s, a rolled-back insert, is given up on)."""

    def __init__(self, url: str) -> None:
        self.engine = create_engine(url)
        self.lags: list[float] = []
        self.stop = threading.Event()
        self.floor = 0
        self.above: set[int] = set()  # seen ids above the floor
        self.moved = time.monotonic()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.wait(0.05):
            self.poll()

    def poll(self) -> None:
        with self.engine.connect() as c:
            rows = c.execute(text("SELECT id, ts FROM mqtt_messages WHERE id > :floor ORDER BY id"),
                             {"floor": self.floor}).all()
        now = datetime.now(UTC)
        for rid, ts in rows:
            if rid not in self.above:
                self.above.add(rid)
                self.lags.append((now - ts).total_seconds())
        start = self.floor
        if self.above and time.monotonic() - self.moved > 2.0:
            self.floor = min(self.above) - 1
        while self.floor + 1 in self.above:
            self.floor += 1
            self.above.discard(self.floor)
        if self.floor != start or not self.above:
            self.moved = time.monotonic()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.poll()
        self.engine.dispose()


# --- the HTTP clients -----------------------------------------------------------------------------------


@dataclass
class Stats:
    lock: threading.Lock = field(default_factory=threading.Lock)
    times: dict[str, list[float]] = field(default_factory=dict)
    statuses: dict[int, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    conflicts: int = 0
    booked: int = 0
    cancelled: int = 0

    def add(self, kind: str, ms: float, status: int) -> None:
        with self.lock:
            self.times.setdefault(kind, []).append(ms)
            self.statuses[status] = self.statuses.get(status, 0) + 1
            if status >= 500:
                self.errors.append(f"{kind}: HTTP {status}")

    def error(self, what: str) -> None:
        with self.lock:
            self.errors.append(what)


class Client:
    """One browser: its own cookies; a new connection per request (gunicorn's sync workers close it)."""

    def __init__(self, port: int, stats: Stats) -> None:
        self.port = port
        self.stats = stats
        self.cookies: dict[str, str] = {}
        self.csrf = ""

    def request(self, kind: str, method: str, path: str, form: dict[str, str] | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, str, str]:
        h = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items()), **(headers or {})}
        body = None
        if form is not None:
            body = urlencode(form)
            h["Content-Type"] = "application/x-www-form-urlencoded"
            if self.csrf:
                h["X-CSRFToken"] = self.csrf
        t0 = time.perf_counter()
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            conn.request(method, path, body=body, headers=h)
            resp = conn.getresponse()
            data = resp.read().decode("utf-8", "replace")
        except (OSError, http.client.HTTPException) as exc:
            self.stats.error(f"{kind}: {type(exc).__name__}: {exc}")
            return 0, "", ""
        finally:
            conn.close()
        self.stats.add(kind, (time.perf_counter() - t0) * 1000, resp.status)
        for raw in resp.headers.get_all("Set-Cookie") or []:
            for k, morsel in SimpleCookie(raw).items():
                self.cookies[k] = morsel.value
        if (m := CSRF_RE.search(data)) is not None:
            self.csrf = m.group(1) or m.group(2)
        return resp.status, resp.headers.get("Location", ""), data

    def sign_in(self, i: int) -> bool:
        self.request("login page", "GET", "/login")
        status, _, _ = self.request("sign in", "POST", "/login",
                                    {"email": f"load{i}@example.org", "password": PASSWORD, "csrf_token": self.csrf})
        self.request("first page", "GET", "/")  # the token of the signed-in session
        return status == 302


def client_loop(i: int, port: int, stats: Stats, base: datetime, until: list[float],
                ready: threading.Barrier, signed_in: list[Client]) -> None:
    rnd = random.Random(i)
    c = Client(port, stats)
    signed_in[i] = c
    if not c.sign_in(i):
        stats.error(f"client {i}: sign-in failed")
    ready.wait()
    mine: list[int] = []
    racer = i < RACERS
    while time.monotonic() < until[0]:
        r = rnd.random()
        slug = BOOK_MACHINES[0] if racer else BOOK_MACHINES[1 + i % (len(BOOK_MACHINES) - 1)]
        if r < 0.25:
            c.request("machine list", "GET", "/")
        elif r < 0.40:
            c.request("machine week", "GET", f"/machines/{slug}")
        elif r < 0.50:
            c.request("week partial", "GET", f"/machines/{slug}/week", headers={"HX-Request": "true"})
        elif r < 0.65:
            c.request("my bookings", "GET", "/bookings")
        elif r < 0.85 or not mine:
            # Racers share 12 slots of one machine; the others book in their own hours of the next weeks.
            slot = rnd.randrange(12) if racer else 100 + i * 100 + rnd.randrange(100)
            start = base + timedelta(minutes=30 * slot)
            status, location, _ = c.request("book (POST)", "POST", f"/machines/{slug}/book",
                                            {"start": start.isoformat(), "minutes": "30"})
            if status == 302 and (m := re.search(r"/bookings/(\d+)", location)):
                mine.append(int(m.group(1)))
                with stats.lock:
                    stats.booked += 1
            elif status == 409:
                with stats.lock:
                    stats.conflicts += 1
            elif status:
                stats.error(f"client {i}: booking answered {status}")
        else:
            bid = mine.pop(rnd.randrange(len(mine)))
            status, _, _ = c.request("cancel (POST)", "POST", f"/bookings/{bid}/cancel", {"reason": "load"})
            if status == 302:
                with stats.lock:
                    stats.cancelled += 1
            elif status:
                stats.error(f"client {i}: cancel answered {status}")


def run_clients(port: int, seconds: float, base: datetime) -> tuple[Stats, float, list[Client]]:
    """Every client signs in, then all start together and run for `seconds`: (stats, elapsed, clients)."""
    stats = Stats()
    signed_in: list[Client] = [Client(port, stats)] * CLIENTS
    until = [float("inf")]
    ready = threading.Barrier(CLIENTS + 1, action=lambda: until.__setitem__(0, time.monotonic() + seconds))
    threads = [threading.Thread(target=client_loop, args=(i, port, stats, base, until, ready, signed_in))
               for i in range(CLIENTS)]
    for t in threads:
        t.start()
    ready.wait()
    t0 = time.monotonic()
    for t in threads:
        t.join()
    with stats.lock:  # sign-ins happened before the clock started: keep them apart
        signin = {k: stats.times.pop(k, []) for k in ("login page", "sign in", "first page")}
        stats.times.update({f"({k})": v for k, v in signin.items()})
    return stats, time.monotonic() - t0, signed_in


def booking_floor(port: int, seconds: float, base: datetime, signed_in: list[Client] | None = None,
                  threads_n: int = 8) -> tuple[float, list[float], int]:
    """`threads_n` threads POST bookings of distinct free slots for `seconds`, each request as the next of
    the signed-in members of the load phase (so nobody piles up hundreds of bookings), or anonymously
    (the bare app): (req/s, latencies ms, errors)."""
    stats = Stats()
    cs = [Client(port, stats)] if signed_in is None else signed_in
    for c in cs:
        c.port, c.stats = port, stats
    members = len(cs)
    counter = iter(range(10**9))
    lock = threading.Lock()
    end = time.monotonic() + seconds

    def loop() -> None:
        while time.monotonic() < end:
            with lock:
                slot = next(counter)
            start = base + timedelta(minutes=30 * slot)
            status, _, _ = cs[slot % members].request("book (POST)", "POST", f"/machines/{FLOOR_MACHINE}/book",
                                                      {"start": start.isoformat(), "minutes": "30"})
            if status not in (302, 201):
                stats.error(f"floor: booking answered {status}")

    t0 = time.monotonic()
    threads = [threading.Thread(target=loop) for _ in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - t0
    times = stats.times.get("book (POST)", [])
    return len(times) / elapsed, times, len(stats.errors)


# --- the report -----------------------------------------------------------------------------------------


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("url", nargs="?", default=None)
    ap.add_argument("--seconds", type=float, default=90.0, help="length of the load phase")
    ap.add_argument("--quick", action="store_true",
                    help="a short run (6 s of load, 2 s per side of the comparison) for a test")
    args = ap.parse_args()
    url_given = args.url or os.environ.get("FABLAB_BENCH_PG_URL") or os.environ.get("FABLAB_TEST_DATABASE_URL")
    args.url = url_given or DEFAULT_URL
    try:
        _scalar(args.url, "SELECT 1")
    except Exception as exc:  # noqa: BLE001 - any failure to reach the server means: no PostgreSQL here
        print(f"load: no PostgreSQL at {make_url(args.url).render_as_string()}: {type(exc).__name__}")
        return 2 if url_given else 0  # `make bench` on a machine without PostgreSQL goes on
    load_s = 6.0 if args.quick else args.seconds
    floor_s = 2.0 if args.quick else 15.0
    burst = 30 if args.quick else 100
    t_start = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp_name, fresh_database(args.url) as url, ExitStack() as stack:
        tmp = Path(tmp_name)
        seed(url, tmp)
        mqtt_port = start_mosquitto(stack, tmp)
        env = _env(url, mqtt_port, tmp, "metrics")
        fablab_cli = str(Path(sys.executable).parent / "fablab")
        for k in range(INGEST_WORKERS):
            _spawn(stack, [fablab_cli, "worker", "--shared", "--client-id", f"load-worker-{k}"], env,
                   tmp / f"worker{k}.log")
        web_port = start_gunicorn(stack, env, "fablab:create_app()", tmp, "web")
        (tmp / "bare").mkdir()
        (tmp / "bare" / "bare_app.py").write_text(BARE_APP)
        bare_env = {**_env(url, mqtt_port, tmp, "bare-metrics"),
                    "PYTHONPATH": f"{tmp / 'bare'}{os.pathsep}{env['PYTHONPATH']}"}
        bare_port = start_gunicorn(stack, bare_env, "bare_app:app", tmp, "bare")
        # A shared subscription drops what arrives before its first subscriber: wait for both.
        deadline = time.monotonic() + 60
        while not all("subscribed to" in (tmp / f"worker{k}.log").read_text(errors="replace")
                      for k in range(INGEST_WORKERS)):
            if time.monotonic() > deadline:
                raise RuntimeError("the ingest workers did not subscribe")
            time.sleep(0.1)
        lag = IngestLag(url)
        lag.thread.start()
        bridges = subprocess.Popen([sys.executable, "-c", BRIDGES_PROC, str(mqtt_port), str(BRIDGES),
                                    str(load_s / 2), str(burst)], env=env, cwd=ROOT, stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, text=True)
        print(f"stack up in {time.monotonic() - t_start:.1f} s: {WEB_WORKERS} gunicorn workers, {INGEST_WORKERS} "
              f"ingest workers (shared subscription), {BRIDGES} bridges (one publisher process), {CLIENTS} "
              f"HTTP clients ({RACERS} racing for 12 slots of one machine) for {load_s:.0f} s")
        base = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=1)
        t_in = time.monotonic()
        stats, elapsed, signed_in = run_clients(web_port, load_s, base)
        print(f"({CLIENTS} sign-ins took {time.monotonic() - t_in - elapsed:.1f} s before the clock started)")
        assert bridges.stdin is not None and bridges.stdout is not None
        bridges.stdin.write("stop\n")
        bridges.stdin.flush()
        sent_line = (bridges.stdout.readline() or "0").split()
        sent, sent_kinds = int(sent_line[0]), sent_line[1:]
        bridges.wait(10)
        deadline = time.monotonic() + 15
        while len(lag.lags) < sent and time.monotonic() < deadline:
            time.sleep(0.2)
        lag.close()
        held, bad = overlaps(url)

        all_ms = [ms for k, v in stats.times.items() if not k.startswith("(") for ms in v]
        book_ms = stats.times.get("book (POST)", [])
        n = len(all_ms)
        print(f"\nrequests (after sign-in): {n} in {elapsed:.1f} s = {n / elapsed:.0f} req/s, "
              f"p50 {pct(all_ms, 50):.0f} ms, p99 {pct(all_ms, 99):.0f} ms")
        for kind in sorted(stats.times):
            v = stats.times[kind]
            print(f"  {kind:14s} {len(v):6d}  p50 {pct(v, 50):6.0f} ms  p99 {pct(v, 99):6.0f} ms")
        print(f"booking POST: p50 {pct(book_ms, 50):.0f} ms, p99 {pct(book_ms, 99):.0f} ms; "
              f"{stats.booked} booked, {stats.conflicts} conflicts (409), {stats.cancelled} cancelled")
        print(f"statuses: {dict(sorted(stats.statuses.items()))}")
        print(f"held bookings: {held}, overlapping: {bad}")
        print(f"ingest: {sent} messages sent, {len(lag.lags)} stored; lag p50 {pct(lag.lags, 50) * 1000:.0f} ms, "
              f"p99 {pct(lag.lags, 99) * 1000:.0f} ms, max {max(lag.lags, default=0) * 1000:.0f} ms")

        full_rate, full_ms, full_err = booking_floor(web_port, floor_s, base, signed_in)
        bare_rate, bare_ms, bare_err = booking_floor(bare_port, floor_s, base)
        ratio = full_rate / bare_rate if bare_rate else float("nan")
        print(f"booking POST, 8 clients, {floor_s:.0f} s per side: full stack {full_rate:.0f}/s "
              f"(p50 {pct(full_ms, 50):.0f} ms), bare Flask INSERT {bare_rate:.0f}/s "
              f"(p50 {pct(bare_ms, 50):.0f} ms): {ratio:.2f}x {'ok' if ratio >= 0.5 else 'below'} (aim >= 0.5x)")
        errors = len(stats.errors) + full_err + bare_err
        for e in stats.errors[:10]:
            print(f"  error: {e}")
        lost = sent - len(lag.lags)
        if lost:
            dead = _scalar(url, "SELECT count(*) FROM dead_letters")
            reasons = _scalar(url, "SELECT string_agg(DISTINCT left(reason, 80), ' | ') FROM dead_letters")
            burst_rows = _scalar(url, "SELECT count(*) FROM mqtt_messages WHERE topic LIKE '%telemetry' "
                                      "AND (payload->>'power_w')::float >= 900")
            kinds = _scalar(url, "SELECT string_agg(k || '=' || n, ' ') FROM (SELECT kind k, count(*)::text n "
                                 "FROM mqtt_messages GROUP BY kind) x")
            print(f"  not stored: {lost} ({dead} dead letters: {reasons}); burst rows {burst_rows}; {kinds}; "
                  f"sent {sent_kinds}")
            for k in range(INGEST_WORKERS):
                log = (tmp / f"worker{k}.log").read_text(errors="replace").splitlines()
                print(f"  worker{k}: " + " / ".join(line[-160:] for line in log[-4:]))
        print(f"errors: {errors}")
        print(f"overlaps: {bad}")
        print(f"ingest lost: {lost}")
        print(f"total run time {time.monotonic() - t_start:.0f} s")
        return 1 if errors or bad or lost else 0


if __name__ == "__main__":
    raise SystemExit(main())
