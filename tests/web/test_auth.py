from __future__ import annotations

from flask.testing import FlaskClient

from tests.conftest import csrf_token, login


def test_login_and_logout(client: FlaskClient, make_member) -> None:
    m = make_member("ada@example.org")
    resp = login(client, "ada@example.org")
    assert resp.status_code == 302 and resp.location == "/"
    page = client.get("/").get_data(as_text=True)
    assert m.name in page
    token = csrf_token(client, "/")
    resp = client.post("/logout", data={"csrf_token": token})
    assert resp.status_code == 302
    assert client.get("/").status_code == 302  # signed out: back to the login page


def test_wrong_password_and_unknown_email_look_the_same(client: FlaskClient, make_member) -> None:
    make_member("ada@example.org")
    wrong = login(client, "ada@example.org", "not-the-password")
    unknown = login(client, "nobody@example.org", "not-the-password")
    assert wrong.status_code == unknown.status_code == 401
    for resp in (wrong, unknown):
        assert "Email or password is wrong." in resp.get_data(as_text=True)


def test_repeated_failures_are_slowed_down(client: FlaskClient, make_member) -> None:
    make_member("ada@example.org")
    for _ in range(5):
        login(client, "ada@example.org", "wrong-wrong")
    resp = login(client, "ada@example.org")  # even the right password waits out the lock
    assert resp.status_code == 429
    assert "Too many failed sign-in attempts" in resp.get_data(as_text=True)


def test_form_without_csrf_token_is_rejected(client: FlaskClient, make_member) -> None:
    make_member("ada@example.org")
    resp = client.post("/login", data={"email": "ada@example.org", "password": "correct-horse-9"})
    assert resp.status_code == 400
    assert "form expired" in resp.get_data(as_text=True)
    assert login(client, "ada@example.org").status_code == 302  # with the token it works
    resp = client.post("/logout", data={})
    assert resp.status_code == 400
    assert "form expired" in resp.get_data(as_text=True)


def test_bad_value_keeps_what_was_typed(client: FlaskClient, make_member) -> None:
    make_member("root@example.org", role="admin")
    login(client, "root@example.org")
    token = csrf_token(client, "/admin/machines/new")
    resp = client.post("/admin/machines/new", data={
        "csrf_token": token, "name": "My Laser", "slug": "Bad Slug!", "type_id": "0",
        "location": "Room 2", "status": "available", "qualification_scope": "type"})
    body = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert "Lower-case letters, digits and dashes only." in body
    assert 'value="My Laser"' in body and 'value="Room 2"' in body


def test_open_redirect_after_login_is_refused(client: FlaskClient, make_member) -> None:
    make_member("ada@example.org")
    page = client.get("/login?next=//evil.example/x").get_data(as_text=True)
    import re

    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    resp = client.post("/login?next=//evil.example/x",
                       data={"email": "ada@example.org", "password": "correct-horse-9", "csrf_token": token})
    assert resp.location == "/"


def test_session_cookie_flags(client: FlaskClient, make_member) -> None:
    make_member("ada@example.org")
    resp = login(client, "ada@example.org")
    cookie = resp.headers.get("Set-Cookie", "")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_member_manages_own_tokens_password_and_pin(client: FlaskClient, make_member) -> None:
    import re

    from fablab.extensions import db
    from fablab.models import Member
    from fablab.services.members import check_pin

    m = make_member("ada@example.org")
    login(client, "ada@example.org")
    token = csrf_token(client, "/account")
    page = client.post("/account/tokens", data={"csrf_token": token, "t-name": "script"}).get_data(as_text=True)
    new = re.search(r'value="([^"]+)" data-select-on-click aria-label="New API token"', page).group(1)
    assert client.get("/api/v1/machines", headers={"Authorization": f"Bearer {new}"}).status_code == 200
    wrong = client.post("/account/pin", data={"csrf_token": token, "k-current": "nope-nope-nope", "k-pin": "4711"})
    assert wrong.status_code == 422 and "not your password" in wrong.get_data(as_text=True)
    client.post("/account/pin", data={"csrf_token": token, "k-current": "correct-horse-9", "k-pin": "4711"})
    db.session.expire_all()
    assert check_pin(db.session.get(Member, m.id), "4711")
    resp = client.post("/account/password", data={"csrf_token": csrf_token(client, "/account"),
                                                  "p-current": "correct-horse-9", "p-new": "a-new-long-password"})
    assert resp.status_code == 302
    client.post("/logout", data={"csrf_token": csrf_token(client, "/account")})
    assert login(client, "ada@example.org", "a-new-long-password").status_code == 302
