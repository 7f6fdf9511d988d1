"""Two-factor sign-in through the real pages: enrolment, the code at sign-in (wrong, replayed, recovery
codes), the pending sign-in (other browser, expiry, forged), regenerating codes and turning it off.

Codes are computed with pyotp from the secret the setup page shows, as an authenticator app would; the clock
is frozen (time-machine) so each code belongs to a known 30-second step."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pyotp
import pytest
import time_machine
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from fablab.extensions import db
from fablab.models import LoginThrottle, Member
from fablab.models.accounts import RecoveryCode
from fablab.models.two_factor import TwoFactorChallenge
from tests.conftest import csrf_token, login
from tests.support.clock import cheap_password_hashing

# Sunday 23:30 in Berlin, 5 s into a time step (a step starts every 30 s since the epoch).
T0 = datetime(2026, 6, 14, 21, 30, 5, tzinfo=UTC)
STEP = timedelta(seconds=30)


@contextmanager
def frozen_clock() -> Iterator[time_machine.Traveller]:
    # Sign-ins hash and verify passwords all the time; argon2's real cost is not what these tests test.
    with time_machine.travel(T0, tick=False) as traveller, cheap_password_hashing():
        yield traveller


@pytest.fixture
def clock() -> Iterator[time_machine.Traveller]:
    with frozen_clock() as traveller:
        yield traveller


def now() -> datetime:
    return datetime.now(UTC)


def code_at(secret: str, at: datetime) -> str:
    return pyotp.TOTP(secret).at(at)


def enrol(client: FlaskClient) -> tuple[str, list[str]]:
    """Set up two-factor sign-in for the signed-in member, as a person does: start, read the key the page
    shows, type the app's code. Returns the secret and the recovery codes shown."""
    token = csrf_token(client, "/account/two-factor")
    assert client.post("/account/two-factor/start", data={"csrf_token": token}).status_code == 302
    page = client.get("/account/two-factor").get_data(as_text=True)
    found = re.search(r"<code data-secret>([A-Z2-7 ]+)</code>", page)
    assert found and "<svg" in page, "the setup page shows the QR code and the key"
    secret = found.group(1).replace(" ", "")
    resp = client.post("/account/two-factor/confirm", data={"csrf_token": token, "code": code_at(secret, now())})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    codes = recovery_codes_in(resp.get_data(as_text=True))
    assert len(codes) == 10
    return secret, codes


def recovery_codes_in(page: str) -> list[str]:
    return re.findall(r"<li><code>([a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4})</code></li>", page)


def send_code(client: FlaskClient, code: str, **kw) -> object:
    token = csrf_token(client, "/login/2fa")
    return client.post("/login/2fa", data={"code": code, "csrf_token": token}, **kw)


def signed_in(client: FlaskClient) -> bool:
    return client.get("/account").status_code == 200


def sign_out(client: FlaskClient) -> None:
    client.post("/logout", data={"csrf_token": csrf_token(client, "/account")})


def enrolled_member(client: FlaskClient, make_member, clock: time_machine.Traveller, email: str = "ada@example.org",
                    role: str = "member") -> tuple[str, list[str]]:
    """A member who set up two-factor sign-in, signed out; the clock one step on (the enrolment used the
    code of the step it happened in)."""
    make_member(email, name="Ada", role=role)
    login(client, email)
    secret, codes = enrol(client)
    sign_out(client)
    clock.shift(STEP)
    return secret, codes


def test_enrolment_refuses_a_wrong_code_in_the_page_and_a_right_one_turns_it_on(client, make_member, clock,
                                                                                caplog) -> None:
    make_member("ada@example.org", name="Ada")
    login(client, "ada@example.org")
    token = csrf_token(client, "/account/two-factor")
    client.post("/account/two-factor/start", data={"csrf_token": token})
    page = client.get("/account/two-factor")
    assert page.headers["Cache-Control"] == "no-store"
    secret = re.search(r"<code data-secret>([A-Z2-7 ]+)</code>", page.get_data(as_text=True)).group(1).replace(" ", "")

    wrong = str((int(code_at(secret, now())) + 1) % 1_000_000).zfill(6)
    with caplog.at_level(logging.DEBUG):
        resp = client.post("/account/two-factor/confirm", data={"csrf_token": token, "code": wrong})
        assert resp.status_code == 422
        assert "That code is not right" in resp.get_data(as_text=True)
        assert secret in resp.get_data(as_text=True).replace(" ", ""), "the same key is shown again to retry"
        member = db.session.scalar(select(Member).where(Member.email == "ada@example.org"))
        assert member.totp_enabled_at is None

        resp = client.post("/account/two-factor/confirm", data={"csrf_token": token,
                                                                 "code": code_at(secret, now())})
        assert resp.status_code == 200
        codes = recovery_codes_in(resp.get_data(as_text=True))
        assert len(codes) == 10 and len(set(codes)) == 10
    db.session.refresh(member)
    assert member.totp_enabled_at == T0
    # At rest: encrypted (not the key, and not the same ciphertext twice), recovery codes only as digests.
    assert member.totp_secret and secret not in member.totp_secret and secret.lower() not in member.totp_secret
    stored = set(db.session.scalars(select(RecoveryCode.code_hash).where(RecoveryCode.member_id == member.id)))
    assert len(stored) == 10 and not {c.replace("-", "") for c in codes} & stored
    assert secret not in caplog.text and not any(c in caplog.text for c in codes)
    assert "On since" in client.get("/account").get_data(as_text=True)


