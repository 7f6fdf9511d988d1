"""One-time kiosk activation links: a hashed token per link, valid 24 hours, used once.

Revision ID: 0010_kiosk_activation
Revises: 0009_upload_processing
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_kiosk_activation"
down_revision = "0009_upload_processing"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "kiosk_activations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["device_id"], ["kiosk_devices.id"],
                                name=op.f("fk_kiosk_activations_device_id_kiosk_devices"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kiosk_activations")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_kiosk_activations_token_hash")),
    )
    with op.batch_alter_table("kiosk_activations") as batch_op:
        batch_op.create_index(batch_op.f("ix_kiosk_activations_device_id"), ["device_id"], unique=False)


def downgrade():
    with op.batch_alter_table("kiosk_activations") as batch_op:
        batch_op.drop_index(batch_op.f("ix_kiosk_activations_device_id"))
    op.drop_table("kiosk_activations")
