"""The worker's own small HTTP port (`fablab worker --health-port PORT`, also spelled --metrics-port):

    GET /healthz   200 "ok" while the process runs
    GET /readyz    200 when the broker session is up, no received message has waited longer than
                   FABLAB_WORKER_MAX_LAG_SECONDS to be committed, and the database is ready (as the web's
                   /readyz); else 503 with a JSON reason
    GET /metrics   this process's ingest metrics, guarded like the web's (token or allowed address)

A plain threading HTTP server in a daemon thread: the ingest loop never waits for a scrape.
"""

from __future__ import annotations

import json
import logging
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from .. import health, metrics

if TYPE_CHECKING:
    from .mqtt import MqttWorker

log = logging.getLogger("fablab.worker.health")


def readiness_problem(worker: MqttWorker, now: datetime | None = None) -> str | None:
    cfg = worker.ingestor.app.config
    if not worker.connected.is_set():
        return "not connected to the MQTT broker"
    waited = worker.backlog_seconds(now or datetime.now(UTC))
    bound = float(cfg["FABLAB_WORKER_MAX_LAG_SECONDS"])
    if waited > bound:
        return f"a received message has waited {waited:.0f} s to be stored (bound {bound:g} s)"
    return health.database_problem(worker.ingestor.app, float(cfg["FABLAB_READY_TIMEOUT"]))


def _handler(worker: MqttWorker) -> type[BaseHTTPRequestHandler]:
    cfg = worker.ingestor.app.config

    class Handler(BaseHTTPRequestHandler):
        def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            path = self.path.split("?", 1)[0]
            if path == "/healthz":
                self._send(200, b"ok\n", "text/plain")
            elif path == "/readyz":
                problem = readiness_problem(worker)
                body = {"status": "unavailable", "reason": problem} if problem else {"status": "ok"}
                self._send(503 if problem else 200, json.dumps(body).encode(), "application/json")
            elif path == "/metrics":
                refusal = metrics.scrape_refusal(self.headers.get("Authorization"), self.client_address[0],
                                                 str(cfg["FABLAB_METRICS_TOKEN"]), cfg["FABLAB_METRICS_NETWORKS"],
                                                 "X-Forwarded-For" not in self.headers)
                if refusal:
                    extra = {"WWW-Authenticate": 'Bearer realm="metrics"'} if refusal == 401 else {}
                    self._send(refusal, b"not allowed to read the metrics\n", "text/plain", extra)
                else:
                    self._send(200, metrics.exposition(), metrics.CONTENT_TYPE)
            else:
                self._send(404, b"not found\n", "text/plain")

        do_HEAD = do_GET  # noqa: N815

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - probes are not worth a line
            return

    return Handler


def serve(worker: MqttWorker, host: str, port: int) -> ThreadingHTTPServer:
    """Start the port in a daemon thread; returns the server (`.shutdown()` stops it)."""
    server = ThreadingHTTPServer((host, port), _handler(worker))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="fablab-worker-health", daemon=True).start()
    log.info("health and metrics on http://%s:%s/ (healthz, readyz, metrics)", host, server.server_address[1])
    return server
