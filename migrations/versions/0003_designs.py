"""open designs: designs, versions, files, tags, machine types, made-here records

Revision ID: 0003_designs
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0003_designs"
down_revision = "0002_usage"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('designs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('slug', sa.String(length=80), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('tags_text', sa.String(length=600), nullable=False),
    sa.Column('search_text', sa.Text(), nullable=False),
    sa.Column('author_id', sa.Integer(), nullable=True),
    sa.Column('author_name', sa.String(length=120), nullable=False),
    sa.Column('licence', sa.String(length=40), nullable=False),
    sa.Column('parent_id', sa.Integer(), nullable=True),
    sa.Column('latest_version', sa.Integer(), nullable=False),
    sa.Column('thumb_key', sa.String(length=32), nullable=True),
    sa.Column('forks_count', sa.Integer(), nullable=False),
    sa.Column('made_count', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['author_id'], ['members.id'], name=op.f('fk_designs_author_id_members'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['parent_id'], ['designs.id'], name=op.f('fk_designs_parent_id_designs'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_designs'))
    )
    with op.batch_alter_table('designs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_designs_author_id'), ['author_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_designs_created_at'), ['created_at'], unique=False)
        batch_op.create_index('ix_designs_forks_count', ['forks_count', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_designs_licence'), ['licence'], unique=False)
        batch_op.create_index('ix_designs_made_count', ['made_count', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_designs_parent_id'), ['parent_id'], unique=False)

    op.create_table('design_machine_types',
    sa.Column('design_id', sa.Integer(), nullable=False),
    sa.Column('machine_type_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['design_id'], ['designs.id'], name=op.f('fk_design_machine_types_design_id_designs'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['machine_type_id'], ['machine_types.id'], name=op.f('fk_design_machine_types_machine_type_id_machine_types'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('design_id', 'machine_type_id', name=op.f('pk_design_machine_types'))
    )
    with op.batch_alter_table('design_machine_types', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_design_machine_types_machine_type_id'), ['machine_type_id'], unique=False)

    op.create_table('design_tags',
    sa.Column('design_id', sa.Integer(), nullable=False),
    sa.Column('tag', sa.String(length=40), nullable=False),
    sa.ForeignKeyConstraint(['design_id'], ['designs.id'], name=op.f('fk_design_tags_design_id_designs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('design_id', 'tag', name=op.f('pk_design_tags'))
    )
    with op.batch_alter_table('design_tags', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_design_tags_tag'), ['tag'], unique=False)

    op.create_table('design_versions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('design_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('changelog', sa.Text(), nullable=False),
    sa.Column('author_id', sa.Integer(), nullable=True),
    sa.Column('parent_version_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['author_id'], ['members.id'], name=op.f('fk_design_versions_author_id_members'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['design_id'], ['designs.id'], name=op.f('fk_design_versions_design_id_designs'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['parent_version_id'], ['design_versions.id'], name=op.f('fk_design_versions_parent_version_id_design_versions'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_design_versions')),
    sa.UniqueConstraint('design_id', 'number', name='uq_design_versions_design_number')
    )
    with op.batch_alter_table('design_versions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_design_versions_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_design_versions_parent_version_id'), ['parent_version_id'], unique=False)

    op.create_table('design_files',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('storage_key', sa.String(length=32), nullable=False),
    sa.Column('ext', sa.String(length=16), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('mime', sa.String(length=80), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('meta', sa.JSON(), nullable=True),
    sa.Column('thumb_key', sa.String(length=32), nullable=True),
    sa.Column('svg_safe', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['version_id'], ['design_versions.id'], name=op.f('fk_design_files_version_id_design_versions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_design_files'))
    )
    with op.batch_alter_table('design_files', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_design_files_storage_key'), ['storage_key'], unique=False)
        batch_op.create_index(batch_op.f('ix_design_files_version_id'), ['version_id'], unique=False)

    op.create_table('design_made',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('design_id', sa.Integer(), nullable=False),
    sa.Column('version_id', sa.Integer(), nullable=True),
    sa.Column('booking_id', sa.Integer(), nullable=True),
    sa.Column('usage_session_id', sa.Integer(), nullable=True),
    sa.Column('machine_id', sa.Integer(), nullable=True),
    sa.Column('member_id', sa.Integer(), nullable=True),
    sa.Column('note', sa.String(length=255), nullable=False),
    sa.Column('made_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['booking_id'], ['bookings.id'], name=op.f('fk_design_made_booking_id_bookings'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['design_id'], ['designs.id'], name=op.f('fk_design_made_design_id_designs'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['machine_id'], ['machines.id'], name=op.f('fk_design_made_machine_id_machines'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_design_made_member_id_members'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['version_id'], ['design_versions.id'], name=op.f('fk_design_made_version_id_design_versions'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_design_made')),
    sa.UniqueConstraint('design_id', 'booking_id', name='uq_design_made_design_booking')
    )
    with op.batch_alter_table('design_made', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_design_made_booking_id'), ['booking_id'], unique=False)
        batch_op.create_index('ix_design_made_design_machine', ['design_id', 'machine_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_design_made_member_id'), ['member_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_design_made_usage_session_id'), ['usage_session_id'], unique=False)


def downgrade():
    with op.batch_alter_table('design_made', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_design_made_usage_session_id'))
        batch_op.drop_index(batch_op.f('ix_design_made_member_id'))
        batch_op.drop_index('ix_design_made_design_machine')
        batch_op.drop_index(batch_op.f('ix_design_made_booking_id'))

    op.drop_table('design_made')
    with op.batch_alter_table('design_files', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_design_files_version_id'))
        batch_op.drop_index(batch_op.f('ix_design_files_storage_key'))

    op.drop_table('design_files')
    with op.batch_alter_table('design_versions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_design_versions_parent_version_id'))
        batch_op.drop_index(batch_op.f('ix_design_versions_created_at'))

    op.drop_table('design_versions')
    with op.batch_alter_table('design_tags', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_design_tags_tag'))

    op.drop_table('design_tags')
    with op.batch_alter_table('design_machine_types', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_design_machine_types_machine_type_id'))

    op.drop_table('design_machine_types')
    with op.batch_alter_table('designs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_designs_parent_id'))
        batch_op.drop_index('ix_designs_made_count')
        batch_op.drop_index(batch_op.f('ix_designs_licence'))
        batch_op.drop_index('ix_designs_forks_count')
        batch_op.drop_index(batch_op.f('ix_designs_created_at'))
        batch_op.drop_index(batch_op.f('ix_designs_author_id'))

    op.drop_table('designs')
