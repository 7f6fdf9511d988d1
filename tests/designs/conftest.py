"""Helpers for the design tests: real files from tests/data/designs, uploads through the real form."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.test import encode_multipart

from tests.conftest import csrf_token

DATA = Path(__file__).resolve().parents[1] / "data" / "designs"


def data(name: str) -> bytes:
    return (DATA / name).read_bytes()


def stored_files(app: Flask) -> set[str]:
    """Every file under the upload directory (relative paths), partial uploads included."""
    root = Path(app.config["FABLAB_UPLOAD_DIR"])
    if not root.exists():
        return set()
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def post_design(client: FlaskClient, files: list[tuple[str, bytes]], **fields: Any) -> Any:
    """POST /designs/new as a browser would (multipart, CSRF token from the form)."""
    form: dict[str, Any] = {"title": "Test part", "licence": "CC-BY-SA-4.0", "description": "", "tags": "",
                            "csrf_token": csrf_token(client, "/designs/new")}
    form.update(fields)
    return post_multipart(client, "/designs/new", form, files)


def post_multipart(client: FlaskClient, url: str, fields: dict[str, Any], files: list[tuple[str, bytes]],
                   **kw: Any) -> Any:
    """Encode the body in memory: werkzeug's test builder spools big bodies to a temp file that stays open
    when the app refuses early (413), which pytest reports as a leaked file."""
    values = MultiDict()
    for key, value in fields.items():
        for v in value if isinstance(value, list) else [value]:
            values.add(key, v)
    for name, content in files:
        values.add("files", FileStorage(io.BytesIO(content), filename=name))
    boundary, body = encode_multipart(values)
    return client.post(url, data=body, content_type=f"multipart/form-data; boundary={boundary}", **kw)


def design_id_from(resp: Any) -> int:
    assert resp.status_code == 302, resp.get_data(as_text=True)[:2000]
    found = re.search(r"/designs/(\d+)$", resp.location)
    assert found, resp.location
    return int(found.group(1))


@pytest.fixture
def make_design(app_ctx: Flask, make_member) -> Callable[..., Any]:
    """Create a design through the service with real files (default: the binary STL)."""
    from fablab.services import designs as svc

    def make(author=None, title: str = "Bracket", licence: str = "CC-BY-4.0",
             files: list[tuple[str, bytes]] | None = None, **kw: Any):
        author = author or make_member()
        uploads = [svc.Upload(n, io.BytesIO(b)) for n, b in (files or [("part.stl", data("part_binary.stl"))])]
        return svc.create_design(author, title=title, licence=licence, files=uploads, **kw)

    return make
