"""The admin page of the audit log: newest first, paged, filtered by action, actor, target and lab-local days
(across a DST switch), the same list as CSV, and only for admins."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest

from fablab.domain import audit_actions as A
from fablab.extensions import db
from fablab.services import audit, audit_view
from tests.conftest import login

# Sunday 2026-03-29, Berlin springs forward at 02:00 CET → 03:00 CEST.
JUST_AFTER_MIDNIGHT = datetime(2026, 3, 28, 23, 30, tzinfo=UTC)  # 00:30 CET on the 29th
LAST_MINUTE = datetime(2026, 3, 29, 21, 59, tzinfo=UTC)  # 23:59 CEST on the 29th
NEXT_DAY = datetime(2026, 3, 29, 22, 0, tzinfo=UTC)  # 00:00 CEST on the 30th
DAY_BEFORE = datetime(2026, 3, 28, 22, 59, tzinfo=UTC)  # 23:59 CET on the 28th


@pytest.fixture
def log(app_ctx, make_member):
    admin = make_member("admin@example.org", role="admin", name="Ada Admin")
    stew = make_member("stew@example.org", role="steward", name="Stew Ward")
    bob = make_member("bob@example.org", name="=Bob")
    audit.record(admin, A.ROLE_CHANGED, target=bob, detail={"from": "member", "to": "steward"}, now=DAY_BEFORE)
    audit.record(stew, A.QUALIFICATION_GRANTED, target=bob, detail={"for": "every Laser"}, now=JUST_AFTER_MIDNIGHT)
    audit.record(admin, A.POLICY_CHANGED, target_type="machine", target_label="Laser 1",
                 detail={"max_minutes": {"from": 240, "to": 120}}, now=LAST_MINUTE)
    audit.record(None, A.BRIDGE_REGISTERED, target_type="bridge", target_label="bridge-a",
                 detail={"machines": ["laser-1"]}, now=NEXT_DAY)
    db.session.commit()
    return admin, stew, bob


def _rows(page: str) -> list[str]:
    return [chunk.split('"', 1)[0] for chunk in page.split('data-audit="')[1:]]


def test_newest_first_with_readable_detail(app, client, log) -> None:
    login(client, "admin@example.org")
    resp = client.get("/admin/audit")
    page = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert _rows(page) == [A.BRIDGE_REGISTERED, A.POLICY_CHANGED, A.QUALIFICATION_GRANTED, A.ROLE_CHANGED]
    assert "max_minutes: 240 → 120" in page and "from: member; to: steward" in page
    assert "2026-03-29 23:59" in page and "2026-03-29 00:30" in page  # lab time, both sides of the switch


def test_filters(app, client, log) -> None:
    admin, stew, bob = log
    login(client, "admin@example.org")

    def shown(**args: str) -> list[str]:
        resp = client.get("/admin/audit", query_string=args)
        assert resp.status_code == 200, resp.get_data(as_text=True)[:500]
        return _rows(resp.get_data(as_text=True))

    assert shown(action=A.POLICY_CHANGED) == [A.POLICY_CHANGED]
    assert shown(actor="stew") == [A.QUALIFICATION_GRANTED]
    assert shown(actor=f"#{admin.member_no}") == [A.POLICY_CHANGED, A.ROLE_CHANGED]
    assert shown(target=str(bob.member_no)) == [A.QUALIFICATION_GRANTED, A.ROLE_CHANGED]
    assert shown(target="bob", action=A.ROLE_CHANGED) == [A.ROLE_CHANGED]
    assert shown(target="100%") == [] and shown(target="_") == []  # LIKE wildcards are literal
    # The 29th of March in Berlin is 23 hours long: from 23:00 UTC on the 28th to 22:00 UTC on the 29th.
    assert shown(**{"from": "2026-03-29", "to": "2026-03-29"}) == [A.POLICY_CHANGED, A.QUALIFICATION_GRANTED]
    assert shown(**{"from": "2026-03-30"}) == [A.BRIDGE_REGISTERED]
    assert shown(to="2026-03-28") == [A.ROLE_CHANGED]


@pytest.mark.parametrize(("args", "words"), [
    ({"action": "nope"}, "is not an action this log records"),
    ({"from": "2026-13-01"}, "is not a date like"),
    ({"actor": "x" * 101}, "at most 100"),
])
def test_bad_filters_say_so_in_the_page(app, client, log, args, words) -> None:
    login(client, "admin@example.org")
    resp = client.get("/admin/audit", query_string=args)
    assert resp.status_code == 422
    page = resp.get_data(as_text=True)
    assert 'data-refusal="bad_filter"' in page and words in page
    assert client.get("/admin/audit.csv", query_string=args).status_code == 422


def test_swapped_days_are_put_in_order(app_ctx) -> None:
    f, problems = audit_view.parse_filter({"from": "2026-04-02", "to": "2026-04-01"})
    assert (f.start.isoformat(), f.end.isoformat()) == ("2026-04-01", "2026-04-02") and problems


def test_paging(app, client, make_member) -> None:
    admin = make_member("admin@example.org", role="admin")
    start = datetime(2026, 10, 24, 12, 0, tzinfo=UTC)
    for i in range(audit_view.PER_PAGE + 5):
        audit.record(admin, A.MEMBER_UPDATED, target_label=f"entry {i:02d}", now=start + timedelta(hours=i))
    db.session.commit()
    login(client, "admin@example.org")
    first = client.get("/admin/audit").get_data(as_text=True)
    assert len(_rows(first)) == audit_view.PER_PAGE and "entry 54" in first and "entry 04" not in first
    assert "Page 1 of 2" in first and 'rel="next"' in first
    second = client.get("/admin/audit", query_string={"page": "2"}).get_data(as_text=True)
    assert len(_rows(second)) == 5 and "entry 04" in second and "entry 00" in second
    assert client.get("/admin/audit", query_string={"page": "abc"}).status_code == 200


def test_csv_download_of_the_filtered_list(app, client, log) -> None:
    admin, stew, bob = log
    login(client, "admin@example.org")
    resp = client.get("/admin/audit.csv", query_string={"target": str(bob.member_no)})
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    assert "attachment" in resp.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(resp.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[0] == ["at (lab time)", "at (UTC)", "actor", "action", "action label", "target type", "target",
                       "detail"]
    assert [r[3] for r in rows[1:]] == [A.QUALIFICATION_GRANTED, A.ROLE_CHANGED]
    granted = rows[1]
    assert granted[0] == "2026-03-29T00:30:00+01:00" and granted[1] == "2026-03-28T23:30:00+00:00"
    assert granted[2] == f"Stew Ward (#{stew.member_no})" and granted[6] == f"'=Bob (#{bob.member_no})"
    assert granted[7] == "for: every Laser"


@pytest.mark.parametrize("role", ["member", "steward"])
def test_only_admins_see_the_log(app, client, make_member, role) -> None:
    make_member("x@example.org", role=role)
    login(client, "x@example.org")
    assert client.get("/admin/audit").status_code == 403
    assert client.get("/admin/audit.csv").status_code == 403
    home = client.get("/")
    assert home.status_code == 200 and 'href="/admin/audit"' not in home.get_data(as_text=True)


def test_admin_nav_links_to_the_log(app, client, make_member) -> None:
    make_member("admin@example.org", role="admin")
    login(client, "admin@example.org")
    assert '<a href="/admin/audit">Audit log</a>' in client.get("/admin/members").get_data(as_text=True)


def test_secrets_never_reach_the_detail(app_ctx, make_member) -> None:
    m = make_member()
    e = audit.record(m, A.MEMBER_UPDATED, target=m, detail={"badge_uid": "CAFE", "note": "ok",
                                                            "nested": {"token": "t0k3n", "kept": 1}})
    assert e.detail == '{"nested": {"kept": 1}, "note": "ok"}'
