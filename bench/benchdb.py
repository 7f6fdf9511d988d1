"""A throwaway database for a benchmark: a SQLite file in a temp dir, or a private schema in
PostgreSQL (dropped afterwards), migrated to head, with the app bound to it."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flask import Flask  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

from fablab import create_app  # noqa: E402
from fablab.database import upgrade_db  # noqa: E402
from fablab.extensions import db  # noqa: E402


def _admin_sql(url: str, *statements: str) -> None:
    eng = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with eng.connect() as c:
            for sql in statements:
                c.execute(text(sql))
    finally:
        eng.dispose()


@contextmanager
def bench_app(tmp: Path, url: str | None = None, name: str = "bench",
              engine_options: dict[str, Any] | None = None) -> Iterator[tuple[Flask, dict[str, Any]]]:
    """Yields (app, config); the config can build more apps on the same database (other processes)."""
    cfg: dict[str, Any] = {"INSTANCE_PATH": str(tmp / name), "SECRET_KEY": "bench", "TESTING": True}
    options = dict(engine_options or {})
    schema = None
    if url:
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        _admin_sql(url, "CREATE EXTENSION IF NOT EXISTS btree_gist", f"CREATE SCHEMA {schema}")
        cfg["SQLALCHEMY_DATABASE_URI"] = url
        options["connect_args"] = {"options": f"-csearch_path={schema},public"}
    else:
        cfg["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{tmp / (name + '.db')}"
    if options:
        cfg["SQLALCHEMY_ENGINE_OPTIONS"] = options
    app = create_app(cfg)
    try:
        with app.app_context():
            upgrade_db()
        yield app, cfg
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        if schema and url:
            _admin_sql(url, f"DROP SCHEMA {schema} CASCADE")
