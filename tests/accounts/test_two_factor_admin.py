"""Two-factor sign-in that admins require of staff: the switch (audited), forced enrolment (pages, htmx,
not the API), the deployment default, the admin's reset (audited, sessions ended), and CSRF on every form."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import time_machine
from flask import Flask
from sqlalchemy import func, select

from fablab.domain import audit_actions
from fablab.extensions import db
from fablab.models import Member, MemberSession
from fablab.models.accounts import AuditEntry
from fablab.services import members as member_service
from tests.accounts.test_two_factor import (
    STEP,
    T0,
    code_at,
    enrol,
    enrolled_member,
    frozen_clock,
    now,
    send_code,
    sign_out,
    signed_in,
)
from tests.conftest import csrf_token, login


@pytest.fixture
def clock() -> Iterator[time_machine.Traveller]:
    with frozen_clock() as traveller:
        yield traveller


@pytest.fixture
def deployment_requires(app: Flask) -> Iterator[None]:
    saved = app.config["FABLAB_REQUIRE_2FA_STAFF"]
    app.config["FABLAB_REQUIRE_2FA_STAFF"] = True
    yield
    app.config["FABLAB_REQUIRE_2FA_STAFF"] = saved


def switch(client, on: bool):
    token = csrf_token(client, "/admin/two-factor")
    return client.post("/admin/two-factor", data={"csrf_token": token, **({"require_staff": "y"} if on else {})})


def audit_entries(action: str) -> list[AuditEntry]:
    return list(db.session.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)))


def test_the_admin_switch_is_audited_and_admin_only(app: Flask, client, make_member, clock) -> None:
    make_member("root@example.org", name="Root", role="admin")
    make_member("sam@example.org", name="Sam", role="steward")
    steward = app.test_client()
    login(steward, "sam@example.org")
    assert steward.get("/admin/two-factor").status_code == 403
    token = csrf_token(steward, "/account")
    assert steward.post("/admin/two-factor", data={"csrf_token": token, "require_staff": "y"}).status_code == 403

    login(client, "root@example.org")
    assert "not required" in client.get("/admin/two-factor").get_data(as_text=True)
    enrol(client)  # else switching it on sends the admin straight to the setup
    assert switch(client, True).status_code == 302
    assert 'data-required="yes"' in client.get("/admin/two-factor").get_data(as_text=True)
    switch(client, True)  # saving the same again changes nothing and writes no entry
    [entry] = audit_entries(audit_actions.TWO_FACTOR_REQUIRED)
    assert entry.actor_label.startswith("Root") and json.loads(entry.detail) == {"required": True}
    assert entry.at == T0
    switch(client, False)
    assert [json.loads(e.detail)["required"] for e in audit_entries(audit_actions.TWO_FACTOR_REQUIRED)] == [True, False]


def test_required_staff_must_enrol_before_anything_else(app: Flask, client, make_member, clock) -> None:
    make_member("root@example.org", name="Root", role="admin")
    steward = make_member("sam@example.org", name="Sam", role="steward")
    api_token = member_service.create_api_token(steward, "script", scope="read")
    db.session.commit()
    make_member("bo@example.org", name="Bo")
    admin = app.test_client()
    login(admin, "root@example.org")
    switch(admin, True)
    assert admin.get("/admin/members").location.endswith("/account/two-factor"), "the admin is staff too"

    resp = login(client, "sam@example.org")
    assert resp.status_code == 302 and resp.location.endswith("/account/two-factor"), "signed in, sent to the setup"
    for path in ("/", "/account", "/admin/members", "/bookings/mine"):
        resp = client.get(path)
        assert resp.status_code == 302 and resp.location.endswith("/account/two-factor"), path
    resp = client.get("/admin/members", headers={"HX-Request": "true"})
    assert resp.status_code == 204 and resp.headers["HX-Redirect"].endswith("/account/two-factor")
    # The notice badge polling on the setup page itself must not reload it under the person's typing.
    resp = client.get("/admin/members", headers={"HX-Request": "true",
                                                 "HX-Current-URL": "http://localhost/account/two-factor"})
    assert resp.status_code == 204 and "HX-Redirect" not in resp.headers
    page = client.get("/account/two-factor").get_data(as_text=True)
    assert "The lab requires two-factor sign-in" in page
    # Forms are no way around it either.
    assert client.post("/account/password", data={"csrf_token": csrf_token(client, "/account/two-factor")}
                       ).location.endswith("/account/two-factor")
    # API tokens have their own sign-in: not affected.
    assert client.get("/api/v1/machines", headers={"Authorization": f"Bearer {api_token}"}).status_code == 200
    # Members are not staff: not affected.
    member = app.test_client()
    login(member, "bo@example.org")
    assert member.get("/account").status_code == 200

    secret, _ = enrol(client)
    assert client.get("/account").status_code == 200
    assert client.get("/admin/members").status_code == 200
    # Signing out works while required; the next sign-in asks for the code.
    sign_out(client)
    clock.shift(STEP)
    assert login(client, "sam@example.org").location.endswith("/login/2fa")
    assert send_code(client, code_at(secret, now())).status_code == 302 and signed_in(client)


def test_the_deployment_default_requires_it_and_the_switch_cannot_turn_it_off(client, make_member, clock,
                                                                              deployment_requires) -> None:
    make_member("root@example.org", name="Root", role="admin")
    resp = login(client, "root@example.org")
    assert resp.location.endswith("/account/two-factor")
    assert client.get("/admin/two-factor").location.endswith("/account/two-factor"), "not before enrolling"
    enrol(client)
    page = client.get("/admin/two-factor").get_data(as_text=True)
    assert "FABLAB_REQUIRE_2FA_STAFF" in page and 'data-required="yes"' in page
    switch(client, False)
    assert 'data-required="yes"' in client.get("/admin/two-factor").get_data(as_text=True)


def test_staff_turning_it_off_when_required_set_it_up_again(client, make_member, clock, deployment_requires) -> None:
    make_member("sam@example.org", name="Sam", role="steward")
    login(client, "sam@example.org")
    secret, _ = enrol(client)
    clock.shift(STEP)
    token = csrf_token(client, "/account/two-factor/disable")
    assert "you will set it up again" in client.get("/account/two-factor/disable").get_data(as_text=True)
    resp = client.post("/account/two-factor/disable", data={"csrf_token": token, "password": "correct-horse-9",
                                                            "code": code_at(secret, now())})
    assert resp.location.endswith("/account/two-factor")
    assert client.get("/account").location.endswith("/account/two-factor")


def test_an_admin_resets_a_member_who_lost_their_device(app: Flask, client, make_member, clock) -> None:
    make_member("root@example.org", name="Root", role="admin")
    secret, _ = enrolled_member(client, make_member, clock)
    ada = db.session.scalar(select(Member).where(Member.email == "ada@example.org"))
    login(client, "ada@example.org")
    send_code(client, code_at(secret, now()))
    assert signed_in(client)

    admin = app.test_client()
    login(admin, "root@example.org")
    detail = admin.get(f"/admin/members/{ada.id}").get_data(as_text=True)
    assert "Reset two-factor sign-in" in detail
    resp = admin.post(f"/admin/members/{ada.id}/two-factor/reset",
                      data={"csrf_token": csrf_token(admin, f"/admin/members/{ada.id}")})
    assert resp.status_code == 302
    assert "1 session ended" in admin.get(resp.location).get_data(as_text=True)

    assert not signed_in(client), "the member's sessions ended"
    db.session.refresh(ada)
    assert ada.totp_enabled_at is None and ada.totp_secret is None
    assert db.session.scalar(select(func.count()).select_from(MemberSession)
                             .where(MemberSession.member_id == ada.id)) == 0
    [entry] = audit_entries(audit_actions.TWO_FACTOR_RESET)
    assert entry.target_id == ada.id and entry.actor_label.startswith("Root")
    assert json.loads(entry.detail) == {"sessions_ended": 1, "was_enabled": True}
    resp = login(client, "ada@example.org")
    assert "/login/2fa" not in resp.location and signed_in(client), "the password alone signs in again"

    # Nothing left to reset, and never one's own: refused in the page, nothing written.
    resp = admin.post(f"/admin/members/{ada.id}/two-factor/reset",
                      data={"csrf_token": csrf_token(admin, f"/admin/members/{ada.id}")})
    assert resp.status_code == 409 and "nothing to reset" in resp.get_data(as_text=True)
    root = db.session.scalar(select(Member).where(Member.email == "root@example.org"))
    enrol(admin)
    resp = admin.post(f"/admin/members/{root.id}/two-factor/reset",
                      data={"csrf_token": csrf_token(admin, "/account")})
    assert resp.status_code == 409 and "turn it off on your account page" in resp.get_data(as_text=True)
    assert len(audit_entries(audit_actions.TWO_FACTOR_RESET)) == 1


def test_stewards_cannot_reset(app: Flask, client, make_member, clock) -> None:
    enrolled_member(client, make_member, clock)
    ada = db.session.scalar(select(Member).where(Member.email == "ada@example.org"))
    make_member("sam@example.org", name="Sam", role="steward")
    login(client, "sam@example.org")
    assert "Reset two-factor sign-in" not in client.get(f"/admin/members/{ada.id}").get_data(as_text=True)
    resp = client.post(f"/admin/members/{ada.id}/two-factor/reset", data={"csrf_token": csrf_token(client, "/account")})
    assert resp.status_code == 403
    db.session.refresh(ada)
    assert ada.totp_enabled_at is not None


def test_every_two_factor_form_needs_its_csrf_token(app: Flask, client, make_member, clock) -> None:
    secret, _ = enrolled_member(client, make_member, clock, email="root@example.org", role="admin")
    ada = make_member("ada@example.org", name="Ada")
    login(client, "root@example.org")  # pending: /login/2fa takes codes
    posts = sorted(r.rule.replace("<id:member_id>", str(ada.id)) for r in app.url_map.iter_rules()
                   if r.endpoint.startswith("two_factor.") and "POST" in r.methods)
    assert len(posts) >= 8, posts
    for path in posts:
        if path == "/login/2fa":
            resp = client.post(path, data={"code": code_at(secret, now())})
            assert resp.status_code == 400, path
    send_code(client, code_at(secret, now()))
    assert signed_in(client)
    for path in posts:
        resp = client.post(path, data={"code": "123456", "password": "correct-horse-9", "require_staff": "y"})
        assert resp.status_code == 400 and "The form expired" in resp.get_data(as_text=True), path
    assert not audit_entries(audit_actions.TWO_FACTOR_REQUIRED)
