"""Secrets stay out of logs while the links keep working: the private iCal feed answers calendar apps, and
the lines the servers write about it (werkzeug in-process, gunicorn as in production) show no token."""

from __future__ import annotations

import io
import logging
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from fablab.extensions import db
from fablab.log_redaction import REDACTED, redact
from fablab.services import members as member_service
from tests.support.live_server import LiveServer

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def feed_token(app_ctx, make_member) -> str:
    ada = make_member("ada@example.org", name="Ada Lovelace")
    token = member_service.new_ical_token(ada)
    db.session.commit()
    return token


@pytest.fixture
def werkzeug_log() -> Iterator[io.StringIO]:
    """What werkzeug's request logger writes, through a real handler and formatter."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    logger = logging.getLogger("werkzeug")
    saved = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield out
    logger.removeHandler(handler)
    logger.setLevel(saved)


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def test_the_feed_answers_but_the_dev_server_log_hides_its_token(app, feed_token, werkzeug_log) -> None:
    server = LiveServer(app).start()
    try:
        status, body = _get(f"{server.url}/ical/member/{feed_token}.ics")
        # The same token as a query value (a URL pasted into a link) and a wrong token are hidden too.
        _get(f"{server.url}/bookings?feed=http%3A%2F%2Fx%2Fical%2Fmember%2F{feed_token}.ics&token={feed_token}")
        missing, _ = _get(f"{server.url}/ical/member/not-{feed_token[:20]}.ics")
    finally:
        server.stop()
    assert status == 200 and b"BEGIN:VCALENDAR" in body and b"Ada Lovelace" in body
    assert missing == 404
    lines = werkzeug_log.getvalue()
    assert f"GET /ical/member/{REDACTED}.ics HTTP/1.1" in lines, lines
    assert lines.count(REDACTED) >= 4, lines
    assert feed_token not in lines and feed_token[:20] not in lines, lines


def test_the_apps_own_logger_hides_tokens(app, caplog) -> None:
    """Flask logs an unhandled error as 'Exception on <path>': a feed path must not carry its token there."""
    token = "Zq3_secret-token-value-0123456789abcdefghijk"
    with caplog.at_level(logging.INFO):
        app.logger.error("Exception on /ical/member/%s.ics [GET]", token)
        logging.getLogger("werkzeug").info('"GET /kiosk/activate/%s HTTP/1.1" 302 -', token)
    assert token not in caplog.text
    assert f"/ical/member/{REDACTED}.ics" in caplog.text and f"/kiosk/activate/{REDACTED}" in caplog.text


@pytest.mark.parametrize(("line", "expected"), [
    ("GET /ical/member/abc-DEF_123.ics HTTP/1.1", f"GET /ical/member/{REDACTED}.ics HTTP/1.1"),
    ("GET /bookings?feed=https%3A%2F%2Flab%2Fical%2Fmember%2FabcDEF.ics HTTP/1.1",
     f"GET /bookings?feed={REDACTED} HTTP/1.1"),
    ("GET /kiosk/activate/xyz_42 HTTP/1.1", f"GET /kiosk/activate/{REDACTED} HTTP/1.1"),
    ("GET /x?a=1&token=s3cr3t&b=2 HTTP/1.1", f"GET /x?a=1&token={REDACTED}&b=2 HTTP/1.1"),
    ('"Authorization: Bearer abc.def-ghi"', f'"Authorization: Bearer {REDACTED}"'),
    ("GET /machines/laser-1?week=2026-12-28 HTTP/1.1", "GET /machines/laser-1?week=2026-12-28 HTTP/1.1"),
    ("GET /login/oidc/callback?code=Xy_1&state=abc HTTP/1.1",
     f"GET /login/oidc/callback?code={REDACTED}&state={REDACTED} HTTP/1.1"),
])
def test_redact(line: str, expected: str) -> None:
    assert redact(line) == expected


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _gunicorn() -> str:
    exe = Path(sys.executable).with_name("gunicorn")
    if not exe.exists():
        pytest.skip("gunicorn is not installed (pip install 'fablab[server]')")
    return str(exe)


def test_gunicorn_access_log_hides_the_token(app, db_config, feed_token, tmp_path) -> None:
    """Production as the README runs it: gunicorn with its access log on stdout."""
    exe = _gunicorn()
    port = _free_port()
    config = {k: v for k, v in db_config.items() if k != "TESTING"}
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [exe, "-w", "1", "-b", f"127.0.0.1:{port}", "--access-logfile", "-", "--error-logfile", "-",
         "--log-level", "info", f"fablab:create_app({config!r})"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
        status, body = _get(f"http://127.0.0.1:{port}/ical/member/{feed_token}.ics")
        _get(f"http://127.0.0.1:{port}/login?next=%2Fical%2Fmember%2F{feed_token}.ics")
    finally:
        proc.terminate()
        output, _ = proc.communicate(timeout=30)
    assert status == 200 and b"BEGIN:VCALENDAR" in body, output
    assert f'"GET /ical/member/{REDACTED}.ics HTTP/1.1" 200' in output, output
    assert f"/login?next=%2Fical%2Fmember%2F{REDACTED}.ics" in output, output
    assert feed_token not in output, output


def test_redact_sees_through_repeated_percent_encoding() -> None:
    line = ("GET /login?next=/bookings?feed%3Dhttp%253A%252F%252Fx%252Fical%252Fmember%252FSECRET1.ics"
            "%26token%3DSECRET2%26week%3D1 HTTP/1.1")
    out = redact(line)
    assert "SECRET" not in out
    assert out.endswith("%26week%3D1 HTTP/1.1")  # what follows the secret value is kept
