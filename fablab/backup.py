"""`fablab backup DIR` and `fablab restore DIR`: the database and the uploaded files, with a manifest.

    DIR/manifest.json       format, when, the schema revision, row counts per table, every file's sha256
    DIR/database.sqlite3    SQLite: a copy made through SQLite's online backup API (the app may keep running)
    DIR/database.pgdump     PostgreSQL: `pg_dump -Fc`, taken in the same snapshot the row counts were read in
    DIR/uploads/...         the upload folder's files (design files, pictures)

The row counts describe the copy, not the live database, so a restore can be checked exactly even when
bookings were written while the backup ran. A restore checks every checksum first, goes only into an empty
database and an empty upload folder, and compares the restored row counts with the manifest.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, make_url

from .extensions import db

FORMAT = 1
SQLITE_FILE = "database.sqlite3"
PG_FILE = "database.pgdump"


class BackupError(Exception):
    """Why a backup or restore cannot go on (shown to the admin as is)."""


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _tables() -> list[str]:
    return [t.name for t in db.metadata.sorted_tables] + ["alembic_version"]


def _scalar(conn: Connection | sqlite3.Connection, sql: str) -> Any:
    row = conn.execute(sql).fetchone() if isinstance(conn, sqlite3.Connection) else conn.execute(text(sql)).fetchone()
    return row[0] if row else None


def _counts(conn: Connection | sqlite3.Connection) -> dict[str, int]:
    # Table names come from our own metadata, never from input.
    return {name: int(_scalar(conn, f'SELECT count(*) FROM "{name}"') or 0) for name in _tables()}


def _revision(conn: Connection | sqlite3.Connection) -> str | None:
    value = _scalar(conn, "SELECT version_num FROM alembic_version")
    return str(value) if value is not None else None


def _sqlite_path(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up")
    return Path(database)


def _libpq_url(url: str) -> str:
    """The SQLAlchemy URL as pg_dump/pg_restore take it (no +driver; the password stays in the URL, which
    is passed as an argument only to our own child process)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _files(root: Path) -> list[dict[str, Any]]:
    if not root.is_dir():
        return []
    return [{"path": p.relative_to(root).as_posix(), "size": p.stat().st_size, "sha256": sha256(p)}
            for p in sorted(root.rglob("*")) if p.is_file() and not p.name.startswith(".partial-")]


def backup(target: Path) -> dict[str, Any]:
    """Write a backup into `target` (new or empty). Returns the manifest."""
    if target.exists() and any(target.iterdir()):
        raise BackupError(f"{target} is not empty")
    target.mkdir(parents=True, exist_ok=True)
    url = current_app.config["SQLALCHEMY_DATABASE_URI"]
    kind = db.engine.dialect.name
    if kind == "sqlite":
        db_file = target / SQLITE_FILE
        path = _sqlite_path(url)
        if not path.is_file():
            raise BackupError(f"no database at {path}")
        src = sqlite3.connect(path)
        dst = sqlite3.connect(db_file)
        try:
            src.backup(dst)  # one step: a consistent snapshot even while the app writes
            counts, revision = _counts(dst), _revision(dst)
        finally:
            dst.close()
            src.close()
    elif kind == "postgresql":
        db_file = target / PG_FILE
        with db.engine.connect() as conn:
            conn.execute(text("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"))
            snapshot = conn.execute(text("SELECT pg_export_snapshot()")).scalar_one()
            counts, revision = _counts(conn), _revision(conn)
            done = subprocess.run(["pg_dump", "-Fc", "--no-owner", f"--snapshot={snapshot}",
                                   "-f", str(db_file), "-d", _libpq_url(url)], capture_output=True, text=True)
            conn.execute(text("COMMIT"))
        if done.returncode != 0:
            raise BackupError(f"pg_dump failed: {done.stderr.strip()[:500]}")
    else:
        raise BackupError(f"no backup for a {kind} database")
    uploads = Path(current_app.config["FABLAB_UPLOAD_DIR"])
    files = _files(uploads)
    for f in files:
        dest = target / "uploads" / f["path"]
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(uploads / f["path"], dest)
        if sha256(dest) != f["sha256"]:  # changed while copied: take it again next time, say so now
            raise BackupError(f"upload {f['path']} changed while it was copied; run the backup again")
    manifest = {"format": FORMAT, "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "database": {"kind": kind, "file": db_file.name, "sha256": sha256(db_file),
                             "size": db_file.stat().st_size},
                "revision": revision, "row_counts": counts, "files": files}
    tmp = target / "manifest.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, target / "manifest.json")  # written last: a backup without a manifest is incomplete
    return manifest


