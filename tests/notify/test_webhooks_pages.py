"""The webhook admin pages: admin only (members and stewards get 403 on every route), CSRF on every form,
SSRF refusals as form errors, the secret shown once, ping, rotate, enable/disable, the log, redeliver."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from fablab.domain.webhook_signing import derive_secret
from fablab.extensions import db
from fablab.models.webhooks import Webhook, WebhookDelivery
from fablab.services import webhooks
from tests.conftest import csrf_token, login

NOW = datetime(2026, 3, 29, 1, 30, tzinfo=UTC)


def _url(rule, hook_id: int, delivery_id: int) -> str:
    return rule.rule.replace("<id:hook_id>", str(hook_id)).replace("<id:delivery_id>", str(delivery_id))


def _fixture_hook() -> tuple[Webhook, WebhookDelivery]:
    hook, _ = webhooks.create("http://127.0.0.1:9/hook", "", ["booking.created"], created_by=None, now=NOW)
    delivery = webhooks.queue_ping(hook, NOW)
    db.session.commit()
    return hook, delivery


@pytest.mark.parametrize("role", ["member", "steward"])
def test_members_and_stewards_get_403_on_every_webhooks_route(app: Flask, client: FlaskClient, make_member, role):
    hook, delivery = _fixture_hook()
    make_member("x@example.org", role=role)
    login(client, "x@example.org")
    token = csrf_token(client, "/")
    checked = 0
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("webhooks."):
            continue
        url = _url(rule, hook.id, delivery.id)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            data = {"csrf_token": token, "url": "http://127.0.0.1/x", "events": ["booking.created"]}
            resp = client.open(url, method=method, data=data if method == "POST" else None)
            assert resp.status_code == 403, (url, method, resp.status_code)
            checked += 1
    assert checked >= 12
    db.session.refresh(hook)
    assert hook.active and hook.url == "http://127.0.0.1:9/hook"
    assert db.session.scalar(select(func.count()).select_from(WebhookDelivery)) == 1


def test_anonymous_visitors_are_sent_to_sign_in(app: Flask, client: FlaskClient, app_ctx):
    hook, delivery = _fixture_hook()
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("webhooks.") and "GET" in rule.methods:
            resp = client.get(_url(rule, hook.id, delivery.id))
            assert resp.status_code == 302 and "/login" in resp.location


@pytest.fixture
def admin_client(client: FlaskClient, make_member) -> FlaskClient:
    make_member("admin@example.org", role="admin", name="Ada Admin")
    login(client, "admin@example.org")
    return client


def _post(client: FlaskClient, path: str, **data):
    data.setdefault("csrf_token", csrf_token(client, "/admin/webhooks"))
    return client.post(path, data=data)


@pytest.mark.parametrize("url,message", [
    ("http://169.254.169.254/latest/meta-data/", "link-local or cloud metadata"),
    ("http://[fd00:ec2::254]/", "link-local or cloud metadata"),
    ("http://[fe80::1]/hook", "link-local or cloud metadata"),
    ("ftp://example.org/x", "Only http:// and https://"),
    ("file:///etc/passwd", "Only http:// and https://"),
    ("http://user:pw@127.0.0.1/", "no user name or password"),
    ("not a url", "not a valid URL"),
])
def test_ssrf_and_bad_urls_are_refused_with_a_form_error(admin_client, url, message):
    resp = _post(admin_client, "/admin/webhooks/new", url=url, events=["booking.created"])
    assert resp.status_code == 422
    assert message in resp.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(Webhook)) == 0


def test_lan_and_loopback_urls_are_allowed_and_an_event_is_required(admin_client):
    resp = _post(admin_client, "/admin/webhooks/new", url="http://127.0.0.1:8123/api/webhook/abc")
    assert resp.status_code == 422 and "Pick at least one event type" in resp.get_data(as_text=True)
    resp = _post(admin_client, "/admin/webhooks/new", url="http://192.168.1.20/hook", events=["nope"])
    assert resp.status_code == 422
    for url in ("http://127.0.0.1:8123/api/webhook/abc", "http://192.168.1.20/hook", "https://[::1]:8443/x"):
        assert _post(admin_client, "/admin/webhooks/new", url=url, events=["machine.status"]).status_code == 201
    assert db.session.scalar(select(func.count()).select_from(Webhook)) == 3


def test_forms_need_their_csrf_token(admin_client, app_ctx):
    hook, _ = _fixture_hook()
    for path in ("/admin/webhooks/new", f"/admin/webhooks/{hook.id}/rotate", f"/admin/webhooks/{hook.id}/delete"):
        resp = admin_client.post(path, data={"url": "http://127.0.0.1/x", "events": ["booking.created"]})
        assert resp.status_code == 400, path
    assert db.session.get(Webhook, hook.id) is not None


def test_the_admin_manages_a_hook_from_creation_to_deletion(app: Flask, admin_client):
    resp = _post(admin_client, "/admin/webhooks/new", url="http://127.0.0.1:9/hook", description="chat bot",
                 events=["booking.created", "task.due"])
    assert resp.status_code == 201
    secret = re.search(r'value="([0-9a-f]{64})"', resp.get_data(as_text=True)).group(1)
    hook = db.session.scalars(select(Webhook)).one()
    assert secret == derive_secret(app.config["SECRET_KEY"], hook.id, hook.secret_salt)
    listing = admin_client.get("/admin/webhooks").get_data(as_text=True)
    assert "chat bot" in listing and "booking.created, task.due" in listing and secret not in listing

    page = admin_client.get(f"/admin/webhooks/{hook.id}/edit").get_data(as_text=True)
    checked = re.findall(r'<input checked[^>]*value="([a-z_.]+)"', page)
    assert checked == ["booking.created", "task.due"]
    resp = _post(admin_client, f"/admin/webhooks/{hook.id}/edit", url="http://127.0.0.1:10/other",
                 description="renamed", events=["usage.ended"])
    assert resp.status_code == 302
    db.session.refresh(hook)
    assert (hook.url, hook.description, hook.event_types) == ("http://127.0.0.1:10/other", "renamed", ["usage.ended"])
    resp = _post(admin_client, f"/admin/webhooks/{hook.id}/edit", url="http://169.254.169.254/",
                 events=["usage.ended"])
    assert resp.status_code == 422
    db.session.refresh(hook)
    assert hook.url == "http://127.0.0.1:10/other"

    resp = _post(admin_client, f"/admin/webhooks/{hook.id}/rotate")
    assert resp.status_code == 200 and resp.headers["Cache-Control"] == "no-store"
    new_secret = re.search(r'value="([0-9a-f]{64})"', resp.get_data(as_text=True)).group(1)
    db.session.refresh(hook)
    assert new_secret != secret and new_secret == webhooks.secret_for(hook)

    assert _post(admin_client, f"/admin/webhooks/{hook.id}/ping").status_code == 302
    ping = db.session.scalars(select(WebhookDelivery)).one()
    assert ping.event_type == "ping" and ping.status == "pending" and f'"webhook_id":{hook.id}' in ping.body
    log = admin_client.get(f"/admin/webhooks/{hook.id}/deliveries").get_data(as_text=True)
    assert ping.event_id in log and "waiting" in log

    assert _post(admin_client, f"/admin/webhooks/{hook.id}/disable").status_code == 302
    db.session.refresh(hook)
    assert not hook.active and "Ada Admin" in hook.disabled_reason
    assert "disabled" in admin_client.get("/admin/webhooks").get_data(as_text=True)
    assert _post(admin_client, f"/admin/webhooks/{hook.id}/enable").status_code == 302
    db.session.refresh(hook)
    assert hook.active and hook.disabled_reason is None

    ping.status, ping.attempts, ping.last_error = "failed", 16, "HTTP 500"
    db.session.commit()
    assert _post(admin_client, f"/admin/webhooks/{hook.id}/deliveries/{ping.id}/redeliver").status_code == 302
    db.session.refresh(ping)
    assert ping.status == "pending" and ping.attempts == 0

    hook_id = hook.id
    assert _post(admin_client, f"/admin/webhooks/{hook_id}/delete").status_code == 302
    assert db.session.scalar(select(func.count()).select_from(Webhook)) == 0
    assert db.session.scalar(select(func.count()).select_from(WebhookDelivery)) == 0
    assert admin_client.get(f"/admin/webhooks/{hook_id}/deliveries").status_code == 404


def test_the_log_is_paginated_and_bad_pages_are_4xx(admin_client, app_ctx):
    hook, _ = _fixture_hook()
    other, _ = _fixture_hook()
    for _ in range(60):
        webhooks.queue_ping(hook, NOW)
    db.session.commit()
    first = admin_client.get(f"/admin/webhooks/{hook.id}/deliveries").get_data(as_text=True)
    assert "Page 1 of 2" in first and first.count("Redeliver") == 50
    second = admin_client.get(f"/admin/webhooks/{hook.id}/deliveries?page=2").get_data(as_text=True)
    assert second.count("Redeliver") == 11
    for bad in ("0", "abc", "-1", "99999999999", "1e3"):
        assert admin_client.get(f"/admin/webhooks/{hook.id}/deliveries?page={bad}").status_code == 400, bad
    # Another hook's delivery cannot be redelivered through this one.
    theirs = db.session.scalars(select(WebhookDelivery).where(WebhookDelivery.webhook_id == other.id)).first()
    assert _post(admin_client, f"/admin/webhooks/{hook.id}/deliveries/{theirs.id}/redeliver").status_code == 404
    assert admin_client.get("/admin/webhooks/999999/edit").status_code == 404


@pytest.mark.parametrize("stored", [None, 5, "booking.created", {"a": 1}, ["booking.created", 3, None]])
def test_odd_stored_rows_never_fail_the_pages_or_the_listener(admin_client, app_ctx, stored):
    from fablab.services.lab_events import LabEvent, publish

    hook, delivery = _fixture_hook()
    hook.event_types = stored
    delivery.status, delivery.last_status_code, delivery.last_error = "weird", 999, "\x1b<b>bold</b>"
    db.session.commit()
    for path in ("/admin/webhooks", f"/admin/webhooks/{hook.id}/edit", f"/admin/webhooks/{hook.id}/deliveries"):
        resp = admin_client.get(path)
        assert resp.status_code == 200, path
        assert "<b>bold</b>" not in resp.get_data(as_text=True)
    publish(LabEvent("booking.created", NOW, {"booking_id": 1}))
    db.session.commit()
    queued = db.session.scalar(select(func.count()).select_from(WebhookDelivery)
                               .where(WebhookDelivery.event_type == "booking.created"))
    assert queued == (1 if isinstance(stored, list) else 0)
