"""The database itself keeps held bookings of a machine from overlapping (migration 0005_no_overlap): on
PostgreSQL the exclusion constraint ex_bookings_no_overlap, on SQLite triggers raising the same name.

Held = confirmed, checked_in, completed (HELD_STATUSES); no-show, cancelled, requested and released
bookings hold nothing. Intervals are half-open: touching is fine. The service turns the database's refusal
into its 409 "overlap", never a 500."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from flask import current_app
from sqlalchemy import bindparam, create_engine, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from fablab import create_app
from fablab.extensions import db
from fablab.models import Booking, BookingStatus, Machine, Member
from fablab.models.bookings import ACTIVE_STATUSES, HELD_STATUSES
from fablab.models.types import UTCDateTime
from fablab.services import bookings as svc
from fablab.services.members import create_api_token

H = timedelta(hours=1)
T0 = datetime(2030, 6, 3, 10, 0, tzinfo=UTC)  # far from now: the rules never look there
HELD = [s.value for s in HELD_STATUSES]
NOT_HELD = ["no_show", "cancelled", "requested", "released"]


def _dialect() -> str:
    return db.session.get_bind().dialect.name


class Raw:
    """Insert a booking straight into the table (no service, no rules), committed on its own."""

    def __init__(self, member: Member, machines: dict[str, Machine]) -> None:
        self.member, self.machines = member, machines

    def row(self, start: float, end: float, status: str = "confirmed", machine: str = "a") -> dict[str, Any]:
        return {"machine_id": self.machines[machine].id, "member_id": self.member.id, "start_at": T0 + start * H,
                "end_at": T0 + end * H, "booked_end_at": T0 + end * H, "status": status, "kind": "normal",
                "source": "web", "note": "", "cancel_reason": "", "sequence": 0, "created_at": T0,
                "updated_at": T0}

    def __call__(self, start: float, end: float, status: str = "confirmed", machine: str = "a") -> int:
        try:
            booking_id = db.session.scalar(insert(Booking).returning(Booking.id), self.row(start, end, status, machine))
            db.session.commit()
        except IntegrityError:
            db.session.rollback()
            raise
        assert booking_id is not None
        return booking_id


@pytest.fixture
def raw(app_ctx, make_member, make_machine) -> Raw:
    return Raw(make_member(), {"a": make_machine(), "b": make_machine()})


def _refused(fn: Callable[[], object]) -> str:
    with pytest.raises(IntegrityError) as caught:
        fn()
    message = str(caught.value.orig)
    assert "ex_bookings_no_overlap" in message, message
    assert svc._is_conflict_error(caught.value)
    return message


def _set(booking_id: int, **values: Any) -> None:
    try:
        db.session.execute(update(Booking).where(Booking.id == booking_id).values(**values))
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise


def test_held_statuses_are_the_active_ones_and_completed() -> None:
    assert set(HELD_STATUSES) == {*ACTIVE_STATUSES, BookingStatus.COMPLETED}
    assert BookingStatus.NO_SHOW not in HELD_STATUSES


def test_the_database_enforcement_is_installed_at_head(app_ctx) -> None:
    # A later migration that recreates `bookings` (SQLite batch mode) would drop the triggers silently.
    if _dialect() == "sqlite":
        names = set(db.session.scalars(text(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'bookings'")))
        assert {"trg_bookings_no_overlap_insert", "trg_bookings_no_overlap_update"} <= names
    else:
        definition = db.session.scalar(text(
            "SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid "
            "WHERE c.conname = 'ex_bookings_no_overlap' AND t.relname = 'bookings' "
            "AND t.relnamespace = to_regnamespace(current_schema())::oid"))
        assert definition is not None
        assert all(f"'{s}'" in definition for s in HELD) and "no_show" not in definition


@pytest.mark.parametrize("existing", HELD)
@pytest.mark.parametrize("new", HELD)
def test_an_overlapping_held_insert_is_refused(raw, existing: str, new: str) -> None:
    raw(1, 3, existing)
    _refused(lambda: raw(2, 4, new))


@pytest.mark.parametrize(("start", "end"), [(1, 3), (0, 2), (2, 4), (1.5, 2.5), (0, 4), (2.5, 3.5), (0.5, 1.5),
                                            (-1, 0.5), (3.5, 4.5), (5, 7), (-3, 7)])
def test_every_kind_of_overlap_is_refused(raw, start: float, end: float) -> None:
    # Same interval, overlapping either end, inside, around; with neighbours on both sides.
    raw(-2, 0)
    raw(1, 3)
    raw(4, 6, "completed")
    _refused(lambda: raw(start, end))


def test_touching_bookings_are_fine(raw) -> None:
    raw(1, 2)
    raw(2, 3, "checked_in")  # starts where the first ends
    raw(0, 1, "completed")  # ends where the first starts
    raw(3, 4)
    assert db.session.scalar(select(func.count()).select_from(Booking)) == 4


@pytest.mark.parametrize("status", NOT_HELD)
def test_time_that_is_not_held_may_be_overlapped(raw, status: str) -> None:
    raw(1, 3, status)
    raw(1, 3)  # a no-show's time was given back: rebooking it is the point of the release
    raw(2, 4, status)  # and a booking that holds nothing may lie over a held one


def test_a_completed_booking_may_not_be_overlapped(raw) -> None:
    raw(1, 3, "completed")
    _refused(lambda: raw(2, 3, "confirmed"))
    _refused(lambda: raw(0, 1.5, "checked_in"))


def test_other_machines_do_not_count(raw) -> None:
    raw(1, 3)
    raw(1, 3, machine="b")


def test_an_update_onto_another_booking_is_refused(raw) -> None:
    first = raw(1, 3)
    second = raw(3, 5)
    _refused(lambda: _set(second, start_at=T0 + 2 * H))  # moved earlier, onto the first
    _refused(lambda: _set(first, end_at=T0 + 4 * H))  # extended into the second
    _refused(lambda: _set(second, start_at=T0, end_at=T0 + 6 * H))  # over it entirely
    other = raw(1, 3, machine="b")
    _refused(lambda: _set(other, machine_id=raw.machines["a"].id))
    # The row itself is not in its own way: shorten, move within its own time, change status.
    _set(first, end_at=T0 + 2 * H)
    _set(first, start_at=T0 + 1.5 * H, end_at=T0 + 3 * H)
    _set(first, status="checked_in")
    _set(first, status="completed", end_at=T0 + 2.5 * H)


def test_held_again_only_where_the_time_is_free(raw) -> None:
    released = raw(1, 3, "no_show")
    raw(1, 2)  # someone took part of the released time
    _refused(lambda: _set(released, status="confirmed"))  # so the no-show cannot come back
    cancelled = raw(2, 3, "cancelled")
    _set(cancelled, status="confirmed")  # the rest is free


def test_bulk_inserts_are_checked_row_by_row(raw) -> None:
    rows = [raw.row(i, i + 1, "completed") for i in range(50)]
    db.session.execute(insert(Booking), rows)
    db.session.commit()

    def clash() -> None:
        try:
            db.session.execute(insert(Booking), [raw.row(60, 61), raw.row(10.5, 11.5), raw.row(70, 71)])
        finally:
            db.session.rollback()

    _refused(clash)
    assert db.session.scalar(select(func.count()).select_from(Booking)) == 50


def test_sqlite_refuses_times_it_could_not_compare(raw) -> None:
    if _dialect() != "sqlite":
        pytest.skip("SQLite stores times as text; PostgreSQL as timestamptz")
    sql = text("INSERT INTO bookings (machine_id, member_id, start_at, end_at, status, kind, note, source, "
               "created_at, updated_at, cancel_reason, sequence) VALUES (:m, :p, :s, :e, 'confirmed', 'normal', "
               "'', 'web', :s, :s, '', 0)")
    # Python's sqlite3 adapter writes no microseconds when they are 0; an ISO "T" sorts after " ".
    for start in ("2030-06-03 10:00:00", "2030-06-03T10:00:00.000000", "2030-06-03 10:00:00.000000+00:00"):
        with pytest.raises(IntegrityError, match="bookings_utc_text"):
            db.session.execute(sql, {"m": raw.machines["a"].id, "p": raw.member.id, "s": start,
                                     "e": "2030-06-04 11:00:00.000000"})
        db.session.rollback()
    # What UTCDateTime writes is exactly the shape the triggers compare as text.
    raw(1, 2)
    assert db.session.scalar(text("SELECT start_at FROM bookings")) == "2030-06-03 11:00:00.000000"


# --- through the service: the database's refusal is the 409 "overlap" -----------------------------------


def test_service_refuses_what_only_the_database_sees_with_409(app_ctx, make_member, open_machine, qualified,
                                                              monkeypatch) -> None:
    machine = open_machine()
    ada, bo = make_member(), make_member()
    qualified(ada, machine)
    qualified(bo, machine)
    now = datetime.now(UTC)
    start = now.replace(minute=0, second=0, microsecond=0) + 3 * H
    svc.create_booking(ada, machine, start, start + H, now=now)
    # A concurrent writer the checks could not see (on PostgreSQL a race; here: hide Ada's booking).
    monkeypatch.setattr(svc, "load_machine_bookings", lambda *a, **k: svc.MachineBookings([], []))
    with pytest.raises(svc.BookingRejected) as caught:
        svc.create_booking(bo, machine, start + H / 2, start + 2 * H, now=now)
    assert caught.value.code == "overlap" and caught.value.status == 409
    assert "ex_bookings_no_overlap" not in caught.value.message


def test_ending_early_then_booking_the_running_slot_is_a_409(app_ctx, make_member, open_machine,
                                                              qualified) -> None:
    """Ending early rounds the end up to the slot; "book now" starts at the slot's start. The rules do not
    count completed bookings, so only the database sees this overlap, and the member gets a 409."""
    machine = open_machine()
    ada, bo = make_member(), make_member()
    qualified(ada, machine)
    qualified(bo, machine)
    slot_start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + 2 * H
    now = slot_start + timedelta(minutes=10)
    running = svc.create_booking(ada, machine, slot_start, slot_start + 2 * H, now=now)
    assert running.status == "checked_in"
    svc.end_early(running, ada, now=now + timedelta(minutes=1))
    db.session.refresh(running)
    assert running.status == "completed" and running.end_at == slot_start + timedelta(minutes=30)
    with pytest.raises(svc.BookingRejected) as caught:
        svc.create_booking(bo, machine, slot_start, slot_start + H, now=now + timedelta(minutes=2))
    assert caught.value.code == "overlap" and caught.value.status == 409
    # From the end of Ada's rounded-up slot the time is Bo's.
    svc.create_booking(bo, machine, slot_start + timedelta(minutes=30), slot_start + H, now=now + timedelta(minutes=2))


def test_api_answers_409_not_500(client, app_ctx, make_member, open_machine, qualified, monkeypatch) -> None:
    machine = open_machine("laser-ovl")
    ada, bo = make_member(), make_member()
    qualified(ada, machine)
    qualified(bo, machine)
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + 3 * H
    svc.create_booking(ada, machine, start, start + H)
    token = create_api_token(bo)
    db.session.commit()
    monkeypatch.setattr(svc, "load_machine_bookings", lambda *a, **k: svc.MachineBookings([], []))
    resp = client.post("/api/v1/bookings", json={"machine": "laser-ovl", "start": start.isoformat(),
                                                 "end": (start + H).isoformat()},
                       headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 409, resp.get_data(as_text=True)
    assert resp.json["error"]["code"] == "overlap"


# --- the migration: existing rows are made to satisfy the rule, or the upgrade says which do not ----------


PG_URL = os.environ.get("FABLAB_TEST_DATABASE_URL")


@pytest.fixture
def fresh_app(tmp_path) -> Iterator[Any]:
    cfg: dict[str, Any] = {"TESTING": True, "INSTANCE_PATH": str(tmp_path), "SECRET_KEY": "x" * 32}
    schema = None
    if PG_URL:
        schema = f"o_{uuid.uuid4().hex[:10]}"
        admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        cfg["SQLALCHEMY_DATABASE_URI"] = PG_URL
        cfg["SQLALCHEMY_ENGINE_OPTIONS"] = {"connect_args": {"options": f"-csearch_path={schema},public"}}
    else:
        cfg["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{tmp_path / 'o.db'}"
    app = create_app(cfg)
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()
    if schema:
        with admin.connect() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def _legacy_rows(rows: list[tuple[float, float, str]]) -> list[int]:
    """Rows as the schema of 0004 takes them (columns of 0001 only), times bound through UTCDateTime."""
    times = [bindparam(name, type_=UTCDateTime()) for name in ("s", "e", "t")]
    db.session.execute(text("INSERT INTO machine_types (slug, name) VALUES ('laser_cutter', 'Laser')"))
    db.session.execute(text(
        "INSERT INTO machines (slug, name, type_id, location, description, status, qualification_scope, "
        "created_at) VALUES ('m1', 'M1', (SELECT id FROM machine_types), '', '', 'available', 'type', :t)"
    ).bindparams(times[2]), {"t": T0})
    db.session.execute(text(
        "INSERT INTO members (member_no, email, name, role, active, share, created_at) "
        "VALUES (1, 'a@example.org', 'A', 'member', true, 1.0, :t)").bindparams(times[2]), {"t": T0})
    ids = []
    for start, end, status in rows:
        ids.append(db.session.scalar(text(
            "INSERT INTO bookings (machine_id, member_id, start_at, end_at, booked_end_at, status, kind, note, "
            "source, created_at, updated_at, cancel_reason, sequence) VALUES ((SELECT id FROM machines), "
            "(SELECT id FROM members), :s, :e, :e, :st, 'normal', '', 'web', :s, :s, '', 0) RETURNING id"
        ).bindparams(times[0], times[1]), {"s": T0 + start * H, "e": T0 + end * H, "st": status}))
    db.session.commit()
    return ids


def _migrate(direction: str, revision: str) -> None:
    """Alembic itself (Flask-Migrate would turn a refused upgrade into SystemExit)."""
    from alembic import command

    config = current_app.extensions["migrate"].migrate.get_config()
    getattr(command, direction)(config, revision)


def test_upgrade_trims_a_completed_booking_under_a_later_held_one(fresh_app) -> None:
    _migrate("upgrade", "0004_scheduling")
    # Ended early and rounded up to 11:30, then the running slot was booked from 11:00 (old predicate).
    done, later, released = _legacy_rows([(0, 1.5, "completed"), (1, 2, "confirmed"), (0, 3, "no_show")])
    _migrate("upgrade", "0005_no_overlap")
    # Columns, not the entity: at 0005 the tables lack later columns of the models it eagerly joins (members).
    got = {b.id: b for b in db.session.execute(select(Booking.id, Booking.end_at, Booking.booked_end_at))}
    assert got[done].end_at == T0 + H and got[done].booked_end_at == T0 + 1.5 * H
    assert got[later].end_at == T0 + 2 * H and got[released].end_at == T0 + 3 * H
    db.session.commit()  # end the read: the migration writes on its own connection
    _migrate("downgrade", "0004_scheduling")  # the old predicate again: completed time is not protected
    db.session.execute(update(Booking).where(Booking.id == done).values(end_at=T0 + 1.5 * H))
    db.session.commit()
    _migrate("downgrade", "base")


def test_upgrade_names_overlaps_it_cannot_resolve(fresh_app) -> None:
    _migrate("upgrade", "0004_scheduling")
    if _dialect() == "sqlite":  # PostgreSQL's old constraint already refuses two confirmed overlaps
        a, b = _legacy_rows([(0, 2, "confirmed"), (1, 3, "confirmed")])
    else:
        a, b = _legacy_rows([(0, 3, "confirmed"), (1, 2, "completed")])
    with pytest.raises(RuntimeError, match=f"{a}/{b}"):
        _migrate("upgrade", "0005_no_overlap")
    db.session.rollback()
    db.session.execute(text("DELETE FROM bookings"))
    db.session.commit()
    _migrate("upgrade", "0005_no_overlap")
    _migrate("downgrade", "base")


# --- the demo goes through the constraint on any date --------------------------------------------------------


@pytest.mark.parametrize("when", [
    "2026-12-01T10:37",  # a Tuesday, the day this was written
    "2026-12-06T15:00",  # a Sunday
    "2026-11-30T00:05",  # just into a Monday (a new window week)
    "2026-12-03T20:30",  # just after the weekly window closed
    "2026-12-31T23:30", "2027-01-01T00:10",  # year end
    "2026-03-29T12:00", "2026-10-25T12:00",  # the DST switches in Europe/Berlin (both Sundays)
])
def test_demo_seeds_without_overlaps_on_awkward_dates(app_ctx, when: str, monkeypatch) -> None:
    from fablab import demo
    from fablab.services import members as member_service

    monkeypatch.setattr(member_service, "hash_password", lambda secret: f"not-argon2:{secret}")  # 44 hashes
    instant = datetime.fromisoformat(when).replace(tzinfo=ZoneInfo("Europe/Berlin"))
    with time_machine.travel(instant, tick=True):
        text_out = demo.seed()
        assert "weeks of history" in text_out
    rows = db.session.execute(select(Booking.machine_id, Booking.start_at, Booking.end_at)
                              .where(Booking.status.in_(HELD + ["no_show", "requested"]))
                              .order_by(Booking.machine_id, Booking.start_at)).all()
    last: dict[int, datetime] = {}
    for mid, s, e in rows:
        assert mid not in last or last[mid] <= s
        last[mid] = e
