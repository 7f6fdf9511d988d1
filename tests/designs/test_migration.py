"""The designs migration (a branch from 0001) builds exactly the models' tables and removes them again."""

from __future__ import annotations

import os
import uuid

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from fablab import create_app
from fablab.extensions import db

DESIGN_TABLES = {"designs", "design_versions", "design_files", "design_tags", "design_machine_types", "design_made"}


def _admin(sql: str) -> None:
    engine = create_engine(os.environ["FABLAB_TEST_DATABASE_URL"], isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(sql))
    finally:
        engine.dispose()


def test_heads_match_models_and_designs_downgrade(tmp_path) -> None:
    cfg = {"TESTING": True, "INSTANCE_PATH": str(tmp_path), "SECRET_KEY": "x" * 32}
    schema = None
    if os.environ.get("FABLAB_TEST_DATABASE_URL"):
        schema = f"d_{uuid.uuid4().hex[:10]}"
        _admin(f"CREATE SCHEMA {schema}")
        cfg["SQLALCHEMY_DATABASE_URI"] = os.environ["FABLAB_TEST_DATABASE_URL"]
        cfg["SQLALCHEMY_ENGINE_OPTIONS"] = {"connect_args": {"options": f"-csearch_path={schema},public"}}
    else:
        cfg["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{tmp_path / 'm.db'}"
    app = create_app(cfg)
    try:
        with app.app_context():
            from flask_migrate import downgrade, upgrade

            upgrade(revision="heads")
            assert DESIGN_TABLES <= set(inspect(db.engine).get_table_names())
            with db.engine.connect() as conn:
                diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": False}), db.metadata)
            assert diff == [], f"models and migrations differ: {diff}"
            downgrade(revision="0003_designs@0001")  # only this branch goes
            left = set(inspect(db.engine).get_table_names())
            assert not (DESIGN_TABLES & left) and {"members", "bookings"} <= left
            db.engine.dispose()
    finally:
        if schema:
            _admin(f"DROP SCHEMA {schema} CASCADE")
