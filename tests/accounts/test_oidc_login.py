"""OpenID Connect sign-in end to end against a real OpenID provider (npm's oidc-provider on loopback,
tests/support/oidc_server.py): first login creates or links a member, groups map to roles, and every bad
answer (provider down, bad signature, wrong audience, wrong nonce, expired token, state mismatch, replay,
access denied) gets a clear page at the sign-in and no session."""

from __future__ import annotations

import html
import logging
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from fablab.extensions import db
from fablab.models import Member, MemberSession
from fablab.models.accounts import MemberIdentity
from tests.conftest import csrf_token, login
from tests.support.oidc_server import OidcProvider, client, skip_reason

BASE = "http://localhost"
REDIRECT = BASE + "/login/oidc/callback"
SECRET = "fablab-test-client-secret-7Qx"
ACCOUNTS: dict[str, dict[str, Any]] = {
    "alice": {"sub": "sub-alice", "email": "alice@example.org", "email_verified": True, "name": "Alice Example",
              "groups": ["fablab-stewards", "everyone"]},
    "bob": {"sub": "sub-bob", "email": "bob@example.org", "email_verified": False, "name": "Bob Unverified",
            "groups": []},
    "carol": {"sub": "sub-carol", "email": "carol@example.org", "email_verified": True, "name": "Carol",
              "groups": ["/lab/fablab-admins"]},
    "dave": {"sub": "sub-dave", "email": "dave@example.org", "email_verified": True, "name": "Dave",
             "groups": ["everyone"]},
}


@pytest.fixture(scope="module")
def provider_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    return tmp_path_factory.mktemp("oidc")


@pytest.fixture(scope="module")
def main_provider(provider_dir: Path) -> Iterator[OidcProvider]:
    p = OidcProvider(provider_dir, clients=[client("fablab", SECRET, REDIRECT)], accounts=ACCOUNTS).start()
    yield p
    p.stop()


@pytest.fixture
def use_provider(app: Flask, monkeypatch: pytest.MonkeyPatch) -> Callable[..., OidcProvider]:
    """Point the app at a provider, with the provider's clock set to the test's (which may be frozen)."""

    def use(p: OidcProvider, *, new_members: str = "link", role_map: str = "") -> OidcProvider:
        for key, value in {"FABLAB_OIDC_ISSUER": p.issuer, "FABLAB_OIDC_CLIENT_ID": "fablab",
                           "FABLAB_OIDC_CLIENT_SECRET": SECRET, "FABLAB_OIDC_NAME": "Lab SSO",
                           "FABLAB_OIDC_NEW_MEMBERS": new_members, "FABLAB_OIDC_ROLE_MAP": role_map,
                           "FABLAB_BASE_URL": BASE}.items():
            monkeypatch.setitem(app.config, key, value)
        if p.proc is not None:
            p.set_clock(time.time())
        return p

    return use


@pytest.fixture
def oidc(main_provider: OidcProvider, use_provider: Callable[..., OidcProvider]) -> Callable[..., OidcProvider]:
    return lambda **kw: use_provider(main_provider, **kw)


def start(c: FlaskClient, next_url: str | None = None) -> str:
    resp = c.get("/login/oidc" + (f"?next={next_url}" if next_url else ""))
    assert resp.status_code == 302, resp.get_data(as_text=True)
    return str(resp.headers["Location"])


def callback_path(url: str) -> str:
    assert url.startswith(REDIRECT), url
    return url[len(BASE):]


def sso_login(c: FlaskClient, p: OidcProvider, who: str, next_url: str | None = None) -> Any:
    return c.get(callback_path(p.sign_in(start(c, next_url), who)))


def signed_in(c: FlaskClient) -> bool:
    return c.get("/account").status_code == 200


def sessions_count() -> int:
    return int(db.session.scalar(select(func.count()).select_from(MemberSession)) or 0)


