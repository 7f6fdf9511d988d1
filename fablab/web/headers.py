"""Response headers every page gets: the content security policy (scripts from files only, plus a
per-request nonce for the one inline import map), HSTS over HTTPS, and session cookies marked Secure
whenever the request came in over HTTPS (directly or, with FABLAB_PROXY_FIX, through a trusted proxy)."""

from __future__ import annotations

import secrets
from typing import Any

from flask import Flask, current_app, g, request
from flask.sessions import SecureCookieSessionInterface

HSTS = "max-age=31536000; includeSubDomains"


def csp_nonce() -> str:
    """This response's script nonce (templates: `<script nonce="{{ csp_nonce() }}">`); made on first use."""
    nonce = g.get("csp_nonce")
    if nonce is None:
        nonce = g.csp_nonce = secrets.token_urlsafe(16)
    return str(nonce)


def content_security_policy(nonce: str | None) -> str:
    # Everything is served locally: no third-party script, style or font. No inline script runs unless it
    # carries this response's nonce; styles may stay inline (htmx adds its indicator style, pages use
    # style attributes), which cannot run code.
    script = "script-src 'self'" + (f" 'nonce-{nonce}'" if nonce else "")
    return ("default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
            f"{script}; connect-src 'self' blob:; object-src 'none'; "
            "frame-ancestors 'none'; base-uri 'self'; form-action 'self'")


def https_in_use() -> bool:
    return bool(current_app.config["SESSION_COOKIE_SECURE"]) or request.is_secure


def security_headers(resp: Any) -> Any:
    resp.headers.setdefault("X-Content-Type-Options", "nosniff")
    resp.headers.setdefault("X-Frame-Options", "DENY")
    resp.headers.setdefault("Referrer-Policy", "same-origin")
    resp.headers.setdefault("Content-Security-Policy", content_security_policy(g.get("csp_nonce")))
    if https_in_use():
        resp.headers.setdefault("Strict-Transport-Security", HSTS)
    return resp


class HttpsAwareSessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session, Secure when configured so or when this request is HTTPS."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"]) or request.is_secure


def install(app: Flask) -> None:
    app.session_interface = HttpsAwareSessionInterface()
    app.jinja_env.globals["csp_nonce"] = csp_nonce
    app.after_request(security_headers)
