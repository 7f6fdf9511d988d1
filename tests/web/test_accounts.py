"""Accounts, hardened: wrong passwords slow the source, not the account; sessions live on the server
(sign-out and password changes end them); the throttle table stays small."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import time_machine
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from fablab.extensions import db
from fablab.models import LoginThrottle, Member, MemberSession
from fablab.services import kiosk as kiosk_service
from tests.conftest import csrf_token
from tests.support.clock import cheap_password_hashing

ATTACKER = "203.0.113.9"
HOME = "198.51.100.7"


def _login(client: FlaskClient, email: str, password: str = "correct-horse-9", ip: str = HOME):
    env = {"REMOTE_ADDR": ip}
    page = client.get("/login", environ_base=env).get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    return client.post("/login", data={"email": email, "password": password, "csrf_token": token},
                       environ_base=env)


def _throttle_rows() -> int:
    db.session.commit()
    return db.session.scalar(select(func.count()).select_from(LoginThrottle))


def test_guessing_quinns_password_elsewhere_does_not_lock_quinn_out(app: Flask, make_member) -> None:
    make_member("quinn@example.org", name="Quinn")
    attacker = app.test_client()
    for _ in range(6):
        _login(attacker, "quinn@example.org", "guess-guess-guess", ip=ATTACKER)
    quinn = app.test_client()
    resp = _login(quinn, "quinn@example.org", ip=HOME)
    assert resp.status_code == 302
    assert quinn.get("/account").status_code == 200
    refused = _login(attacker, "quinn@example.org", ip=ATTACKER)  # the guesser is slowed, even when right
    assert refused.status_code == 429
    body = refused.get_data(as_text=True)
    assert "Try again in" in body and "seconds" in body
    assert 0 < int(refused.headers["Retry-After"]) <= 15 * 60


def test_password_spray_from_one_source_is_slowed(app: Flask, make_member) -> None:
    make_member("ada@example.org")
    sprayer = app.test_client()
    for i in range(20):  # one try per account: no account's own budget is ever spent
        assert _login(sprayer, f"user{i}@example.org", "Summer2026!", ip=ATTACKER).status_code == 401
    resp = _login(sprayer, "ada@example.org", ip=ATTACKER)
    assert resp.status_code == 429 and "Too many failed sign-in attempts" in resp.get_data(as_text=True)
    assert _login(app.test_client(), "ada@example.org", ip=HOME).status_code == 302  # others are not


def test_a_whole_ipv6_64_is_one_source(app: Flask, make_member) -> None:
    make_member("ada@example.org")
    c = app.test_client()
    with cheap_password_hashing():
        for i in range(20):
            _login(c, f"user{i}@example.org", "nope-nope-nope", ip=f"2001:db8:1:2::{i + 1:x}")
        assert _login(c, "ada@example.org", ip="2001:db8:1:2:ffff::1").status_code == 429
        assert _login(c, "ada@example.org", ip="2001:db8:1:3::1").status_code == 302


def test_throttle_table_is_bounded_and_keeps_no_typed_email(app: Flask, app_ctx) -> None:
    c = app.test_client()
    with cheap_password_hashing():
        for i in range(40):
            _login(c, f"nobody{i}@example.org", "wrong-wrong-wrong", ip=ATTACKER)
        # the source's budget stops new rows: one for the source, one per account it could try
        assert _throttle_rows() <= 21
        keys = " ".join(db.session.scalars(select(LoginThrottle.key)))
        assert "example.org" not in keys and ATTACKER not in keys
        with time_machine.travel(datetime.now(UTC) + timedelta(minutes=31), tick=True):
            _login(c, "someone@example.org", "wrong-wrong-wrong", ip=HOME)
            assert _throttle_rows() == 2  # the old window's rows are gone; only the new failure's two


def test_sign_out_ends_the_session_on_the_server(app: Flask, make_member) -> None:
    make_member("ada@example.org")
    browser = app.test_client()
    assert _login(browser, "ada@example.org").status_code == 302
    copied = browser.get_cookie("session").value
    browser.post("/logout", data={"csrf_token": csrf_token(browser, "/account")})
    thief = app.test_client()
    thief.set_cookie("session", copied)
    resp = thief.get("/account")
    assert resp.status_code == 302 and "/login" in resp.location


def test_no_part_of_the_password_hash_in_the_cookie(app: Flask, make_member) -> None:
    m = make_member("ada@example.org")
    browser = app.test_client()
    _login(browser, "ada@example.org")
    data = app.session_interface.get_signing_serializer(app).loads(browser.get_cookie("session").value)
    blob = json.dumps(data)
    secret = m.password_hash
    assert not any(secret[i:i + 8] in blob for i in range(len(secret) - 8))
    assert "member_id" not in data and "auth_v" not in data
    # the cookie's id is not what is stored: only its hash
    db.session.commit()
    assert data["sid"] not in set(db.session.scalars(select(MemberSession.token_hash)))


def _kiosk_client(app: Flask) -> tuple[FlaskClient, str]:
    _, token = kiosk_service.register_kiosk("door")
    db.session.commit()
    kiosk = app.test_client()
    kiosk.get(f"/kiosk/activate/{token}")
    return kiosk, csrf_token(kiosk, "/kiosk/")


def test_password_change_ends_other_sessions_web_and_kiosk(app: Flask, make_member) -> None:
    make_member("ada@example.org", name="Ada Lovelace", badge="04A1B2C3")
    here, there = app.test_client(), app.test_client()
    _login(here, "ada@example.org")
    _login(there, "ada@example.org")
    kiosk, ktok = _kiosk_client(app)
    assert "Hello, Ada" in kiosk.post("/kiosk/identify", data={"badge": "04A1B2C3"},
                                      headers={"X-CSRFToken": ktok}).get_data(as_text=True)
    resp = here.post("/account/password", data={"csrf_token": csrf_token(here, "/account"),
                                                 "p-current": "correct-horse-9", "p-new": "a-new-long-password"})
    assert resp.status_code == 302
    assert "Signed out 2 other sessions" in here.get("/account").get_data(as_text=True)
    assert there.get("/account").status_code == 302  # the other browser is signed out
    assert "Hello, Ada" not in kiosk.get("/kiosk/panel").get_data(as_text=True)  # and the kiosk too


def test_account_lists_sessions_and_signs_out_everywhere_else(app: Flask, make_member) -> None:
    make_member("ada@example.org")
    here, there = app.test_client(), app.test_client()
    _login(here, "ada@example.org")
    _login(there, "ada@example.org")
    page = here.get("/account", headers={"User-Agent": "Firefox on the laptop"}).get_data(as_text=True)
    assert page.count('data-session="') == 2 and "(this browser)" in page
    resp = here.post("/account/sessions/others/end", data={"csrf_token": csrf_token(here, "/account")})
    assert resp.status_code == 302
    assert there.get("/account").status_code == 302
    page = here.get("/account").get_data(as_text=True)
    assert page.count('data-session="') == 1 and "Signed out 1 other session." in page


def test_one_session_can_be_ended_only_by_its_member(app: Flask, make_member) -> None:
    make_member("ada@example.org")
    make_member("bo@example.org")
    ada, bo = app.test_client(), app.test_client()
    _login(ada, "ada@example.org")
    _login(bo, "bo@example.org")
    db.session.commit()
    bo_row = db.session.scalar(select(MemberSession).join(Member).where(Member.email == "bo@example.org"))
    resp = ada.post(f"/account/sessions/{bo_row.id}/end", data={"csrf_token": csrf_token(ada, "/account")})
    assert resp.status_code == 404
    assert bo.get("/account").status_code == 200
    resp = bo.post(f"/account/sessions/{bo_row.id}/end", data={"csrf_token": csrf_token(bo, "/account")})
    assert resp.status_code == 302 and "/login" in resp.location
    assert bo.get("/account").status_code == 302


def test_deactivated_member_is_signed_out(app: Flask, make_member) -> None:
    m = make_member("ada@example.org")
    browser = app.test_client()
    _login(browser, "ada@example.org")
    m.active = False
    db.session.commit()
    assert browser.get("/account").status_code == 302


def test_kiosk_sign_out_ends_the_kiosk_session_on_the_server(app: Flask, make_member) -> None:
    make_member("ada@example.org", name="Ada Lovelace", badge="04A1B2C3")
    kiosk, ktok = _kiosk_client(app)
    kiosk.post("/kiosk/identify", data={"badge": "04A1B2C3"}, headers={"X-CSRFToken": ktok})
    copied = kiosk.get_cookie("session").value
    kiosk.post("/kiosk/signout", headers={"X-CSRFToken": ktok})
    thief = app.test_client()
    thief.set_cookie("fablab_kiosk", kiosk.get_cookie("fablab_kiosk", path="/kiosk").value, path="/kiosk")
    thief.set_cookie("session", copied)
    assert "Hello, Ada" not in thief.get("/kiosk/panel").get_data(as_text=True)


def test_a_guesser_behind_quinns_address_cannot_lock_her_known_browser(app: Flask, make_member) -> None:
    make_member("quinn@example.org", name="Quinn")
    quinn = app.test_client()
    assert _login(quinn, "quinn@example.org", ip=HOME).status_code == 302  # this browser is now known
    quinn.post("/logout", data={"csrf_token": csrf_token(quinn, "/account")})
    guesser = app.test_client()  # same network (one NAT address), no cookie of Quinn's
    for _ in range(6):
        _login(guesser, "quinn@example.org", "guess-guess-guess", ip=HOME)
    assert _login(guesser, "quinn@example.org", ip=HOME).status_code == 429
    assert _login(quinn, "quinn@example.org", ip=HOME).status_code == 302
    # a forged or foreign device cookie is no way around the source's budget
    guesser.set_cookie("fablab_device", "forged.cookie", path="/login")
    assert _login(guesser, "quinn@example.org", ip=HOME).status_code == 429
