from __future__ import annotations

from sqlalchemy import select

from fablab.extensions import db
from fablab.models import Machine, Member, Qualification
from tests.conftest import csrf_token, login


def test_admin_creates_and_edits_a_machine(client, make_member, make_machine) -> None:
    make_member("root@example.org", role="admin")
    existing = make_machine("laser-1", type_slug="laser_cutter")
    login(client, "root@example.org")
    token = csrf_token(client, "/admin/machines/new")
    resp = client.post("/admin/machines/new", data={
        "csrf_token": token, "name": "Laser Two", "slug": "laser-2", "type_id": str(existing.type_id),
        "location": "Laser room", "description": "", "status": "available", "qualification_scope": "machine"})
    assert resp.status_code == 302
    machine = db.session.scalar(select(Machine).where(Machine.slug == "laser-2"))
    assert machine is not None and machine.qualification_scope == "machine"

    token = csrf_token(client, "/admin/machines/laser-2/edit")
    resp = client.post("/admin/machines/laser-2/edit", data={
        "csrf_token": token, "name": "Laser Two", "slug": "laser-1", "type_id": str(existing.type_id),
        "status": "out_of_order", "qualification_scope": "machine"})
    assert resp.status_code == 422
    assert "Another machine already uses this short name." in resp.get_data(as_text=True)
    assert client.get("/admin/machines/nope/edit").status_code == 404


def test_steward_grants_qualification_with_expiry(client, make_member, make_machine) -> None:
    make_member("s@example.org", role="steward")
    member = make_member("ada@example.org")
    machine = make_machine("laser-1")
    login(client, "s@example.org")
    page = f"/admin/members/{member.id}"
    token = csrf_token(client, page)
    resp = client.post(f"{page}/qualifications", data={
        "csrf_token": token, "grant-csrf_token": token, "grant-scope": f"type:{machine.type_id}",
        "grant-expires": "2030-01-31", "grant-note": "induction done"})
    assert resp.status_code == 302
    db.session.expire_all()
    qual = db.session.scalar(select(Qualification).where(Qualification.member_id == member.id))
    assert qual is not None and qual.expires_at is not None and qual.expires_at.year == 2030
    steward = db.session.scalar(select(Member).where(Member.email == "s@example.org"))
    assert qual.granted_by_id == steward.id
    # The steward may not change the member's account itself.
    token = csrf_token(client, page)
    resp = client.post(page, data={"csrf_token": token, "name": "X", "email": "x@example.org", "role": "admin",
                                   "share": "1.0"})
    assert resp.status_code == 403


def test_admin_sets_badge_and_pin_stored_hashed(client, make_member) -> None:
    make_member("root@example.org", role="admin")
    member = make_member("ada@example.org")
    login(client, "root@example.org")
    page = f"/admin/members/{member.id}"
    token = csrf_token(client, page)
    resp = client.post(page, data={"csrf_token": token, "name": "Ada", "email": "ada@example.org",
                                   "role": "member", "badge_uid": "04A1B2C3", "pin": "4711", "share": "1.0"})
    assert resp.status_code == 302
    db.session.expire_all()
    m = db.session.get(Member, member.id)
    assert m.badge_hash and "04A1B2C3" not in m.badge_hash
    assert m.pin_hash and m.pin_hash.startswith("$argon2")
    from fablab.services.members import check_pin, member_by_badge

    assert member_by_badge("04:a1:b2:c3").id == m.id  # readers format UIDs differently
    assert check_pin(m, "4711") and not check_pin(m, "4712")
