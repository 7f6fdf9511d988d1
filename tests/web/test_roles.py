"""Every route checks its role: anonymous visitors are sent to sign in (or get 401 from the API),
members get 403 on staff routes, stewards on admin-only ones."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import login

ANON_OK = {"static", "auth.login", "auth.logout", "api.openapi"}


def _example_url(rule) -> str:
    url = rule.rule
    for arg in rule.arguments:
        url = re.sub(rf"<(?:[a-z]+:)?{arg}>", "1", url)
    return url


def _routes(app: Flask):
    for rule in app.url_map.iter_rules():
        if rule.endpoint in ANON_OK:
            continue
        view = app.view_functions[rule.endpoint]
        if getattr(view, "fablab_public", False):
            continue
        yield rule


def test_every_route_needs_sign_in(app: Flask, client: FlaskClient) -> None:
    checked = 0
    for rule in _routes(app):
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            resp = client.open(_example_url(rule), method=method)
            if rule.rule.startswith("/api/"):
                assert resp.status_code == 401, (rule.rule, method, resp.status_code)
            elif rule.endpoint.startswith("kiosk.") and not rule.rule.startswith("/kiosk/admin"):
                # The kiosk role: without a registered device's cookie, nothing is shown.
                assert resp.status_code in (400, 403), (rule.rule, method, resp.status_code)
            elif method == "GET":
                assert resp.status_code == 302 and "/login" in resp.location, (rule.rule, resp.status_code)
            else:
                # POST without a session: refused by CSRF (400) or sent to sign in, never served.
                assert resp.status_code in (302, 400, 401, 403), (rule.rule, method, resp.status_code)
            checked += 1
    assert checked > 10


@pytest.mark.parametrize("role,prefixes", [
    ("member", ("/admin/", "/kiosk/admin")),
])
def test_member_gets_403_on_staff_routes(app: Flask, client: FlaskClient, make_member, role, prefixes) -> None:
    make_member("m@example.org", role=role)
    login(client, "m@example.org")
    checked = 0
    for rule in _routes(app):
        if not rule.rule.startswith(prefixes) or "GET" not in rule.methods:
            continue
        resp = client.get(_example_url(rule))
        assert resp.status_code == 403, (rule.rule, resp.status_code)
        checked += 1
    assert checked >= 5


def test_steward_may_grant_but_not_edit_machines(client: FlaskClient, make_member) -> None:
    make_member("s@example.org", role="steward")
    login(client, "s@example.org")
    assert client.get("/admin/members").status_code == 200
    assert client.get("/admin/machines").status_code == 403
    assert client.get("/admin/machines/new").status_code == 403
    assert client.get("/admin/members/new").status_code == 403
