"""Two-factor sign-in: the lab's switch requiring it of stewards and admins (one row, off until an admin
turns it on; FABLAB_REQUIRE_2FA_STAFF can require it too), and the sign-ins waiting for their second factor
(the hash of the browser's token, expiry, wrong attempts). The TOTP columns and recovery codes came with
0015_accounts_core.

Revision ID: 0017_two_factor
Revises: 0016_account_deletion
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0017_two_factor'
down_revision = '0016_account_deletion'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('two_factor_challenges',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('method', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_two_factor_challenges_member_id_members'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_two_factor_challenges')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_two_factor_challenges_token_hash'))
    )
    with op.batch_alter_table('two_factor_challenges', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_two_factor_challenges_expires_at'), ['expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_two_factor_challenges_member_id'), ['member_id'], unique=False)

    op.create_table('two_factor_settings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('require_staff', sa.Boolean(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['updated_by_id'], ['members.id'], name=op.f('fk_two_factor_settings_updated_by_id_members'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_two_factor_settings'))
    )


def downgrade():
    op.drop_table('two_factor_settings')
    with op.batch_alter_table('two_factor_challenges', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_two_factor_challenges_member_id'))
        batch_op.drop_index(batch_op.f('ix_two_factor_challenges_expires_at'))

    op.drop_table('two_factor_challenges')
