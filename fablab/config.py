"""Configuration from the environment (FABLAB_*), with safe defaults for a one-machine demo."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from .domain.effort import parse_confirm_modes


def _secret_key(instance_path: Path) -> str:
    """The secret key comes from FABLAB_SECRET_KEY, else a random one kept in the instance folder.

    Never hard-coded: a generated key survives restarts (sessions, badge hashes stay valid) and is
    private to this installation.
    """
    env = os.environ.get("FABLAB_SECRET_KEY")
    if env:
        return env
    key_file = instance_path / "secret_key"
    if key_file.exists():
        return key_file.read_text().strip()
    instance_path.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    # O_EXCL: two workers starting at once must agree on one key.
    try:
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return key_file.read_text().strip()
    with os.fdopen(fd, "w") as f:
        f.write(key)
    return key


def _bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def _confirm_modes(raw: str) -> dict[str, str]:
    try:
        return parse_confirm_modes(raw)
    except ValueError as exc:
        raise ValueError(f"FABLAB_TASK_CONFIRM: {exc}") from None


def load_config(instance_path: Path) -> dict[str, Any]:
    """Read the FABLAB_* environment into a Flask config mapping."""
    default_db = f"sqlite:///{instance_path / 'fablab.db'}"
    return {
        "SECRET_KEY": _secret_key(instance_path),
        "SQLALCHEMY_DATABASE_URI": os.environ.get("FABLAB_DATABASE_URL", default_db),
        "FABLAB_TIMEZONE": os.environ.get("FABLAB_TIMEZONE", "Europe/Berlin"),
        "FABLAB_MQTT_URL": os.environ.get("FABLAB_MQTT_URL", "mqtt://127.0.0.1:1883"),
        "FABLAB_LAB_NAME": os.environ.get("FABLAB_LAB_NAME", "Fab Lab"),
        "FABLAB_UPLOAD_DIR": os.environ.get("FABLAB_UPLOAD_DIR", str(instance_path / "uploads")),
        "FABLAB_MAX_UPLOAD_MB": int(os.environ.get("FABLAB_MAX_UPLOAD_MB", "200")),
        # What reading one uploaded file may cost (past these it is refused with the reason): bytes
        # unpacked from an archive (3MF), triangles/vertices/points, image pixels, and the worker's time.
        "FABLAB_UPLOAD_MAX_UNPACKED_MB": int(os.environ.get("FABLAB_UPLOAD_MAX_UNPACKED_MB", "256")),
        "FABLAB_UPLOAD_MAX_ELEMENTS": int(os.environ.get("FABLAB_UPLOAD_MAX_ELEMENTS", "5000000")),
        "FABLAB_UPLOAD_MAX_PIXELS": int(os.environ.get("FABLAB_UPLOAD_MAX_PIXELS", "40000000")),
        "FABLAB_UPLOAD_MAX_SECONDS": float(os.environ.get("FABLAB_UPLOAD_MAX_SECONDS", "60")),
        # The web request's share of that work; a file that needs more is measured and pictured by the
        # worker afterwards (the page shows it as "being analysed").
        "FABLAB_UPLOAD_INLINE_UNPACKED_MB": int(os.environ.get("FABLAB_UPLOAD_INLINE_UNPACKED_MB", "16")),
        "FABLAB_UPLOAD_INLINE_ELEMENTS": int(os.environ.get("FABLAB_UPLOAD_INLINE_ELEMENTS", "100000")),
        "FABLAB_UPLOAD_INLINE_PIXELS": int(os.environ.get("FABLAB_UPLOAD_INLINE_PIXELS", "4000000")),
        "FABLAB_UPLOAD_INLINE_SECONDS": float(os.environ.get("FABLAB_UPLOAD_INLINE_SECONDS", "1.0")),
        "FABLAB_KIOSK_IDLE_SECONDS": int(os.environ.get("FABLAB_KIOSK_IDLE_SECONDS", "60")),
        "FABLAB_KIOSK_SHOW_NAMES": _bool("FABLAB_KIOSK_SHOW_NAMES", False),
        # Members see who booked (and which stewards to ask) in calendars; staff always do.
        "FABLAB_CALENDAR_SHOW_NAMES": _bool("FABLAB_CALENDAR_SHOW_NAMES", False),
        "FABLAB_REVIEW_PUBLIC": _bool("FABLAB_REVIEW_PUBLIC", False),
        # Designs are commons: readable (and followable by other labs) without an account by default.
        "FABLAB_DESIGNS_PUBLIC": _bool("FABLAB_DESIGNS_PUBLIC", True),
        "FABLAB_REVIEW_SHOW_NAMES": _bool("FABLAB_REVIEW_SHOW_NAMES", False),
        # Other members see who contributed what (task board, contributions pages) only when the lab says so.
        "FABLAB_CONTRIBUTIONS_PUBLIC": _bool("FABLAB_CONTRIBUTIONS_PUBLIC", False),
        # Who confirms a completed task, per kind ("cleaning=peer,maintenance=steward"); a bad value stops the start.
        "FABLAB_TASK_CONFIRM": _confirm_modes(os.environ.get("FABLAB_TASK_CONFIRM", "")),
        # Usage pages name other members to members only when the lab chose so (staff always see names).
        "FABLAB_SHOW_MEMBER_NAMES": _bool("FABLAB_SHOW_MEMBER_NAMES", False),
        # Raw telemetry is pruned after this many days (events and statuses are kept).
        "FABLAB_TELEMETRY_DAYS": int(os.environ.get("FABLAB_TELEMETRY_DAYS", "30")),
        # Machine clocks may be off, and bridges send queued events late: outside this window around the
        # time received, an event keeps its message but takes the received time (flagged).
        "FABLAB_INGEST_MAX_SKEW_HOURS": float(os.environ.get("FABLAB_INGEST_MAX_SKEW_HOURS", "24")),
        "FABLAB_INGEST_MAX_AGE_DAYS": float(os.environ.get("FABLAB_INGEST_MAX_AGE_DAYS", "365")),
        # Mail: where it goes out (smtp://, smtp+starttls://, smtps://, with optional user:password@);
        # empty means no mail server: notices stay in-app and mails wait in the outbox.
        "FABLAB_SMTP_URL": os.environ.get("FABLAB_SMTP_URL", ""),
        "FABLAB_MAIL_FROM": os.environ.get("FABLAB_MAIL_FROM", "fablab@localhost"),
        # The address members reach the app at: links in mails and webhooks are made from it.
        "FABLAB_BASE_URL": os.environ.get("FABLAB_BASE_URL", "http://localhost:5000").rstrip("/"),
        # Home Assistant MQTT discovery: the worker publishes each machine as a device (services/ha_discovery.py).
        "FABLAB_HA_DISCOVERY": _bool("FABLAB_HA_DISCOVERY", False),
        "FABLAB_HA_PREFIX": os.environ.get("FABLAB_HA_PREFIX", "homeassistant").strip("/") or "homeassistant",
        # Home Assistant's own broker account, written by `fablab mosquitto-config` (read-only) when both are set.
        "FABLAB_HA_MQTT_USER": os.environ.get("FABLAB_HA_MQTT_USER", ""),
        "FABLAB_HA_MQTT_PASSWORD": os.environ.get("FABLAB_HA_MQTT_PASSWORD", ""),
        # Accounts (issue 17). Joining: closed (staff create members), invite (one-time links), open (sign-up
        # with email verification; with FABLAB_SIGNUP_APPROVAL staff approve before the member may book).
        "FABLAB_SIGNUP": os.environ.get("FABLAB_SIGNUP", "closed").strip().lower() or "closed",
        "FABLAB_SIGNUP_APPROVAL": _bool("FABLAB_SIGNUP_APPROVAL", False),
        # OpenID Connect single sign-on (Keycloak, Authentik, Nextcloud...): off unless the issuer is set.
        "FABLAB_OIDC_ISSUER": os.environ.get("FABLAB_OIDC_ISSUER", "").rstrip("/"),
        "FABLAB_OIDC_CLIENT_ID": os.environ.get("FABLAB_OIDC_CLIENT_ID", ""),
        "FABLAB_OIDC_CLIENT_SECRET": os.environ.get("FABLAB_OIDC_CLIENT_SECRET", ""),
        "FABLAB_OIDC_NAME": os.environ.get("FABLAB_OIDC_NAME", "single sign-on"),
        # First sign-in of someone unknown: "link" (only to an existing member by verified email) or "create".
        "FABLAB_OIDC_NEW_MEMBERS": os.environ.get("FABLAB_OIDC_NEW_MEMBERS", "link").strip().lower(),
        "FABLAB_OIDC_ROLE_CLAIM": os.environ.get("FABLAB_OIDC_ROLE_CLAIM", "groups"),
        "FABLAB_OIDC_ROLE_MAP": os.environ.get("FABLAB_OIDC_ROLE_MAP", ""),
        # LDAP: off unless the URL is set. Bind with a DN template ("uid={username},ou=people,dc=lab,dc=org"),
        # or search-then-bind with a service account, a base and a filter.
        "FABLAB_LDAP_URL": os.environ.get("FABLAB_LDAP_URL", ""),
        "FABLAB_LDAP_STARTTLS": _bool("FABLAB_LDAP_STARTTLS", False),
        "FABLAB_LDAP_BIND_DN": os.environ.get("FABLAB_LDAP_BIND_DN", ""),
        "FABLAB_LDAP_SEARCH_BASE": os.environ.get("FABLAB_LDAP_SEARCH_BASE", ""),
        "FABLAB_LDAP_SEARCH_FILTER": os.environ.get("FABLAB_LDAP_SEARCH_FILTER",
                                                    "(|(uid={username})(mail={username}))"),
        "FABLAB_LDAP_SERVICE_DN": os.environ.get("FABLAB_LDAP_SERVICE_DN", ""),
        "FABLAB_LDAP_SERVICE_PASSWORD": os.environ.get("FABLAB_LDAP_SERVICE_PASSWORD", ""),
        "FABLAB_LDAP_GROUP_BASE": os.environ.get("FABLAB_LDAP_GROUP_BASE", ""),
        "FABLAB_LDAP_ROLE_MAP": os.environ.get("FABLAB_LDAP_ROLE_MAP", ""),
        "FABLAB_LDAP_CAFILE": os.environ.get("FABLAB_LDAP_CAFILE", ""),
        # First sign-in of a directory person unknown here: "create" a member, or only "link" by email.
        "FABLAB_LDAP_NEW_MEMBERS": os.environ.get("FABLAB_LDAP_NEW_MEMBERS", "create").strip().lower(),
        "FABLAB_LDAP_TIMEOUT": int(os.environ.get("FABLAB_LDAP_TIMEOUT", "5")),  # seconds, connect and each answer
        # Two-factor sign-in (TOTP): required for stewards and admins when on (admins can also switch it on).
        "FABLAB_REQUIRE_2FA_STAFF": _bool("FABLAB_REQUIRE_2FA_STAFF", False),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        # Off for the plain-HTTP demo; on in production behind HTTPS (also sends HSTS). A request that came
        # in over HTTPS gets Secure cookies anyway.
        "SESSION_COOKIE_SECURE": _bool("FABLAB_SECURE_COOKIES", False),
        # How many reverse proxies in front of the app set X-Forwarded-For/-Proto/-Host/-Port (0: none, the
        # headers are ignored; a client could forge them).
        "FABLAB_PROXY_FIX": int(os.environ.get("FABLAB_PROXY_FIX", "0")),
        "PERMANENT_SESSION_LIFETIME": 60 * 60 * 12,
        "WTF_CSRF_TIME_LIMIT": None,
        "SQLALCHEMY_TRACK_MODIFICATIONS": False,
    }
