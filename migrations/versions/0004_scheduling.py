"""fair scheduling: request windows, slot requests, waitlist and offers, effort tasks

Revision ID: 0004_scheduling
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0004_scheduling"
down_revision = "0003_designs"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('effort_tasks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=160), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('machine_id', sa.Integer(), nullable=True),
    sa.Column('base_hours', sa.Float(), nullable=False),
    sa.Column('people_needed', sa.Integer(), nullable=False),
    sa.Column('rise_per_day', sa.Float(), nullable=False),
    sa.Column('max_factor', sa.Float(), nullable=False),
    sa.Column('opened_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('cancelled', sa.Boolean(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.CheckConstraint('base_hours > 0', name=op.f('ck_effort_tasks_base_positive')),
    sa.CheckConstraint('people_needed >= 1', name=op.f('ck_effort_tasks_people_positive')),
    sa.ForeignKeyConstraint(['created_by_id'], ['members.id'], name=op.f('fk_effort_tasks_created_by_id_members'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['machine_id'], ['machines.id'], name=op.f('fk_effort_tasks_machine_id_machines'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_effort_tasks'))
    )
    op.create_index(op.f('ix_effort_tasks_completed_at'), 'effort_tasks', ['completed_at'], unique=False)
    op.create_table('request_windows',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('machine_id', sa.Integer(), nullable=False),
    sa.Column('mode', sa.String(length=10), nullable=False),
    sa.Column('period_start', sa.DateTime(timezone=True), nullable=False),
    sa.Column('period_end', sa.DateTime(timezone=True), nullable=False),
    sa.Column('opens_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('closes_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('commitment', sa.String(length=64), nullable=False),
    sa.Column('secret_seed', sa.String(length=64), nullable=False),
    sa.Column('revealed_seed', sa.String(length=64), nullable=True),
    sa.Column('trace', sa.JSON(), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint('closes_at > opens_at', name=op.f('ck_request_windows_closes_after_opens')),
    sa.CheckConstraint('period_end > period_start', name=op.f('ck_request_windows_period_positive')),
    sa.ForeignKeyConstraint(['created_by_id'], ['members.id'], name=op.f('fk_request_windows_created_by_id_members'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['machine_id'], ['machines.id'], name=op.f('fk_request_windows_machine_id_machines'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_request_windows'))
    )
    op.create_index('ix_request_windows_machine_period', 'request_windows', ['machine_id', 'period_start'], unique=False)
    op.create_index(op.f('ix_request_windows_status'), 'request_windows', ['status'], unique=False)
    op.create_table('scheduling_settings',
    sa.Column('machine_id', sa.Integer(), nullable=False),
    sa.Column('open_weekday', sa.Integer(), nullable=False),
    sa.Column('open_time', sa.String(length=5), nullable=False),
    sa.Column('close_weekday', sa.Integer(), nullable=False),
    sa.Column('close_time', sa.String(length=5), nullable=False),
    sa.Column('auto_open', sa.Boolean(), nullable=False),
    sa.Column('request_minutes', sa.Integer(), nullable=False),
    sa.Column('quota_hours', sa.Float(), nullable=True),
    sa.Column('quota_slots', sa.Integer(), nullable=True),
    sa.Column('band_width', sa.Float(), nullable=False),
    sa.Column('half_life_days', sa.Float(), nullable=False),
    sa.Column('bonus_enabled', sa.Boolean(), nullable=False),
    sa.Column('hold_minutes', sa.Integer(), nullable=False),
    sa.Column('first_come_minutes', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['machine_id'], ['machines.id'], name=op.f('fk_scheduling_settings_machine_id_machines'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('machine_id', name=op.f('pk_scheduling_settings'))
    )
    op.create_table('freed_times',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('machine_id', sa.Integer(), nullable=False),
    sa.Column('start_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('end_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('source_booking_id', sa.Integer(), nullable=True),
    sa.Column('done', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('end_at > start_at', name=op.f('ck_freed_times_end_after_start')),
    sa.ForeignKeyConstraint(['machine_id'], ['machines.id'], name=op.f('fk_freed_times_machine_id_machines'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['source_booking_id'], ['bookings.id'], name=op.f('fk_freed_times_source_booking_id_bookings'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_freed_times')),
    sa.UniqueConstraint('source_booking_id', name=op.f('uq_freed_times_source_booking_id'))
    )
    op.create_index('ix_freed_times_machine', 'freed_times', ['machine_id', 'done', 'end_at'], unique=False)
    op.create_table('slot_requests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('window_id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('machine_id', sa.Integer(), nullable=False),
    sa.Column('start_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('end_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('rank', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('reason', sa.String(length=20), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('round_no', sa.Integer(), nullable=True),
    sa.Column('factor', sa.Float(), nullable=True),
    sa.Column('booking_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint('end_at > start_at', name=op.f('ck_slot_requests_end_after_start')),
    sa.ForeignKeyConstraint(['booking_id'], ['bookings.id'], name=op.f('fk_slot_requests_booking_id_bookings'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['machine_id'], ['machines.id'], name=op.f('fk_slot_requests_machine_id_machines'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_slot_requests_member_id_members'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['window_id'], ['request_windows.id'], name=op.f('fk_slot_requests_window_id_request_windows'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_slot_requests')),
    sa.UniqueConstraint('window_id', 'member_id', 'start_at', 'end_at', name='uq_slot_requests_once')
    )
    op.create_index('ix_slot_requests_member', 'slot_requests', ['member_id', 'window_id'], unique=False)
    op.create_index(op.f('ix_slot_requests_window_id'), 'slot_requests', ['window_id'], unique=False)
    op.create_table('task_claims',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_task_claims_member_id_members'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['task_id'], ['effort_tasks.id'], name=op.f('fk_task_claims_task_id_effort_tasks'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_task_claims')),
    sa.UniqueConstraint('task_id', 'member_id', name='uq_task_claims_once')
    )
    op.create_index(op.f('ix_task_claims_member_id'), 'task_claims', ['member_id'], unique=False)
    op.create_table('task_completions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('credited_hours', sa.Float(), nullable=False),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_task_completions_member_id_members'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['task_id'], ['effort_tasks.id'], name=op.f('fk_task_completions_task_id_effort_tasks'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_task_completions')),
    sa.UniqueConstraint('task_id', 'member_id', name='uq_task_completions_once')
    )
    op.create_index(op.f('ix_task_completions_member_id'), 'task_completions', ['member_id'], unique=False)
    op.create_table('waitlist_entries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('machine_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=5), nullable=False),
    sa.Column('start_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('end_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('min_hours', sa.Float(), nullable=False),
    sa.Column('sequence', sa.Integer(), nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('joined_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('end_at > start_at', name=op.f('ck_waitlist_entries_end_after_start')),
    sa.ForeignKeyConstraint(['machine_id'], ['machines.id'], name=op.f('fk_waitlist_entries_machine_id_machines'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_waitlist_entries_member_id_members'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['request_id'], ['slot_requests.id'], name=op.f('fk_waitlist_entries_request_id_slot_requests'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_waitlist_entries'))
    )
    op.create_index('ix_waitlist_entries_machine', 'waitlist_entries', ['machine_id', 'status', 'end_at'], unique=False)
    op.create_index(op.f('ix_waitlist_entries_member_id'), 'waitlist_entries', ['member_id'], unique=False)
    op.create_table('waitlist_offers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('freed_id', sa.Integer(), nullable=False),
    sa.Column('entry_id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('machine_id', sa.Integer(), nullable=False),
    sa.Column('start_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('end_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('offered_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('first_come', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('booking_id', sa.Integer(), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint('end_at > start_at', name=op.f('ck_waitlist_offers_end_after_start')),
    sa.ForeignKeyConstraint(['booking_id'], ['bookings.id'], name=op.f('fk_waitlist_offers_booking_id_bookings'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['entry_id'], ['waitlist_entries.id'], name=op.f('fk_waitlist_offers_entry_id_waitlist_entries'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['freed_id'], ['freed_times.id'], name=op.f('fk_waitlist_offers_freed_id_freed_times'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['machine_id'], ['machines.id'], name=op.f('fk_waitlist_offers_machine_id_machines'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_waitlist_offers_member_id_members'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_waitlist_offers'))
    )
    op.create_index(op.f('ix_waitlist_offers_freed_id'), 'waitlist_offers', ['freed_id'], unique=False)
    op.create_index('ix_waitlist_offers_member', 'waitlist_offers', ['member_id', 'status'], unique=False)


def downgrade():
    op.drop_index('ix_waitlist_offers_member', table_name='waitlist_offers')
    op.drop_index(op.f('ix_waitlist_offers_freed_id'), table_name='waitlist_offers')
    op.drop_table('waitlist_offers')
    op.drop_index(op.f('ix_waitlist_entries_member_id'), table_name='waitlist_entries')
    op.drop_index('ix_waitlist_entries_machine', table_name='waitlist_entries')
    op.drop_table('waitlist_entries')
    op.drop_index(op.f('ix_task_completions_member_id'), table_name='task_completions')
    op.drop_table('task_completions')
    op.drop_index(op.f('ix_task_claims_member_id'), table_name='task_claims')
    op.drop_table('task_claims')
    op.drop_index(op.f('ix_slot_requests_window_id'), table_name='slot_requests')
    op.drop_index('ix_slot_requests_member', table_name='slot_requests')
    op.drop_table('slot_requests')
    op.drop_index('ix_freed_times_machine', table_name='freed_times')
    op.drop_table('freed_times')
    op.drop_table('scheduling_settings')
    op.drop_index(op.f('ix_request_windows_status'), table_name='request_windows')
    op.drop_index('ix_request_windows_machine_period', table_name='request_windows')
    op.drop_table('request_windows')
    op.drop_index(op.f('ix_effort_tasks_completed_at'), table_name='effort_tasks')
    op.drop_table('effort_tasks')
