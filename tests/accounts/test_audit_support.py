"""Helpers (no tests) for the member import and audit tests: uploading a member CSV through the real form,
reading the audit log. Not a conftest.py: other accounts tests may bring their own."""

from __future__ import annotations

import io
import json
import re
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.test import encode_multipart

from fablab.extensions import db
from fablab.models.accounts import AuditEntry
from tests.conftest import csrf_token


def upload_csv(client: FlaskClient, data: bytes, filename: str = "members.csv") -> Any:
    values = MultiDict({"csrf_token": csrf_token(client, "/admin/members/import")})
    values.add("file", FileStorage(io.BytesIO(data), filename=filename))
    boundary, body = encode_multipart(values)
    return client.post("/admin/members/import", data=body, content_type=f"multipart/form-data; boundary={boundary}")


def import_token(resp: Any) -> str:
    found = re.search(r'action="/admin/members/import/([A-Za-z0-9_-]+)"', resp.get_data(as_text=True))
    assert found, resp.get_data(as_text=True)[:3000]
    return found.group(1)


def confirm(client: FlaskClient, token: str, only_valid: bool = False) -> Any:
    fields = {"csrf_token": csrf_token(client, "/admin/members/import")}
    if only_valid:
        fields["only_valid"] = "1"
    return client.post(f"/admin/members/import/{token}", data=fields)


def entries(action: str | None = None) -> list[AuditEntry]:
    stmt = select(AuditEntry).order_by(AuditEntry.id)
    if action:
        stmt = stmt.where(AuditEntry.action == action)
    return list(db.session.scalars(stmt))


def detail(entry: AuditEntry) -> dict[str, Any]:
    value = json.loads(entry.detail)
    assert isinstance(value, dict)
    return value
