"""Migrations build the schema from empty to head on the test database, and match the models."""

from __future__ import annotations

import os
import uuid

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from fablab import create_app
from fablab.extensions import db


def _admin_sql(sql: str) -> None:
    engine = create_engine(os.environ["FABLAB_TEST_DATABASE_URL"], isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(sql))
    finally:
        engine.dispose()


def _fresh_config(tmp_path) -> dict:
    cfg = {"TESTING": True, "INSTANCE_PATH": str(tmp_path), "SECRET_KEY": "x" * 32}
    pg = os.environ.get("FABLAB_TEST_DATABASE_URL")
    if pg:
        schema = f"m_{uuid.uuid4().hex[:10]}"
        _admin_sql(f"CREATE SCHEMA {schema}")
        cfg["SQLALCHEMY_DATABASE_URI"] = pg
        cfg["SQLALCHEMY_ENGINE_OPTIONS"] = {"connect_args": {"options": f"-csearch_path={schema},public"}}
        cfg["_schema"] = schema
    else:
        cfg["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{tmp_path / 'm.db'}"
    return cfg


def test_empty_to_head_matches_models_and_back(tmp_path) -> None:
    cfg = _fresh_config(tmp_path)
    app = create_app(cfg)
    with app.app_context():
        from flask_migrate import downgrade, upgrade

        upgrade(revision="head")
        tables = set(inspect(db.engine).get_table_names())
        assert {"members", "machines", "bookings", "qualifications", "alembic_version"} <= tables
        with db.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": False}), db.metadata)
        assert diff == [], f"models and migrations differ: {diff}"
        downgrade(revision="base")
        assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
        db.engine.dispose()
    if "_schema" in cfg:
        _admin_sql(f"DROP SCHEMA {cfg['_schema']} CASCADE")


def test_migrations_form_one_chain() -> None:
    from alembic.script import ScriptDirectory
    from flask_migrate import Migrate

    app = create_app({"TESTING": True, "SECRET_KEY": "x" * 32, "SQLALCHEMY_DATABASE_URI": "sqlite://"})
    with app.app_context():
        migrate: Migrate = app.extensions["migrate"]
        script = ScriptDirectory.from_config(migrate.migrate.get_config())
        assert len(script.get_heads()) == 1, f"more than one head: {script.get_heads()}"
        assert len(script.get_bases()) == 1