def assert_refused(resp: Any, status: int, words: str) -> str:
    page = resp.get_data(as_text=True)
    assert resp.status_code == status, page
    text = html.unescape(page)
    assert "Single sign-on failed:" in text and "Sign in with your password, or try again." in text
    assert words in text
    assert 'name="password"' in page  # the sign-in page itself, with its password form
    return text


# --- first sign-in: create, link by verified email, roles -------------------------------------------------------

def test_first_login_creates_member_with_the_mapped_role(app_ctx: Flask, oidc: Any) -> None:
    p = oidc(new_members="create", role_map="admin=fablab-admins,steward=fablab-stewards")
    c = app_ctx.test_client()
    url = start(c, "/machines")
    query = parse_qs(urlsplit(url).query)
    assert query["code_challenge_method"] == ["S256"] and query["code_challenge"][0]
    assert query["nonce"][0] and query["state"][0] and query["client_id"] == ["fablab"]

    resp = c.get(callback_path(p.sign_in(url, "alice")))
    assert resp.status_code == 302 and resp.headers["Location"] == "/machines"
    member = db.session.scalar(select(Member).where(Member.email == "alice@example.org"))
    assert member is not None and member.name == "Alice Example" and member.role == "steward"
    assert member.password_hash is None and member.email_verified_at is not None
    ident = db.session.scalar(select(MemberIdentity).where(MemberIdentity.member_id == member.id))
    assert ident is not None and (ident.provider, ident.subject) == (f"oidc:{p.issuer}", "sub-alice")
    page = c.get("/account").get_data(as_text=True)
    assert "Linked sign-ins" in page and "Lab SSO" in page and "alice@example.org" in page

    # Keycloak-style group paths map by their last part; the highest role wins.
    c2 = app_ctx.test_client()
    assert sso_login(c2, p, "carol").status_code == 302
    assert db.session.scalar(select(Member.role).where(Member.email == "carol@example.org")) == "admin"


def test_second_login_finds_the_member_by_subject_and_follows_the_groups(app_ctx: Flask, oidc: Any,
                                                                         make_member: Any) -> None:
    p = oidc(role_map="steward=fablab-stewards")
    dave = make_member("dave@example.org", role="steward")
    c = app_ctx.test_client()
    assert sso_login(c, p, "dave").status_code == 302
    db.session.refresh(dave)
    assert dave.role == "member"  # no longer in a mapped group: the provider decides
    c.post("/logout", data={"csrf_token": csrf_token(c, "/account")})
    assert not signed_in(c)
    assert sso_login(c, p, "dave").status_code == 302 and signed_in(c)
    assert db.session.scalar(select(func.count()).select_from(MemberIdentity)) == 1


def test_links_an_existing_member_by_verified_email_who_keeps_the_password(app_ctx: Flask, oidc: Any,
                                                                           make_member: Any) -> None:
    p = oidc()  # link mode, no role map: the role stays
    alice = make_member("alice@example.org", role="admin", name="Alice Local")
    c = app_ctx.test_client()
    resp = sso_login(c, p, "alice")
    assert resp.status_code == 302 and signed_in(c)
    assert html.unescape(c.get("/account").get_data(as_text=True)).count("Alice Local") >= 1
    db.session.refresh(alice)
    assert alice.role == "admin"
    assert db.session.scalar(select(MemberIdentity.member_id)) == alice.id

    other = app_ctx.test_client()
    assert login(other, "alice@example.org").status_code == 302 and signed_in(other)


def test_unverified_email_does_not_link(app_ctx: Flask, oidc: Any, make_member: Any) -> None:
    p = oidc(new_members="create")
    make_member("bob@example.org")
    c = app_ctx.test_client()
    text = html.unescape(sso_login(c, p, "bob").get_data(as_text=True))
    assert "has not verified that address" in text
    assert not signed_in(c) and sessions_count() == 0
    assert db.session.scalar(select(func.count()).select_from(MemberIdentity)) == 0


