"""no overlap of held bookings, enforced by the database on PostgreSQL and SQLite

Revision ID: 0005_no_overlap
Revises: 0004_scheduling

Held bookings are those in status confirmed, checked_in or completed. Completed bookings are time that
was held and used (ending early trims end_at; booked_end_at keeps the original), so a completed booking
never legitimately overlaps a held one. No-show bookings are not held: their time was given back to the
lab when the check-in grace passed, and letting others rebook it is the point of the release. Requested,
cancelled and released bookings hold nothing either. Intervals are half-open [start_at, end_at): touching
bookings are fine.

- PostgreSQL: the exclusion constraint ex_bookings_no_overlap (0001) is recreated with this predicate.
- SQLite: BEFORE INSERT / BEFORE UPDATE triggers RAISE(ABORT, 'ex_bookings_no_overlap: ...'); the sqlite3
  IntegrityError carries that text, so the booking service maps it to its 409 "overlap" refusal exactly
  as it maps PostgreSQL's exclusion violation.

How the SQLite triggers compare times: UTCDateTime stores naive UTC through SQLAlchemy's SQLite DATETIME,
always as fixed-width text 'YYYY-MM-DD HH:MM:SS.ffffff' (microseconds included even when zero), so text
order is time order and the comparisons can use ix_bookings_machine_time. Text in any other shape (an ISO
'T', an offset, no microseconds: e.g. Python's sqlite3 adapter drops '.000000') would compare wrongly, so
the triggers refuse a held row whose times are not in that shape, with a message of its own.

The check is O(log n) per write: a held booking overlaps [s, e) if one starts within [s, e), or if the
latest held booking starting before s ends after s (held bookings never overlap each other, so that latest
one also ends latest). Before the triggers and the constraint are installed, upgrade() makes the existing
rows satisfy that: a completed booking overlapping a later-starting held one is trimmed to end where the
later one starts (the "end early, then book the running slot" case, which only the old predicate allowed;
booked_end_at keeps the original end); any other overlap among held bookings stops the upgrade with the
booking ids, for a person to resolve. downgrade() restores the old predicate and drops the triggers; it
does not restore trimmed ends.

Note for later migrations: an Alembic batch operation that recreates `bookings` on SQLite drops its
triggers; such a migration must create them again (tests/bookings/test_overlap_constraint.py checks that
they exist at head).
"""
import sqlalchemy as sa
from alembic import op

revision = "0005_no_overlap"
down_revision = "0004_scheduling"
branch_labels = None
depends_on = None

HELD = ("confirmed", "checked_in", "completed")
OLD_HELD = ("confirmed", "checked_in")
_HELD_SQL = ", ".join(f"'{s}'" for s in HELD)

_D = "[0-9]"
UTC_TEXT_GLOB = f"{_D * 4}-{_D * 2}-{_D * 2} {_D * 2}:{_D * 2}:{_D * 2}.{_D * 6}"
OVERLAP_MESSAGE = ("ex_bookings_no_overlap: another held booking (confirmed, checked_in or completed) "
                   "of this machine overlaps [start_at, end_at)")
FORMAT_MESSAGE = ("bookings_utc_text: start_at and end_at of a held booking must be naive UTC text "
                  "YYYY-MM-DD HH:MM:SS.ffffff, as UTCDateTime stores them")

TRIGGERS = ("trg_bookings_no_overlap_insert", "trg_bookings_no_overlap_update")


def _trigger_sql(name: str, event: str, self_filter: str) -> str:
    # `+b.status` keeps SQLite from choosing ix_bookings_status (all machines' held rows) over the
    # machine/time index.
    others = (f"FROM bookings b WHERE b.machine_id = NEW.machine_id AND +b.status IN ({_HELD_SQL})"
              f"{self_filter}")
    return f"""
CREATE TRIGGER {name} BEFORE {event} ON bookings
WHEN NEW.status IN ({_HELD_SQL}) AND NEW.end_at > NEW.start_at
BEGIN
    SELECT RAISE(ABORT, '{FORMAT_MESSAGE}')
    WHERE NOT (NEW.start_at GLOB '{UTC_TEXT_GLOB}' AND NEW.end_at GLOB '{UTC_TEXT_GLOB}');
    SELECT RAISE(ABORT, '{OVERLAP_MESSAGE}')
    WHERE EXISTS (SELECT 1 {others} AND b.start_at >= NEW.start_at AND b.start_at < NEW.end_at)
       OR (SELECT b.end_at {others} AND b.start_at < NEW.start_at ORDER BY b.start_at DESC LIMIT 1)
          > NEW.start_at;
END
"""


