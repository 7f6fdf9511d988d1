"""Account deletion: requests waiting for staff confirmation (a member who asked to delete their account
while holding future bookings, induction sessions they train or claimed tasks). One row per member, removed
when staff confirm or the member withdraws.

Revision ID: 0016_account_deletion
Revises: 0015_accounts_core
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0016_account_deletion'
down_revision = '0015_accounts_core'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('deletion_requests',
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_deletion_requests_member_id_members'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('member_id', name=op.f('pk_deletion_requests'))
    )


def downgrade():
    op.drop_table('deletion_requests')
