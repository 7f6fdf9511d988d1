"""fablab: booking and usage system for makerspaces and fab labs."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from flask import Flask

from .config import load_config
from .extensions import csrf, db, htmx, migrate

ROOT = Path(__file__).resolve().parent.parent


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """The application factory: config from the environment, then overrides from `config`."""
    instance = Path((config or {}).get("INSTANCE_PATH") or ROOT / "instance")
    app = Flask(
        __name__,
        instance_path=str(instance),
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    app.config.update(load_config(instance))
    if config:
        app.config.update(config)
    app.config["MAX_CONTENT_LENGTH"] = app.config["FABLAB_MAX_UPLOAD_MB"] * 1024 * 1024 + 1024 * 1024
    app.config["TZ"] = ZoneInfo(app.config["FABLAB_TIMEZONE"])
    instance.mkdir(parents=True, exist_ok=True)
    from .database import engine_options

    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = engine_options(app.config["SQLALCHEMY_DATABASE_URI"],
                                                             app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})

    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), render_as_batch=True, compare_type=True)
    csrf.init_app(app)
    htmx.init_app(app)
    from .assets import init_assets

    init_assets(app)  # compression and fingerprinted static files, first so it compresses the final body

    from . import models  # noqa: F401  (register every table)
    from .database import configure_engine

    with app.app_context():
        configure_engine(db.engine)

    from .log_redaction import install_redaction

    install_redaction(app.logger.name)  # feed and activation tokens stay out of access and app logs

    hops = int(app.config["FABLAB_PROXY_FIX"])
    if hops > 0:
        from werkzeug.middleware.proxy_fix import ProxyFix

        # Trust exactly `hops` proxies: their X-Forwarded-* say the client's address, HTTPS and host.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops)  # type: ignore[method-assign]

    from . import http_input
    from .web import register_web

    http_input.register(app)  # the <id:> converter and input guards, before any route exists
    register_web(app)
    from .web.ops import init_ops

    init_ops(app)  # /healthz /readyz /metrics, request ids, request metrics, JSON logs (fablab/web/ops/)

    from .api import bp as api_bp
    from .api import register_routes

    register_routes()
    app.register_blueprint(api_bp)
    csrf.exempt(api_bp)  # the API takes bearer tokens only; browsers never send those on their own

    from .cli import register_cli

    register_cli(app)

    from .wiring import wire

    wire()  # who listens to what (fablab/wiring.py); importing a module registers nothing
    return app
