"""Induction sessions remember their trainer's effort task, and when the trainer was reminded to record
attendance.

Sessions done before this migration get their effort task back from its title ("… (session #<id>)"), the
only link there was, so the trainer's page can show what was credited for them.

Revision ID: 0019_induction_effort
Revises: 0018_print_queue
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0019_induction_effort'
down_revision = '0018_print_queue'
branch_labels = None
depends_on = None


def upgrade():
    # A plain column, no foreign key: SQLite can only add one by rebuilding the table (batch mode), and
    # dropping the old table would cascade to its sign-ups. The effort lookup tolerates a deleted task.
    op.add_column('induction_sessions', sa.Column('effort_task_id', sa.Integer(), nullable=True))
    op.add_column('induction_sessions', sa.Column('attendance_reminded_at', sa.DateTime(timezone=True), nullable=True))
    conn = op.get_bind()
    tasks = conn.execute(sa.text("SELECT id, title FROM effort_tasks WHERE kind = 'induction'")).fetchall()
    for task_id, title in tasks:
        marker = title.rsplit("(session #", 1)
        if len(marker) == 2 and marker[1].rstrip(")").isdigit():
            conn.execute(sa.text("UPDATE induction_sessions SET effort_task_id = :t WHERE id = :s"),
                         {"t": task_id, "s": int(marker[1].rstrip(")"))})



def downgrade():
    op.drop_column('induction_sessions', 'attendance_reminded_at')
    op.drop_column('induction_sessions', 'effort_task_id')
