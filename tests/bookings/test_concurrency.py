"""32 threads book the same and overlapping slots at once: zero overlaps, every loser told why."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select

from fablab.extensions import db
from fablab.models import ACTIVE_STATUSES, Booking
from fablab.services import bookings as svc
from tests.bookings.conftest import slot


@pytest.mark.parametrize("buffer", [0, 15])
def test_32_concurrent_bookings_never_overlap(app, make_member, open_machine, qualified, buffer) -> None:
    machine = open_machine(buffer_minutes=buffer)
    members = [make_member() for _ in range(32)]
    for m in members:
        qualified(m, machine)
    base, _ = slot(3)
    # 8 different starts, 30 min apart, each 1 h long: every request overlaps a neighbour.
    requests = [(members[i].id, base + timedelta(minutes=30 * (i % 8)), timedelta(hours=1)) for i in range(32)]
    machine_id = machine.id
    barrier = threading.Barrier(32)
    results: list[tuple[str, object]] = []
    lock = threading.Lock()

    def worker(member_id: int, start, length) -> None:
        with app.app_context():
            from fablab.models import Machine, Member

            member = db.session.get(Member, member_id)
            mach = db.session.get(Machine, machine_id)
            db.session.commit()  # give the connection back: 32 threads share a pool of 15
            barrier.wait()
            try:
                b = svc.create_booking(member, mach, start, start + length)
                out = ("ok", (b.start_at, b.end_at))
            except svc.BookingRejected as exc:
                out = ("rejected", exc)
            except Exception as exc:  # noqa: BLE001 - any other error is a test failure below
                out = ("error", repr(exc))
            finally:
                db.session.remove()
            with lock:
                results.append(out)

    threads = [threading.Thread(target=worker, args=r) for r in requests]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert len(results) == 32
    errors = [r for r in results if r[0] == "error"]
    assert not errors, errors
    winners = [r[1] for r in results if r[0] == "ok"]
    losers = [r[1] for r in results if r[0] == "rejected"]
    assert winners, "somebody must win"
    for exc in losers:
        assert exc.code in ("overlap", "buffer"), exc.code
        assert exc.status in (409, 422) and exc.message

    db.session.commit()  # a fresh snapshot: the threads' commits are visible now
    active = list(db.session.scalars(select(Booking).where(
        Booking.machine_id == machine_id, Booking.status.in_([s.value for s in ACTIVE_STATUSES]))
        .order_by(Booking.start_at)))
    assert len(active) == len(winners)
    for a, b in zip(active, active[1:], strict=False):
        gap = timedelta(minutes=buffer)
        assert a.end_at + gap <= b.start_at, f"too close: {a.start_at}-{a.end_at} and {b.start_at}-{b.end_at}"
