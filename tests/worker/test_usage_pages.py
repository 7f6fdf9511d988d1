from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import select

from fablab.extensions import db
from fablab.models.usage import DeadLetter, MaintenanceRule
from fablab.services.members import create_api_token
from fablab.worker.ingest import Incoming, Ingestor
from tests.conftest import csrf_token, login
from tests.worker.conftest import t

pytestmark = pytest.mark.dates  # runs once per frozen clock (tests/support/clock.py)


def _use(app, event, badge=None):
    from devices import events as ev

    kw = {"badge": ev.Badge(tech="em4100", uid=badge)} if badge else {}
    Ingestor(app).process([event("printer-1", "session_started", t(-120), **kw),
                           event("printer-1", "session_ended", t(-60))], now=t(0))


def test_member_sees_own_usage_and_csv(app, client, lab, event) -> None:
    _use(app, event, badge="04A1B2C3")
    login(client, "ada@example.org")
    page = client.get("/usage").get_data(as_text=True)
    assert "Printer One" in page and "you" in page and "unbooked" in page
    resp = client.get("/usage.csv")
    rows = list(csv.DictReader(io.StringIO(resp.get_data(as_text=True))))
    assert len(rows) == 1 and rows[0]["machine"] == "printer-1" and rows[0]["hours"] == "1.000"
    assert "attachment" in resp.headers["Content-Disposition"]


def test_machine_usage_and_maintenance_rule(app, client, lab, event, make_member) -> None:
    _use(app, event)
    make_member("s@example.org", role="steward")
    login(client, "s@example.org")
    token = csrf_token(client, "/usage/machines/printer-1")
    resp = client.post("/usage/machines/printer-1/rules", data={"csrf_token": token, "task": "Clean the bed",
                                                               "every_hours": "0.5"})
    assert resp.status_code == 302
    db.session.commit()
    rule = db.session.scalar(select(MaintenanceRule))
    # the rule counts use after it was made; backdate it so the hour of use above is "since service"
    rule.last_done_at = t(-180)
    db.session.commit()
    page = client.get("/usage/machines/printer-1").get_data(as_text=True)
    assert "Clean the bed" in page and "due" in page
    from fablab.models import Machine
    from fablab.models.scheduling import EffortTask
    from fablab.services import usage as usage_service

    printer = db.session.scalar(select(Machine).where(Machine.slug == "printer-1"))
    # a stored rule the counters cannot compute never holds back the others
    db.session.add(MaintenanceRule(machine_id=printer.id, task="Broken rule", every_days=10**6, last_done_at=t(-1)))
    db.session.commit()
    raised = usage_service.raise_due_maintenance(t(0))
    assert [r.id for r in raised] == [rule.id]
    assert usage_service.raise_due_maintenance(t(1)) == []  # raised once until done
    task = db.session.scalar(select(EffortTask).where(EffortTask.kind == "maintenance"))
    assert task.description.startswith("Due every 0.5 h of use: 1.0 h since it was last done")
    tasks = client.get("/tasks").get_data(as_text=True)
    assert "Clean the bed" in tasks


def test_unbooked_page_is_for_stewards(client, lab, make_member) -> None:
    login(client, "ada@example.org")
    assert client.get("/usage/unbooked").status_code == 403


def test_dead_letters_page(app, client, lab, make_member) -> None:
    Ingestor(app).process([Incoming("fablab/v1/machine/printer-1/event", b"nope")])
    make_member("root@example.org", role="admin")
    login(client, "root@example.org")
    page = client.get("/admin/dead-letters").get_data(as_text=True)
    assert "invalid JSON" in page and "nope" in page
    dl = db.session.scalar(select(DeadLetter))
    token = csrf_token(client, "/admin/dead-letters")
    client.post("/admin/dead-letters", data={"csrf_token": token, "id": str(dl.id)})
    assert "None to review" in client.get("/admin/dead-letters").get_data(as_text=True)


def test_usage_api(app, client, lab, event) -> None:
    _use(app, event, badge="04A1B2C3")
    own = create_api_token(lab["ada"])
    other = create_api_token(lab["bo"])
    db.session.commit()
    mine = client.get("/api/v1/usage", headers={"Authorization": f"Bearer {own}"}).json["sessions"]
    assert len(mine) == 1 and mine[0]["member_id"] == lab["ada"].id and mine[0]["hours"] == 1.0
    theirs = client.get("/api/v1/usage?machine=printer-1", headers={"Authorization": f"Bearer {other}"}).json
    assert theirs["sessions"] == []  # a member sees only their own use
    assert client.get("/api/v1/usage?machine=nope", headers={"Authorization": f"Bearer {own}"}).status_code == 404


def test_admin_registers_a_bridge(client, lab, make_member) -> None:
    from fablab.models.usage import Bridge

    make_member("root@example.org", role="admin")
    login(client, "root@example.org")
    token = csrf_token(client, "/admin/bridges")
    page = client.post("/admin/bridges", data={"csrf_token": token, "bridge_id": "bridge-x",
                                               "machines": ["printer-1", "laser-1"]}).get_data(as_text=True)
    assert 'username = "bridge-x"' in page and "password = " in page
    bridge = db.session.scalar(select(Bridge).where(Bridge.bridge_id == "bridge-x"))
    assert sorted(m.slug for m in bridge.machines) == ["laser-1", "printer-1"]
    assert bridge.password_hash.startswith("$7$")
    bad = client.post("/admin/bridges", data={"csrf_token": token, "bridge_id": "bad id!", "machines": ["printer-1"]})
    assert "invalid id" in bad.get_data(as_text=True)


def test_usage_csv_keeps_a_reported_file_name_from_becoming_a_formula(app, client, lab, event) -> None:
    from fablab.models.usage import UsageSession

    _use(app, event, badge="04A1B2C3")  # Ada's badge: the session is hers
    # The job's file name comes from the machine's firmware, so whoever named the file chose it.
    row = db.session.scalar(select(UsageSession))
    row.job_file = '=HYPERLINK("http://evil.example/","open")'
    db.session.commit()
    login(client, "ada@example.org")
    rows = list(csv.DictReader(io.StringIO(client.get("/usage.csv").get_data(as_text=True))))
    assert rows[0]["job_file"] == "'" + '=HYPERLINK("http://evil.example/","open")'
    assert rows[0]["hours"] == "1.000"  # figures stay figures
