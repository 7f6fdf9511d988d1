"""Web blueprints (one package per feature) and what they share: errors, filters, the current member."""

from __future__ import annotations

from typing import Any

from flask import Flask, g, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from ..auth import load_current_member
from . import formatting, headers
from .formatting import hours, localtime, minutes  # noqa: F401 - views import them from here


def _writers_lock_first() -> None:
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        from ..database import begin_write

        begin_write()


def register_web(app: Flask) -> None:
    import importlib

    from .blueprints import BLUEPRINTS

    for name in BLUEPRINTS:
        app.register_blueprint(importlib.import_module(name).bp)

    app.before_request(_writers_lock_first)
    app.before_request(load_current_member)
    formatting.register(app)  # every filter that formats a stored value: total, never raises

    @app.context_processor
    def _globals() -> dict[str, Any]:
        return {"lab_name": app.config["FABLAB_LAB_NAME"], "me": g.get("member"),
                "url_map_endpoints": app.view_functions}

    headers.install(app)  # CSP with nonces, HSTS, Secure cookies over HTTPS

    @app.errorhandler(CSRFError)
    def _csrf_error(err: CSRFError) -> Any:
        return _error_page(400, "The form expired or was not sent from this site. Reload and try again.")

    @app.errorhandler(HTTPException)
    def _http_error(err: HTTPException) -> Any:
        if hasattr(err, "error_code"):  # an ApiError renders itself in the API's format
            return err.get_response()
        # Keep what the error says in its headers: Allow on a 405, WWW-Authenticate, Retry-After.
        headers = {k: v for k, v in err.get_headers() if k.lower() != "content-type"}
        return _error_page(err.code or 500, err.description or err.name, headers)


_MESSAGES = {
    401: "Please sign in.",
    403: "You do not have permission to do that.",
    404: "There is nothing here.",
}


def _error_page(code: int, message: str, headers: dict[str, str] | None = None) -> Any:
    if request.path.startswith("/api/"):
        codes = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
                 405: "method_not_allowed", 409: "conflict", 413: "too_large", 422: "invalid"}
        body = {"error": {"code": codes.get(code, "error"), "message": message}}
        return jsonify(body), code, headers or {}
    if not message or message.startswith("The requested URL"):  # werkzeug's generic wording
        message = _MESSAGES.get(code, message or "Something went wrong.")
    return render_template("errors/error.html", code=code, message=message), code, headers or {}