def test_the_account_section_and_setup_without_a_started_enrolment(client, make_member) -> None:
    make_member("ada@example.org", name="Ada")
    login(client, "ada@example.org")
    account = client.get("/account").get_data(as_text=True)
    assert 'id="two-factor"' in account and "Set up two-factor sign-in" in account
    setup = client.get("/account/two-factor").get_data(as_text=True)
    assert "Start the setup" in setup and "data-secret" not in setup
    # Confirming before starting: told to start, nothing turned on.
    token = csrf_token(client, "/account/two-factor")
    resp = client.post("/account/two-factor/confirm", data={"csrf_token": token, "code": "123456"})
    assert resp.status_code == 302
    assert db.session.scalar(select(Member.totp_enabled_at).where(Member.email == "ada@example.org")) is None


def test_sign_in_asks_for_the_code_and_opens_the_session_only_then(client, make_member, clock) -> None:
    secret, _ = enrolled_member(client, make_member, clock)
    page = client.get("/login?next=/account").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    resp = client.post("/login?next=/account", data={"email": "ada@example.org", "password": "correct-horse-9",
                                                      "csrf_token": token})
    assert resp.status_code == 302 and resp.location.endswith("/login/2fa")
    assert not signed_in(client), "no session before the second factor"
    assert client.get("/login/2fa").status_code == 200

    resp = send_code(client, code_at(secret, now()))
    assert resp.status_code == 302 and resp.location.endswith("/account"), "back to where the sign-in started"
    assert signed_in(client)
    assert db.session.scalar(select(func.count()).select_from(TwoFactorChallenge)) == 0


def test_a_code_one_step_off_works_and_a_wrong_one_is_refused_in_the_page(client, make_member, clock) -> None:
    secret, _ = enrolled_member(client, make_member, clock)
    clock.shift(STEP * 4)
    login(client, "ada@example.org")
    resp = send_code(client, "000000" if code_at(secret, now()) != "000000" else "111111")
    assert resp.status_code == 401
    assert "That code is not right" in resp.get_data(as_text=True)
    assert not signed_in(client)
    resp = send_code(client, "12345")
    assert resp.status_code == 401, "not a code at all: refused the same way"
    assert send_code(client, code_at(secret, now() - STEP)).status_code == 302, "the phone's clock is 30 s behind"
    assert signed_in(client)


def test_a_code_is_accepted_once(client, make_member, clock) -> None:
    secret, _ = enrolled_member(client, make_member, clock)
    clock.shift(STEP * 2)
    code = code_at(secret, now())
    login(client, "ada@example.org")
    assert send_code(client, code).status_code == 302
    sign_out(client)

    login(client, "ada@example.org")
    resp = send_code(client, code)  # the same code, within its window: a replay
    assert resp.status_code == 401 and not signed_in(client)
    # An older step's code, still in the window, is refused too once a newer one was used.
    assert send_code(client, code_at(secret, now() - STEP)).status_code == 401
    clock.shift(STEP)
    assert send_code(client, code_at(secret, now())).status_code == 302


def test_the_enrolment_code_cannot_sign_in_again(client, make_member, clock) -> None:
    secret, _ = enrolled_member(client, make_member, clock)  # confirmed with the code of T0's step
    login(client, "ada@example.org")
    assert send_code(client, code_at(secret, T0)).status_code == 401, "still in the window, but used"


