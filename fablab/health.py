"""Readiness: is the database reachable (within a short time) and its schema at the newest migration?

Used by the web's /readyz and the worker's health port. The check runs in a helper thread so that a
database that does not answer (a dropped network, a stuck lock) costs the probe at most `timeout`
seconds; while one such check is still hanging, the next probe says so at once instead of piling up.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from pathlib import Path

from flask import Flask
from sqlalchemy import inspect, text

from .extensions import db

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
_busy = threading.Lock()


@lru_cache(maxsize=1)
def head_revisions() -> frozenset[str]:
    from alembic.script import ScriptDirectory

    return frozenset(ScriptDirectory(str(MIGRATIONS)).get_heads())


def _check(app: Flask, out: dict[str, str | None]) -> None:
    try:
        with app.app_context(), db.engine.connect() as conn:
            try:
                current = {row[0] for row in conn.execute(text("SELECT version_num FROM alembic_version"))}
            except Exception:
                conn.rollback()  # a connection that died meanwhile raises here: "unreachable" below
                if inspect(conn).has_table("alembic_version"):
                    raise
                out["problem"] = "database schema not created (run fablab init-db)"
                return
            heads = head_revisions()
            if current != heads:
                out["problem"] = (f"database schema at {', '.join(sorted(current)) or 'nothing'}, "
                                  f"code expects {', '.join(sorted(heads))} (run fablab init-db)")
                return
            out["problem"] = None
    except Exception as exc:  # noqa: BLE001 - any failure to connect means: not ready
        out["problem"] = f"database unreachable: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}"


def database_problem(app: Flask, timeout: float = 2.0) -> str | None:
    """None when ready, else why not (one sentence, no secrets: the URL is never part of it)."""
    if not _busy.acquire(blocking=False):
        return "an earlier database check has not returned yet"
    out: dict[str, str | None] = {"problem": f"database did not answer within {timeout:g} s"}

    def run() -> None:
        try:
            _check(app, out)
        finally:
            _busy.release()

    worker = threading.Thread(target=run, name="fablab-readiness", daemon=True)
    worker.start()
    worker.join(timeout)
    return out["problem"] if not worker.is_alive() else f"database did not answer within {timeout:g} s"
