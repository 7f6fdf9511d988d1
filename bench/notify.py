"""Mail delivery speed and what notices cost a booking.

1. 10,000 notices queued through `notify.notify` (real Notice and OutboxMail rows, ~200 members) are
   delivered by `mail_delivery.deliver_due` to a local aiosmtpd server (a process of its own), against
   smtplib sending the same messages, built beforehand by `mail_build.build`, over one connection to the
   same server in the same run (the baseline: SMTP alone, no database, no templates). Target: delivery at
   least 0.5x the baseline.
2. What enqueueing adds to a booking request: `bookings.create_booking` and its commit, 300 times with the
   booking's notice written (the wired listeners, or `notify()` as the listener would call it) and 300
   times without (no listeners), interleaved. Target: under 2 ms added (mean).

    .venv/bin/python bench/notify.py [--mails 10000] [--bookings 300] [POSTGRES_URL]
    FABLAB_TEST_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test .venv/bin/python bench/notify.py
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import smtplib
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiosmtpd.controller import Controller  # noqa: E402
from benchdb import bench_app  # noqa: E402
from flask import Flask  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from fablab.demo.broker import free_port  # noqa: E402
from fablab.extensions import db  # noqa: E402
from fablab.models import Machine, MachineType, Member  # noqa: E402
from fablab.models.notifications import Notice, OutboxMail  # noqa: E402
from fablab.services import bookings as booking_service  # noqa: E402
from fablab.services import lab_events, notify  # noqa: E402
from fablab.services import members as member_service  # noqa: E402
from fablab.services.mail_build import build  # noqa: E402
from fablab.services.mail_delivery import deliver_due  # noqa: E402

MEMBERS = 200
RATIO_TARGET = 0.5
ADDED_MS_TARGET = 2.0
ALL_DAY = {d: [["00:00", "24:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
RULES = {"slot_minutes": 15, "min_minutes": 15, "max_minutes": 240, "opening_hours": ALL_DAY, "horizon_days": 365,
         "buffer_minutes": 0, "checkin_grace_minutes": 15, "max_hours_per_day": None, "max_hours_per_week": None,
         "max_future_bookings": None, "qualification_required": False}


class _Counter:
    """An SMTP server that accepts and counts: the same cheap receiver for both senders."""

    def __init__(self, count: Any) -> None:
        self.count = count

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd's name)
        with self.count.get_lock():
            self.count.value += 1
        return "250 OK"


def _serve(port: int, count: Any, ready: Any, stop: Any) -> None:
    controller = Controller(_Counter(count), hostname="127.0.0.1", port=port)
    controller.start()
    ready.set()
    stop.wait()
    controller.stop()


class SmtpProcess:
    """The receiving server in a process of its own, as a real mail server is: it never competes with the
    sender for this process's interpreter lock."""

    def __init__(self) -> None:
        ctx = mp.get_context("spawn")
        self.port = free_port()
        self.count = ctx.Value("l", 0)
        self._ready, self._stop = ctx.Event(), ctx.Event()
        self._proc = ctx.Process(target=_serve, args=(self.port, self.count, self._ready, self._stop), daemon=True)

    def __enter__(self) -> SmtpProcess:
        self._proc.start()
        if not self._ready.wait(30):
            raise RuntimeError("the SMTP server did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._proc.join(10)

    @property
    def received(self) -> int:
        return int(self.count.value)


def setup(app: Flask) -> tuple[list[int], int]:
    with app.app_context():
        members = [member_service.create_member(f"n{i}@example.org", f"Member {i}") for i in range(MEMBERS)]
        mtype = MachineType(slug="laser_cutter", name="Laser")
        machine = Machine(slug="laser", name="Laser cutter", machine_type=mtype, policy=RULES)
        db.session.add_all([mtype, machine])
        db.session.commit()
        return [m.id for m in members], machine.id


def enqueue(app: Flask, member_ids: list[int], n: int, now: datetime) -> float:
    """n notices with their mails, committed 500 at a time; returns notices/s."""
    with app.app_context():
        members = list(db.session.scalars(select(Member).where(Member.id.in_(member_ids)).order_by(Member.id)))
        t0 = time.perf_counter()
        for i in range(n):
            m = members[i % len(members)]
            start = now + timedelta(days=1, minutes=15 * i)
            notify.notify(m, "booking_confirmed", {"booking_id": i + 1, "machine": "Laser cutter",
                                                   "start": start.isoformat(),
                                                   "end": (start + timedelta(hours=1)).isoformat()},
                          now=now, link=f"/bookings/{i + 1}")
            if i % 500 == 499:
                db.session.commit()
        db.session.commit()
        return n / (time.perf_counter() - t0)


def prerender(app: Flask, now: datetime) -> list[tuple[str, str, bytes]]:
    """The queued mails as deliver_due builds them (templates rendered, headers set, the bytes that go on the
    wire), for the baseline."""
    with app.app_context():
        rows = list(db.session.scalars(select(OutboxMail).where(OutboxMail.status == "pending")
                                       .order_by(OutboxMail.id)))
        out = [(b.sender, b.recipient, b.data) for b in (build(mail, now) for mail in rows)]
        db.session.rollback()
        return out


def baseline(port: int, messages: list[tuple[str, str, bytes]]) -> float:
    """smtplib alone: the same messages sent over one connection."""
    t0 = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
        for sender, recipient, data in messages:
            smtp.sendmail(sender, [recipient], data)
    return len(messages) / (time.perf_counter() - t0)


def delivery(app: Flask, now: datetime) -> tuple[float, int]:
    with app.app_context():
        sent = 0
        t0 = time.perf_counter()
        while True:
            result = deliver_due(now, limit=500)
            sent += result.sent
            if result.claimed == 0:
                break
        elapsed = time.perf_counter() - t0
        left = db.session.scalar(select(func.count()).select_from(OutboxMail).where(OutboxMail.status != "sent"))
        return sent / elapsed, int(left or 0)


def bench_mail(app: Flask, member_ids: list[int], n: int) -> tuple[float, float, float, int, int]:
    now = datetime.now(UTC)
    rate_enqueue = enqueue(app, member_ids, n, now)
    with SmtpProcess() as server:
        app.config["FABLAB_SMTP_URL"] = f"smtp://127.0.0.1:{server.port}"
        messages = prerender(app, now)
        rate_base = baseline(server.port, messages)
        got_base = server.received
        rate_deliver, left = delivery(app, now)
        got_deliver = server.received - got_base
    assert got_base == len(messages) == n, (got_base, len(messages), n)
    return rate_enqueue, rate_base, rate_deliver, got_deliver, left


def _booking_notice(booking: Any) -> None:
    # What the booking.created rule writes (used when no listener is wired in this build).
    notify.notify(booking.member, "booking_confirmed",
                  {"booking_id": booking.id, "machine": booking.machine.name, "start": booking.start_at.isoformat(),
                   "end": booking.end_at.isoformat()}, now=datetime.now(UTC), link=f"/bookings/{booking.id}",
                  dedupe_key=f"booking:{booking.id}:confirmed",
                  mail_params={"ics": {"booking_id": booking.id, "method": "REQUEST", "sequence": 0}})


def bench_booking(app: Flask, member_ids: list[int], machine_id: int, n: int) -> tuple[list[float], list[float], str]:
    wired = list(lab_events._listeners)
    with app.app_context():
        members = list(db.session.scalars(select(Member).where(Member.id.in_(member_ids)).order_by(Member.id)))
        machine = db.session.get(Machine, machine_id)
        base = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=1)
        db.session.commit()

        def notices() -> int:
            return int(db.session.scalar(select(func.count()).select_from(Notice)) or 0)

        # Does this build's wiring already write a notice when a booking is made?
        before = notices()
        booking_service.create_booking(members[0], machine, base, base + timedelta(minutes=15), source="web")
        db.session.commit()
        by_listener = notices() > before
        how = ("the wired lab-event listeners" if by_listener
               else "notify() called after create_booking (no booking listener is wired in this build)")
        times: dict[bool, list[float]] = {True: [], False: []}
        try:
            for i in range(2 * n):
                with_notice = i % 2 == 0
                lab_events._listeners[:] = wired if with_notice else []
                start = base + timedelta(minutes=30 * (i + 1))
                member = members[i % len(members)]
                t0 = time.perf_counter()
                booking = booking_service.create_booking(member, machine, start, start + timedelta(minutes=15),
                                                         source="web")
                if with_notice and not by_listener:
                    _booking_notice(booking)
                db.session.commit()
                times[with_notice].append((time.perf_counter() - t0) * 1000)
        finally:
            lab_events._listeners[:] = wired
        assert notices() >= n, "the notices were written"
        return times[True], times[False], how