def test_a_recovery_code_signs_in_once(client, make_member, clock) -> None:
    _, codes = enrolled_member(client, make_member, clock)
    login(client, "ada@example.org")
    resp = send_code(client, codes[3].upper().replace("-", " "))  # typed any which way
    assert resp.status_code == 302
    account = client.get("/account").get_data(as_text=True)
    assert "signed in with a recovery code; 9 left" in account and "9 unused recovery codes" in account
    sign_out(client)

    login(client, "ada@example.org")
    assert send_code(client, codes[3]).status_code == 401
    assert send_code(client, codes[4]).status_code == 302


def test_the_pending_sign_in_does_not_work_from_another_browser(app: Flask, client, make_member, clock) -> None:
    secret, _ = enrolled_member(client, make_member, clock)
    login(client, "ada@example.org")
    other = app.test_client()
    resp = other.get("/login/2fa")
    assert resp.status_code == 302 and resp.location.endswith("/login")
    token = csrf_token(other, "/login")
    resp = other.post("/login/2fa", data={"code": code_at(secret, now()), "csrf_token": token})
    assert resp.status_code == 302 and resp.location.endswith("/login")
    assert not signed_in(other)
    # The right browser still can.
    assert send_code(client, code_at(secret, now())).status_code == 302


def test_the_pending_sign_in_cannot_be_forged_or_replayed(app: Flask, client, make_member, clock) -> None:
    secret, _ = enrolled_member(client, make_member, clock)
    # Forged: the cookie names no member, only a token the server must know.
    forger = app.test_client()
    with forger.session_transaction() as sess:
        sess["2fa_pending"] = "made-up-token"
    assert forger.get("/login/2fa").location.endswith("/login")

    login(client, "ada@example.org")
    pending_cookie = client.get_cookie("session").value
    assert send_code(client, code_at(secret, now())).status_code == 302
    # The cookie as it was before the code: its pending sign-in is gone on the server.
    replay = app.test_client()
    replay.set_cookie("session", pending_cookie)
    clock.shift(STEP)
    resp = replay.get("/login/2fa")
    assert resp.status_code == 302 and resp.location.endswith("/login")
    assert not signed_in(replay)


def test_the_pending_sign_in_expires(client, make_member, clock) -> None:
    enrolled_member(client, make_member, clock)
    login(client, "ada@example.org")
    clock.shift(timedelta(minutes=5, seconds=1))
    resp = client.get("/login/2fa")
    assert resp.status_code == 302 and resp.location.endswith("/login")
    page = client.get("/login").get_data(as_text=True)
    assert "waited too long" in page
    assert not signed_in(client)


def test_expiry_also_refuses_a_code_posted_late(client, make_member, clock) -> None:
    secret, _ = enrolled_member(client, make_member, clock)
    login(client, "ada@example.org")
    token = csrf_token(client, "/login/2fa")
    clock.shift(timedelta(minutes=6))
    resp = client.post("/login/2fa", data={"code": code_at(secret, now()), "csrf_token": token})
    assert resp.status_code == 302 and resp.location.endswith("/login")
    assert not signed_in(client)


def test_too_many_wrong_codes_end_the_sign_in_and_slow_the_source(client, make_member, clock) -> None:
    secret, _ = enrolled_member(client, make_member, clock)
    login(client, "ada@example.org")
    right = code_at(secret, now())
    wrong = [c for c in ("111111", "222222", "333333", "444444", "555555", "666666") if c != right][:5]
    for attempt in wrong[:4]:
        assert send_code(client, attempt).status_code == 401
    resp = send_code(client, wrong[4])
    assert resp.status_code == 302 and resp.location.endswith("/login"), "the 5th wrong code ends it"
    assert "Too many wrong codes" in client.get("/login").get_data(as_text=True)
    # The password again: this source is now locked out of codes for Ada for a while, even the right one.
    login(client, "ada@example.org")
    resp = send_code(client, right)
    assert resp.status_code == 429 and "Too many wrong codes from this network" in resp.get_data(as_text=True)
    assert int(resp.headers["Retry-After"]) > 0
    assert not signed_in(client)
    assert db.session.scalar(select(func.count()).select_from(LoginThrottle)) >= 1


def test_wrong_codes_from_elsewhere_do_not_lock_the_owner_out(app: Flask, client, make_member, clock) -> None:
    secret, _ = enrolled_member(client, make_member, clock)
    attacker = app.test_client()  # someone who knows Ada's password, on another network
    attacker.environ_base["REMOTE_ADDR"] = "203.0.113.9"
    right = code_at(secret, now())
    login(attacker, "ada@example.org")
    for attempt in [c for c in ("111111", "222222", "333333", "444444", "555555", "666666") if c != right][:5]:
        send_code(attacker, attempt)
    login(attacker, "ada@example.org")
    assert send_code(attacker, right).status_code == 429
    client.environ_base["REMOTE_ADDR"] = "198.51.100.7"  # Ada, at home
    login(client, "ada@example.org")
    assert send_code(client, right).status_code == 302 and signed_in(client)


