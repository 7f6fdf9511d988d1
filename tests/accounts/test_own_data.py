"""Download my data: the zip holds every kind of the member's data, and nothing of anybody else's."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import timedelta

from sqlalchemy import select

from fablab.extensions import db
from fablab.models import Booking
from fablab.models.accounts import AuditEntry, MemberIdentity
from fablab.models.designs import DesignFile
from fablab.models.inductions import InductionSession, InductionSignup
from fablab.models.notifications import Notice, OutboxMail
from fablab.models.scheduling import EffortTask, RequestWindow, SlotRequest, TaskClaim, TaskCompletion, WaitlistEntry
from fablab.models.types import utcnow
from fablab.models.usage import UsageSession
from fablab.services import account_deletion, audit, own_data
from fablab.services import designs as design_service
from fablab.services import machines as machine_service
from fablab.services import members as member_service
from tests.conftest import login

OTHER_NAME = "Zebediah Otherperson"
OTHER_EMAIL = "zebediah.other@example.org"
STL = (b"solid cube\nfacet normal 0 0 1\nouter loop\nvertex 0 0 0\nvertex 1 0 0\nvertex 0 1 0\n"
       b"endloop\nendfacet\nendsolid cube\n")


def _member_fk_columns() -> set[str]:
    found = set()
    for table in db.metadata.sorted_tables:
        for fk in table.foreign_keys:
            if fk.column.table.name == "members" and fk.column.name == "id":
                found.add(f"{table.name}.{fk.parent.name}")
    return found


def test_every_column_pointing_at_members_is_exported_or_skipped_with_a_reason(app_ctx) -> None:
    columns = _member_fk_columns()
    assert not set(own_data.COVERED) & set(own_data.SKIPPED)
    assert columns == set(own_data.COVERED) | set(own_data.SKIPPED), (
        "a table references members.id: export it in services/own_data.py or skip it there with a reason")
    assert all(reason.strip() for reason in own_data.SKIPPED.values())
    assert set(own_data.COVERED.values()) <= {p.filename for p in own_data.PARTS}
    assert columns == set(account_deletion.HANDLING), (
        "a table references members.id: say in services/account_deletion.py what deletion does with it")


def _lab(make_member, make_machine):
    """Me with something of every kind, and another member whose data touches mine."""
    now = utcnow()
    me = make_member(email="me.myself@example.org", name="Ada Exporter", pin="4321", badge="04AABBCC")
    other = make_member(email=OTHER_EMAIL, name=OTHER_NAME, role="steward")
    machine = make_machine("laser-a", name="Laser Alpha")
    machine_service.grant(me, by=other, machine=machine, note="passed the safety talk")
    past = Booking(machine_id=machine.id, member_id=me.id, start_at=now - timedelta(days=3),
                   end_at=now - timedelta(days=3) + timedelta(hours=2), status="completed", note="engraving")
    cancelled = Booking(machine_id=machine.id, member_id=me.id, start_at=now - timedelta(days=2),
                        end_at=now - timedelta(days=2) + timedelta(hours=1), status="cancelled",
                        cancelled_by_id=other.id, cancel_reason="maintenance")
    theirs = Booking(machine_id=machine.id, member_id=other.id, start_at=now - timedelta(days=1),
                     end_at=now - timedelta(days=1) + timedelta(hours=1), status="completed", note="their secret job")
    db.session.add_all([past, cancelled, theirs])
    db.session.flush()
    db.session.add(UsageSession(key="u1", machine_id=machine.id, member_id=me.id, booking_id=past.id,
                                start_at=past.start_at, end_at=past.end_at, duration_s=7200, source="event",
                                open=False, badge="f" * 64, badge_last4="BBCC"))
    db.session.add(UsageSession(key="u2", machine_id=machine.id, member_id=other.id, start_at=theirs.start_at,
                                end_at=theirs.end_at, duration_s=3600, source="event", open=False))
    db.session.add(Notice(member_id=me.id, kind="booking_cancelled_by_staff", created_at=now,
                          params={"machine": "Laser Alpha", "by": OTHER_NAME, "reason": "maintenance"}))
    db.session.add(Notice(member_id=other.id, kind="booking_cancelled", created_at=now, params={"x": 1}))
    db.session.add(OutboxMail(member_id=me.id, kind="booking_cancelled_by_staff", to_address=me.email,
                              message_id="<m1@test>", status="sent", sent_at=now))
    db.session.add(OutboxMail(member_id=other.id, kind="x", to_address=OTHER_EMAIL, message_id="<m2@test>"))
    db.session.add(WaitlistEntry(member_id=me.id, machine_id=machine.id, start_at=now + timedelta(days=1),
                                 end_at=now + timedelta(days=1, hours=1), status="active", joined_at=now))
    window = RequestWindow(machine_id=machine.id, period_start=now + timedelta(days=8),
                           period_end=now + timedelta(days=15),
                           opens_at=now - timedelta(days=1), closes_at=now + timedelta(days=2), commitment="0" * 64,
                           secret_seed="1" * 64, created_by_id=other.id)
    db.session.add(window)
    db.session.flush()
    db.session.add(SlotRequest(window_id=window.id, member_id=me.id, machine_id=machine.id,
                               start_at=now + timedelta(days=9), end_at=now + timedelta(days=9, hours=2)))
    session = InductionSession(machine_type_id=machine.type_id, trainer_id=other.id, start_at=now + timedelta(days=4),
                               end_at=now + timedelta(days=4, hours=1), capacity=4)
    db.session.add(session)
    db.session.flush()
    db.session.add(InductionSignup(session_id=session.id, member_id=me.id, status="confirmed"))
    task = EffortTask(title="Sweep the workshop", kind="cleaning", completed_at=now, confirmed_at=now,
                      confirmed_by_id=other.id)
    db.session.add(task)
    db.session.flush()
    db.session.add_all([TaskClaim(task_id=task.id, member_id=me.id, claimed_at=now),
                        TaskCompletion(task_id=task.id, member_id=me.id, credited_hours=1.5, completed_at=now)])
    member_service.create_api_token(me, "my calendar script", scope="read")
    member_service.create_api_token(other, "their token")
    db.session.add(MemberIdentity(member_id=me.id, provider="oidc:https://id.example.org", subject="sub-me",
                                  email=me.email))
    audit.record(other, "qualification.granted", target=me, detail={"machine": "Laser Alpha"})
    audit.record(me, "member.updated", target=other)  # an action on someone else: not mine to export
    design = design_service.create_design(me, title="Cable clip", licence="CC-BY-4.0",
                                          files=[design_service.Upload("../../clip.stl", io.BytesIO(STL))])
    db.session.commit()
    return me, other, design


def test_zip_has_every_kind_of_my_data_and_nothing_of_anybody_else(client, make_member, make_machine) -> None:
    me, other, design = _lab(make_member, make_machine)
    my_hashes = [me.password_hash, me.pin_hash, me.badge_hash]
    other_pseudonym = other.pseudonym
    # A file row whose key is not a stored file's (a corrupt row): listed as missing, never read from disk.
    version = design.versions[0]
    db.session.add(DesignFile(version_id=version.id, name="evil.txt", storage_key="../../../../etc/passwd",
                              ext=".txt", kind="text", mime="text/plain", size=3, sha256="0" * 64))
    db.session.commit()
    assert login(client, "me.myself@example.org").status_code == 302
    resp = client.get("/privacy/my-data.zip", buffered=True)
    assert resp.status_code == 200 and resp.mimetype == "application/zip"
    assert "attachment" in resp.headers["Content-Disposition"]
    raw = resp.get_data()
    zf = zipfile.ZipFile(io.BytesIO(raw))
    names = set(zf.namelist())
    assert {p.filename for p in own_data.PARTS} | {"README.txt"} <= names
    readme = zf.read("README.txt").decode()
    assert all(p.filename in readme for p in own_data.PARTS)
    assert "etc_passwd" not in " ".join(names) and "evil.txt" in readme  # missing, said so

    data = {n: json.loads(zf.read(n)) for n in names if n.endswith(".json")}
    profile = data["profile.json"][0]
    assert (profile["name"], profile["email"]) == ("Ada Exporter", "me.myself@example.org")
    assert profile["password_set"] and profile["kiosk_pin_set"] and profile["badge_registered"]
    assert [(b["machine"], b["status"]) for b in data["bookings.json"] if "status" in b and "series" not in b] == [
        ("Laser Alpha", "completed"), ("Laser Alpha", "cancelled")]
    assert data["bookings.json"][1]["cancelled_by"] == other_pseudonym
    assert data["usage.json"][0]["duration_s"] == 7200 and "badge" not in data["usage.json"][0]
    assert data["qualifications.json"][0]["granted_by"] == other_pseudonym
    assert data["notices.json"][0]["details"] == {"machine": "Laser Alpha", "reason": "maintenance"}
    assert data["mails.json"][0]["to"] == "me.myself@example.org"
    assert data["waitlist.json"][0]["status"] == "active"
    assert data["request_windows.json"][0]["status"] == "pending"
    assert data["inductions.json"][0]["trainer"] == other_pseudonym
    assert {r.get("credited_hours") for r in data["shared_effort.json"]} >= {1.5}
    assert [t["name"] for t in data["api_tokens.json"]] == ["my calendar script"]
    assert data["sessions.json"] and data["external_identities.json"][0]["provider"].startswith("oidc:")
    # The grant above (audited by machines.grant) and the entry recorded by hand; never the action on `other`.
    assert [(a["action"], a["by"]) for a in data["audit_log.json"]] == [("qualification.granted", other_pseudonym)] * 2
    (d,) = [x for x in data["designs.json"] if "id" in x]
    (f,) = d["versions"][0]["files"][:1]
    assert f["name"] == "clip.stl" and zf.read(f["in_zip"]) == STL
    assert f["in_zip"].startswith(f"designs/{design.id}-") and ".." not in f["in_zip"]

    # Nothing of the other member: not their name, address, bookings, tokens; no secret hashes of mine.
    for needle in [OTHER_NAME, OTHER_EMAIL, "their secret job", "their token", *my_hashes]:
        for n in names:
            assert needle.encode() not in zf.read(n), (needle, n)


def test_download_needs_sign_in_and_shows_only_the_signed_in_member(client, make_member) -> None:
    resp = client.get("/privacy/my-data.zip", buffered=True)
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]
    make_member(email="first@example.org", name="First Person")
    make_member(email="second@example.org", name="Second Person")
    login(client, "second@example.org")
    page = client.get("/account").get_data(as_text=True)
    assert page.count('id="your-data"') == 1 and "<title>My account" in page
    assert "/privacy/my-data.zip" in page and "/privacy/#delete" in page
    zf = zipfile.ZipFile(io.BytesIO(client.get("/privacy/my-data.zip", buffered=True).get_data()))
    assert json.loads(zf.read("profile.json"))[0]["email"] == "second@example.org"
    assert b"First Person" not in b"".join(zf.read(n) for n in zf.namelist())


def test_export_of_a_member_with_nothing_is_valid(app_ctx, make_member) -> None:
    me = make_member()
    out = own_data.export_zip(me, utcnow())
    try:
        zf = zipfile.ZipFile(out)
        assert json.loads(zf.read("bookings.json")) == [] and zf.testzip() is None
    finally:
        out.close()
    assert db.session.scalars(select(AuditEntry)).all() == []  # reading one's data is not a staff action
