"""Per request: a request id (the caller's X-Request-ID if well formed, else a new one; echoed back), the
request counted and timed by route, and in JSON log mode one log line per request.

The first before_request hook answers the probes itself, so the session lookup, the write lock and CSRF
never run for them; the after_request hooks (headers, metrics) still do."""

from __future__ import annotations

import logging
import time
from typing import Any

from flask import Flask, current_app, g, request
from flask.logging import default_handler

from ... import log_format, metrics, ops_config
from ...extensions import csrf
from . import bp

PROBES = frozenset({"ops.healthz", "ops.readyz", "ops.scrape"})
log = logging.getLogger("fablab.request")


def _begin() -> Any:
    g.request_started = time.perf_counter()
    g.request_id = log_format.request_id_from(request.headers.get("X-Request-ID"))
    if request.endpoint in PROBES:
        return current_app.view_functions[request.endpoint](**(request.view_args or {}))
    return None


def _finish(response: Any) -> Any:
    started = g.get("request_started")
    seconds = time.perf_counter() - started if started is not None else 0.0
    route = request.url_rule.rule if request.url_rule is not None else "unmatched"
    metrics.observe_request(request.method, route, response.status_code, seconds)
    request_id = g.get("request_id") or log_format.request_id_from(None)
    response.headers["X-Request-ID"] = request_id
    if current_app.config["FABLAB_LOG_FORMAT"] == "json" and not (
            request.endpoint in PROBES and response.status_code < 400):  # probes are noise unless they fail
        log.info("%s %s %s", request.method, route, response.status_code,
                 extra={"request_id": request_id, "route": route, "status": response.status_code,
                        "duration_ms": round(seconds * 1000, 2), "method": request.method,
                        "path": request.path[:500]})
    return response


def init_ops(app: Flask) -> None:
    ops_config.load(app.config)
    if app.config["FABLAB_LOG_FORMAT"] == "json":
        log_format.configure("json")
        app.logger.removeHandler(default_handler)  # its plain lines would double the JSON ones
    app.register_blueprint(bp)
    csrf.exempt(bp)  # GET only; and no session, so nothing for a forged request to ride on
    app.before_request_funcs.setdefault(None, []).insert(0, _begin)  # first: probes skip the rest
    app.after_request(_finish)
