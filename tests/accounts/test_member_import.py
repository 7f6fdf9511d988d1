"""Member import through the admin pages: preview before writing, all or nothing (or only the valid rows),
idempotent re-runs, the export's round trip, refusals of bad files, and who may do it."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from fablab.domain import audit_actions as A
from fablab.extensions import db
from fablab.models import Member, Qualification
from fablab.security import badge_digest
from fablab.services import machines as machine_service
from fablab.services import member_import
from fablab.services import members as member_service
from tests.accounts.test_audit_support import confirm, detail, entries, import_token, upload_csv
from tests.conftest import login

FILE = (b"email;name;member_no;badge_uid;role;qualifications\n"
        b"new.one@example.org;New One;;04A2B3C4;;\"laser_cutter:2027-06-30;3d_printer\"\n"
        b"New.Two@example.org;New Two;4321;;steward;\n"
        b"old@example.org;;;;steward;laser_cutter\n")


@pytest.fixture
def admin(make_member, make_machine, client):
    make_machine(type_slug="laser_cutter")
    make_machine(type_slug="3d_printer")
    a = make_member("admin@example.org", role="admin", name="Ada Admin")
    login(client, "admin@example.org")
    return a


def _members() -> dict[str, Member]:
    return {m.email: m for m in db.session.scalars(select(Member))}


def _quals(member: Member) -> dict[str, datetime | None]:
    rows = db.session.scalars(select(Qualification).where(Qualification.member_id == member.id))
    return {q.machine_type.slug: q.expires_at for q in rows if q.machine_type is not None}


def test_import_twice_second_run_changes_nothing(app, client, admin, make_member) -> None:
    old = make_member("old@example.org", name="Old Member")
    first = upload_csv(client, FILE)
    assert first.status_code == 200
    page = first.get_data(as_text=True)
    assert "2 to create · 1 to change · 0 unchanged · 0 problem(s)" in page
    assert 'data-change-row="4"' in page and "steward" in page
    assert "04A2B3C4" not in page  # the badge is never shown back
    assert set(_members()) == {"admin@example.org", "old@example.org"}, "the preview writes nothing"

    done = confirm(client, import_token(first))
    assert done.status_code == 302
    members = _members()
    one, two, old = members["new.one@example.org"], members["new.two@example.org"], members["old@example.org"]
    assert (one.name, one.role, two.member_no, two.role, old.role, old.name) == (
        "New One", "member", 4321, "steward", "steward", "Old Member")
    assert one.member_no == 4322  # the next free number after the file's own
    assert one.badge_hash == badge_digest(app.config["SECRET_KEY"], "04:a2:b3:c4")
    end = datetime(2027, 6, 30, 23, 59, tzinfo=app.config["TZ"]).astimezone(UTC)
    assert _quals(one) == {"laser_cutter": end, "3d_printer": None}
    assert _quals(old) == {"laser_cutter": None}
    imported = entries(A.MEMBER_IMPORTED)
    assert {e.target_id for e in imported} == {one.id, two.id, old.id}
    assert all(e.actor_id == admin.id for e in imported)
    assert {e.target_id for e in entries(A.ROLE_CHANGED)} == {old.id}
    assert "04A2B3C4" not in " ".join(e.detail for e in entries())
    one_detail = detail(next(e for e in imported if e.target_id == one.id))
    assert one_detail["created"] is True and one_detail["changes"]["badge card"] == {"from": "", "to": "set"}
    assert detail(next(e for e in imported if e.target_id == old.id))["changes"]["role"] == {
        "from": "member", "to": "steward"}
    count = len(entries())

    again = upload_csv(client, FILE)
    assert "0 to create · 0 to change · 3 unchanged · 0 problem(s)" in again.get_data(as_text=True)
    assert confirm(client, import_token(again)).status_code == 302
    assert len(_members()) == 4 and len(entries()) == count


def test_a_broken_row_imports_nothing_and_names_row_and_reason(app, client, admin) -> None:
    data = (b"email,name,role,qualifications\n"
            b"good@example.org,Good,,\n"
            b"bad@example.org,Bad,wizard,\n"
            b"worse@example.org,Worse,,welder:2027-01-01\n")
    resp = upload_csv(client, data)
    page = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "2 problem(s) in 2 row(s)" in page
    assert 'data-error-row="3"' in page and "“wizard” is not a role" in page
    assert 'data-error-row="4"' in page and "“welder” is not a machine type" in page
    token = import_token(resp)
    refused = confirm(client, token)
    assert refused.status_code == 422
    assert "nothing was imported" in refused.get_data(as_text=True)
    assert set(_members()) == {"admin@example.org"} and entries(A.MEMBER_IMPORTED) == []

    partial = confirm(client, token, only_valid=True)
    assert partial.status_code == 302
    assert set(_members()) == {"admin@example.org", "good@example.org"}
    assert len(entries(A.MEMBER_IMPORTED)) == 1
    # The file was used: confirming again is refused, nothing doubles.
    assert confirm(client, token, only_valid=True).status_code == 404


def test_preview_shows_changes_field_by_field(app, client, admin, make_member) -> None:
    m = make_member("kim@example.org", name="Kim Old")
    machine_service.grant(m, by=None, machine_type=_type("laser_cutter"),
                          expires_at=datetime(2026, 1, 31, 22, 59, tzinfo=UTC))
    db.session.commit()
    resp = upload_csv(client, f"email,name,member_no,badge_uid,qualifications\n"
                              f"kim@example.org,Kim New,{m.member_no},AABB,laser_cutter:2028-01-31\n".encode())
    page = resp.get_data(as_text=True)
    assert "0 to create · 1 to change" in page
    assert "<td>name</td><td>Kim Old</td><td>Kim New</td>" in page
    assert "<td>badge card</td><td>none</td><td>set</td>" in page
    assert "<td>qualification laser_cutter</td><td>until 2026-01-31</td><td>until 2028-01-31</td>" in page
    db.session.refresh(m)
    assert m.name == "Kim Old" and m.badge_hash is None


def _type(slug: str):
    return next(t for t in machine_service.machine_types() if t.slug == slug)


def test_database_conflicts_are_row_errors(app, client, admin, make_member) -> None:
    taken = make_member("taken@example.org", badge="CAFE01")
    make_member("other@example.org")
    resp = upload_csv(client, (f"email,name,member_no,badge_uid,role\n"
                               f"other@example.org,X,{taken.member_no},,\n"
                               f"y@example.org,Y,,ca:fe:01,\n"
                               f"z@example.org,,,,\n"
                               f"admin@example.org,,,,member\n").encode())
    page = resp.get_data(as_text=True)
    assert f"Member no. {taken.member_no} belongs to taken@example.org." in page
    assert f"This badge already belongs to member no. {taken.member_no}." in page
    assert "A new member needs a name." in page
    assert "You cannot remove your own admin role." in page
    assert "0 to create · 0 to change · 0 unchanged · 4 problem(s)" in page


def test_matched_by_member_number_when_the_email_is_new(app, client, admin, make_member) -> None:
    m = make_member("before@example.org", name="Sam")
    resp = upload_csv(client, f"email,member_no\nafter@example.org,{m.member_no}\n".encode())
    assert "<td>email</td><td>before@example.org</td><td>after@example.org</td>" in resp.get_data(as_text=True)
    assert confirm(client, import_token(resp)).status_code == 302
    db.session.refresh(m)
    assert m.email == "after@example.org" and db.session.scalar(select(func.count()).select_from(Member)) == 2


def test_export_round_trips_through_the_import(app, client, admin, make_member) -> None:
    tricky = make_member("tricky@example.org", name="=HYPERLINK(\"http://evil\")", badge="0102")
    plain = make_member("plain@example.org", name="Plain, Person", role="steward")
    machine_service.grant(tricky, by=admin, machine_type=_type("laser_cutter"),
                          expires_at=datetime(2027, 3, 28, 21, 59, tzinfo=UTC))  # 23:59 in Berlin (CEST)
    machine_service.grant(plain, by=admin, machine_type=_type("3d_printer"))
    db.session.commit()
    resp = client.get("/admin/members/export.csv")
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    text = resp.get_data(as_text=True)
    assert text.startswith("\ufeffemail,name,member_no,badge_uid,role,qualifications\r\n")
    assert f"tricky@example.org,\"'=HYPERLINK(\"\"http://evil\"\")\",{tricky.member_no},,member," \
           f"laser_cutter:2027-03-28\r\n" in text
    assert f'plain@example.org,"Plain, Person",{plain.member_no},,steward,3d_printer\r\n' in text
    assert "0102" not in text

    back = upload_csv(client, resp.get_data())
    assert "0 to create · 0 to change · 3 unchanged · 0 problem(s)" in back.get_data(as_text=True)
    before = len(entries())
    assert confirm(client, import_token(back)).status_code == 302
    db.session.refresh(tricky)
    assert tricky.name == "=HYPERLINK(\"http://evil\")" and tricky.badge_hash is not None
    assert len(entries()) == before


@pytest.mark.parametrize(("data", "filename", "words"), [
    (b"", "m.csv", "The file is empty"),
    ("email,name\nb@x.org,Bj\xf6rn\n".encode("latin-1"), "m.csv", "not UTF-8"),
    (b"PK\x03\x04\x14\x00\x06\x00", "members.xlsx", "spreadsheet file, not CSV"),
    (b"\x89PNG\r\n\x1a\n\x00\x00", "photo.csv", "binary data"),
    (b"email,phone\na@x.org,1\n", "m.csv", "Unknown column(s): phone"),
    (b"email\n" + b"a" * (2 * 1024 * 1024 + 10), "m.csv", "larger than 2 MB"),
])
def test_bad_files_are_refused_in_the_page(app, client, admin, data, filename, words) -> None:
    resp = upload_csv(client, data, filename)
    assert resp.status_code == 422
    page = resp.get_data(as_text=True)
    assert 'data-refusal="import_refused"' in page and words in page
    assert 'enctype="multipart/form-data"' in page  # the form is there to try again


def test_no_file_chosen(app, client, admin) -> None:
    from tests.conftest import csrf_token

    resp = client.post("/admin/members/import", data={"csrf_token": csrf_token(client, "/admin/members/import")})
    assert resp.status_code == 422 and "Choose a CSV file" in resp.get_data(as_text=True)


def test_a_request_over_the_server_limit_gets_the_page(app, client, admin) -> None:
    limit = app.config["MAX_CONTENT_LENGTH"]
    resp = upload_csv(client, b"email\n" + b"a" * limit)
    assert resp.status_code == 413 and "larger than 2 MB" in resp.get_data(as_text=True)


def test_another_admins_or_a_forged_token_finds_nothing(app, client, admin, make_member) -> None:
    token = import_token(upload_csv(client, b"email,name\nq@example.org,Q\n"))
    make_member("other@example.org", role="admin")
    other = app.test_client()
    login(other, "other@example.org")
    assert confirm(other, token).status_code == 404
    assert confirm(client, "..%2F..%2Fetc%2Fpasswd").status_code == 404
    assert confirm(client, "A" * 22).status_code == 404
    assert "q@example.org" not in _members()


@pytest.mark.parametrize("role", ["member", "steward"])
def test_only_admins_import_and_export(app, client, make_member, role) -> None:
    make_member("x@example.org", role=role)
    login(client, "x@example.org")
    assert client.get("/admin/members/import").status_code == 403
    assert client.get("/admin/members/export.csv").status_code == 403
    assert upload_csv(client, b"email,name\nq@example.org,Q\n").status_code in (400, 403)
    assert client.post("/admin/members/import/" + "A" * 22).status_code in (400, 403)


def test_members_page_links_to_import_and_export(app, client, admin) -> None:
    page = client.get("/admin/members").get_data(as_text=True)
    assert 'href="/admin/members/import"' in page and 'href="/admin/members/export.csv"' in page


def test_stale_uploads_are_removed(app_ctx, make_member) -> None:
    a = make_member("a@example.org", role="admin")
    now = datetime.now(UTC)
    old = member_import.stash(b"email\nx@y.org\n", a, now - timedelta(hours=3))
    path = member_import._stash_dir(a) / f"{old}.csv"
    os.utime(path, ((now - timedelta(hours=3)).timestamp(),) * 2)
    fresh = member_import.stash(b"email\nx@y.org\n", a, now)
    assert member_import.stashed(old, a) is None and member_import.stashed(fresh, a) is not None


def test_service_apply_is_all_or_nothing(app_ctx, make_member, make_machine) -> None:
    a = make_member("a@example.org", role="admin")
    data = b"email,name\nok@example.org,Ok\nbad,Bad\n"
    with pytest.raises(member_import.ImportRefused):
        member_import.apply(data, a)
    db.session.rollback()
    assert member_service.member_by_email("ok@example.org") is None
    done = member_import.apply(data, a, only_valid=True)
    db.session.commit()
    assert (done.created, done.skipped) == (1, 1)
    assert member_service.member_by_email("ok@example.org") is not None


def test_a_file_larger_than_one_write_chunk(app_ctx, make_member, make_machine) -> None:
    make_machine(type_slug="laser_cutter")
    a = make_member("a@example.org", role="admin")
    n = member_import.CHUNK + 20
    data = ("email,name,badge_uid,qualifications\n"
            + "".join(f"m{i}@example.org,M {i},B{i:05d},laser_cutter:2027-01-01\n" for i in range(n))).encode()
    done = member_import.apply(data, a)
    db.session.commit()
    assert done.created == n
    assert db.session.scalar(select(func.count()).select_from(Member)) == n + 1
    assert db.session.scalar(select(func.count()).select_from(Qualification)) == n
    assert len(entries(A.MEMBER_IMPORTED)) == n and len(entries(A.QUALIFICATION_GRANTED)) == n
    assert member_service.member_by_badge(f"B{n - 1:05d}").email == f"m{n - 1}@example.org"
    again = member_import.preview(data, a)
    assert len(again.of(member_import.UNCHANGED)) == n
