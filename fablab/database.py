"""Engine setup per backend: SQLite in WAL mode with foreign keys and explicit BEGIN; write locks."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

from .extensions import db

IMMEDIATE = "fablab_begin_immediate"


def engine_options(url: str, options: dict[str, Any]) -> dict[str, Any]:
    """PostgreSQL sessions run in UTC whatever the server's default: times are stored in UTC, and a
    session in a local zone cannot even read a stored time near the end of year 9999."""
    from sqlalchemy.engine import make_url

    if not url.startswith("postgresql"):
        return options
    connect_args = dict(options.get("connect_args") or {})
    # connect_args replace the URL's own ?options=..., so both are kept
    from_url = make_url(url).query.get("options", "")
    current = " ".join(x for x in (*((from_url,) if isinstance(from_url, str) else from_url),
                                   connect_args.get("options", "")) if x)
    if "timezone" not in current:
        current = f"{current} -ctimezone=UTC".strip()
    connect_args["options"] = current
    return {**options, "connect_args": connect_args}


def configure_engine(engine: Engine) -> None:
    """Install per-connection settings. Called once per engine."""
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy emit BEGIN itself (pysqlite's implicit BEGIN is deferred and too late).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # BEGIN IMMEDIATE takes the write lock up front, so check-then-insert cannot interleave.
        if conn.get_execution_options().get(IMMEDIATE):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")


@contextmanager
def write_transaction() -> Iterator[None]:
    """A serialized write transaction on the Flask-SQLAlchemy session.

    On SQLite this is BEGIN IMMEDIATE (one writer at a time, the checks inside see every committed
    row). On PostgreSQL it is an ordinary transaction; constraints (e.g. the booking exclusion
    constraint) are the last line of defence there. Commits on success, rolls back on any error.
    """
    session = db.session()
    if session.in_transaction():
        session.commit()
    session.connection(execution_options={IMMEDIATE: True})
    try:
        yield
        session.commit()
    except BaseException:
        session.rollback()
        raise


def begin_write() -> None:
    """Start the session's transaction as a writer (SQLite: BEGIN IMMEDIATE).

    A SQLite transaction that reads first and writes later fails at once with "database is locked"
    when another connection (a worker, another request) committed in between: a read snapshot cannot
    be upgraded. Requests that write (POST and friends) and the worker's batches therefore take the
    write lock up front; WAL readers are never blocked by it. No-op on other databases or when a
    transaction is already running.
    """
    session = db.session()
    if session.in_transaction() or session.get_bind().dialect.name != "sqlite":
        return
    session.connection(execution_options={IMMEDIATE: True})


def upgrade_db() -> None:
    """Create or upgrade the schema to the newest migration (one chain: 0001 → 0002 → ...)."""
    from flask_migrate import upgrade

    upgrade(revision="head")
