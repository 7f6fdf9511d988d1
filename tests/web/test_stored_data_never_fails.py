"""Pages never fail on stored data: hostile-but-storable rows (times at the ends of the calendar, NaN,
infinities, huge and negative durations, long HTML strings) are stored directly, then every page that
shows them is read as member, steward and admin. Each must answer below 500 and show something sensible."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient

from fablab.extensions import db
from fablab.models import Booking, Role
from fablab.models.usage import Bridge, DeadLetter, MaintenanceRule, UsageSession
from fablab.services import kiosk as kiosk_service
from fablab.services import machines as machine_service
from fablab.web import formatting as fmt
from tests.conftest import login

END_OF_TIME = datetime(9999, 12, 31, 23, 59, tzinfo=UTC)  # in Berlin this is year 10000: astimezone overflows
START_OF_TIME = datetime(1, 1, 1, tzinfo=UTC)
HTML_JOB = ("<script>alert('job')</script>" * 10)[:255]


def _sqlite() -> bool:
    return db.engine.dialect.name == "sqlite"


def _odd_floats() -> list[float]:
    """The floats the backend can store in a NOT NULL column: SQLite stores NaN as NULL (so it refuses it
    in a NOT NULL column); PostgreSQL's double precision keeps NaN and the infinities."""
    values = [math.inf, -math.inf, 1e308, -1e308, 1e300, -5.0]
    return values if _sqlite() else [math.nan, *values]


@pytest.fixture
def hostile(app_ctx, make_member, make_machine) -> dict[str, Any]:
    member = make_member("ada@example.org", name="Ada Lovelace")
    make_member("steward@example.org", role=Role.STEWARD)
    make_member("admin@example.org", role=Role.ADMIN)
    machine = make_machine("odd-printer", name="Odd Printer", type_slug="3d_printer",
                           live_state="<b>printing</b>"[:20], live_progress=math.inf, live_job=HTML_JOB,
                           live_since=END_OF_TIME, live_updated_at=END_OF_TIME)
    progress = [math.nan, -math.inf, 1e308, -1e308] if not _sqlite() else [-math.inf, 1e308, -1e308]
    others = [make_machine(f"odd-{i}", name=f"Odd {i}", live_state=state, live_progress=p,
                           live_since=START_OF_TIME if i % 2 else END_OF_TIME)
              for i, (state, p) in enumerate(zip(["printing", "offline", "busy", "paused"], progress, strict=False))]
    machine_service.grant(member, by=None, machine=machine, expires_at=END_OF_TIME)
    now = datetime.now(UTC)
    rows = [
        dict(start_at=END_OF_TIME, end_at=None, open=True),
        dict(start_at=END_OF_TIME - timedelta(minutes=30), end_at=END_OF_TIME, open=False),
        dict(start_at=START_OF_TIME, end_at=None, open=True, duration_s=1e308),
        dict(start_at=START_OF_TIME, end_at=START_OF_TIME + timedelta(hours=1), open=False),
        dict(start_at=START_OF_TIME, end_at=END_OF_TIME, open=False, energy_wh=math.inf),
        dict(start_at=now - timedelta(hours=2), end_at=now - timedelta(hours=3), open=False, duration_s=-3600.0),
    ]
    for i, value in enumerate(_odd_floats()):
        rows.append(dict(start_at=now - timedelta(days=2, hours=i), end_at=now - timedelta(days=2, hours=i - 1),
                         open=False, duration_s=value, energy_wh=value, overrun_minutes=value))
    if not _sqlite():
        rows.append(dict(start_at=now - timedelta(days=3), end_at=now - timedelta(days=3) + timedelta(hours=1),
                         open=False, duration_s=math.nan, energy_wh=math.nan, overrun_minutes=math.nan))
    for i, kw in enumerate(rows):
        kw.setdefault("duration_s", 86400.0 * 365 * 9000)
        kw.setdefault("energy_wh", 1e308)
        kw.setdefault("overrun_minutes", 0.0)
        db.session.add(UsageSession(key=f"hostile-{i}", machine_id=machine.id, member_id=member.id, source="event",
                                    unbooked=True, job_file=HTML_JOB, badge="<b>" * 21, session_id="x" * 128,
                                    closed_by="timeout", kind="<i>odd</i>", counts_as_usage=i % 3 != 0, **kw))
        db.session.add(UsageSession(key=f"hostile-other-{i}", machine_id=others[0].id, member_id=None,
                                    source="status", unbooked=True, **kw))
    db.session.add(MaintenanceRule(machine_id=machine.id, task="<b>clean</b>", every_hours=math.inf,
                                   every_days=None, last_done_at=START_OF_TIME))
    db.session.add(MaintenanceRule(machine_id=machine.id, task="belts", every_hours=1e308, every_days=2**31 - 1,
                                   last_done_at=END_OF_TIME))
    db.session.add(MaintenanceRule(machine_id=machine.id, task="lens", every_hours=-1.0, every_days=-5,
                                   last_done_at=now))
    db.session.add(DeadLetter(topic="fablab/v1/machine/<script>x</script>/event" + "/x" * 200,
                              payload="<script>alert(1)</script>\u202e\ufffd" + "{" * 200_000,
                              reason=("<b>bad</b> " * 100)[:500], received_at=END_OF_TIME))
    db.session.add(DeadLetter(topic="t", payload="", reason="", received_at=START_OF_TIME))
    bridge = Bridge(bridge_id="b" * 128, password_hash="x", online=None, last_seen_at=END_OF_TIME,
                    created_at=START_OF_TIME)
    bridge.machines = [machine, *others]
    db.session.add(bridge)
    db.session.add(Bridge(bridge_id="bridge-old", password_hash="x", online=False, last_seen_at=START_OF_TIME))
    # Bookings at the far end of the calendar (past the last full hour of it, the +grace would overflow).
    booking = Booking(machine_id=machine.id, member_id=member.id, start_at=END_OF_TIME - timedelta(days=2),
                      end_at=END_OF_TIME - timedelta(days=1), status="confirmed", created_at=START_OF_TIME,
                      checked_in_at=END_OF_TIME, cancelled_at=START_OF_TIME, booked_end_at=END_OF_TIME)
    db.session.add(booking)
    db.session.commit()
    return {"member": member, "machine": machine, "booking": booking}


