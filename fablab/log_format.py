"""Log lines for machines to read: with FABLAB_LOG_FORMAT=json one JSON object per line (time, level,
logger, message, request_id, route, status, duration_ms, and the exception when there is one).

The formatter redacts the finished message itself (fablab/log_redaction.py), so a token reaches no JSON
line even from a logger the redaction filter was never put on. The request id comes from the record (the
web's request line sets it) or, inside a request, from `flask.g`.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import uuid
from datetime import UTC, datetime
from typing import Any

from .log_redaction import redact

_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
FIELDS = ("request_id", "route", "status", "duration_ms", "method", "path")


def request_id_from(header: str | None) -> str:
    """The caller's X-Request-ID when it is 1-64 characters of [A-Za-z0-9._-], else a new one."""
    if header and _REQUEST_ID.fullmatch(header):
        return header
    return uuid.uuid4().hex


def _current_request_id() -> str | None:
    try:
        from flask import g, has_request_context

        return g.get("request_id") if has_request_context() else None
    except Exception:  # noqa: BLE001 - logging must never fail because of the web context
        return None


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - arguments that do not fit the format: keep the raw text
            message = f"{record.msg} {record.args!r}"
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(message),
        }
        for name in FIELDS:
            value = getattr(record, name, None)
            if name == "request_id" and value is None:
                value = _current_request_id()
            out[name] = redact(value) if isinstance(value, str) else value
        if record.exc_info:
            out["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(out, ensure_ascii=False, default=str)


def configure(log_format: str, level: int = logging.INFO) -> None:
    """One stderr handler on the root logger, formatted as asked ("json" or "text"); idempotent."""
    root = logging.getLogger()
    formatter: logging.Formatter = JsonFormatter() if log_format == "json" else logging.Formatter(
        "%(asctime)s %(name)s %(levelname)s %(message)s")
    mine = [h for h in root.handlers if getattr(h, "fablab_handler", False)]
    handler = mine[0] if mine else logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    if not mine:
        handler.fablab_handler = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level)
