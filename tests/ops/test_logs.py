"""FABLAB_LOG_FORMAT=json: one JSON object per line with the request id, route, status and duration;
the request id is the caller's when well formed, else a new one, and always echoed; secrets stay out."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from fablab.log_format import JsonFormatter, request_id_from

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def json_lines(app, monkeypatch) -> Iterator[io.StringIO]:
    monkeypatch.setitem(app.config, "FABLAB_LOG_FORMAT", "json")
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    level = root.level
    root.setLevel(logging.INFO)
    yield out
    root.removeHandler(handler)
    root.setLevel(level)


def records(out: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_a_request_line_carries_the_callers_request_id(client, json_lines, make_machine) -> None:
    make_machine("laser-j")
    resp = client.get("/machines/laser-j", headers={"X-Request-ID": "lb-42.a_b-c"})
    assert resp.headers["X-Request-ID"] == "lb-42.a_b-c"
    line = next(r for r in records(json_lines) if r["logger"] == "fablab.request")
    assert line["request_id"] == "lb-42.a_b-c"
    assert line["route"] == "/machines/<slug>" and line["status"] == resp.status_code
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    assert {"time", "level", "logger", "message"} <= line.keys() and line["level"] == "INFO"


@pytest.mark.parametrize("sent", ["has space", "x" * 65, "semi;colon", "ünïcode", ""])
def test_a_bad_request_id_is_replaced(client, sent) -> None:
    resp = client.get("/healthz", headers={"X-Request-ID": sent})
    got = resp.headers["X-Request-ID"]
    assert got != sent and len(got) == 32 and got.isalnum()


def test_a_request_id_is_made_when_none_is_sent(client) -> None:
    a = client.get("/healthz").headers["X-Request-ID"]
    b = client.get("/healthz").headers["X-Request-ID"]
    assert a != b and request_id_from(a) == a


def test_app_log_lines_inside_a_request_carry_its_id(app, json_lines) -> None:
    with app.test_request_context("/x"):
        from flask import g

        g.request_id = "req-7"
        logging.getLogger("fablab.usage").warning("something happened")
    line = records(json_lines)[-1]
    assert line["request_id"] == "req-7" and line["message"] == "something happened"
    assert line["route"] is None and line["level"] == "WARNING"


def test_secrets_are_redacted_in_json_mode(json_lines) -> None:
    # A logger the redaction filter was never put on: the formatter redacts on its own.
    logging.getLogger("thirdparty.client").warning(
        "GET /ical/member/FEEDTOKEN123.ics?token=TOPSECRET&x=1 Authorization: Bearer abc.DEF-123 "
        "/login?password=hunter2hunter2")
    try:
        raise RuntimeError("failed for /kiosk/activate/ACTIVATIONTOKEN9")
    except RuntimeError:
        logging.getLogger("thirdparty.client").exception("boom with ?api_key=KEY999")
    text = json_lines.getvalue()
    for secret in ("FEEDTOKEN123", "TOPSECRET", "abc.DEF-123", "hunter2hunter2", "ACTIVATIONTOKEN9", "KEY999"):
        assert secret not in text, secret
    assert "[redacted]" in records(json_lines)[0]["message"]
    assert "exception" in records(json_lines)[1]


def test_the_json_mode_end_to_end_in_a_fresh_process(tmp_path: Path) -> None:
    """create_app with FABLAB_LOG_FORMAT=json puts the one handler on the root logger: every line of stderr
    is a JSON object, the request line included."""
    code = ("from fablab import create_app\n"
            f"app = create_app({{'TESTING': True, 'INSTANCE_PATH': {str(tmp_path)!r}, "
            f"'SQLALCHEMY_DATABASE_URI': 'sqlite:///{tmp_path}/x.db'}})\n"
            "c = app.test_client()\n"
            "c.get('/no-such-page', headers={'X-Request-ID': 'e2e-1'})\n"
            "c.get('/healthz')\n"  # a probe that answers 200: not logged
            "import logging; logging.getLogger('fablab').info('password=%s', 'x?secret=abc123')\n")
    env = {**os.environ, "FABLAB_LOG_FORMAT": "json",
           "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "firmware-bridge")])}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=60, check=True)
    lines = [json.loads(line) for line in out.stderr.splitlines() if line.strip()]
    request = [r for r in lines if r["logger"] == "fablab.request"]
    assert len(request) == 1 and request[0]["request_id"] == "e2e-1" and request[0]["status"] == 404
    assert request[0]["route"] == "unmatched"
    assert "abc123" not in out.stderr
