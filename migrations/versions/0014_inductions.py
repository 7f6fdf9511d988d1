"""Inductions: sessions (blocking their machine), sign-ups with a waitlist, requests, per-type expiry rules, trainers.

Revision ID: 0014_inductions
Revises: 0013_webhooks
"""

import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '0014_inductions'
down_revision = '0013_webhooks'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('induction_requests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('machine_type_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('fulfilled_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['machine_type_id'], ['machine_types.id'], name=op.f('fk_induction_requests_machine_type_id_machine_types'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_induction_requests_member_id_members'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_induction_requests'))
    )
    with op.batch_alter_table('induction_requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_induction_requests_member_id'), ['member_id'], unique=False)
        batch_op.create_index('ix_induction_requests_open', ['machine_type_id', 'fulfilled_at'], unique=False)

    op.create_table('induction_rules',
    sa.Column('machine_type_id', sa.Integer(), nullable=False),
    sa.Column('validity_months', sa.Integer(), nullable=True),
    sa.Column('disuse_months', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['machine_type_id'], ['machine_types.id'], name=op.f('fk_induction_rules_machine_type_id_machine_types'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('machine_type_id', name=op.f('pk_induction_rules'))
    )
    op.create_table('induction_sessions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('machine_type_id', sa.Integer(), nullable=False),
    sa.Column('machine_id', sa.Integer(), nullable=True),
    sa.Column('trainer_id', sa.Integer(), nullable=False),
    sa.Column('start_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('end_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('place', sa.String(length=120), nullable=False),
    sa.Column('capacity', sa.Integer(), nullable=False),
    sa.Column('prerequisite_type_ids', sa.JSON(), nullable=False),
    sa.Column('material_url', sa.String(length=2000), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('is_refresher', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('booking_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('cancelled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('cancel_reason', sa.String(length=255), nullable=False),
    sa.CheckConstraint('capacity > 0', name=op.f('ck_induction_sessions_capacity_positive')),
    sa.CheckConstraint('end_at > start_at', name=op.f('ck_induction_sessions_end_after_start')),
    sa.ForeignKeyConstraint(['booking_id'], ['bookings.id'], name=op.f('fk_induction_sessions_booking_id_bookings'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['machine_id'], ['machines.id'], name=op.f('fk_induction_sessions_machine_id_machines'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['machine_type_id'], ['machine_types.id'], name=op.f('fk_induction_sessions_machine_type_id_machine_types'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['trainer_id'], ['members.id'], name=op.f('fk_induction_sessions_trainer_id_members'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_induction_sessions'))
    )
    with op.batch_alter_table('induction_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_induction_sessions_status'), ['status'], unique=False)
        batch_op.create_index('ix_induction_sessions_type_start', ['machine_type_id', 'start_at'], unique=False)

    op.create_table('induction_signups',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('session_id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('position', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_induction_signups_member_id_members'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['session_id'], ['induction_sessions.id'], name=op.f('fk_induction_signups_session_id_induction_sessions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_induction_signups')),
    sa.UniqueConstraint('session_id', 'member_id', name='uq_induction_signups_session_member')
    )
    with op.batch_alter_table('induction_signups', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_induction_signups_member_id'), ['member_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_induction_signups_session_id'), ['session_id'], unique=False)
    op.create_table('induction_trainers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('machine_type_id', sa.Integer(), nullable=False),
    sa.Column('granted_by_id', sa.Integer(), nullable=True),
    sa.Column('granted_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['granted_by_id'], ['members.id'], name=op.f('fk_induction_trainers_granted_by_id_members'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['machine_type_id'], ['machine_types.id'], name=op.f('fk_induction_trainers_machine_type_id_machine_types'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_induction_trainers_member_id_members'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_induction_trainers')),
    sa.UniqueConstraint('member_id', 'machine_type_id', name='uq_induction_trainers_member_type')
    )
    with op.batch_alter_table('induction_trainers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_induction_trainers_member_id'), ['member_id'], unique=False)


def downgrade():
    with op.batch_alter_table('induction_trainers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_induction_trainers_member_id'))

    op.drop_table('induction_trainers')
    with op.batch_alter_table('induction_signups', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_induction_signups_session_id'))
        batch_op.drop_index(batch_op.f('ix_induction_signups_member_id'))

    op.drop_table('induction_signups')
    with op.batch_alter_table('induction_sessions', schema=None) as batch_op:
        batch_op.drop_index('ix_induction_sessions_type_start')
        batch_op.drop_index(batch_op.f('ix_induction_sessions_status'))

    op.drop_table('induction_sessions')
    op.drop_table('induction_rules')
    with op.batch_alter_table('induction_requests', schema=None) as batch_op:
        batch_op.drop_index('ix_induction_requests_open')
        batch_op.drop_index(batch_op.f('ix_induction_requests_member_id'))

    op.drop_table('induction_requests')
