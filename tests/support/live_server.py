"""The real app on a free port in a background thread, for browser tests; stoppable and restartable
on the same port (a server restart the kiosk must survive)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic", "--use-gl=swiftshader",
                 "--enable-unsafe-swiftshader"]


def have_chromium() -> bool:
    return os.access(CHROMIUM, os.X_OK)


class LiveServer:
    def __init__(self, app: Flask, port: int = 0) -> None:
        self.app = app
        self.port = port
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LiveServer:
        self._server = make_server("127.0.0.1", self.port, self.app, threaded=True)
        self.port = self._server.server_port
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None


def artifact_dir(tmp_path: Path) -> Path:
    """Screenshots go to the test's tmp dir, or FABLAB_TEST_ARTIFACTS when set (CI keeps them)."""
    base = os.environ.get("FABLAB_TEST_ARTIFACTS")
    out = Path(base) if base else tmp_path
    out.mkdir(parents=True, exist_ok=True)
    return out
