"""LDAP sign-in through the real /login page, against a real OpenLDAP slapd (tests/support/slapd.py)."""

from __future__ import annotations

import html
import json
import logging
import re
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from fablab.domain import audit_actions
from fablab.extensions import db
from fablab.models import Member
from fablab.models.accounts import AuditEntry, MemberIdentity
from fablab.services.ldap_login import UNAVAILABLE_MESSAGE
from tests.conftest import login
from tests.support.clock import cheap_password_hashing
from tests.support.slapd import (
    ALICE_PW,
    BOB_PW,
    GROUPS,
    PEOPLE,
    SERVICE_DN,
    SERVICE_PW,
    Slapd,
    person_dn,
    slapd_fixture,  # noqa: F401 (fixture)
    slapd_tls_fixture,  # noqa: F401 (fixture)
)

WRONG = "Email or password is wrong."
Configure = Callable[..., None]


@pytest.fixture(autouse=True)
def _cheap_hashing() -> Iterator[None]:
    # Every failed attempt also runs argon2 for the local check; these tests are about the directory.
    with cheap_password_hashing():
        yield


def _text(resp: Any) -> str:
    return html.unescape(resp.get_data(as_text=True))


@pytest.fixture
def ldap_on(app: Flask, monkeypatch: pytest.MonkeyPatch) -> Configure:
    """Points the app at a directory (search-then-bind with the service account unless told otherwise);
    the settings go back when the test ends."""

    def configure(directory: Slapd, **overrides: Any) -> None:
        settings: dict[str, Any] = {
            "FABLAB_LDAP_URL": directory.url, "FABLAB_LDAP_STARTTLS": False, "FABLAB_LDAP_BIND_DN": "",
            "FABLAB_LDAP_SEARCH_BASE": PEOPLE, "FABLAB_LDAP_SEARCH_FILTER": "(|(uid={username})(mail={username}))",
            "FABLAB_LDAP_SERVICE_DN": SERVICE_DN, "FABLAB_LDAP_SERVICE_PASSWORD": SERVICE_PW,
            "FABLAB_LDAP_GROUP_BASE": "", "FABLAB_LDAP_ROLE_MAP": "steward=stewards,admin=admins",
            "FABLAB_LDAP_CAFILE": "", "FABLAB_LDAP_NEW_MEMBERS": "create", "FABLAB_LDAP_TIMEOUT": 3,
        }
        settings.update(overrides)
        for key, value in settings.items():
            monkeypatch.setitem(app.config, key, value)

    return configure


def _member(email: str) -> Member | None:
    db.session.expire_all()
    return db.session.scalar(select(Member).where(Member.email == email))


def _signed_in_as(client: FlaskClient) -> str:
    page = client.get("/account")
    assert page.status_code == 200, "signed in"
    return page.get_data(as_text=True)


def test_right_password_signs_in_and_creates_the_member(app_ctx, client, slapd, ldap_on) -> None:
    ldap_on(slapd)
    resp = login(client, "alice", ALICE_PW)
    assert resp.status_code == 302, _text(resp)
    assert "Alice Liddell" in _signed_in_as(client)
    alice = _member("alice@lab.example")
    assert alice is not None and alice.name == "Alice Liddell"
    assert alice.password_hash is None  # the directory keeps the password; nothing of it is stored here
    assert alice.role == "steward"  # alice is in cn=stewards (memberOf)
    identity = db.session.scalar(select(MemberIdentity).where(MemberIdentity.member_id == alice.id))
    assert identity is not None and identity.provider == "ldap"
    assert re.fullmatch(r"[0-9a-f-]{36}", identity.subject), "the entry's entryUUID, which survives renames"
    # The default filter also takes the mail address, and the second sign-in finds the same member.
    other = app_ctx.test_client()
    assert login(other, "Alice@Lab.example", ALICE_PW).status_code == 302
    assert db.session.scalar(select(db.func.count()).select_from(Member)) == 1


def test_wrong_password_is_refused_like_an_unknown_name(app_ctx, client, slapd, ldap_on, caplog) -> None:
    ldap_on(slapd)
    with caplog.at_level(logging.DEBUG):
        wrong = login(client, "bob", "not-bobs-password")
        unknown = login(client, "nobody", "not-bobs-password")
        local_style = login(client, "bob@lab.example", "")  # empty: the form refuses it before any bind
    assert wrong.status_code == unknown.status_code == 401
    for resp in (wrong, unknown):
        assert WRONG in _text(resp)
    assert local_style.status_code == 422
    assert _member("bob@lab.example") is None
    assert client.get("/account").status_code == 302  # still signed out
    assert "not-bobs-password" not in caplog.text
    assert login(client, "bob", BOB_PW).status_code == 302  # and the right one works