MEMBER_PAGES = ["/", "/machines/odd-printer", "/machines/odd-printer/status", "/machines/odd-0",
                "/machines/odd-1/status", "/usage", "/usage/machines/odd-printer", "/usage/machines/odd-0",
                "/usage.csv", "/bookings", "/machines/odd-printer?week=9999-12-31",
                "/machines/odd-printer?week=0001-01-01"]
STEWARD_PAGES = [*MEMBER_PAGES, "/usage/unbooked", "/usage/machines/odd-printer.csv"]
ADMIN_PAGES = [*STEWARD_PAGES, "/fairness", "/fairness?start=0001-01-02&end=9999-12-30", "/fairness/report",
               "/fairness/export/members.csv", "/admin/dead-letters", "/admin/bridges", "/admin/machines",
               "/kiosk/admin"]


def _read_all(client: FlaskClient, pages: list[str]) -> dict[str, str]:
    out = {}
    for path in pages:
        resp = client.get(path)
        assert resp.status_code < 500, f"{path} answered {resp.status_code}"
        out[path] = resp.get_data(as_text=True)
    return out


@pytest.mark.parametrize("email,pages", [("ada@example.org", MEMBER_PAGES),
                                         ("steward@example.org", STEWARD_PAGES),
                                         ("admin@example.org", ADMIN_PAGES)])
