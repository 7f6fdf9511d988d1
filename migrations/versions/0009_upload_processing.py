"""Upload processing: a design file is "ready", "processing" (the worker measures it and draws its
picture later) or "failed" with the problem; attempts count the worker's starts on it.

Revision ID: 0009_upload_processing
Revises: 0008_privacy_effort
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_upload_processing"
down_revision = "0008_privacy_effort"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("design_files", schema=None) as batch_op:
        batch_op.add_column(sa.Column("status", sa.String(length=16), server_default="ready", nullable=False))
        batch_op.add_column(sa.Column("problem", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("attempts", sa.Integer(), server_default="0", nullable=False))
        batch_op.create_index(batch_op.f("ix_design_files_status"), ["status"], unique=False)


def downgrade():
    with op.batch_alter_table("design_files", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_design_files_status"))
        batch_op.drop_column("attempts")
        batch_op.drop_column("problem")
        batch_op.drop_column("status")