def test_first_sign_in_links_the_existing_member_by_email(app_ctx, client, slapd, ldap_on, make_member) -> None:
    ldap_on(slapd)
    bob = make_member("bob@lab.example", password="local-password-1", name="Bob (local)")
    assert login(client, "bob", BOB_PW).status_code == 302
    assert "Bob (local)" in _signed_in_as(client)
    rows = db.session.scalars(select(MemberIdentity).where(MemberIdentity.member_id == bob.id)).all()
    assert [r.provider for r in rows] == ["ldap"]
    assert db.session.scalar(select(db.func.count()).select_from(Member)) == 1
    # Both ways keep working: the local password, and the directory's.
    assert login(app_ctx.test_client(), "bob@lab.example", "local-password-1").status_code == 302
    assert login(app_ctx.test_client(), "bob@lab.example", BOB_PW).status_code == 302


def test_groups_decide_the_role_at_every_sign_in(app_ctx, slapd, ldap_on) -> None:
    ldap_on(slapd)
    assert login(app_ctx.test_client(), "alice", ALICE_PW).status_code == 302
    assert _member("alice@lab.example").role == "steward"
    slapd.remove_from_group("stewards", "alice")
    assert login(app_ctx.test_client(), "alice", ALICE_PW).status_code == 302
    alice = _member("alice@lab.example")
    assert alice.role == "member", "taken out of the stewards' group: demoted at the next sign-in"
    slapd.add_to_group("admins", "alice")
    slapd.add_to_group("stewards", "alice")
    assert login(app_ctx.test_client(), "alice", ALICE_PW).status_code == 302
    assert _member("alice@lab.example").role == "admin", "the highest mapped role wins"
    changes = db.session.scalars(select(AuditEntry).where(AuditEntry.action == audit_actions.ROLE_CHANGED)
                                 .order_by(AuditEntry.id)).all()
    assert [(json.loads(c.detail)["from"], json.loads(c.detail)["to"]) for c in changes] == [
        ("member", "steward"), ("steward", "member"), ("member", "admin")]
    assert all(json.loads(c.detail)["source"] == "ldap" for c in changes)


def test_dn_template_mode_with_groups_searched_under_the_group_base(app_ctx, client, slapd, ldap_on) -> None:
    # No service account at all: bind straight to the DN made from the name, then read as the person.
    ldap_on(slapd, FABLAB_LDAP_BIND_DN=f"uid={{username}},{PEOPLE}", FABLAB_LDAP_SEARCH_BASE="",
            FABLAB_LDAP_SERVICE_DN="", FABLAB_LDAP_SERVICE_PASSWORD="", FABLAB_LDAP_GROUP_BASE=GROUPS,
            FABLAB_LDAP_ROLE_MAP="steward=laser-trainers,admin=makers")
    slapd.add_person("carol", "carol-directory-pw", mail="carol@lab.example", name="Carol Shaw")
    slapd.add_to_group("laser-trainers", "carol")  # groupOfUniqueNames: found by the group search only
    assert login(client, "carol", "carol-directory-pw").status_code == 302
    assert _member("carol@lab.example").role == "steward"
    slapd.add_to_group("makers", "carol")  # posixGroup, by memberUid
    assert login(app_ctx.test_client(), "carol", "carol-directory-pw").status_code == 302
    assert _member("carol@lab.example").role == "admin"
    assert login(app_ctx.test_client(), "carol", "wrong-password").status_code == 401
    # In this mode the name is a uid, not an address: the mail does not find the entry.
    assert login(app_ctx.test_client(), "carol@lab.example", "carol-directory-pw").status_code == 401


def test_starttls_and_ldaps_with_the_labs_ca(app_ctx, slapd_tls, ldap_on) -> None:
    starttls, ldaps = slapd_tls.tls_urls
    # The server refuses simple binds in the clear, so signing in at all shows the bind went over TLS.
    ldap_on(slapd_tls, FABLAB_LDAP_URL=starttls, FABLAB_LDAP_STARTTLS=True, FABLAB_LDAP_CAFILE=slapd_tls.cafile)
    assert login(app_ctx.test_client(), "alice", ALICE_PW).status_code == 302
    assert _member("alice@lab.example").role == "steward"
    ldap_on(slapd_tls, FABLAB_LDAP_URL=ldaps, FABLAB_LDAP_CAFILE=slapd_tls.cafile)
    assert login(app_ctx.test_client(), "alice", ALICE_PW).status_code == 302