def run(label: str, url: str | None, mails: int, bookings: int) -> bool:
    with tempfile.TemporaryDirectory() as tmp, bench_app(Path(tmp), url, name="notify") as (app, _cfg):
        member_ids, machine_id = setup(app)
        rate_enqueue, rate_base, rate_deliver, delivered, left = bench_mail(app, member_ids, mails)
        ratio = rate_deliver / rate_base
        ok_mail = ratio >= RATIO_TARGET and delivered == mails and left == 0
        print(f"{label:10} {mails} notices queued by notify(): {rate_enqueue:,.0f} notices/s")
        print(f"{label:10} baseline, smtplib over one connection (pre-rendered): {rate_base:,.0f} mails/s")
        print(f"{label:10} deliver_due to the same server: {rate_deliver:,.0f} mails/s, {delivered} arrived, "
              f"{left} not sent; ratio {ratio:.2f}x (target >= {RATIO_TARGET}x): {'ok' if ok_mail else 'MISSED'}")
        with_t, without_t, how = bench_booking(app, member_ids, machine_id, bookings)
        with_ms, without_ms = statistics.mean(with_t), statistics.mean(without_t)
        added = with_ms - without_ms
        added_median = statistics.median(with_t) - statistics.median(without_t)
        ok_booking = added < ADDED_MS_TARGET
        print(f"{label:10} booking request, {bookings} each: {without_ms:.2f} ms without notices, {with_ms:.2f} ms "
              f"with ({how}); added {added:.2f} ms mean, {added_median:.2f} ms median "
              f"(target < {ADDED_MS_TARGET:.0f} ms): {'ok' if ok_booking else 'MISSED'}")
        return ok_mail and ok_booking


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mails", type=int, default=10_000)
    ap.add_argument("--bookings", type=int, default=300)
    ap.add_argument("pg_url", nargs="?", default=os.environ.get("FABLAB_TEST_DATABASE_URL"))
    args = ap.parse_args()
    ok = run("SQLite", None, args.mails, args.bookings)
    if args.pg_url:
        ok = run("PostgreSQL", args.pg_url, args.mails, args.bookings) and ok
    else:
        print("PostgreSQL: give its URL (or set FABLAB_TEST_DATABASE_URL) to include it")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
