"""Each staff action writes its audit entry in the same transaction, done here through the web pages, the
API and the command line as staff would: who, on what, and the detail (never a secret)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from fablab.domain import audit_actions as A
from fablab.extensions import db
from fablab.models import Booking, KioskDevice, Machine, Member, Qualification
from fablab.services import bookings as booking_service
from fablab.services import machines as machine_service
from fablab.services import members as member_service
from tests.accounts.test_audit_support import detail, entries
from tests.conftest import csrf_token, login

ALL_DAY = {d: [["00:00", "24:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
RULES: dict[str, Any] = {"slot_minutes": 30, "min_minutes": 30, "max_minutes": 240, "opening_hours": ALL_DAY,
                         "horizon_days": 14, "buffer_minutes": 0, "checkin_grace_minutes": 15,
                         "max_hours_per_day": None, "max_hours_per_week": None, "max_future_bookings": None,
                         "qualification_required": False}


@pytest.fixture
def admin(make_member, client) -> Member:
    a = make_member("admin@example.org", role="admin", name="Ada Admin")
    login(client, "admin@example.org")
    return a


@pytest.fixture
def laser(make_machine) -> Machine:
    return make_machine("laser-1", policy=dict(RULES))


def _one(action: str) -> Any:
    found = entries(action)
    assert len(found) == 1, [(e.action, e.detail) for e in entries()]
    return found[0]


def test_qualification_granted_and_revoked_on_the_member_page(app, client, admin, make_member, laser) -> None:
    bob = make_member("bob@example.org", name="Bob")
    url = f"/admin/members/{bob.id}"
    token = csrf_token(client, url)
    resp = client.post(f"{url}/qualifications", data={"csrf_token": token, "grant-csrf_token": token,
                                                      "grant-scope": f"type:{laser.type_id}",
                                                      "grant-expires": "2030-01-31", "grant-note": "induction"})
    assert resp.status_code == 302
    e = _one(A.QUALIFICATION_GRANTED)
    assert (e.actor_id, e.target_type, e.target_id) == (admin.id, "member", bob.id)
    assert e.target_label == f"Bob (#{bob.member_no})" and e.actor_label == f"Ada Admin (#{admin.member_no})"
    assert detail(e) == {"for": "every Laser Cutter", "expires": "2030-01-31T22:59:00+00:00", "renewed": False,
                         "note": "induction"}
    qual = db.session.scalar(select(Qualification).where(Qualification.member_id == bob.id))
    assert client.post(f"/admin/qualifications/{qual.id}/revoke", data={"csrf_token": token}).status_code == 302
    e = _one(A.QUALIFICATION_REVOKED)
    assert (e.actor_id, e.target_id) == (admin.id, bob.id) and detail(e)["for"] == "every Laser Cutter"
    assert db.session.scalar(select(Qualification).where(Qualification.member_id == bob.id)) is None


def test_member_created_and_role_changed_by_the_admin(app, client, admin) -> None:
    token = csrf_token(client, "/admin/members/new")
    resp = client.post("/admin/members/new", data={"csrf_token": token, "name": "Cleo", "email": "cleo@example.org",
                                                   "role": "member", "share": "1.0", "badge_uid": "DEADBEEF",
                                                   "pin": "4711", "password": "a-long-password-1"})
    assert resp.status_code == 302
    cleo = member_service.member_by_email("cleo@example.org")
    e = _one(A.MEMBER_CREATED)
    assert (e.actor_id, e.target_id, detail(e)) == (admin.id, cleo.id, {"role": "member"})
    form = {"csrf_token": token, "name": "Cleo", "email": "cleo@example.org", "role": "steward", "share": "1.0"}
    assert client.post(f"/admin/members/{cleo.id}", data=form).status_code == 302
    e = _one(A.ROLE_CHANGED)
    assert (e.actor_id, e.target_id, detail(e)) == (admin.id, cleo.id, {"from": "member", "to": "steward"})
    assert client.post(f"/admin/members/{cleo.id}", data=form).status_code == 302
    assert len(entries(A.ROLE_CHANGED)) == 1, "saving without a role change records none"
    everything = " ".join(x.detail for x in entries())
    assert "DEADBEEF" not in everything and "4711" not in everything and "a-long-password" not in everything


def _booking(member: Member, machine: Machine, hours: int = 3) -> Booking:
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=hours)
    b = booking_service.create_booking(member, machine, start, start + timedelta(hours=1))
    db.session.commit()
    return b


def test_staff_cancelling_someone_elses_booking_on_the_web(app, client, make_member, laser) -> None:
    dana = make_member("dana@example.org", name="Dana")
    steward = make_member("stew@example.org", role="steward", name="Stew")
    own = _booking(steward, laser, hours=6)
    b = _booking(dana, laser)
    login(client, "stew@example.org")
    token = csrf_token(client, f"/bookings/{b.id}")
    resp = client.post(f"/bookings/{b.id}/cancel", data={"csrf_token": token, "reason": "machine broken"})
    assert resp.status_code == 302
    e = _one(A.BOOKING_CANCELLED_FOR)
    assert (e.actor_id, e.target_id) == (steward.id, dana.id)
    assert detail(e)["booking"] == b.id and detail(e)["reason"] == "machine broken"
    assert detail(e)["machine"] == "laser-1" and detail(e)["status"] == "cancelled"
    # Cancelling one's own booking is not a staff action.
    assert client.post(f"/bookings/{own.id}/cancel", data={"csrf_token": token}).status_code == 302
    assert len(entries(A.BOOKING_CANCELLED_FOR)) == 1


def test_staff_cancelling_someone_elses_booking_through_the_api(app, client, make_member, laser) -> None:
    dana = make_member("dana@example.org")
    admin = make_member("api-admin@example.org", role="admin")
    b = _booking(dana, laser)
    token = member_service.create_api_token(admin)
    db.session.commit()
    resp = client.delete(f"/api/v1/bookings/{b.id}?reason=double+booked", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    e = _one(A.BOOKING_CANCELLED_FOR)
    assert (e.actor_id, e.target_id, detail(e)["reason"]) == (admin.id, dana.id, "double booked")
    assert token not in e.detail


def test_a_maintenance_block_that_cancels_bookings_records_each(app, client, make_member, laser) -> None:
    dana = make_member("dana@example.org")
    steward = make_member("stew@example.org", role="steward")
    b = _booking(dana, laser)
    booking_service.create_block(laser, steward, b.start_at, b.end_at, "new tube")
    e = _one(A.BOOKING_CANCELLED_FOR)
    assert (e.actor_id, e.target_id, detail(e)["reason"]) == (steward.id, dana.id, "Maintenance: new tube")


def test_policy_change_records_the_changed_fields(app, client, admin, laser) -> None:
    token = csrf_token(client, "/admin/machines/laser-1/policy")
    data = {"csrf_token": token, "slot_minutes": "30", "min_minutes": "30", "max_minutes": "120",
            "horizon_days": "14", "buffer_minutes": "0", "checkin_grace_minutes": "15", "max_hours_per_day": "2",
            "max_hours_per_week": "", "max_future_bookings": "", "mode": "open",
            **{d: "00:00-24:00" for d in ALL_DAY}}
    assert client.post("/admin/machines/laser-1/policy", data=data).status_code == 302
    e = _one(A.POLICY_CHANGED)
    assert (e.actor_id, e.target_type, e.target_id, e.target_label) == (admin.id, "machine", laser.id, "Laser-1")
    assert detail(e) == {"max_minutes": {"from": 240, "to": 120}, "max_hours_per_day": {"from": None, "to": 2.0}}
    assert client.post("/admin/machines/laser-1/policy", data=data).status_code == 302
    assert len(entries(A.POLICY_CHANGED)) == 1, "saving the same rules records nothing"


def test_scheduling_policy_change_is_recorded(app, client, admin, laser) -> None:
    url = "/admin/scheduling/laser-1"
    token = csrf_token(client, url)
    form = {"csrf_token": token, "p-mode": "window", "p-open_weekday": "0", "p-open_time": "00:00",
            "p-close_weekday": "3", "p-close_time": "19:00", "p-request_minutes": "60", "p-quota_hours": "4",
            "p-quota_slots": "", "p-band_width": "0.1", "p-half_life_days": "14", "p-hold_minutes": "15",
            "p-first_come_minutes": "120"}
    assert client.post(url, data=form).status_code == 302
    e = _one(A.POLICY_CHANGED)
    assert e.actor_id == admin.id and e.target_id == laser.id
    assert detail(e)["mode"] == {"from": "open", "to": "window"}
    assert detail(e)["close_time"]["to"] == "19:00"


def test_bridge_registered_then_rekeyed_on_the_web(app, client, admin, laser) -> None:
    token = csrf_token(client, "/admin/bridges")
    page = client.post("/admin/bridges", data={"csrf_token": token, "bridge_id": "bridge-a", "machines": ["laser-1"]})
    password = re.search(r'password = "([^"]+)"', page.get_data(as_text=True)).group(1)
    e = _one(A.BRIDGE_REGISTERED)
    assert (e.actor_id, e.target_type, e.target_label, detail(e)) == (
        admin.id, "bridge", "bridge-a", {"machines": ["laser-1"]})
    client.post("/admin/bridges", data={"csrf_token": token, "bridge_id": "bridge-a", "machines": ["laser-1"]})
    assert _one(A.BRIDGE_REKEYED).target_label == "bridge-a"
    assert password not in " ".join(x.detail for x in entries())


def test_bridge_registered_from_the_command_line(app, laser) -> None:
    result = app.test_cli_runner().invoke(args=["add-bridge", "bridge-cli", "laser-1"])
    assert result.exit_code == 0, result.output
    e = _one(A.BRIDGE_REGISTERED)
    assert (e.actor_id, e.actor_label, e.target_label) == (None, "system", "bridge-cli")


def test_kiosk_registered_link_issued_and_revoked(app, client, admin) -> None:
    token = csrf_token(client, "/kiosk/admin")
    client.post("/kiosk/admin", data={"csrf_token": token, "name": "Front door"})
    device = db.session.scalar(select(KioskDevice))
    client.post(f"/kiosk/admin/{device.id}/link", data={"csrf_token": token})
    client.post(f"/kiosk/admin/{device.id}/revoke", data={"csrf_token": token})
    got = [(e.action, e.actor_id, e.target_type, e.target_id, e.target_label) for e in entries()]
    assert got == [(a, admin.id, "kiosk", device.id, "Front door")
                   for a in (A.KIOSK_REGISTERED, A.KIOSK_LINK_ISSUED, A.KIOSK_REVOKED)]


def test_a_refused_action_leaves_no_entry(app, client, make_member, laser) -> None:
    dana = make_member("dana@example.org")
    steward = make_member("stew@example.org", role="steward")
    b = _booking(dana, laser)
    login(client, "stew@example.org")
    token = csrf_token(client, f"/bookings/{b.id}")
    resp = client.post(f"/bookings/{b.id}/cancel", data={"csrf_token": token, "reason": ""})
    assert resp.status_code in (302, 422)
    assert entries() == [] and steward.id


def test_grant_from_any_service_is_recorded(app_ctx, make_member, make_machine) -> None:
    machine = make_machine("p1", type_slug="3d_printer")
    trainer = make_member("t@example.org", role="steward")
    m = make_member("m@example.org")
    machine_service.grant(m, by=trainer, machine=machine)
    machine_service.grant(m, by=trainer, machine=machine)
    db.session.commit()
    first, second = entries(A.QUALIFICATION_GRANTED)
    assert (detail(first)["renewed"], detail(second)["renewed"]) == (False, True)
    assert detail(first)["for"] == "P1"
