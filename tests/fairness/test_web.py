"""The review page, its htmx partial, the printable report, CSV exports and the privacy rules."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta

import pytest

from fablab.extensions import db
from fablab.models.types import utcnow
from fablab.services import fairness as svc
from tests.conftest import ROOT, login
from tests.fairness.conftest import book, closed_window, unmet_request

pytestmark = pytest.mark.dates  # runs once per frozen clock (tests/support/clock.py)


@pytest.fixture
def lab(machine, members, make_member):
    """Last week: three members used the laser, one wish was not met; plus an admin."""
    laser = machine("laser")
    a, b, c = members(laser, 3)
    admin = make_member(role="admin", name="Ada Admin")
    a.name, b.name, c.name = "Alice Heavy", "=HYPERLINK(\"http://x\")", "Carl Light"
    now = utcnow()
    day = (now - timedelta(days=3)).replace(hour=17, minute=0, second=0, microsecond=0)
    book(a, laser, day - timedelta(days=1), 3)
    book(b, laser, day, 2)
    book(c, laser, day - timedelta(days=2), 1)
    w = closed_window(laser, start=day - timedelta(days=3))
    unmet_request(w, c, day, 2)
    db.session.commit()
    return laser, (a, b, c), admin


def test_admin_sees_names_charts_and_tables(client, lab) -> None:
    _, (a, b, c), admin = lab
    login(client, admin.email)
    resp = client.get("/fairness")
    assert resp.status_code == 200
    page = resp.get_data(as_text=True)
    assert "Alice Heavy" in page and "Carl Light" in page
    assert "=HYPERLINK(&#34;http://x&#34;)" in page or "=HYPERLINK(&quot;http://x&quot;)" in page
    assert page.count("<svg") == 4 and 'role="img"' in page and "<title" in page
    assert "a second laser cutter would have met 100 %".capitalize() in page
    for name in svc.TABLES:
        if name != "summary":
            assert f'id="table-{name}"' in page
    assert "<html" in page


def test_htmx_filter_returns_the_partial(client, lab) -> None:
    _, _, admin = lab
    login(client, admin.email)
    resp = client.get("/fairness?machine=laser", headers={"HX-Request": "true"})
    page = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "<html" not in page and 'id="review"' in page
    assert client.get("/fairness?machine=nope").status_code == 200  # an unknown choice: a form error
    bad = client.get("/fairness?start=2026-05-02&end=2026-05-01").get_data(as_text=True)
    assert "comes before" in bad


def test_members_get_403_unless_the_review_is_public(app, client, lab) -> None:
    _, (a, b, c), _ = lab
    assert client.get("/fairness").status_code == 302  # anonymous: to the login page
    login(client, c.email)
    assert client.get("/fairness").status_code == 403
    assert client.get("/fairness/export/members.csv").status_code == 403
    assert client.get("/fairness/report").status_code == 403


def test_public_review_is_pseudonymous_and_shows_your_position(app, client, lab, monkeypatch) -> None:
    _, (a, b, c), _ = lab
    monkeypatch.setitem(app.config, "FABLAB_REVIEW_PUBLIC", True)
    login(client, c.email)
    page = client.get("/fairness").get_data(as_text=True).split('id="review"')[1]  # the top bar names the viewer
    assert "Alice Heavy" not in page and "Carl Light" not in page and "HYPERLINK" not in page
    assert a.pseudonym in page and c.pseudonym in page
    assert "Your position" in page
    mine = re.search(r'<tr class="you"[^>]*>(.*?)</tr>', page, re.S)
    assert mine and c.pseudonym in mine.group(1) and "you" in mine.group(1)
    rows = list(csv.reader(io.StringIO(client.get("/fairness/export/members.csv").get_data(as_text=True))))
    assert {r[1] for r in rows[1:]} == {a.pseudonym, b.pseudonym, c.pseudonym}
    assert [r[2] for r in rows[1:] if r[1] == c.pseudonym] == ["yes"]
    monkeypatch.setitem(app.config, "FABLAB_REVIEW_SHOW_NAMES", True)
    assert "Alice Heavy" in client.get("/fairness").get_data(as_text=True)


def test_every_table_exports_as_csv(client, lab) -> None:
    _, (a, b, c), admin = lab
    login(client, admin.email)
    for name in svc.TABLES:
        resp = client.get(f"/fairness/export/{name}.csv?machine=laser")
        assert resp.status_code == 200 and resp.mimetype == "text/csv", name
        assert "attachment" in resp.headers["Content-Disposition"]
        rows = list(csv.reader(io.StringIO(resp.get_data(as_text=True))))
        assert rows[0] == svc.tables(_any_review())[name][0], name
        assert len(rows) >= (1 if name == "lottery" else 2) and len({len(r) for r in rows}) == 1, name
    members = list(csv.DictReader(io.StringIO(client.get("/fairness/export/members.csv").get_data(as_text=True))))
    by_name = {r["member"]: r for r in members}
    assert float(by_name["Alice Heavy"]["hours used"]) == 3
    assert by_name["Carl Light"]["hours requested"] == "3.0" and by_name["Carl Light"]["satisfaction"] == "0.333"
    assert "'=HYPERLINK(\"http://x\")" in by_name  # a formula-like name is defused
    assert client.get("/fairness/export/nope.csv").status_code == 404


def _any_review() -> svc.Review:
    return svc.build_review(svc.ReviewQuery.default(utcnow()), svc.Viewer(None, False), utcnow())


def test_printable_report(client, lab) -> None:
    _, _, admin = lab
    login(client, admin.email)
    start = (datetime.now(UTC) - timedelta(days=10)).date().isoformat()
    resp = client.get(f"/fairness/report?start={start}")
    page = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "fairness report" in page and "data-print" in page
    assert "no-print" in page and page.count("<svg") == 4 and 'id="table-summary"' in page
    css = (ROOT / "static" / "css" / "app.css").read_text()
    assert "=== fairness review" in css and "@media print" in css.split("=== fairness review")[1]
