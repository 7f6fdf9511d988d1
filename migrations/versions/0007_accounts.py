"""Accounts: server-side sessions, API token scope and expiry, a prunable login throttle.

Existing API tokens become 'write' tokens without expiry (they keep working as before). Old throttle rows
are dropped: their keys held typed emails in clear, and the new keys are keyed hashes. Sessions signed in
before this migration carried no server-side id and end: members sign in once more.

Revision ID: 0007_accounts
Revises: 0006_ingest_integrity
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_accounts"
down_revision = "0006_ingest_integrity"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "member_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("kiosk_id", sa.Integer(), nullable=True),
        sa.Column("user_agent", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["kiosk_id"], ["kiosk_devices.id"], name=op.f("fk_member_sessions_kiosk_id_kiosk_devices"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"], name=op.f("fk_member_sessions_member_id_members"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_member_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_member_sessions_token_hash")),
    )
    with op.batch_alter_table("member_sessions") as batch_op:
        batch_op.create_index(batch_op.f("ix_member_sessions_member_id"), ["member_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_member_sessions_last_seen_at"), ["last_seen_at"], unique=False)
    with op.batch_alter_table("api_tokens") as batch_op:
        batch_op.add_column(sa.Column("scope", sa.String(length=8), server_default=sa.text("'write'"), nullable=False))
        batch_op.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("DELETE FROM login_throttle")
    with op.batch_alter_table("login_throttle") as batch_op:
        batch_op.create_index(batch_op.f("ix_login_throttle_last_failure_at"), ["last_failure_at"], unique=False)


def downgrade():
    with op.batch_alter_table("login_throttle") as batch_op:
        batch_op.drop_index(batch_op.f("ix_login_throttle_last_failure_at"))
    # Without the columns a read-only or expiring token would become a lasting read-write one: revoke those.
    tokens = sa.table("api_tokens", sa.column("revoked", sa.Boolean), sa.column("scope", sa.String),
                      sa.column("expires_at", sa.DateTime(timezone=True)))
    op.execute(tokens.update().where(sa.or_(tokens.c.scope != "write", tokens.c.expires_at.is_not(None)))
               .values(revoked=True))
    with op.batch_alter_table("api_tokens") as batch_op:
        batch_op.drop_column("expires_at")
        batch_op.drop_column("scope")
    with op.batch_alter_table("member_sessions") as batch_op:
        batch_op.drop_index(batch_op.f("ix_member_sessions_last_seen_at"))
        batch_op.drop_index(batch_op.f("ix_member_sessions_member_id"))
    op.drop_table("member_sessions")