def test_every_page_survives_hostile_rows(client, hostile, email, pages) -> None:
    login(client, email)
    own = [f"/bookings/{hostile['booking'].id}", f"/admin/members/{hostile['member'].id}"]
    seen = _read_all(client, [*pages, *own])
    for path, body in seen.items():
        if not path.endswith(".csv"):  # a CSV download is not HTML: it carries the stored text as is
            assert "<script>alert" not in body, f"{path} shows stored HTML unescaped"
            assert not re.search(r"\b(nan|inf|infinity)\b", body, re.I), f"{path} shows a non-finite number"
    usage = seen["/usage/machines/odd-printer"]
    # where a time has no local time (or is no plausible lab time) its stored UTC value shows
    assert "9999-12-31 23:59 UTC" in usage and "0001-01-01 00:00 UTC" in usage
    assert "running" in usage and "Odd Printer" in seen["/"]  # the open session at the end of time
    if email == "ada@example.org":
        assert "Odd Printer" in seen["/usage"] and "9999-12-31 23:59 UTC" in seen["/usage"]
    if email == "admin@example.org":
        letters = seen["/admin/dead-letters"]
        assert "&lt;script&gt;alert(1)" in letters and "9999-12-31 23:59 UTC" in letters
        assert "b" * 128 in seen["/admin/bridges"] and "9999-12-31 23:59 UTC" in seen["/admin/bridges"]
        assert "Hours used" in seen["/fairness"]


def test_kiosk_board_survives_hostile_rows(client, hostile) -> None:
    _, token = kiosk_service.register_kiosk("front")
    db.session.commit()
    client.get(f"/kiosk/activate/{token}")
    for path in ("/kiosk/", "/kiosk/board"):
        resp = client.get(path)
        assert resp.status_code < 500, path
        assert "Odd Printer" in resp.get_data(as_text=True)


# --- the formatting functions themselves -------------------------------------------------------------------


def test_formatting_is_total(app_ctx) -> None:
    odd: list[Any] = [None, math.nan, math.inf, -math.inf, 1e308, -1e308, -1, 0, 10**400, "x", object(), True]
    for value in odd:
        for f in (fmt.hours, fmt.minutes, fmt.num, fmt.pct, fmt.localtime, fmt.sentence):
            assert isinstance(f(value), str)
    for value in (END_OF_TIME, START_OF_TIME, datetime.max, datetime.min, datetime(2026, 1, 1)):
        assert isinstance(fmt.localtime(value), str)
    assert fmt.localtime(END_OF_TIME) == "9999-12-31 23:59 UTC"
    assert fmt.localtime(datetime(2026, 6, 1, 10, 0, tzinfo=UTC), "%H:%M") == "12:00"
    assert fmt.hours(1.5) == "1 h 30 min" and fmt.hours(2) == "2 h" and fmt.hours(-0.5) == "−0 h 30 min"
    assert fmt.minutes(90) == "1 h 30 min" and fmt.minutes(5) == "5 min"
    assert fmt.num(1.26, 1) == "1.3" and fmt.pct(0.5) == "50 %" and fmt.pct(None) == "–"
    for f in (fmt.hours, fmt.minutes, fmt.num, fmt.pct):
        assert f(math.nan) == f(math.inf) == f(1e308) == "–"


def test_maintenance_rules_refuse_intervals_the_counters_cannot_add(client, hostile) -> None:
    from sqlalchemy import func, select

    from tests.conftest import csrf_token

    login(client, "steward@example.org")
    token = csrf_token(client, "/usage/machines/odd-printer")
    before = db.session.scalar(select(func.count()).select_from(MaintenanceRule))
    for hours, days in (("nan", ""), ("inf", ""), ("1e308", ""), ("", "99999999"), ("-1", "")):
        resp = client.post("/usage/machines/odd-printer/rules",
                           data={"csrf_token": token, "task": "Clean", "every_hours": hours, "every_days": days})
        assert resp.status_code == 302
    assert db.session.scalar(select(func.count()).select_from(MaintenanceRule)) == before
    page = client.get("/usage/machines/odd-printer").get_data(as_text=True)
    assert "positive interval" in page and "unknown" in page  # the stored odd rules: counters unknown
