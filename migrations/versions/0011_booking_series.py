"""Recurring bookings: booking_series, and bookings.series_id linking each occurrence to its series.

Revision ID: 0011_booking_series
Revises: 0010_kiosk_activation

SQLite cannot add a foreign key to an existing table, so `bookings` is rebuilt by a batch operation,
which drops its triggers (the no-overlap triggers of 0005): they are read from sqlite_master first and
created again afterwards, unchanged, in both directions.
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_booking_series"
down_revision = "0010_kiosk_activation"
branch_labels = None
depends_on = None


def _saved_triggers() -> list[str]:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return []
    rows = bind.execute(sa.text("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'bookings'"))
    return [r[0] for r in rows]


def _restore(triggers: list[str]) -> None:
    for sql in triggers:
        op.execute(sql)


def upgrade():
    op.create_table(
        "booking_series",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("machine_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("weekday", sa.Integer(), nullable=False),
        sa.Column("start_minute", sa.Integer(), nullable=False),
        sa.Column("minutes", sa.Integer(), nullable=False),
        sa.Column("every_weeks", sa.Integer(), nullable=False),
        sa.Column("first_day", sa.Date(), nullable=False),
        sa.Column("until", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("skipped", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("every_weeks IN (1, 2)", name=op.f("ck_booking_series_every_weeks_allowed")),
        sa.CheckConstraint("minutes > 0", name=op.f("ck_booking_series_minutes_positive")),
        sa.CheckConstraint("start_minute >= 0 AND start_minute < 1440",
                           name=op.f("ck_booking_series_start_minute_range")),
        sa.CheckConstraint("weekday >= 0 AND weekday <= 6", name=op.f("ck_booking_series_weekday_range")),
        sa.ForeignKeyConstraint(["created_by_id"], ["members.id"],
                                name=op.f("fk_booking_series_created_by_id_members"), ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["machine_id"], ["machines.id"],
                                name=op.f("fk_booking_series_machine_id_machines"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"],
                                name=op.f("fk_booking_series_member_id_members"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_booking_series")),
    )
    op.create_index(op.f("ix_booking_series_machine_id"), "booking_series", ["machine_id"], unique=False)
    triggers = _saved_triggers()
    with op.batch_alter_table("bookings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("series_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_bookings_series_id"), ["series_id"], unique=False)
        batch_op.create_foreign_key(batch_op.f("fk_bookings_series_id_booking_series"), "booking_series",
                                    ["series_id"], ["id"], ondelete="SET NULL")
    _restore(triggers)


def downgrade():
    triggers = _saved_triggers()
    with op.batch_alter_table("bookings", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_bookings_series_id_booking_series"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_bookings_series_id"))
        batch_op.drop_column("series_id")
    _restore(triggers)
    op.drop_index(op.f("ix_booking_series_machine_id"), table_name="booking_series")
    op.drop_table("booking_series")
