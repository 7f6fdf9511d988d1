"""/readyz says 503 with the reason while the database is unreachable or not migrated, and 200 once it is;
/healthz stays 200 throughout (it never touches the database)."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from fablab import create_app, health
from fablab.extensions import db
from tests.support.broker import free_port


def _app(tmp_path: Path, url: str, **extra):
    return create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path / "instance"),
                       "SECRET_KEY": "t-" + uuid.uuid4().hex, "SQLALCHEMY_DATABASE_URI": url,
                       "FABLAB_UPLOAD_DIR": str(tmp_path / "uploads"), **extra})


def test_sqlite_unreachable_then_unmigrated_then_ready(tmp_path: Path) -> None:
    folder = tmp_path / "not-yet"
    app = _app(tmp_path, f"sqlite:///{folder / 'lab.db'}")
    client = app.test_client()
    resp = client.get("/readyz")
    assert resp.status_code == 503
    assert resp.get_json()["status"] == "unavailable"
    assert resp.get_json()["reason"].startswith("database unreachable")
    assert client.get("/healthz").status_code == 200

    folder.mkdir()  # reachable now, but empty
    resp = client.get("/readyz")
    assert resp.status_code == 503 and "fablab init-db" in resp.get_json()["reason"]

    with app.app_context():
        from fablab.database import upgrade_db

        upgrade_db()
    assert client.get("/readyz").status_code == 200
    with app.app_context():
        db.engine.dispose()


def test_a_schema_behind_the_code_is_not_ready(tmp_path: Path) -> None:
    app = _app(tmp_path, f"sqlite:///{tmp_path / 'old.db'}")
    with app.app_context():
        from flask_migrate import upgrade

        upgrade(revision="0002_usage")  # an old release's schema
        db.engine.dispose()
    resp = app.test_client().get("/readyz")
    assert resp.status_code == 503 and "code expects" in resp.get_json()["reason"]


def test_postgresql_on_a_dead_port_answers_503_quickly(tmp_path: Path) -> None:
    app = _app(tmp_path, f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/test")
    started = time.monotonic()
    resp = app.test_client().get("/readyz")
    assert resp.status_code == 503 and "database unreachable" in resp.get_json()["reason"]
    assert time.monotonic() - started < 3


def test_a_database_that_hangs_costs_the_probe_the_timeout_only(tmp_path: Path) -> None:
    """A listener that accepts and never answers (a dropped network): the probe gives up after the timeout."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    try:
        app = _app(tmp_path, f"postgresql+psycopg://postgres@127.0.0.1:{silent.getsockname()[1]}/test",
                   FABLAB_READY_TIMEOUT=0.5)
        started = time.monotonic()
        resp = app.test_client().get("/readyz")
        assert time.monotonic() - started < 2
        assert resp.status_code == 503 and "did not answer within 0.5 s" in resp.get_json()["reason"]
        # While that check still hangs, the next probe does not start another one.
        assert "has not returned yet" in app.test_client().get("/readyz").get_json()["reason"]
    finally:
        silent.close()
    deadline = time.monotonic() + 10  # the hanging check ends once the listener is gone
    while not health._busy.acquire(blocking=False):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    health._busy.release()


class _Forwarder:
    """A TCP relay to PostgreSQL that can be cut: the database "goes away" and comes back on one port."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self.server: socket.socket | None = None
        self.conns: list[socket.socket] = []

    def start(self) -> None:
        self.server = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, args=(self.server,), daemon=True).start()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self.conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None
        for c in self.conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()
        self.conns.clear()


@pytest.mark.skipif(not os.environ.get("FABLAB_TEST_DATABASE_URL"), reason="needs FABLAB_TEST_DATABASE_URL")
def test_postgresql_gone_and_back(app, tmp_path: Path) -> None:
    url = make_url(os.environ["FABLAB_TEST_DATABASE_URL"])
    relay = _Forwarder((url.host or "127.0.0.1", url.port or 5432))
    via = url.set(host="127.0.0.1", port=relay.port).render_as_string(hide_password=False)
    opts = app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {}
    probe = _app(tmp_path, via, SQLALCHEMY_ENGINE_OPTIONS=opts)  # the migrated test schema, through the relay
    client = probe.test_client()
    try:
        assert client.get("/readyz").status_code == 503  # relay not started: nothing listens
        relay.start()
        assert client.get("/readyz").status_code == 200
        relay.stop()
        resp = client.get("/readyz")
        assert resp.status_code == 503 and "database unreachable" in resp.get_json()["reason"]
        relay.start()
        assert client.get("/readyz").status_code == 200  # the broken pooled connection was replaced
    finally:
        relay.stop()
        with probe.app_context():
            db.engine.dispose()