def _exclusion_sql(statuses: tuple[str, ...]) -> str:
    listed = ", ".join(f"'{s}'" for s in statuses)
    return ("ALTER TABLE bookings ADD CONSTRAINT ex_bookings_no_overlap EXCLUDE USING gist "
            "(machine_id WITH =, tstzrange(start_at, end_at, '[)') WITH &&) "
            f"WHERE (status IN ({listed}))")


def _trim_completed(bind: sa.engine.Connection) -> None:
    """A completed booking overlapping a held one that starts later ends where that one starts."""
    rows = bind.execute(sa.text(
        f"SELECT x.id, MIN(y.start_at) FROM bookings x JOIN bookings y "
        f"ON y.machine_id = x.machine_id AND y.id <> x.id AND y.status IN ({_HELD_SQL}) "
        f"AND y.start_at > x.start_at AND y.start_at < x.end_at "
        f"WHERE x.status = 'completed' GROUP BY x.id")).all()
    for booking_id, new_end in rows:
        bind.execute(sa.text(
            "UPDATE bookings SET booked_end_at = COALESCE(booked_end_at, end_at), end_at = :end "
            "WHERE id = :id"), {"end": new_end, "id": booking_id})


def _refuse_remaining_overlaps(bind: sa.engine.Connection) -> None:
    pairs = bind.execute(sa.text(
        f"SELECT x.id, y.id FROM bookings x JOIN bookings y "
        f"ON y.machine_id = x.machine_id AND y.id <> x.id AND y.status IN ({_HELD_SQL}) "
        f"AND y.start_at >= x.start_at AND y.start_at < x.end_at "
        f"WHERE x.status IN ({_HELD_SQL}) AND (y.start_at > x.start_at OR y.id > x.id) "
        f"ORDER BY x.id, y.id")).all()
    if pairs:
        shown = ", ".join(f"{a}/{b}" for a, b in pairs[:20])
        raise RuntimeError(
            f"0005_no_overlap: {len(pairs)} pair(s) of held bookings (confirmed, checked_in, completed) of one "
            f"machine overlap (booking ids {shown}{', ...' if len(pairs) > 20 else ''}). Cancel or shorten one "
            "of each pair, then run the upgrade again.")


def _bad_sqlite_times(bind: sa.engine.Connection) -> None:
    bad = bind.execute(sa.text(
        f"SELECT id FROM bookings WHERE status IN ({_HELD_SQL}) AND NOT "
        f"(start_at GLOB '{UTC_TEXT_GLOB}' AND end_at GLOB '{UTC_TEXT_GLOB}') ORDER BY id LIMIT 20")).all()
    if bad:
        raise RuntimeError(
            "0005_no_overlap: held bookings with times not stored as 'YYYY-MM-DD HH:MM:SS.ffffff' UTC text "
            f"(ids {', '.join(str(r[0]) for r in bad)}); rewrite them in that form, then upgrade again.")


def upgrade():
    bind = op.get_bind()
    dialect = bind.dialect.name
    if dialect == "sqlite":
        _bad_sqlite_times(bind)
    _trim_completed(bind)
    _refuse_remaining_overlaps(bind)
    if dialect == "postgresql":
        op.execute("ALTER TABLE bookings DROP CONSTRAINT IF EXISTS ex_bookings_no_overlap")
        op.execute(_exclusion_sql(HELD))
    elif dialect == "sqlite":
        op.execute(_trigger_sql(TRIGGERS[0], "INSERT", ""))
        op.execute(_trigger_sql(TRIGGERS[1], "UPDATE OF machine_id, start_at, end_at, status",
                                " AND b.id <> OLD.id"))


def downgrade():
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute("ALTER TABLE bookings DROP CONSTRAINT IF EXISTS ex_bookings_no_overlap")
        op.execute(_exclusion_sql(OLD_HELD))
    elif dialect == "sqlite":
        for name in TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