def test_tls_problems_refuse_sign_in_rather_than_send_the_password_unprotected(
        app_ctx, slapd_tls, ldap_on, caplog) -> None:
    starttls, ldaps = slapd_tls.tls_urls
    ca = slapd_tls.cafile
    cases = [
        ({"FABLAB_LDAP_URL": starttls, "FABLAB_LDAP_STARTTLS": True}, "CERTIFICATE_VERIFY_FAILED"),  # unknown CA
        ({"FABLAB_LDAP_URL": ldaps}, "CERTIFICATE_VERIFY_FAILED"),
        # The right CA, but the certificate is for "localhost", not for the address connected to.
        ({"FABLAB_LDAP_STARTTLS": True, "FABLAB_LDAP_CAFILE": ca}, "mismatch"),
        ({"FABLAB_LDAP_URL": f"ldaps://127.0.0.1:{slapd_tls.ldaps_port}", "FABLAB_LDAP_CAFILE": ca}, "mismatch"),
        ({"FABLAB_LDAP_URL": starttls, "FABLAB_LDAP_CAFILE": ca}, "requires TLS"),  # STARTTLS forgotten
    ]
    for overrides, logged in cases:
        ldap_on(slapd_tls, **overrides)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="fablab.services.ldap_login"):
            resp = login(app_ctx.test_client(), "alice", ALICE_PW)
        assert resp.status_code == 503, overrides
        assert UNAVAILABLE_MESSAGE in _text(resp)
        assert logged in caplog.text, (overrides, caplog.text)
        assert ALICE_PW not in caplog.text and SERVICE_PW not in caplog.text
    assert _member("alice@lab.example") is None


