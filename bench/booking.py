"""Booking core speed: availability of one machine for a week with 500 bookings (median ms), and
booking creations per second with 16 concurrent clients on SQLite and PostgreSQL, with the overlaps
found afterwards (must be 0).

    .venv/bin/python bench/booking.py            # SQLite, and PostgreSQL if FABLAB_BENCH_PG_URL is set
    FABLAB_BENCH_PG_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test .venv/bin/python bench/booking.py
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchdb import bench_app  # noqa: E402
from sqlalchemy import select  # noqa: E402

from fablab import create_app  # noqa: E402
from fablab.extensions import db  # noqa: E402
from fablab.models import ACTIVE_STATUSES, Booking, Machine, MachineType, Member  # noqa: E402
from fablab.services import bookings as svc  # noqa: E402
from fablab.services import machines as machine_service  # noqa: E402
from fablab.services import members as member_service  # noqa: E402

ALL_DAY = {d: [["00:00", "24:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
RULES = {"slot_minutes": 15, "min_minutes": 15, "max_minutes": 240, "opening_hours": ALL_DAY, "horizon_days": 365,
         "buffer_minutes": 0, "checkin_grace_minutes": 15, "max_hours_per_day": None, "max_hours_per_week": None,
         "max_future_bookings": None, "qualification_required": False}
CLIENTS = 16
PER_CLIENT = 40


def setup(app) -> tuple[int, list[int], int]:
    with app.app_context():
        mtype = MachineType(slug="laser_cutter", name="Laser")
        db.session.add(mtype)
        m1 = Machine(slug="avail", name="Avail", machine_type=mtype, policy=RULES)
        m2 = Machine(slug="race", name="Race", machine_type=mtype, policy=RULES)
        db.session.add_all([m1, m2])
        members = [member_service.create_member(f"b{i}@example.org", f"B{i}") for i in range(CLIENTS)]
        db.session.flush()
        for m in members:
            machine_service.grant(m, by=None, machine_type=mtype)
        # 500 bookings in one week on the availability machine
        now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        for i in range(500):
            start = now + timedelta(minutes=20 * i)
            db.session.add(Booking(machine_id=m1.id, member_id=members[i % CLIENTS].id, start_at=start,
                                   end_at=start + timedelta(minutes=15), status="confirmed", kind="normal"))
        db.session.commit()
        return m1.id, [m.id for m in members], m2.id


def bench_availability(app, machine_id: int) -> float:
    with app.app_context():
        machine = db.session.get(Machine, machine_id)
        now = datetime.now(UTC)
        times = []
        for _ in range(60):
            t0 = time.perf_counter()
            svc.availability(machine, now, now + timedelta(days=7), now)
            times.append((time.perf_counter() - t0) * 1000)
        return statistics.median(times)


def _client_process(cfg: dict, machine_id: int, member_id: int, i: int, base: datetime, barrier, out) -> None:
    """One client = one process with its own app and connection pool, like one WSGI worker."""
    app = create_app(cfg)
    ok = rej = 0
    with app.app_context():
        member = db.session.get(Member, member_id)
        machine = db.session.get(Machine, machine_id)
        db.session.commit()
        barrier.wait()  # start together, once every client is set up
        for k in range(PER_CLIENT):
            # half the requests collide with another client's, half are distinct
            slot = (k * CLIENTS + i) if k % 2 else (k * CLIENTS + i // 2)
            start = base + timedelta(minutes=15 * slot)
            try:
                svc.create_booking(member, machine, start, start + timedelta(minutes=15), source="bench")
                ok += 1
            except svc.BookingRejected:
                rej += 1
        db.engine.dispose()
    out.put((ok, rej, time.time()))


def _count_overlaps(app, machine_id: int) -> int:
    with app.app_context():
        rows = list(db.session.scalars(select(Booking).where(
            Booking.machine_id == machine_id, Booking.status.in_([s.value for s in ACTIVE_STATUSES]))
            .order_by(Booking.start_at)))
        return sum(1 for a, b in zip(rows, rows[1:], strict=False) if a.end_at > b.start_at)


def bench_threads(app, machine_id: int, member_ids: list[int], day: int) -> tuple[float, int, int, int]:
    """16 clients as threads of one process (one WSGI worker with 16 threads)."""
    import threading

    base = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=day)
    barrier = threading.Barrier(CLIENTS + 1)
    counts = [0, 0]
    lock = threading.Lock()

    def client(i: int) -> None:
        with app.app_context():
            member = db.session.get(Member, member_ids[i])
            machine = db.session.get(Machine, machine_id)
            db.session.commit()
            barrier.wait()
            ok = rej = 0
            for k in range(PER_CLIENT):
                slot = (k * CLIENTS + i) if k % 2 else (k * CLIENTS + i // 2)
                start = base + timedelta(minutes=15 * slot)
                try:
                    svc.create_booking(member, machine, start, start + timedelta(minutes=15), source="bench")
                    ok += 1
                except svc.BookingRejected:
                    rej += 1
            db.session.remove()
            with lock:
                counts[0] += ok
                counts[1] += rej

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    return sum(counts) / elapsed, counts[0], counts[1], _count_overlaps(app, machine_id)


def bench_creations(app, cfg: dict, machine_id: int, member_ids: list[int]) -> tuple[float, int, int, int]:
    import multiprocessing as mp

    base = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=1)
    with app.app_context():
        db.engine.dispose()  # no inherited connections in the children
    ctx = mp.get_context("fork")
    out = ctx.Queue()
    barrier = ctx.Barrier(CLIENTS + 1)
    procs = [ctx.Process(target=_client_process, args=(cfg, machine_id, member_ids[i], i, base, barrier, out))
             for i in range(CLIENTS)]
    for p in procs:
        p.start()
    barrier.wait()
    start_at = time.time()
    results = [out.get(timeout=300) for _ in procs]
    for p in procs:
        p.join()
    elapsed = max(r[2] for r in results) - start_at
    ok = sum(r[0] for r in results)
    rej = sum(r[1] for r in results)
    return (ok + rej) / elapsed, ok, rej, _count_overlaps(app, machine_id)


def run(label: str, url: str | None) -> None:
    with tempfile.TemporaryDirectory() as tmp, \
            bench_app(Path(tmp), url, engine_options={"pool_size": CLIENTS + 2}) as (app, cfg):
        avail_id, member_ids, race_id = setup(app)
        ms = bench_availability(app, avail_id)
        print(f"{label:10} availability (1 week, 500 bookings): median {ms:.2f} ms")
        rate, ok, rej, overlaps = bench_threads(app, race_id, member_ids, day=30)
        print(f"{label:10} {CLIENTS} concurrent client threads: {rate:.0f} booking requests/s "
              f"({ok} booked, {rej} refused as overlapping), overlaps afterwards: {overlaps}")
        # the child processes get small pools of their own
        rate, ok, rej, overlaps = bench_creations(app, {**cfg, "SQLALCHEMY_ENGINE_OPTIONS": {
            **cfg.get("SQLALCHEMY_ENGINE_OPTIONS", {}), "pool_size": 2}}, race_id, member_ids)
        print(f"{label:10} {CLIENTS} concurrent client processes: {rate:.0f} booking requests/s "
              f"({ok} booked, {rej} refused as overlapping), overlaps afterwards: {overlaps}")


if __name__ == "__main__":
    run("SQLite", None)
    pg = os.environ.get("FABLAB_BENCH_PG_URL", os.environ.get("FABLAB_TEST_DATABASE_URL"))
    if pg:
        run("PostgreSQL", pg)
    else:
        print("PostgreSQL: set FABLAB_BENCH_PG_URL to include it")
