"""`fablab notify` as a real process against the test database (SQLite file, or PostgreSQL when set) and a
slow SMTP server: killed with -9 mid-batch and restarted, stopped with SIGTERM, two processes side by side.
What arrived is counted by Message-ID."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy import func, insert, select

from fablab.extensions import db
from fablab.models.notifications import OutboxMail
from fablab.models.types import utcnow
from fablab.services import notify
from fablab.worker.notify import DELIVERIES, NotifyWorker
from tests.support.smtp import SmtpSink

N = 200


@pytest.fixture
def slow_sink() -> Iterator[SmtpSink]:
    sink = SmtpSink(delay=0.015)
    sink.start()
    yield sink
    sink.stop()


def _env(app, sink: SmtpSink) -> dict[str, str]:
    env = dict(os.environ)
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    opts = app.config.get("SQLALCHEMY_ENGINE_OPTIONS", {}).get("connect_args", {}).get("options")
    if opts:  # a private PostgreSQL schema: the search path goes in the URL
        url += ("&" if "?" in url else "?") + "options=" + quote(opts)
    env.update({"FABLAB_DATABASE_URL": url, "FABLAB_SECRET_KEY": app.config["SECRET_KEY"],
                "FABLAB_SMTP_URL": sink.url, "FABLAB_MAIL_FROM": "lab@fablab.example.org", "PYTHONUNBUFFERED": "1"})
    return env


def _queue(make_member, n: int = N) -> set[str]:
    member = make_member()
    now = utcnow()
    rows = [{"member_id": member.id, "kind": "booking_confirmed", "to_address": member.email,
             "message_id": notify.new_message_id(), "params": {}, "status": "pending", "attempts": 0,
             "next_attempt_at": now, "created_at": now} for _ in range(n)]
    db.session.execute(insert(OutboxMail), rows)
    db.session.commit()
    return {r["message_id"] for r in rows}


def _count(*where: Any) -> int:
    db.session.commit()  # a fresh snapshot each time
    return int(db.session.scalar(select(func.count()).select_from(OutboxMail).where(*where)) or 0)


def _wait(predicate: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _start(app, sink: SmtpSink, log: Path, *extra: str) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "fablab.cli", "notify", "--every", "0.2", "--lease", "3", *extra]
    with open(log, "ab") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(cmd, env=_env(app, sink), stdout=out, stderr=subprocess.STDOUT)


def _stop(*procs: subprocess.Popen[bytes] | None) -> None:
    for p in procs:
        if p is not None and p.poll() is None:
            p.terminate()
            p.wait(10)


def test_killed_mid_batch_and_restarted_every_mail_arrives_at_most_one_repeat(app_ctx, slow_sink, make_member,
                                                                              tmp_path: Path):
    ids = _queue(make_member)
    log = tmp_path / "notify.log"
    first = _start(app_ctx, slow_sink, log)
    second = None
    try:
        _wait(lambda: len(slow_sink.messages) >= 60, 120, "the first 60 mails")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        at_kill = len(slow_sink.messages)
        assert at_kill < N and _count(OutboxMail.status == "pending") > 0  # killed mid-batch, with mails leased
        second = _start(app_ctx, slow_sink, log)
        _wait(lambda: _count(OutboxMail.status == "sent") == N, 120, "every mail sent after the restart")
    finally:
        _stop(first, second)
    arrived = Counter(m["Message-ID"] for m in slow_sink.messages)
    assert set(arrived) == ids  # nothing lost, nothing foreign
    repeats = {mid: n for mid, n in arrived.items() if n > 1}
    assert len(repeats) <= 1 and all(n == 2 for n in repeats.values()), (repeats, log.read_text()[-2000:])
    assert _count(OutboxMail.status == "sent", OutboxMail.sent_at.is_not(None)) == N
    assert slow_sink.connections >= 2


def test_sigterm_finishes_the_mail_in_flight_and_gives_the_rest_back(app_ctx, slow_sink, make_member,
                                                                     tmp_path: Path):
    ids = _queue(make_member)
    proc = _start(app_ctx, slow_sink, tmp_path / "notify.log")
    try:
        _wait(lambda: len(slow_sink.messages) >= 20, 120, "the first 20 mails")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        _stop(proc)
    arrived = [m["Message-ID"] for m in slow_sink.messages]
    sent = _count(OutboxMail.status == "sent")
    assert len(arrived) == len(set(arrived)) == sent < N  # each one recorded, none in doubt
    assert _count(OutboxMail.status == "pending", OutboxMail.lease_until.is_(None), OutboxMail.attempts == 0) \
        == N - sent  # given back, due at once for the next process
    assert set(arrived) < ids


def test_two_processes_share_the_work_and_send_nothing_twice(app_ctx, slow_sink, make_member, tmp_path: Path):
    ids = _queue(make_member)
    log = tmp_path / "notify.log"
    procs = [_start(app_ctx, slow_sink, log, "--batch", "20") for _ in range(2)]
    try:
        _wait(lambda: _count(OutboxMail.status == "sent") == N, 120, "every mail sent")
    finally:
        _stop(*procs)
    arrived = Counter(m["Message-ID"] for m in slow_sink.messages)
    assert set(arrived) == ids and max(arrived.values()) == 1
    assert slow_sink.connections >= N // 20  # one connection per batch of 20


def test_once_runs_one_round_in_process(app, app_ctx, smtp_server, make_member, monkeypatch):
    monkeypatch.setitem(app.config, "FABLAB_SMTP_URL", smtp_server.url)
    ids = _queue(make_member, 3)
    db.session.remove()
    results = NotifyWorker(app, limit=2).run_once()
    assert [d.name for d in DELIVERIES] == ["mail"] and results["mail"].sent == 2
    assert NotifyWorker(app).run_once()["mail"].sent == 1
    assert {m["Message-ID"] for m in smtp_server.messages} == ids


def test_a_failing_delivery_is_logged_and_the_round_goes_on(app, app_ctx, monkeypatch, caplog):
    monkeypatch.setitem(app.config, "FABLAB_SMTP_URL", "smtp://127.0.0.1:1:bad")
    results = NotifyWorker(app).run_once()
    assert isinstance(results["mail"], ValueError) and "delivery mail failed" in caplog.text