def test_directory_down_local_members_still_sign_in(app_ctx, slapd, ldap_on, make_member, caplog) -> None:
    ldap_on(slapd)
    make_member("ada@example.org", password="local-password-1")
    slapd.stop()
    with caplog.at_level(logging.WARNING, logger="fablab.services.ldap_login"):
        local = login(app_ctx.test_client(), "ada@example.org", "local-password-1")
        directory_only = login(app_ctx.test_client(), "alice", ALICE_PW)
    assert local.status_code == 302
    assert directory_only.status_code == 503
    body = _text(directory_only)
    assert UNAVAILABLE_MESSAGE in body and 'name="password"' in body  # the login page, with the reason
    assert any("could not ask" in r.getMessage() and slapd.url in r.getMessage() for r in caplog.records)
    assert ALICE_PW not in caplog.text and SERVICE_PW not in caplog.text
    for _ in range(6):  # not wrong guesses: retrying while it is down locks nobody out
        assert login(app_ctx.test_client(), "alice", ALICE_PW).status_code == 503
    slapd.start()
    assert login(app_ctx.test_client(), "alice", ALICE_PW).status_code == 302


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port where connections are accepted (by the kernel's backlog) and never answered: a hung server."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield int(listener.getsockname()[1])


def test_a_directory_that_accepts_but_never_answers_times_out(app_ctx, ldap_on, slapd, silent_server) -> None:
    ldap_on(slapd, FABLAB_LDAP_URL=f"ldap://127.0.0.1:{silent_server}", FABLAB_LDAP_TIMEOUT=1)
    started = time.monotonic()
    resp = login(app_ctx.test_client(), "alice", ALICE_PW)
    assert resp.status_code == 503 and UNAVAILABLE_MESSAGE in _text(resp)
    assert time.monotonic() - started < 5, "a short timeout, not a stuck worker"


def test_filter_injection_is_a_name_not_a_filter(app_ctx, slapd, ldap_on) -> None:
    # Only stewards may sign in. Unescaped, bob's name below would make the filter
    # (&(uid=bob)(|(uid=bob)(memberOf=...))) and let him in.
    ldap_on(slapd, FABLAB_LDAP_SEARCH_FILTER=f"(&(uid={{username}})(memberOf=cn=stewards,{GROUPS}))")
    for name in ("bob", "bob)(|(uid=bob", "*)(uid=*", "*", "b*"):
        assert login(app_ctx.test_client(), name, BOB_PW).status_code == 401, name
    assert login(app_ctx.test_client(), "al*", ALICE_PW).status_code == 401, "a wildcard is not alice"
    assert login(app_ctx.test_client(), "alice", ALICE_PW).status_code == 302
    assert _member("bob@lab.example") is None


def test_dn_injection_is_escaped(app_ctx, slapd, ldap_on) -> None:
    ldap_on(slapd, FABLAB_LDAP_BIND_DN=f"uid={{username}},{PEOPLE}", FABLAB_LDAP_SEARCH_BASE="")
    # "alice,ou=people" would otherwise build uid=alice,ou=people,ou=people,...; escaped it is one odd uid.
    for name in ("alice,ou=people", "alice+cn=x", "#alice", "alice\\", " alice\\ "):
        assert login(app_ctx.test_client(), name, ALICE_PW).status_code == 401, name
    assert login(app_ctx.test_client(), "alice", ALICE_PW).status_code == 302


def test_refusals_after_a_right_password_say_why(app_ctx, slapd, ldap_on, make_member) -> None:
    ldap_on(slapd, FABLAB_LDAP_NEW_MEMBERS="link")
    resp = login(app_ctx.test_client(), "bob", BOB_PW)
    assert resp.status_code == 403 and "no member account for you here yet" in _text(resp)
    ldap_on(slapd)
    slapd.add_person("dave", "dave-directory-pw", name="Dave NoMail")
    resp = login(app_ctx.test_client(), "dave", "dave-directory-pw")
    assert resp.status_code == 403 and "directory has no email address" in _text(resp)
    ada = make_member("alice@lab.example")
    ada.active = False
    db.session.commit()
    resp = login(app_ctx.test_client(), "alice", ALICE_PW)
    assert resp.status_code == 403 and "deactivated" in _text(resp)
    assert db.session.scalar(select(db.func.count()).select_from(Member)) == 1


def test_misconfigured_ldap_is_logged_and_local_sign_in_goes_on(app_ctx, slapd, ldap_on, make_member,
                                                                caplog) -> None:
    ldap_on(slapd, FABLAB_LDAP_SEARCH_BASE="", FABLAB_LDAP_ROLE_MAP="boss=stewards")
    make_member("ada@example.org", password="local-password-1")
    with caplog.at_level(logging.WARNING, logger="fablab.services.ldap_login"):
        resp = login(app_ctx.test_client(), "alice", ALICE_PW)
    assert resp.status_code == 503
    assert "FABLAB_LDAP_SEARCH_BASE" in caplog.text and "FABLAB_LDAP_ROLE_MAP" in caplog.text
    assert login(app_ctx.test_client(), "ada@example.org", "local-password-1").status_code == 302
    ldap_on(slapd, FABLAB_LDAP_SERVICE_PASSWORD="not-the-service-password")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="fablab.services.ldap_login"):
        assert login(app_ctx.test_client(), "alice", ALICE_PW).status_code == 503
    assert "service account" in caplog.text and "not-the-service-password" not in caplog.text


def test_login_form_asks_for_a_username_only_when_ldap_is_on(app, client, ldap_on, slapd) -> None:
    page = client.get("/login").get_data(as_text=True)
    assert ">Email</label>" in page and 'type="email"' in page
    ldap_on(slapd)
    page = client.get("/login").get_data(as_text=True)
    assert ">Email or username</label>" in page
    assert re.search(r'<input[^>]*autocomplete="username"[^>]*type="text"|<input[^>]*type="text"[^>]*'
                     r'autocomplete="username"', page)


def test_person_dn_is_what_the_fixture_seeded(slapd) -> None:
    # Guards the fixture the other tests stand on: the seeded people exist and bind with their passwords.
    import ldap3

    conn = ldap3.Connection(ldap3.Server(slapd.host, port=slapd.port, get_info=ldap3.NONE),
                            person_dn("alice"), ALICE_PW)
    assert conn.bind()
    conn.search(person_dn("alice"), "(objectClass=*)", search_scope=ldap3.BASE, attributes=["memberOf"])
    assert [str(v) for v in conn.entries[0].memberOf.values] == [f"cn=stewards,{GROUPS}"]
    conn.unbind()
    wrong = ldap3.Connection(ldap3.Server(slapd.host, port=slapd.port, get_info=ldap3.NONE), person_dn("alice"),
                             "wrong")
    assert not wrong.bind() and wrong.result["description"] == "invalidCredentials"
    wrong.unbind()
