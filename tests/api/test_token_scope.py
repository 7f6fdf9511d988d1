"""API tokens have a scope (read, or read and write) and an optional expiry; tokens from before keep
working as read-write."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
import time_machine
from flask import Flask
from sqlalchemy import select

from fablab import create_app
from fablab.extensions import db
from fablab.models import ApiToken
from fablab.security import token_digest
from fablab.services.members import create_api_token
from tests.conftest import csrf_token, login
from tests.test_migrations import _admin_sql, _fresh_config


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_read_token_reads_but_may_not_write(client, make_member) -> None:
    member = make_member()
    read = create_api_token(member, "dashboard", scope="read")
    write = create_api_token(member, "script")
    db.session.commit()
    assert client.get("/api/v1/machines", headers=_auth(read)).status_code == 200
    refused = client.post("/api/v1/bookings", headers=_auth(read), json={})
    assert refused.status_code == 403
    assert refused.json["error"]["code"] == "insufficient_scope"
    assert "only read" in refused.json["error"]["message"]
    assert client.delete("/api/v1/bookings/1", headers=_auth(read)).status_code == 403
    # a read-and-write token gets past the scope check to the request's own validation
    assert client.post("/api/v1/bookings", headers=_auth(write), json=[]).status_code == 400


def test_expired_token_is_refused_with_a_clear_message(client, make_member) -> None:
    member = make_member()
    token = create_api_token(member, scope="read", expires_at=datetime.now(UTC) + timedelta(days=7))
    db.session.commit()
    assert client.get("/api/v1/machines", headers=_auth(token)).status_code == 200
    with time_machine.travel(datetime.now(UTC) + timedelta(days=7, minutes=1), tick=True):
        resp = client.get("/api/v1/machines", headers=_auth(token))
    assert resp.status_code == 401
    assert resp.json["error"]["code"] == "token_expired"
    assert "expired" in resp.json["error"]["message"] and "account page" in resp.json["error"]["message"]
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")


def test_account_page_creates_scoped_expiring_tokens_and_shows_both(client, make_member) -> None:
    make_member("ada@example.org")
    login(client, "ada@example.org")
    page = client.post("/account/tokens", data={"csrf_token": csrf_token(client, "/account"), "t-name": "calendar",
                                                "t-scope": "read", "t-expires_days": "30"}).get_data(as_text=True)
    new = re.search(r'value="([^"]+)"[^>]*aria-label="New API token"', page).group(1)
    row = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == token_digest(new)))
    assert row.scope == "read"
    assert timedelta(days=29, hours=23) < row.expires_at - datetime.now(UTC) <= timedelta(days=30)
    listed = re.search(rf'<tr data-token="{row.id}">(.*?)</tr>', page, re.S).group(1)
    tz = client.application.config["TZ"]
    assert "read only" in listed and row.expires_at.astimezone(tz).strftime("%d %b %Y") in listed
    assert client.post("/api/v1/bookings", headers=_auth(new), json={}).status_code == 403
    page = client.post("/account/tokens", data={"csrf_token": csrf_token(client, "/account"), "t-name": "script",
                                                "t-scope": "write", "t-expires_days": ""}).get_data(as_text=True)
    other = re.search(r'value="([^"]+)"[^>]*aria-label="New API token"', page).group(1)
    row = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == token_digest(other)))
    assert row.scope == "write" and row.expires_at is None
    listed = re.search(rf'<tr data-token="{row.id}">(.*?)</tr>', page, re.S).group(1)
    assert "read and write" in listed and "never" in listed
    bad = client.post("/account/tokens", data={"csrf_token": csrf_token(client, "/account"), "t-name": "x",
                                               "t-scope": "admin", "t-expires_days": "30"})
    assert bad.status_code == 422 and "Not a valid choice" in bad.get_data(as_text=True)


def test_cli_creates_a_read_token_with_expiry(app: Flask, app_ctx, make_member) -> None:
    make_member("ada@example.org")
    result = app.test_cli_runner().invoke(args=["create-token", "ada@example.org", "--scope", "read",
                                                "--expires-days", "7"])
    assert result.exit_code == 0, result.output
    token = result.output.strip().splitlines()[-1]
    row = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == token_digest(token)))
    assert row.scope == "read" and row.expires_at is not None
    assert timedelta(days=6, hours=23) < row.expires_at - datetime.now(UTC) <= timedelta(days=7)
    bad = app.test_cli_runner().invoke(args=["create-token", "ada@example.org", "--expires-days", "0"])
    assert bad.exit_code != 0


def test_tokens_from_before_the_migration_keep_working_read_write(tmp_path) -> None:
    cfg = _fresh_config(tmp_path)
    app = create_app(cfg)
    try:
        with app.app_context():
            from flask_migrate import downgrade, upgrade

            upgrade(revision="0006_ingest_integrity")
            now = datetime.now(UTC)
            with db.engine.begin() as conn:
                conn.execute(sa.text(
                    "INSERT INTO members (id, member_no, email, name, role, active, share, created_at) "
                    "VALUES (1, 1001, 'old@example.org', 'Old', 'member', :t, 1.0, :now)"), {"t": True, "now": now})
                conn.execute(sa.text(
                    "INSERT INTO api_tokens (member_id, name, token_hash, created_at, revoked) "
                    "VALUES (1, 'old', :h, :now, :f)"), {"h": token_digest("old-token"), "now": now, "f": False})
            upgrade(revision="head")
            with db.engine.connect() as conn:
                scope, expires = conn.execute(sa.text("SELECT scope, expires_at FROM api_tokens")).one()
            assert scope == "write" and expires is None
            client = app.test_client()
            assert client.get("/api/v1/machines", headers=_auth("old-token")).status_code == 200
            resp = client.post("/api/v1/bookings", headers=_auth("old-token"), json=[])
            assert resp.status_code == 400  # past the scope check, to the request's own validation
            db.session.remove()
            downgrade(revision="base")
            db.engine.dispose()
    finally:
        if "_schema" in cfg:
            _admin_sql(f"DROP SCHEMA {cfg['_schema']} CASCADE")


def test_downgrade_revokes_what_would_widen(tmp_path) -> None:
    cfg = _fresh_config(tmp_path)
    app = create_app(cfg)
    try:
        with app.app_context():
            from flask_migrate import downgrade, upgrade

            upgrade(revision="head")
            from fablab.services import members

            m = members.create_member("ada@example.org", "Ada", password="correct-horse-9")
            create_api_token(m, "read", scope="read")
            create_api_token(m, "soon", expires_at=datetime.now(UTC) + timedelta(days=1))
            create_api_token(m, "rw")
            db.session.commit()
            db.session.remove()
            downgrade(revision="0006_ingest_integrity")
            with db.engine.connect() as conn:
                rows = dict(conn.execute(sa.text("SELECT name, revoked FROM api_tokens")).all())
            assert {k: bool(v) for k, v in rows.items()} == {"read": True, "soon": True, "rw": False}
            downgrade(revision="base")
            db.engine.dispose()
    finally:
        if "_schema" in cfg:
            _admin_sql(f"DROP SCHEMA {cfg['_schema']} CASCADE")