def test_unverified_email_creates_no_account(app_ctx: Flask, oidc: Any) -> None:
    p = oidc(new_members="create")
    c = app_ctx.test_client()
    resp = sso_login(c, p, "bob")
    assert resp.status_code == 403 and "has not verified bob@example.org" in html.unescape(resp.get_data(as_text=True))
    assert db.session.scalar(select(func.count()).select_from(Member)) == 0 and sessions_count() == 0


def test_unknown_person_in_link_mode_gets_no_account(app_ctx: Flask, oidc: Any) -> None:
    p = oidc()
    c = app_ctx.test_client()
    resp = sso_login(c, p, "carol")
    assert resp.status_code == 403
    assert "no member account for you here yet" in html.unescape(resp.get_data(as_text=True))
    assert db.session.scalar(select(func.count()).select_from(Member)) == 0 and not signed_in(c)


# --- linked sign-ins on the account page ------------------------------------------------------------------------

def link_url(page: str) -> str:
    found = re.search(r'<a class="button primary" href="([^"]+)">Continue to', page)
    assert found, page
    return html.unescape(found.group(1))


def test_a_local_member_links_and_unlinks_the_provider_account(app_ctx: Flask, oidc: Any, make_member: Any) -> None:
    p = oidc()
    member = make_member("someone.local@example.org")  # another address than the provider's: linked by hand
    c = app_ctx.test_client()
    login(c, "someone.local@example.org")
    page = c.post("/account/linked/oidc", data={"csrf_token": csrf_token(c, "/account")})
    assert page.status_code == 200
    resp = c.get(callback_path(p.sign_in(link_url(page.get_data(as_text=True)), "dave")))
    assert resp.status_code == 302 and resp.headers["Location"] == "/account"
    ident = db.session.scalar(select(MemberIdentity))
    assert ident is not None and ident.member_id == member.id and ident.subject == "sub-dave"

    # Now the provider account signs this member in, and the password still does.
    other = app_ctx.test_client()
    assert sso_login(other, p, "dave").status_code == 302
    assert "someone.local" in other.get("/account").get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(Member)) == 1

    resp = c.post(f"/account/linked/{ident.id}/unlink", data={"csrf_token": csrf_token(c, "/account")})
    assert resp.status_code == 302
    assert db.session.scalar(select(func.count()).select_from(MemberIdentity)) == 0
    assert login(app_ctx.test_client(), "someone.local@example.org").status_code == 302


def test_linking_needs_csrf_and_a_signed_in_member(app_ctx: Flask, oidc: Any, make_member: Any) -> None:
    oidc()
    c = app_ctx.test_client()
    assert c.post("/account/linked/oidc").status_code in (302, 400)
    make_member("x@example.org")
    login(c, "x@example.org")
    assert c.post("/account/linked/oidc").status_code == 400  # no CSRF token


def test_an_account_linked_to_someone_else_is_not_linked_again(app_ctx: Flask, oidc: Any, make_member: Any) -> None:
    p = oidc()
    make_member("alice@example.org")
    assert sso_login(app_ctx.test_client(), p, "alice").status_code == 302  # alice's member has it
    make_member("eve@example.org")
    c = app_ctx.test_client()
    login(c, "eve@example.org")
    page = c.post("/account/linked/oidc", data={"csrf_token": csrf_token(c, "/account")}).get_data(as_text=True)
    resp = c.get(callback_path(p.sign_in(link_url(page), "alice")))
    assert resp.status_code == 409
    assert "already linked to another member" in html.unescape(resp.get_data(as_text=True))
    assert db.session.scalar(select(func.count()).select_from(MemberIdentity)) == 1


def test_the_only_way_in_cannot_be_unlinked(app_ctx: Flask, oidc: Any) -> None:
    p = oidc(new_members="create")
    c = app_ctx.test_client()
    assert sso_login(c, p, "alice").status_code == 302
    ident = db.session.scalar(select(MemberIdentity))
    assert ident is not None
    resp = c.post(f"/account/linked/{ident.id}/unlink", data={"csrf_token": csrf_token(c, "/account")})
    assert resp.status_code == 409 and "only way to sign in" in resp.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(MemberIdentity)) == 1


