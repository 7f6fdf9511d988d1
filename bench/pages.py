"""Page speed and weight: the main pages of the demo lab rendered through the whole WSGI app (routing,
sign-in, templates, compression), as the role that uses each page. Prints the median server time and the
compressed size (gzip, as a plain-HTTP browser asks; brotli, as over HTTPS) per page, against the targets
of issue 15, with the sign-in page measured in the same run as the baseline (and each page's ratio to it).

Targets: each page under 50 ms and 60 KB compressed; the fairness review under 300 ms; pages with the 3D
viewer are exempt from the size target (the viewer is a cached static file, not part of the page).

    .venv/bin/python bench/pages.py [--repeat 15]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchdb import bench_app  # noqa: E402
from flask import Flask  # noqa: E402
from sqlalchemy import select  # noqa: E402

from fablab.demo.lab import seed  # noqa: E402
from fablab.extensions import db  # noqa: E402
from fablab.models import Member  # noqa: E402
from fablab.services import kiosk as kiosk_service  # noqa: E402
from fablab.services import sessions  # noqa: E402

MS, KB = 50.0, 60.0
REVIEW_MS = 300.0


def _client(app: Flask, email: str | None) -> Any:
    client = app.test_client()
    if email:
        with app.app_context():
            m = db.session.scalar(select(Member).where(Member.email == email))
            assert m is not None, email
            # A server-side session, as a sign-in opens one (without the password hash's cost).
            _, sid = sessions.open_session(m, sessions.WEB, datetime.now(UTC), timedelta(hours=12))
            db.session.commit()
        with client.session_transaction() as s:
            s["sid"] = sid
    return client


def _kiosk_client(app: Flask) -> Any:
    client = app.test_client()
    with app.app_context():
        _device, token = kiosk_service.register_kiosk("bench")
        db.session.commit()
    resp = client.get(f"/kiosk/activate/{token}")
    assert resp.status_code in (200, 302), resp.status_code
    return client


def measure(client: Any, path: str, repeat: int) -> dict[str, float]:
    # A partial is what htmx asks for (the same URL without the header redirects to the page).
    hx = {"HX-Request": "true"} if path.endswith(("/week", "/board")) else {}
    for enc in ("gzip", "br"):  # warm up: template compilation, first queries
        client.get(path, headers={"Accept-Encoding": enc, **hx})
    times = []
    sizes: dict[str, int] = {}
    for i in range(repeat):
        enc = "gzip" if i % 2 == 0 else "br"
        t0 = time.perf_counter()
        resp = client.get(path, headers={"Accept-Encoding": enc, **hx})
        times.append((time.perf_counter() - t0) * 1000)
        assert resp.status_code == 200, f"{path}: {resp.status_code}"
        sizes[enc] = len(resp.data)
        sizes[enc + "_encoded"] = resp.headers.get("Content-Encoding") == enc
        resp.close()
    raw = len(client.get(path, headers=hx).data)
    return {"ms": statistics.median(times), "gzip": sizes["gzip"] / 1024, "br": sizes["br"] / 1024,
            "raw": raw / 1024, "compressed": bool(sizes["gzip_encoded"] and sizes["br_encoded"])}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=15)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp, bench_app(Path(tmp), name="pages") as (app, _cfg):
        t0 = time.perf_counter()
        with app.app_context():
            print(seed())
        print(f"demo lab seeded in {time.perf_counter() - t0:.1f} s; {args.repeat} requests per page\n")
        has_day = "planner.day" in app.view_functions
        member = _client(app, "ada@fablab.example")
        admin = _client(app, "admin@fablab.example")
        anon = app.test_client()
        kiosk = _kiosk_client(app)
        pages: list[tuple[str, Any, str, float | None, float | None]] = [
            ("baseline: sign-in page", anon, "/login", MS, KB),
            ("machines", member, "/", MS, KB),
            ("machine week", member, "/machines/laser-epilog", MS, KB),
            ("machine week (htmx partial)", member, "/machines/laser-epilog/week", MS, KB),
        ]
        if has_day:
            pages.append(("day view", member, "/day", MS, KB))
        pages += [
            ("my bookings", member, "/bookings", MS, KB),
            ("kiosk board (page)", kiosk, "/kiosk/", MS, KB),
            ("kiosk board (polled partial)", kiosk, "/kiosk/board", MS, KB),
            ("fairness review (admin)", admin, "/fairness", REVIEW_MS, KB),
            ("design with 3D viewer", member, "/designs/1", None, None),
        ]
        print(f"{'page':32s} {'median':>9s} {'ratio':>6s} {'gzip':>9s} {'br':>8s} {'raw':>9s}  target")
        base_ms = None
        failed = 0
        for label, client, path, ms_target, kb_target in pages:
            r = measure(client, path, args.repeat)
            base_ms = base_ms or r["ms"]
            ok = ((ms_target is None or r["ms"] < ms_target) and (kb_target is None or r["gzip"] < kb_target)
                  and r["compressed"])
            failed += not ok
            size_t = f"<{kb_target:.0f} KB" if kb_target else "size exempt"
            time_t = f"<{ms_target:.0f} ms" if ms_target else "time exempt"
            print(f"{label:32s} {r['ms']:7.1f}ms {r['ms'] / base_ms:5.1f}x {r['gzip']:7.1f}KB {r['br']:6.1f}KB "
                  f"{r['raw']:7.1f}KB  {time_t}, {size_t}: {'ok' if ok else 'MISSED'}"
                  f"{'' if r['compressed'] else ' (not compressed)'}")
        if not has_day:
            print("day view: skipped (no planner.day endpoint in this build)")
        print(f"\n{len(pages) - failed} of {len(pages)} pages within target")
        return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
