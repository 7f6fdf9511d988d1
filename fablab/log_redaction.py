"""Secrets out of logs: feed and kiosk-activation tokens, `token=`-style query values (an OIDC callback's `code`
and `state` too), bearer tokens.

A calendar app can only subscribe to a URL, so the private iCal feed carries its token in the path; an
access log line of it would hand the feed to anyone who reads the logs. A filter on the loggers that write
request lines (werkzeug's development server, gunicorn's access and error logs) and on the app's own
logger rewrites each record before any handler formats it, whatever the handler or format is.
"""

from __future__ import annotations

import logging
import re

REDACTED = "[redacted]"

# Separators may arrive percent-encoded, once or more (a URL inside `next=` inside a query value: `%252F`).
# Tokens are URL-safe base64; the token class stops at the `.ics` suffix, a query or a percent escape.
_SLASH = r"(?:/|%(?:25)*2F)"
_QUERY = r"(?:[?&;]|%(?:25)*(?:3F|26|3B))"
_EQUALS = r"(?:=|%(?:25)*3D)"
_VALUE = r"(?:(?!%(?:25)*26)[^&#\s\"'])*"
_PATTERNS = [
    re.compile(rf"({_SLASH}ical{_SLASH}member{_SLASH})[^/?#&\s\"'.%]+", re.IGNORECASE),
    re.compile(rf"({_SLASH}kiosk{_SLASH}activate{_SLASH})[^/?#&\s\"'.%]+", re.IGNORECASE),
    re.compile(rf"({_QUERY}(?:token|access_token|api_key|key|secret|password|feed|code|state){_EQUALS}){_VALUE}",
               re.IGNORECASE),
    re.compile(r"(\bBearer\s+)[A-Za-z0-9._~+/=-]+", re.IGNORECASE),
]

# The loggers that write request lines, besides the app's own.
REQUEST_LOGGERS = ("werkzeug", "gunicorn.access", "gunicorn.error")


def redact(text: str) -> str:
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
    return text


class RedactTokens(logging.Filter):
    """Formats the record's message once, redacted; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a record whose arguments do not fit: logging reports that itself
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg = cleaned
            record.args = None
        return True


_FILTER = RedactTokens()


def install_redaction(app_logger: str) -> None:
    """Put the filter on the request loggers and the app's loggers (those that exist now and its own).

    A logger's filters see only records made on that logger, not its children's; so the children already
    created (module-level `getLogger("fablab.x")`) get it too. Idempotent: apps made in tests share it.
    """
    names = {*REQUEST_LOGGERS, app_logger}
    names.update(n for n in logging.root.manager.loggerDict if n.startswith(app_logger + "."))
    for name in names:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
