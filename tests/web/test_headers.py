"""Security headers: a script policy without 'unsafe-inline' (a nonce for the one inline import map), HSTS
with secure cookies or HTTPS, and HTTPS recognised behind a trusted proxy (ProxyFix) so cookies are Secure."""

from __future__ import annotations

import re

import pytest

from fablab import create_app
from fablab.extensions import db
from tests.conftest import IsolatedClient, login


@pytest.fixture
def make_design(app_ctx):
    """A design with the binary STL of tests/data, through the real service (as tests/designs does)."""
    import io

    from fablab.services import designs as svc
    from tests.designs.conftest import data

    def make(author):
        return svc.create_design(author, title="Bracket", licence="CC-BY-4.0",
                                 files=[svc.Upload("part.stl", io.BytesIO(data("part_binary.stl")))])

    return make


def _directives(csp: str) -> dict[str, list[str]]:
    out = {}
    for part in csp.split(";"):
        words = part.split()
        if words:
            out[words[0]] = words[1:]
    return out


def test_script_policy_has_no_unsafe_inline(client) -> None:
    resp = client.get("/login")
    policy = _directives(resp.headers["Content-Security-Policy"])
    assert policy["script-src"] == ["'self'"]  # no inline script on this page, so no nonce either
    assert policy["object-src"] == ["'none'"] and policy["base-uri"] == ["'self'"]
    assert not any("unsafe" in w for w in policy["script-src"] + policy["default-src"])


def test_the_design_page_import_map_carries_this_responses_nonce(client, make_member, make_design) -> None:
    ada = make_member("ada@example.org")
    design = make_design(author=ada)
    db.session.commit()
    login(client, "ada@example.org")
    nonces = []
    for _ in range(2):
        resp = client.get(f"/designs/{design.id}")
        assert resp.status_code == 200
        script_src = _directives(resp.headers["Content-Security-Policy"])["script-src"]
        assert "'unsafe-inline'" not in script_src
        page = resp.get_data(as_text=True)
        in_page = re.search(r'<script type="importmap" nonce="([^"]+)">', page)
        assert in_page, "the import map has a nonce"
        assert f"'nonce-{in_page.group(1)}'" in script_src
        nonces.append(in_page.group(1))
    assert nonces[0] != nonces[1]  # one per response, never reused


def test_no_page_has_inline_script_without_a_nonce(client, make_member, make_design) -> None:
    ada = make_member("ada@example.org", role="admin")
    design = make_design(author=ada)
    db.session.commit()
    login(client, "ada@example.org")
    for path in ("/", "/account", "/kiosk/admin", f"/designs/{design.id}", "/fairness/report"):
        page = client.get(path).get_data(as_text=True)
        for tag in re.findall(r"<script\b[^>]*>", page):
            assert "src=" in tag or "nonce=" in tag, (path, tag)
        assert not re.search(r"\son[a-z]+\s*=", page), path


def test_no_hsts_on_plain_http_without_secure_cookies(client) -> None:
    resp = client.get("/login")
    assert "Strict-Transport-Security" not in resp.headers
    assert "Secure" not in resp.headers.get("Set-Cookie", "")


@pytest.fixture
def make_app(db_config):
    made = []

    def make(**config):
        app = create_app(dict(db_config, **config))
        app.test_client_class = IsolatedClient
        made.append(app)
        return app

    yield make
    for app in made:
        with app.app_context():
            db.engine.dispose()


def test_secure_cookies_send_hsts_and_secure_session_cookie(make_app) -> None:
    app = make_app(SESSION_COOKIE_SECURE=True)
    resp = app.test_client().get("/login", base_url="https://lab.example")
    assert resp.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    assert "Secure" in resp.headers["Set-Cookie"]


def test_forwarded_https_is_ignored_without_proxy_fix(client) -> None:
    """Without FABLAB_PROXY_FIX nobody is trusted: a client cannot claim HTTPS by sending the header."""
    resp = client.get("/login", headers={"X-Forwarded-Proto": "https"})
    assert "Strict-Transport-Security" not in resp.headers
    assert "Secure" not in resp.headers["Set-Cookie"]


def test_behind_a_trusted_proxy_https_is_detected_and_cookies_are_secure(make_app, make_member) -> None:
    make_member("ada@example.org")
    app = make_app(FABLAB_PROXY_FIX=1)
    client = app.test_client()
    proxied = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "lab.example", "X-Forwarded-For": "203.0.113.7"}
    resp = client.get("/login", headers=proxied)
    assert resp.headers["Strict-Transport-Security"].startswith("max-age=31536000")
    assert re.search(r"session=[^;]+;.*\bSecure\b", resp.headers["Set-Cookie"])
    # The sign-in itself: the session cookie that matters is Secure, and links are built for HTTPS.
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', resp.get_data(as_text=True))
    assert token
    # Over HTTPS flask-wtf also wants a same-site Referer: the forwarded host must be the one the browser saw.
    resp = client.post("/login", headers={**proxied, "Referer": "https://lab.example/login"},
                       data={"email": "ada@example.org", "password": "correct-horse-9", "csrf_token": token.group(1)})
    assert resp.status_code == 302
    assert "Secure" in resp.headers["Set-Cookie"]
    feed = client.get("/designs/feed.atom", headers=proxied).get_data(as_text=True)
    assert "https://lab.example/designs/feed.atom" in feed  # absolute links name the proxy's HTTPS host
    # Plain HTTP through the same proxy: no HSTS, no Secure flag.
    plain = app.test_client().get("/login", headers={"X-Forwarded-Proto": "http"})
    assert "Strict-Transport-Security" not in plain.headers
    assert "Secure" not in plain.headers["Set-Cookie"]