def test_cancelling_the_pending_sign_in(client, make_member, clock) -> None:
    enrolled_member(client, make_member, clock)
    login(client, "ada@example.org")
    resp = client.post("/login/2fa/cancel", data={"csrf_token": csrf_token(client, "/login/2fa")})
    assert resp.status_code == 302
    assert db.session.scalar(select(func.count()).select_from(TwoFactorChallenge)) == 0
    assert client.get("/login/2fa").location.endswith("/login")


def test_members_without_two_factor_sign_in_as_before(client, make_member) -> None:
    make_member("bo@example.org", name="Bo")
    resp = login(client, "bo@example.org")
    assert resp.status_code == 302 and "/login/2fa" not in resp.location
    assert signed_in(client)
    assert client.get("/login/2fa").location.endswith("/login")


def test_new_recovery_codes_replace_the_old_ones(client, make_member, clock) -> None:
    secret, old = enrolled_member(client, make_member, clock)
    clock.shift(STEP)
    login(client, "ada@example.org")
    send_code(client, old[0])
    token = csrf_token(client, "/account/two-factor/recovery-codes")
    resp = client.post("/account/two-factor/recovery-codes", data={"csrf_token": token, "code": "999999"
                                                                  if code_at(secret, now()) != "999999" else "888888"})
    assert resp.status_code == 422 and "That code is not right" in resp.get_data(as_text=True)
    resp = client.post("/account/two-factor/recovery-codes", data={"csrf_token": token,
                                                                   "code": code_at(secret, now())})
    assert resp.status_code == 200 and resp.headers["Cache-Control"] == "no-store"
    new = recovery_codes_in(resp.get_data(as_text=True))
    assert len(new) == 10 and not set(new) & set(old)
    sign_out(client)
    login(client, "ada@example.org")
    assert send_code(client, old[1]).status_code == 401
    assert send_code(client, new[0]).status_code == 302


def test_turning_it_off_needs_the_password_and_a_current_code(client, make_member, clock) -> None:
    secret, _ = enrolled_member(client, make_member, clock)
    clock.shift(STEP)
    login(client, "ada@example.org")
    send_code(client, code_at(secret, now()))
    clock.shift(STEP)
    token = csrf_token(client, "/account/two-factor/disable")
    resp = client.post("/account/two-factor/disable", data={"csrf_token": token, "password": "wrong-password-1",
                                                            "code": code_at(secret, now())})
    assert resp.status_code == 422 and "This is not your password." in resp.get_data(as_text=True)
    resp = client.post("/account/two-factor/disable", data={"csrf_token": token, "password": "correct-horse-9",
                                                            "code": code_at(secret, now() - STEP * 3)})
    assert resp.status_code == 422 and "That code is not right" in resp.get_data(as_text=True)
    member = db.session.scalar(select(Member).where(Member.email == "ada@example.org"))
    assert member.totp_enabled_at is not None

    resp = client.post("/account/two-factor/disable", data={"csrf_token": token, "password": "correct-horse-9",
                                                            "code": code_at(secret, now())})
    assert resp.status_code == 302
    db.session.refresh(member)
    assert member.totp_enabled_at is None and member.totp_secret is None
    assert db.session.scalar(select(func.count()).select_from(RecoveryCode)) == 0
    sign_out(client)
    resp = login(client, "ada@example.org")
    assert "/login/2fa" not in resp.location and signed_in(client)


def test_every_sign_in_method_ends_in_the_same_second_factor(app: Flask, make_member, clock) -> None:
    """OIDC, LDAP, invitations and resets call finish_login too: with two-factor sign-in on, none opens a
    session before the code."""
    from flask import session

    from fablab.web.auth.login_flow import PENDING, finish_login

    client = app.test_client()
    enrolled_member(client, make_member, clock)
    member = db.session.scalar(select(Member).where(Member.email == "ada@example.org"))
    with app.test_request_context("/oidc/callback"):
        resp = finish_login(member, method="oidc", next_url="https://evil.example/")
        assert resp.location == "/login/2fa" and PENDING in session and "sid" not in session
        assert "2fa_next" not in session, "an off-site next is not kept"
    row = db.session.scalar(select(TwoFactorChallenge))
    assert row.method == "oidc" and row.member_id == member.id and row.expires_at == now() + timedelta(minutes=5)