# --- bad answers: a clear page, no session, nothing secret shown or logged --------------------------------------

@pytest.fixture
def quiet_check(caplog: pytest.LogCaptureFixture) -> Iterator[Callable[[str], None]]:
    """Captures every log record; `check(page)` asserts neither holds the client secret or a token."""
    caplog.set_level(logging.DEBUG)

    def check(page: str) -> None:
        for text in (page, caplog.text):
            assert SECRET not in text
            assert "eyJ" not in text  # a JWT (ID token) or a JSON token starts so
        assert sessions_count() == 0

    yield check


def test_provider_down_at_discovery(app_ctx: Flask, provider_dir: Path, use_provider: Any,
                                    quiet_check: Any) -> None:
    use_provider(OidcProvider(provider_dir, clients=[client("fablab", SECRET, REDIRECT)], accounts=ACCOUNTS))
    c = app_ctx.test_client()  # never started: nothing listens on its port
    text = assert_refused(c.get("/login/oidc"), 502, "Lab SSO did not answer (discovery).")
    quiet_check(text)
    assert not signed_in(c)


def test_provider_down_at_the_token_endpoint(app_ctx: Flask, provider_dir: Path, use_provider: Any,
                                             quiet_check: Any) -> None:
    p = use_provider(OidcProvider(provider_dir, clients=[client("fablab", SECRET, REDIRECT)],
                                  accounts=ACCOUNTS).start())
    try:
        c = app_ctx.test_client()
        back = p.sign_in(start(c), "alice")
    finally:
        p.stop()
    resp = c.get(callback_path(back))
    quiet_check(assert_refused(resp, 502, "Lab SSO did not answer (token endpoint)."))
    assert parse_qs(urlsplit(back).query)["code"][0] not in resp.get_data(as_text=True)
    assert not signed_in(c)


def test_bad_signature(app_ctx: Flask, provider_dir: Path, main_provider: OidcProvider, use_provider: Any,
                       quiet_check: Any) -> None:
    # A second provider with its own keys (same key id) that publishes the main provider's key set.
    p = OidcProvider(provider_dir, clients=[client("fablab", SECRET, REDIRECT)], accounts=ACCOUNTS,
                     jwks_uri=main_provider.issuer + "/jwks").start()
    try:
        use_provider(p, new_members="create")
        c = app_ctx.test_client()
        resp = sso_login(c, p, "alice")
    finally:
        p.stop()
    quiet_check(assert_refused(resp, 502, "its signature is not the provider's"))
    assert db.session.scalar(select(func.count()).select_from(Member)) == 0 and not signed_in(c)


def test_wrong_audience(app_ctx: Flask, provider_dir: Path, use_provider: Any, quiet_check: Any) -> None:
    # The provider's registration for our client id carries another client id: its tokens are for that one.
    p = OidcProvider(provider_dir, clients=[client("other-app", SECRET, REDIRECT)], accounts=ACCOUNTS,
                     alias_clients={"fablab": "other-app"}).start()
    try:
        use_provider(p, new_members="create")
        c = app_ctx.test_client()
        resp = sso_login(c, p, "alice")
    finally:
        p.stop()
    quiet_check(assert_refused(resp, 502, "it was issued to another application"))
    assert not signed_in(c)


def test_wrong_nonce(app_ctx: Flask, oidc: Any, quiet_check: Any) -> None:
    p = oidc(new_members="create")
    c = app_ctx.test_client()
    url = start(c)
    with c.session_transaction() as sess:
        sess["oidc_pending"] = {**sess["oidc_pending"], "nonce": "not-the-nonce-sent"}
    resp = c.get(callback_path(p.sign_in(url, "alice")))
    quiet_check(assert_refused(resp, 400, "it belongs to another sign-in"))
    assert db.session.scalar(select(func.count()).select_from(Member)) == 0


