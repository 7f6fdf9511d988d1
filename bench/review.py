"""Fairness review speed: a year of data (200 members, 20 machines, ~100,000 bookings and 100,000 usage
sessions, 104 request windows with published traces and their waitlisted requests), bulk-inserted into a
temporary SQLite database (and PostgreSQL, in a private schema, when FABLAB_BENCH_PG_URL is set). Times
the review per part (load, metrics, replay, charts, render) and end to end (GET /fairness as an admin),
for the default period (last 4 weeks) and for the whole year. Target: under 1 s.

Usage sessions wholly inside the period are summed by the database (per member and lab week); bookings are
read as plain driver rows and handled as numpy columns (times as epoch seconds: on SQLite the stored text,
parsed by numpy), so the year costs a few hundred thousand floats, not datetimes or SQLAlchemy rows.

    .venv/bin/python bench/review.py
    FABLAB_BENCH_PG_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test .venv/bin/python bench/review.py
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchdb import bench_app  # noqa: E402
from flask import g, render_template  # noqa: E402
from sqlalchemy import insert, text  # noqa: E402

from fablab.domain import allocation as alloc  # noqa: E402
from fablab.domain import fairshare as fs  # noqa: E402
from fablab.extensions import db  # noqa: E402
from fablab.models import Booking, Machine, MachineType, Member, Qualification  # noqa: E402
from fablab.models.scheduling import RequestWindow, SlotRequest  # noqa: E402
from fablab.models.usage import UsageSession  # noqa: E402
from fablab.services import fairness as svc  # noqa: E402
from fablab.services import sessions  # noqa: E402
from fablab.web import charts  # noqa: E402
from fablab.web.fairness import routes  # noqa: E402

MEMBERS, MACHINES, DAYS, PER_DAY = 200, 20, 365, 14
TYPES = [("3d_printer", "3D printer", 8), ("laser_cutter", "Laser cutter", 4), ("cnc_mill", "CNC mill", 3),
         ("vinyl_cutter", "Vinyl cutter", 2), ("electronics", "Electronics bench", 3)]
REPEAT = 5


def populate(app, now: datetime) -> dict[str, float]:
    rng = random.Random(9)
    t0 = time.perf_counter()
    with app.app_context():
        db.session.execute(insert(MachineType), [{"slug": s, "name": n} for s, n, _ in TYPES])
        type_ids = dict(db.session.execute(text("SELECT slug, id FROM machine_types")).all())
        machines = []
        for slug, name, count in TYPES:
            for i in range(count):
                machines.append({"slug": f"{slug}-{i + 1}", "name": f"{name} {i + 1}", "type_id": type_ids[slug],
                                 "location": "", "description": "", "status": "available",
                                 "qualification_scope": "type", "created_at": now - timedelta(days=400)})
        db.session.execute(insert(Machine), machines)
        mrows = db.session.execute(text("SELECT id, slug, type_id FROM machines ORDER BY id")).all()
        db.session.execute(insert(Member), [
            {"member_no": 1000 + i, "email": f"m{i}@example.org", "name": f"Member Name {i}",
             "role": "admin" if i == 0 else "member", "active": True, "share": 1.0, "password_hash": "x",
             "created_at": now - timedelta(days=400)} for i in range(MEMBERS)])
        member_ids = [r[0] for r in db.session.execute(text("SELECT id FROM members ORDER BY id")).all()]
        db.session.execute(insert(Qualification), [
            {"member_id": m, "machine_type_id": t, "granted_at": now - timedelta(days=399)}
            for m in member_ids for t in type_ids.values() if rng.random() < 0.7])
        weights = [1 / (i + 1) ** 1.05 for i in range(MEMBERS)]
        rng.shuffle(weights)
        day0 = (now - timedelta(days=DAYS)).replace(hour=0, minute=0, second=0, microsecond=0)
        bookings, sessions = [], []
        for mid, slug, _ in mrows:
            always = slug.startswith("3d_printer")
            first, span = (0, 24) if always else (9, 12)  # UTC hours: printers around the clock, others 10-22
            slot = timedelta(hours=span / PER_DAY)
            for d in range(DAYS):
                day = day0 + timedelta(days=d, hours=first)
                for k in range(PER_DAY):
                    start = day + slot * k
                    end = start + slot * rng.uniform(0.5, 1.0)
                    if end > now:
                        continue
                    member = rng.choices(member_ids, weights)[0]
                    roll = rng.random()
                    status = "completed" if roll < 0.93 else "no_show" if roll < 0.97 else "cancelled"
                    bookings.append({"machine_id": mid, "member_id": member, "start_at": start, "end_at": end,
                                     "booked_end_at": end, "status": status, "kind": "normal", "source": "web",
                                     "note": "", "cancel_reason": "", "sequence": 0,
                                     "created_at": start - timedelta(days=2), "updated_at": end,
                                     "checked_in_at": start if status == "completed" else None,
                                     "cancelled_at": start - timedelta(hours=rng.choice((2, 48)))
                                     if status == "cancelled" else None})
                    if status == "completed":
                        sessions.append((len(bookings) - 1, mid, member, start, end, rng.random() < 0.05))
        ids = []
        for i in range(0, len(bookings), 20000):
            ids += list(db.session.scalars(insert(Booking).returning(Booking.id, sort_by_parameter_order=True),
                                           bookings[i:i + 20000]))
        # A few unbooked sessions in the gaps make the total 100,000.
        extra = 100_000 - len(sessions)
        srows = [{"key": f"b{n}", "machine_id": mid, "member_id": member, "booking_id": ids[bi], "start_at": s,
                  "end_at": e, "duration_s": (e - s).total_seconds(), "source": "event", "open": False,
                  "start_estimated": False, "unbooked": False, "overrun_minutes": 15.0 if over else 0.0,
                  "counts_as_usage": True, "kind": "normal", "updated_at": e}
                 for n, (bi, mid, member, s, e, over) in enumerate(sessions)]
        for n in range(max(0, extra)):
            mid = mrows[n % len(mrows)][0]
            s = day0 + timedelta(days=n % DAYS, hours=22 + (n // DAYS) % 2 * 0.5)
            srows.append({"key": f"u{n}", "machine_id": mid, "member_id": rng.choices(member_ids, weights)[0],
                          "booking_id": None, "start_at": s, "end_at": s + timedelta(minutes=20), "duration_s": 1200.0,
                          "source": "power", "open": False, "start_estimated": False, "unbooked": True,
                          "overrun_minutes": 0.0, "counts_as_usage": True, "kind": "normal",
                          "updated_at": s + timedelta(minutes=20)})
        for i in range(0, len(srows), 20000):
            db.session.execute(insert(UsageSession), srows[i:i + 20000])

        # Weekly request windows for two lasers' evenings, allocated by the real draw, losers waitlisted.
        lasers = [r for r in mrows if r[1].startswith("laser_cutter")][:2]
        requests, windows = 0, 0
        for mid, _, _ in lasers:
            for week in range(DAYS // 7):
                p0 = day0 + timedelta(days=7 * week)
                seed = rng.randbytes(32)
                w = RequestWindow(machine_id=mid, mode="window", period_start=p0, period_end=p0 + timedelta(days=7),
                                  opens_at=p0 - timedelta(days=7), closes_at=p0 - timedelta(days=3), status="closed",
                                  commitment="0" * 64, secret_seed=seed.hex(), revealed_seed=seed.hex())
                db.session.add(w)
                wanted = []
                for m in rng.sample(member_ids, 12):
                    for rank in range(1, 3):
                        s = p0 + timedelta(days=rng.randrange(5), hours=rng.choice((17, 19)))
                        wanted.append((m, s, rank))
                rows = [SlotRequest(window=w, member_id=m, machine_id=mid, start_at=s, end_at=s + timedelta(hours=2),
                                    rank=rank, status="pending") for m, s, rank in dict(
                        ((m, s), (m, s, r)) for m, s, r in wanted).values()]
                db.session.add_all(rows)
                db.session.flush()
                labels = {m: f"p{m}" for m in {r.member_id for r in rows}}
                reqs = [alloc.SlotRequest(r.id, labels[r.member_id], mid, r.start_at, r.end_at, r.rank) for r in rows]
                usage = {label: rng.uniform(0, 10) for label in labels.values()}
                shares = dict.fromkeys(labels.values(), 1.0)
                result = alloc.allocate_window(reqs, fs.FairShareState(usage, shares), seed, alloc.Quota(None, 2))
                by_id = {r.id: r for r in rows}
                for o in result.outcomes:
                    by_id[o.request.id].status = o.status.value
                w.trace = {"version": 1, "machine": mid, "band_width": alloc.DEFAULT_BAND_WIDTH,
                           "quota": {"max_hours": None, "max_slots": 2}, "member_quotas": {}, "usage": usage,
                           "shares": shares, "allocated": [q.id for q in reqs],
                           "requests": [{"id": q.id, "participant": q.member_id, "start": q.start.isoformat(),
                                         "end": q.end.isoformat(), "hours": q.hours, "rank": q.rank} for q in reqs],
                           "outcomes": [{"id": o.request.id, "status": o.status.value, "reason": o.reason.value}
                                        for o in result.outcomes]}
                requests += len(rows)
                windows += 1
        db.session.commit()
        counts = {"bookings": len(bookings), "sessions": len(srows), "windows": windows, "requests": requests}
    counts["populate_s"] = time.perf_counter() - t0
    return counts


def time_review(app, query: svc.ReviewQuery, now: datetime) -> tuple[dict[str, float], svc.Review]:
    runs: list[dict[str, float]] = []
    review = None
    with app.app_context():
        admin = db.session.execute(text("SELECT id FROM members WHERE role = 'admin'")).scalar_one()
        viewer = svc.Viewer(admin, True)
        for _ in range(REPEAT):
            db.session.expire_all()
            parts: dict[str, float] = {}
            t0 = time.perf_counter()
            review = svc.build_review(query, viewer, now, parts)
            t1 = time.perf_counter()
            svgs = charts.review_charts(review)
            t2 = time.perf_counter()
            with app.test_request_context("/fairness"):
                g.member = db.session.get(Member, admin)
                form, _ = routes._filter()
                ctx = routes._context(form, review)
                assert set(svgs) == set(ctx["charts"])
                render_template("fairness/review.html", **ctx)
            t3 = time.perf_counter()
            parts["charts"] = t2 - t1
            parts["render"] = t3 - t2 - 0  # includes building the tables and the charts once more for the page
            parts["total"] = t3 - t0
            runs.append(parts)
        db.session.remove()
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    assert review is not None
    return med, review


def time_http(app) -> float:
    with app.app_context():
        admin = db.session.get(Member, db.session.execute(text("SELECT id FROM members WHERE role = 'admin'"))
                               .scalar_one())
        _, sid = sessions.open_session(admin, sessions.WEB, datetime.now(UTC), timedelta(hours=12))
        db.session.commit()
    client = app.test_client()
    with client.session_transaction() as s:
        s["sid"] = sid
    times = []
    for _ in range(REPEAT):
        t0 = time.perf_counter()
        resp = client.get("/fairness")
        assert resp.status_code == 200, resp.status_code
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def report(name: str, parts: dict[str, float]) -> None:
    order = ("load", "metrics", "replay", "charts", "render", "total")
    print(f"  {name:<22}" + "  ".join(f"{k} {parts[k] * 1000:7.1f} ms" for k in order))


def run(url: str | None) -> None:
    label = "PostgreSQL" if url else "SQLite"
    with tempfile.TemporaryDirectory() as tmp, bench_app(Path(tmp), url) as (app, _):
        now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        counts = populate(app, now)
        print(f"{label}: {counts['bookings']} bookings, {counts['sessions']} usage sessions, "
              f"{counts['windows']} windows, {counts['requests']} window requests "
              f"(bulk insert {counts['populate_s']:.1f} s)")
        month, review = time_review(app, svc.ReviewQuery.default(now), now)
        report("last 4 weeks", month)
        year, year_review = time_review(app, svc.ReviewQuery(now - timedelta(days=DAYS), now), now)
        report("whole year", year)
        print(f"  GET /fairness (admin, last 4 weeks, end to end): {time_http(app) * 1000:.1f} ms")
        for name, r in (("last 4 weeks", review), ("whole year", year_review)):
            t = r.totals
            print(f"  {name}: {t.members} members, {t.used_hours:.0f} h used of {t.requested_hours:.0f} h "
                  f"requested, unmet {t.unmet_hours:.0f} h; Gini {r.gini:.3f}, Jain {r.jain:.3f}; no-shows "
                  f"{t.no_shows} ({(t.no_show_rate or 0):.1%}), late cancellations {t.late_cancels}; lottery "
                  f"{r.lottery.lottery_events} events in {r.lottery.windows} windows, {r.lottery.verified} "
                  f"verified, deviation {r.lottery.deviation:.1f}")
            for s in r.statements[:4]:
                print(f"    {s}")
        ok = month["total"] < 1 and year["total"] < 1
        print(f"  target < 1 s: {'met' if ok else 'NOT met'} (4 weeks {month['total']:.3f} s, "
              f"year {year['total']:.3f} s)")


if __name__ == "__main__":
    run(None)
    if os.environ.get("FABLAB_BENCH_PG_URL"):
        run(os.environ["FABLAB_BENCH_PG_URL"])