def verify(source: Path) -> dict[str, Any]:
    """The manifest, once the database file and every upload match their checksums."""
    try:
        manifest = json.loads((source / "manifest.json").read_text())
    except (OSError, ValueError) as exc:
        raise BackupError(f"no readable manifest in {source}: {exc}") from None
    if manifest.get("format") != FORMAT:
        raise BackupError(f"unknown backup format {manifest.get('format')!r}")
    entries = [(manifest["database"]["file"], manifest["database"]["sha256"])]
    entries += [(f"uploads/{f['path']}", f["sha256"]) for f in manifest["files"]]
    for rel, digest in entries:
        path = source / rel
        if ".." in Path(rel).parts or not path.is_file():
            raise BackupError(f"{rel} is missing from the backup")
        if sha256(path) != digest:
            raise BackupError(f"{rel} does not match its checksum: the backup is damaged")
    return manifest


def restore(source: Path) -> dict[str, Any]:
    """Restore `source` into this app's (empty) database and (empty) upload folder."""
    manifest = verify(source)
    kind = db.engine.dialect.name
    if manifest["database"]["kind"] != kind:
        raise BackupError(f"the backup is of a {manifest['database']['kind']} database, this one is {kind}")
    with db.engine.connect() as conn:
        present = [t for t in inspect(conn).get_table_names() if t in set(_tables())]
    if present:
        raise BackupError(f"the database is not empty (it has {', '.join(sorted(present)[:5])}, ...); "
                          "restore goes into an empty database only")
    uploads = Path(current_app.config["FABLAB_UPLOAD_DIR"])
    if uploads.is_dir() and any(p.is_file() for p in uploads.rglob("*")):
        raise BackupError(f"the upload folder {uploads} is not empty")
    url = current_app.config["SQLALCHEMY_DATABASE_URI"]
    db_file = source / manifest["database"]["file"]
    db.engine.dispose()
    if kind == "sqlite":
        src = sqlite3.connect(db_file)
        dst = sqlite3.connect(_sqlite_path(url))
        try:
            src.backup(dst)
        finally:
            dst.close()
            src.close()
    else:
        done = subprocess.run(["pg_restore", "--no-owner", "--exit-on-error", "-d", _libpq_url(url), str(db_file)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise BackupError(f"pg_restore failed: {done.stderr.strip()[:500]}")
    for f in manifest["files"]:
        dest = uploads / f["path"]
        dest.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=dest.parent, delete=False, prefix=".partial-") as tmp:
            with open(source / "uploads" / f["path"], "rb") as src_file:
                shutil.copyfileobj(src_file, tmp)
        os.replace(tmp.name, dest)
    with db.engine.connect() as conn:
        counts = _counts(conn)
    if counts != manifest["row_counts"]:
        want = manifest["row_counts"]
        differ = {t: (want.get(t), n) for t, n in counts.items() if want.get(t) != n}
        raise BackupError(f"restored row counts differ from the manifest: {differ}")
    return manifest


@click.command("backup")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@with_appcontext
def backup_cmd(directory: Path) -> None:
    """Back up the database and uploaded files into DIRECTORY (new or empty), with a manifest."""
    try:
        manifest = backup(directory)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from None
    rows = sum(manifest["row_counts"].values())
    click.echo(f"Backed up {rows} rows and {len(manifest['files'])} files into {directory}")


@click.command("restore")
@click.argument("directory", type=click.Path(file_okay=False, exists=True, path_type=Path))
@with_appcontext
def restore_cmd(directory: Path) -> None:
    """Restore a backup made by `fablab backup` into an empty database and upload folder."""
    try:
        manifest = restore(directory)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Restored {sum(manifest['row_counts'].values())} rows and {len(manifest['files'])} files "
               f"(schema {manifest['revision']}); run `fablab init-db` to migrate it to this version")