def test_expired_id_token(app_ctx: Flask, oidc: Any, quiet_check: Any) -> None:
    p = oidc(new_members="create")
    p.set_clock(time.time() - 2 * 3600)  # the provider issues a one-hour token two hours ago
    c = app_ctx.test_client()
    resp = sso_login(c, p, "alice")
    quiet_check(assert_refused(resp, 502, "it has expired"))
    assert db.session.scalar(select(func.count()).select_from(Member)) == 0


def test_state_mismatch(app_ctx: Flask, oidc: Any, quiet_check: Any) -> None:
    p = oidc(new_members="create")
    c = app_ctx.test_client()
    back = p.sign_in(start(c), "alice")
    resp = c.get(callback_path(back).replace("state=", "state=x"))
    quiet_check(assert_refused(resp, 400, "does not belong to the sign-in started here"))


def test_replayed_callback(app_ctx: Flask, oidc: Any, make_member: Any) -> None:
    p = oidc()
    make_member("alice@example.org")
    c = app_ctx.test_client()
    back = callback_path(p.sign_in(start(c), "alice"))
    assert c.get(back).status_code == 302
    assert sessions_count() == 1
    # The same answer again, in this browser or in another: the round trip is gone, so nothing opens.
    assert_refused(c.get(back), 400, "already used or was not started in this browser")
    thief = app_ctx.test_client()
    assert_refused(thief.get(back), 400, "already used")
    assert not signed_in(thief) and sessions_count() == 1


def test_access_denied_at_the_provider(app_ctx: Flask, oidc: Any, quiet_check: Any) -> None:
    p = oidc(new_members="create")
    c = app_ctx.test_client()
    back = p.sign_in(start(c), "alice", cancel=True)
    assert "error=access_denied" in back
    quiet_check(assert_refused(c.get(callback_path(back)), 403, "Lab SSO did not let you in, or you cancelled there."))
    assert not signed_in(c)


def test_off_without_an_issuer(client: FlaskClient) -> None:
    assert client.get("/login/oidc").status_code == 404
    assert "Sign in with" not in client.get("/login").get_data(as_text=True)


def test_login_page_offers_the_button_and_keeps_next(app_ctx: Flask, oidc: Any) -> None:
    oidc()
    page = html.unescape(app_ctx.test_client().get("/login?next=/bookings").get_data(as_text=True))
    assert 'href="/login/oidc?next=/bookings"' in page or 'href="/login/oidc?next=%2Fbookings"' in page
    assert "Sign in with Lab SSO" in page


def test_next_that_leaves_the_site_is_dropped(app_ctx: Flask, oidc: Any, make_member: Any) -> None:
    p = oidc()
    make_member("alice@example.org")
    resp = sso_login(app_ctx.test_client(), p, "alice", next_url="//evil.example/x")
    assert resp.status_code == 302 and "evil" not in resp.headers["Location"]


def test_a_provider_naming_another_issuer_is_refused(app_ctx: Flask, main_provider: OidcProvider, use_provider: Any,
                                                     monkeypatch: pytest.MonkeyPatch, quiet_check: Any) -> None:
    use_provider(main_provider)
    # The same server under another name: its discovery document says it is http://127.0.0.1:…
    monkeypatch.setitem(app_ctx.config, "FABLAB_OIDC_ISSUER", main_provider.issuer.replace("127.0.0.1", "localhost"))
    quiet_check(assert_refused(app_ctx.test_client().get("/login/oidc"), 502, "names another issuer"))


def test_a_malformed_role_map_is_a_clear_page(app_ctx: Flask, oidc: Any) -> None:
    oidc(role_map="wizard=fablab-wizards")
    text = assert_refused(app_ctx.test_client().get("/login/oidc"), 503, "FABLAB_OIDC_ROLE_MAP setting is wrong")
    assert "wizard=fablab-wizards" in text
