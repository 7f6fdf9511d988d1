"""A tiny real HTTP server (stdlib) serving files as the fablab server serves a queued print's one-time URL.

    with FileServer() as fs:
        url = fs.add("benchy.gcode", data)            # GET url -> data (once, like the real one-time URL)
        fs.add("slow.gcode", data, rate=50_000)       # bytes per second, to withdraw mid-download
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class _File:
    data: bytes
    rate: float | None
    once: bool
    claimed_length: int | None
    send_length: bool


class FileServer:
    def __init__(self) -> None:
        self.files: dict[str, _File] = {}
        self.requests: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                outer.requests.append(self.path)
                f = outer.files.get(self.path)
                if f is None:
                    self.send_error(404, "Not Found")
                    return
                if f.once:
                    outer.files.pop(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                if f.send_length:
                    self.send_header("Content-Length", str(f.claimed_length if f.claimed_length is not None
                                                           else len(f.data)))
                self.end_headers()
                step = 4096
                for i in range(0, len(f.data), step):
                    try:
                        self.wfile.write(f.data[i:i + step])
                    except OSError:
                        return  # the client gave up (withdrawn, too big)
                    if f.rate:
                        time.sleep(step / f.rate)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def add(self, name: str, data: bytes, *, rate: float | None = None, once: bool = True,
            claimed_length: int | None = None, send_length: bool = True) -> str:
        """``send_length=False``: no Content-Length (the body ends when the connection closes), as a
        streaming server might send it; ``claimed_length``: a Content-Length that lies."""
        path = f"/jobs/{uuid.uuid4().hex}/{name}"
        self.files[path] = _File(data, rate, once, claimed_length, send_length)
        return self.base + path

    def url_404(self) -> str:
        return f"{self.base}/jobs/{uuid.uuid4().hex}/missing.gcode"

    def __enter__(self) -> FileServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
