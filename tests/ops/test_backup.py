"""`fablab backup` while bookings are being written, then `fablab restore` into a fresh database and an
empty upload folder: the row counts match the manifest's (which describe the copy) and every file its
checksum. SQLite always; PostgreSQL (pg_dump -Fc / pg_restore) when FABLAB_TEST_DATABASE_URL is set."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from fablab import create_app
from fablab.extensions import db
from fablab.models import Booking, Machine, MachineType
from fablab.services import bookings, machines, members
from tests.support.clock import cheap_password_hashing

PG_URL = os.environ.get("FABLAB_TEST_DATABASE_URL")
ALL_DAY = {d: [["00:00", "24:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
RULES = {"slot_minutes": 15, "min_minutes": 15, "max_minutes": 240, "opening_hours": ALL_DAY, "horizon_days": 60,
         "buffer_minutes": 0, "checkin_grace_minutes": 15, "max_hours_per_day": None, "max_hours_per_week": None,
         "max_future_bookings": None, "qualification_required": True}


@pytest.fixture(params=["sqlite", "postgresql"])
def databases(request, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Two empty databases of the backend: the lab's and the one to restore into."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'lab.db'}", f"sqlite:///{tmp_path / 'restored.db'}"
        return
    if not PG_URL:
        pytest.skip("needs FABLAB_TEST_DATABASE_URL")
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    names = [f"fablab_bk_{uuid.uuid4().hex[:10]}" for _ in range(2)]
    with admin.connect() as conn:
        for name in names:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    base = make_url(PG_URL)
    yield tuple(base.set(database=n).render_as_string(hide_password=False) for n in names)  # type: ignore[misc]
    with admin.connect() as conn:
        for name in names:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _app(url: str, folder: Path) -> Flask:
    return create_app({"TESTING": True, "INSTANCE_PATH": str(folder / "instance"), "SQLALCHEMY_DATABASE_URI": url,
                       "SECRET_KEY": "bk-secret", "FABLAB_UPLOAD_DIR": str(folder / "uploads")})


def _seed(app: Flask) -> None:
    with app.app_context(), cheap_password_hashing():
        from fablab.database import upgrade_db

        upgrade_db()
        mtype = MachineType(slug="laser_cutter", name="Laser")
        db.session.add(mtype)
        for slug in ("laser-1", "laser-2"):
            db.session.add(Machine(slug=slug, name=slug, machine_type=mtype, policy=RULES))
        db.session.commit()
        for i in range(3):
            m = members.create_member(f"m{i}@example.org", f"M{i}", "member", "correct-horse-9")
            machines.grant(m, by=None, machine_type=mtype)
        db.session.commit()
    uploads = Path(app.config["FABLAB_UPLOAD_DIR"])
    for i, size in enumerate((0, 1, 4096, 300_000)):
        p = uploads / f"ab/{i:02d}" / f"design-{i}.stl"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(os.urandom(size))


def _writer(app: Flask, stop: threading.Event, made: list[int]) -> None:
    """Books one slot after another until told to stop (the backup runs meanwhile)."""
    base = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    i = 0
    while not stop.is_set() and i < 2000:
        with app.app_context():
            member = members.member_by_email(f"m{i % 3}@example.org")
            machine = db.session.scalar(select(Machine).where(Machine.slug == f"laser-{i % 2 + 1}"))
            start = base + timedelta(minutes=15 * (i // 2))
            bookings.create_booking(member, machine, start, start + timedelta(minutes=15))
            db.session.commit()
            made.append(i)
            db.session.remove()
        i += 1


def _digests(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in root.rglob("*") if p.is_file()}


def test_backup_while_writing_then_restore_into_a_fresh_database(databases, tmp_path: Path) -> None:
    lab_url, restored_url = databases
    lab = _app(lab_url, tmp_path / "lab")
    _seed(lab)
    stop, made = threading.Event(), []
    writer = threading.Thread(target=_writer, args=(lab, stop, made))
    writer.start()
    try:
        while len(made) < 5:
            writer.join(0.02)
            assert writer.is_alive() or len(made) >= 5
        before = len(made)
        result = lab.test_cli_runner().invoke(args=["backup", str(tmp_path / "backup")])
        after = len(made)
        # The writer is still booking after the backup (it may or may not have committed during it: a SQLite
        # backup of this small lab can finish between two of its commits).
        deadline = time.monotonic() + 10
        while len(made) <= after and time.monotonic() < deadline:
            writer.join(0.02)
        assert len(made) > after, "bookings were being written around the backup"
    finally:
        stop.set()
        writer.join(30)
    assert result.exit_code == 0, result.output
    assert after >= before >= 5, (before, after)

    manifest = json.loads((tmp_path / "backup" / "manifest.json").read_text())
    assert before <= manifest["row_counts"]["bookings"] <= after
    assert manifest["revision"] and manifest["row_counts"]["members"] == 3
    originals = _digests(tmp_path / "lab" / "uploads")
    assert {f["path"]: f["sha256"] for f in manifest["files"]} == originals and len(originals) == 4

    fresh = _app(restored_url, tmp_path / "fresh")
    result = fresh.test_cli_runner().invoke(args=["restore", str(tmp_path / "backup")])
    assert result.exit_code == 0, result.output
    with fresh.app_context():
        assert db.session.scalar(select(func.count()).select_from(Booking)) == manifest["row_counts"]["bookings"]
        from fablab.backup import _counts

        with db.engine.connect() as conn:
            assert _counts(conn) == manifest["row_counts"]
        db.session.remove()
    assert _digests(tmp_path / "fresh" / "uploads") == originals
    assert fresh.test_client().get("/readyz").status_code == 200  # schema at head, as backed up

    # Only into an empty database; and never from a damaged backup.
    again = fresh.test_cli_runner().invoke(args=["restore", str(tmp_path / "backup")])
    assert again.exit_code != 0 and "not empty" in again.output
    damaged = tmp_path / "backup" / "uploads" / "ab" / "03" / "design-3.stl"
    data = bytearray(damaged.read_bytes())
    data[100] ^= 0xFF
    damaged.write_bytes(bytes(data))
    other = _app(f"sqlite:///{tmp_path / 'other.db'}", tmp_path / "other")
    refused = other.test_cli_runner().invoke(args=["restore", str(tmp_path / "backup")])
    assert refused.exit_code != 0 and "checksum" in refused.output
    for app in (lab, fresh, other):
        with app.app_context():
            db.engine.dispose()


def test_backup_refuses_a_non_empty_target(tmp_path: Path) -> None:
    lab = _app(f"sqlite:///{tmp_path / 'lab.db'}", tmp_path / "lab")
    (tmp_path / "target").mkdir()
    (tmp_path / "target" / "something").write_text("x")
    result = lab.test_cli_runner().invoke(args=["backup", str(tmp_path / "target")])
    assert result.exit_code != 0 and "not empty" in result.output
